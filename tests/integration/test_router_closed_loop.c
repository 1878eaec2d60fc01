/*  test_router_closed_loop - the closed loop end to end through the real referral-router
    (with notification and reporting): a referral routed to a target reached by feed while
    its reader is down; the target's reader catches up from its cursor, finds the package
    and accepts it on the feed; the sender's system, told on its own feed, reads every status
    in order; an urgent one left unanswered is escalated on both feeds, naming the target's
    directory code. The directory and the intake side are as in test_router_route. */
#include "fs_test.h"
#include <sys/wait.h>

extern const char *fs_test_bin_dir;
extern const char *fs_test_source_dir;

static fs_test_suite_t *s_suite;
static char s_out [8192], s_err [8192];

static const char *s_services_csv =
    "code,kind,name,territory_scope,territory_codes,age_min,age_max,residency,needs,conditions,"
    "criteria_text,capacity,delivery,delivery_target,demo\n"
    "CSS01,social_services_centre,CSS One,neighbourhood,01,,,lives_in_city,*,,"
    "Anyone living in neighbourhood 01,capacity,internal,notification,true\n"
    "CSS02,social_services_centre,CSS Two,neighbourhood,02,,,lives_in_city,*,,"
    "Anyone living in neighbourhood 02,capacity,internal,notification,true\n"
    "OH-01,housing_office,Housing One,district,01,18,,lives_in_city,housing,,"
    "Adults living in district 01,capacity,feed,housing-feed,true\n"
    "OH-FULL,housing_office,Housing Full,district,01,18,,lives_in_city,housing,,"
    "Adults living in district 01,no_capacity,feed,housing-feed,true\n"
    "EMP,employment,Jobs,city,,16,64,lives_in_city,employment,,"
    "People aged 16 to 64 living in the city,capacity,feed,jobs-feed,true\n";
static const char *s_territory_csv =
    "district_code,district,neighbourhood_code,neighbourhood\n"
    "01,One,01,N one\n01,One,02,N two\n02,Two,03,N three\n";

static void
s_slurp (const char *path, char *buffer, size_t size)
{
    FILE *file = fopen (path, "r");
    cr_assert (file, "%s", path);
    size_t n = fread (buffer, 1, size - 1, file);
    buffer [n] = 0;
    fclose (file);
    unlink (path);
}

//  Runs `finestra-referral-router ARGS...` (NULL-terminated) on the suite's stores
static int
s_run (const char *first, ...)
{
    char *argv [16];
    char path [512];
    snprintf (path, sizeof path, "%s/finestra-referral-router", fs_test_bin_dir);
    int argc = 0;
    argv [argc++] = path;
    argv [argc++] = (char *) first;
    va_list ap;
    va_start (ap, first);
    for (const char *arg; argc < 15 && (arg = va_arg (ap, const char *)); )
        argv [argc++] = (char *) arg;
    va_end (ap);
    argv [argc] = NULL;
    char out [64], err [64];
    snprintf (out, sizeof out, "/tmp/test_router_loop.%d.out", getpid ());
    snprintf (err, sizeof err, "/tmp/test_router_loop.%d.err", getpid ());
    pid_t pid = fork ();
    cr_assert (pid >= 0);
    if (pid == 0) {
        setenv ("FINESTRA_PG_URL", s_suite->pg_url, 1);
        setenv ("FINESTRA_REDIS_URL", s_suite->redis_url, 1);
        setenv ("FINESTRA_REDIS_PREFIX", s_suite->redis_prefix, 1);
        setenv ("FINESTRA_LOG_LEVEL", "warn", 1);
        int fd = open (out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fd2 = open (err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || fd2 < 0)
            _exit (126);
        dup2 (fd, 1);
        dup2 (fd2, 2);
        execv (path, argv);
        _exit (127);
    }
    int status = 0;
    cr_assert (waitpid (pid, &status, 0) == pid);
    s_slurp (out, s_out, sizeof s_out);
    s_slurp (err, s_err, sizeof s_err);
    cr_assert (WIFEXITED (status), "finestra-referral-router %s died: %s", first, s_err);
    return WEXITSTATUS (status);
}

static void
s_write (const char *path, const char *text)
{
    FILE *file = fopen (path, "w");
    cr_assert (file);
    fputs (text, file);
    fclose (file);
}

static void
s_setup (void)
{
    s_suite = fs_test_suite_new ("router_loop");
    fs_test_suite_setenv (s_suite, "FINESTRA_ROUTER_DEADLINE_URGENT_S", "2");
    fs_test_suite_setenv (s_suite, "FINESTRA_ROUTER_DEADLINE_SCAN_MS", "200");
    fs_test_suite_start (s_suite, "referral-router");
    fs_test_suite_start (s_suite, "notification");
    fs_test_suite_start (s_suite, "reporting");
    char services [128], territory [128], needs [512], zcodes [512];
    snprintf (services, sizeof services, "/tmp/test_router_loop.%d.services.csv", getpid ());
    snprintf (territory, sizeof territory, "/tmp/test_router_loop.%d.territory.csv", getpid ());
    snprintf (needs, sizeof needs, "%s/services/referral-router/data/needs.csv",
              fs_test_source_dir);
    snprintf (zcodes, sizeof zcodes, "%s/services/referral-router/data/zcodes.csv",
              fs_test_source_dir);
    s_write (services, s_services_csv);
    s_write (territory, s_territory_csv);
    int rc = s_run ("load-directory", services, needs, zcodes, territory, NULL);
    unlink (services);
    unlink (territory);
    cr_assert_eq (rc, 0, "load-directory: %s", s_err);
}

static void
s_teardown (void)
{
    fs_test_suite_destroy (&s_suite);
}

TestSuite (router_loop, .init = s_setup, .fini = s_teardown, .timeout = 180);

// ---- sending as intake ------------------------------------------------------------------

static void
s_send (const fs_type_t *type, const void *payload)
{
    int index = -1;
    for (int i = 0; fs_services [i].name; i++)
        if (streq (fs_services [i].name, "referral-router"))
            index = i;
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    zsock_set_linger (dealer, 0);
    zsock_set_rcvtimeo (dealer, 10000);
    cr_assert_eq (zsock_connect (dealer, "tcp://127.0.0.1:%d", s_suite->bus_ports [index]), 0);
    char *data = NULL;
    size_t len = 0;
    fs_proto_error_t err;
    cr_assert_eq (fs_envelope_encode ("intake", type, payload, NULL, &data, &len, NULL, &err), 0,
                  "%s", err.message);
    zframe_t *frame = zframe_new (data, len);
    free (data);
    cr_assert_eq (zframe_send (&frame, dealer, 0), 0);
    zframe_t *answer = zframe_recv (dealer);
    cr_assert (answer, "no ack from the router");
    fs_ack_t ack = { 0 };
    cr_assert_eq (fs_proto_decode (&fs_ack_type, zframe_data (answer), zframe_size (answer),
                                   &ack, &err), 0);
    cr_assert_str_eq (ack.status, "applied", "%s: %s", ack.code ? ack.code : "",
                      ack.reason ? ack.reason : "");
    fs_proto_clear (&fs_ack_type, &ack);
    zframe_destroy (&answer);
    zsock_destroy (&dealer);
}

typedef struct {
    const char *event_type;         //  default health.social_risk_detected
    const char *level;              //  suggested_level
    const char *codes [4];          //  icd10_codes
    const char *needs [4];
    const char *birth;              //  default 1985-03-02
    const char *hood;               //  default 01
    const char *residency;          //  default lives_in_city
    int minors;                     //  -1: absent
    const char *urgency;            //  default preferent
} s_req_t;

static void
s_list (fs_strlist_t *list, uint64_t *present, int index, const char *const *items)
{
    size_t n = 0;
    while (n < 4 && items [n])
        n++;
    if (!n)
        return;
    list->items = (char **) zmalloc (n * sizeof (char *));
    for (size_t i = 0; i < n; i++)
        list->items [i] = strdup (items [i]);
    list->n = n;
    *present |= 1ull << index;
}

//  Sends intake.referral_requested for person about event_ref as r says
static void
s_request (const char *event_ref, const char *person, const s_req_t *r)
{
    const fs_type_t *t = &fs_referral_requested_type;
    fs_referral_requested_t req = { 0 };
    char case_id [FS_UUID_LEN + 1];
    fs_uuid (case_id);
    fs_proto_set_str (t, &req, "event_ref", event_ref);
    fs_proto_set_str (t, &req, "source", "primary-care");
    fs_proto_set_str (t, &req, "event_type", r->event_type ? r->event_type
                                                           : "health.social_risk_detected");
    fs_proto_set_str (t, &req, "urgency", r->urgency ? r->urgency : "preferent");
    fs_proto_set_str (t, &req, "case_id", case_id);
    fs_proto_set_str (t, &req, "person_id", person);
    fs_proto_set_str (t, &req, "centre", "CSS01");
    fs_proto_set_str (t, &req, "suggested_level", r->level);
    fs_proto_set_str (t, &req, "note", "Lives alone, behind on rent");
    s_list (&req.icd10_codes, &req.present, fs_referral_requested_F_icd10_codes, r->codes);
    s_list (&req.needs, &req.present, fs_referral_requested_F_needs, r->needs);
    if (r->minors >= 0)
        fs_proto_set_int (t, &req, "minors", r->minors);
    const fs_type_t *st = &fs_referral_subject_type;
    fs_proto_set_str (st, &req.subject, "given_name", "Laia");
    fs_proto_set_str (st, &req.subject, "family_name", "Puig Serra");
    fs_proto_set_str (st, &req.subject, "doc_type", "DNI");
    fs_proto_set_str (st, &req.subject, "doc_number", "12345678Z");
    fs_proto_set_str (st, &req.subject, "birth_date", r->birth ? r->birth : "1985-03-02");
    fs_proto_set_str (st, &req.subject, "phone", "+34600000000");
    fs_proto_set_str (st, &req.subject, "email", "laia@example.org");
    fs_proto_set_str (st, &req.subject, "language", "ca");
    fs_proto_set_str (st, &req.subject, "residency", r->residency ? r->residency
                                                                  : "lives_in_city");
    const fs_type_t *at = &fs_referral_address_type;
    fs_proto_set_str (at, &req.subject.address, "street", "Carrer Nou");
    fs_proto_set_str (at, &req.subject.address, "number", "3");
    fs_proto_set_str (at, &req.subject.address, "postcode", "08001");
    fs_proto_set_str (at, &req.subject.address, "neighbourhood", r->hood ? r->hood : "01");
    req.subject.present |= 1ull << fs_referral_subject_F_address;
    req.present |= 1ull << fs_referral_requested_F_subject;
    s_send (t, &req);
    fs_proto_clear (t, &req);
}

//  Sends intake.consent_changed; categories and recipients space-separated
static void
s_consent (const char *consent_id, const char *person, const char *status,
           const char *recipients, const char *categories, const char *expires_at)
{
    const fs_type_t *t = &fs_consent_changed_type;
    fs_consent_changed_t change = { 0 };
    fs_proto_set_str (t, &change, "consent_id", consent_id);
    fs_proto_set_str (t, &change, "person_id", person);
    fs_proto_set_str (t, &change, "status", status);
    fs_proto_set_str (t, &change, "purpose", "social_health_coordination");
    fs_proto_set_str (t, &change, "expires_at", expires_at);
    char r [256], c [256];
    snprintf (r, sizeof r, "%s", recipients ? recipients : "");
    snprintf (c, sizeof c, "%s", categories ? categories : "");
    const char *rl [5] = { 0 }, *cl [5] = { 0 };
    char *save = NULL;
    size_t n = 0;
    for (char *w = strtok_r (r, " ", &save); w && n < 4; w = strtok_r (NULL, " ", &save))
        rl [n++] = w;
    n = 0;
    for (char *w = strtok_r (c, " ", &save); w && n < 4; w = strtok_r (NULL, " ", &save))
        cl [n++] = w;
    s_list (&change.recipients, &change.present, fs_consent_changed_F_recipients, rl);
    s_list (&change.data_categories, &change.present, fs_consent_changed_F_data_categories, cl);
    s_send (t, &change);
    fs_proto_clear (t, &change);
}


// ---- a reader of the feed -----------------------------------------------------------------

static void
s_pack_str (msgpack_packer *pk, const char *s)
{
    msgpack_pack_str (pk, strlen (s));
    msgpack_pack_str_body (pk, s, strlen (s));
}

//  One request (a map of string keys: ints when the value starts with a digit) -> answer
static void
s_ask (fs_feed_answer_t *answer, int pairs, ...)
{
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, (size_t) pairs + 1);
    s_pack_str (&pk, "v");
    msgpack_pack_int (&pk, 1);
    va_list ap;
    va_start (ap, pairs);
    for (int i = 0; i < pairs; i++) {
        s_pack_str (&pk, va_arg (ap, const char *));
        const char *value = va_arg (ap, const char *);
        if (isdigit ((unsigned char) value [0]) && strlen (value) < 20)
            msgpack_pack_int64 (&pk, atoll (value));
        else
            s_pack_str (&pk, value);
    }
    va_end (ap);
    zsock_t *req = zsock_new_req (s_suite->feed_endpoint);
    cr_assert (req);
    zsock_set_rcvtimeo (req, 20000);
    zsock_set_linger (req, 0);
    zframe_t *frame = zframe_new (buffer.data, buffer.size);
    msgpack_sbuffer_destroy (&buffer);
    cr_assert_eq (zframe_send (&frame, req, 0), 0);
    zframe_t *reply = zframe_recv (req);
    cr_assert (reply, "no answer from the feed endpoint");
    fs_proto_error_t err;
    cr_assert_eq (fs_proto_decode (&fs_feed_answer_type, zframe_data (reply), zframe_size (reply),
                                   answer, &err), 0, "%s", err.message);
    zframe_destroy (&reply);
    zsock_destroy (&req);
}

static const fs_feed_item_t *
s_item (const fs_feed_answer_t *answer, size_t i)
{
    cr_assert (i < answer->items.n);
    return &((const fs_feed_item_t *) answer->items.items) [i];
}

//  Reads feed from *cursor (saved by the caller) until nothing waits; each item's type and,
//  for status changes, status, appended to out ("type:status ..."); the cursor moves on
static void
s_catch_up (const char *feed, int64_t *cursor, char *out, size_t size,
            fs_referral_package_t *package)
{
    bool more = true;
    while (more) {
        char after [24];
        snprintf (after, sizeof after, "%" PRId64, *cursor);
        fs_feed_answer_t answer = { 0 };
        s_ask (&answer, 3, "feed", feed, "after", after, "max", "2");
        cr_assert_str_eq (answer.status, "ok", "%s", FS_PRESENT (&answer, fs_feed_answer_F_error)
                          ? answer.error.message : "");
        fs_proto_error_t err;
        for (size_t i = 0; i < answer.items.n; i++) {
            const fs_feed_item_t *item = s_item (&answer, i);
            cr_assert (item->seq > *cursor);
            char word [96] = "";
            if (streq (item->type, "referral.status_changed")) {
                fs_referral_status_changed_t changed = { 0 };
                cr_assert_eq (fs_proto_decode (&fs_referral_status_changed_type, item->data.data,
                                               item->data.len, &changed, &err), 0);
                snprintf (word, sizeof word, "status:%s", changed.status);
                fs_proto_clear (&fs_referral_status_changed_type, &changed);
            }
            else
            if (streq (item->type, "referral.overdue")) {
                fs_referral_overdue_t overdue = { 0 };
                cr_assert_eq (fs_proto_decode (&fs_referral_overdue_type, item->data.data,
                                               item->data.len, &overdue, &err), 0);
                snprintf (word, sizeof word, "overdue:%s", overdue.target);
                fs_proto_clear (&fs_referral_overdue_type, &overdue);
            }
            else {
                cr_assert_str_eq (item->type, "referral.requested");
                cr_assert_eq (fs_proto_decode (&fs_referral_package_type, item->data.data,
                                               item->data.len, package, &err), 0);
                snprintf (word, sizeof word, "requested:%s", package->target);
            }
            snprintf (out + strlen (out), size - strlen (out), "%s%s", *out ? " " : "", word);
            *cursor = item->seq;
        }
        cr_assert_eq (answer.next, *cursor);
        more = answer.more;
        fs_proto_clear (&fs_feed_answer_type, &answer);
    }
}

static char *
s_person (void)
{
    static char person [FS_UUID_LEN + 1];
    fs_uuid (person);
    return person;
}

Test (router_loop, target_catches_up_accepts_and_the_sender_hears_everything)
{
    cr_assert_eq (s_run ("sender-feed", "primary-care", "primary-care-feed", NULL), 0, "%s",
                  s_err);
    //  Both readers start (cursor 0: nothing yet), then go away
    int64_t housing = 0, sender = 0;
    char seen [1024] = "";
    fs_referral_package_t package = { 0 };
    s_catch_up ("housing-feed", &housing, seen, sizeof seen, &package);
    cr_assert_str_eq (seen, "");
    //  Meanwhile: consent for housing, a health event's referral routed to OH-01 (a feed)
    char *person = s_person ();
    char consent [FS_UUID_LEN + 1];
    fs_uuid (consent);
    s_consent (consent, person, "granted", "housing social_services", "identity contact",
               NULL);
    s_request ("ev-loop-1", person, &(s_req_t) { .level = "complementation",
               .codes = { "Z59.1" }, .minors = -1 });
    //  The housing system comes back: from its cursor, the package, within consent
    seen [0] = 0;
    s_catch_up ("housing-feed", &housing, seen, sizeof seen, &package);
    cr_assert_str_eq (seen, "requested:OH-01");
    cr_assert_str_eq (package.subject.given_name, "Laia");
    cr_assert_not (FS_PRESENT (&package, fs_referral_package_F_note), "no health data");
    char referral [FS_UUID_LEN + 1];
    snprintf (referral, sizeof referral, "%s", package.referral_id);
    fs_proto_clear (&fs_referral_package_type, &package);
    //  It accepts, works on it, completes it: on its feed, as the target
    const char *steps [3] = { "accepted", "in-progress", "completed" };
    for (int i = 0; i < 3; i++) {
        fs_feed_answer_t answer = { 0 };
        s_ask (&answer, 4, "feed", "housing-feed", "op", "transition", "referral_id", referral,
               "status", steps [i]);
        cr_assert_str_eq (answer.status, "ok", "%s: %s", steps [i],
                          FS_PRESENT (&answer, fs_feed_answer_F_error)
                          ? answer.error.message : "");
        fs_proto_clear (&fs_feed_answer_type, &answer);
    }
    //  The sender's system reads its feed: every status, in order, once
    seen [0] = 0;
    s_catch_up ("primary-care-feed", &sender, seen, sizeof seen, &package);
    cr_assert_str_eq (seen, "status:requested status:accepted status:in-progress"
                            " status:completed");
    //  Nothing more for either from their cursors; its own changes do not echo to housing
    seen [0] = 0;
    s_catch_up ("housing-feed", &housing, seen, sizeof seen, &package);
    s_catch_up ("primary-care-feed", &sender, seen, sizeof seen, &package);
    cr_assert_str_eq (seen, "");
    //  An urgent one nobody accepts: escalated on both feeds, naming the target's code
    s_request ("ev-loop-2", person, &(s_req_t) { .level = "complementation",
               .codes = { "Z59.1" }, .minors = -1, .urgency = "urgent" });
    cr_assert (fs_test_pg_wait (s_suite->pg_url, "SELECT count(*) FROM"
                                " referral_router.referral_escalations", 1, 20000));
    s_catch_up ("housing-feed", &housing, seen, sizeof seen, &package);
    fs_proto_clear (&fs_referral_package_type, &package);
    cr_assert_str_eq (seen, "requested:OH-01 overdue:OH-01");
    seen [0] = 0;
    s_catch_up ("primary-care-feed", &sender, seen, sizeof seen, &package);
    cr_assert_str_eq (seen, "status:requested overdue:OH-01");
    cr_assert (fs_test_pg_wait (s_suite->pg_url, "SELECT count(*) FROM"
                                " notification.notifications WHERE topic = 'referral.overdue'"
                                " AND recipient = 'management-of:OH-01'", 1, 20000));
}
