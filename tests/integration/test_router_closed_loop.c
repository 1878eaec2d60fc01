/*  test_router_closed_loop - the closed loop end to end through the real referral-router
    (with notification and reporting): a referral routed to a target reached by feed while
    its reader is down; the target's reader catches up from its cursor, finds the package
    and accepts it on the feed; the sender's system, told on its own feed, reads every status
    in order; an urgent one left unanswered is escalated on both feeds, naming the target's
    directory code. The directory and the intake side are as in test_router_route. */
#include "fs_test.h"


static fs_test_suite_t *s_suite;
static char s_out [8192], s_err [8192];

static const char *s_services_csv =
    FS_TEST_ROUTER_SERVICES_HEADER
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

//  `finestra-referral-router ARGS...` on the suite's stores (set by s_setup); stdout and
//  stderr land in s_out and s_err
static fs_test_command_t s_router = {
    FS_TEST_COMMAND_CAPTURE ("referral-router", s_out, s_err)
};
#define s_run(...) fs_test_command_runl (&s_router, __VA_ARGS__)

static void
s_setup (void)
{
    const char *const settings [] = {
        "FINESTRA_ROUTER_DEADLINE_URGENT_S=2", "FINESTRA_ROUTER_DEADLINE_SCAN_MS=200", NULL
    };
    s_suite = fs_test_router_suite (&s_router, "router_loop", settings,
                                    "referral-router notification reporting", s_services_csv,
                                    s_territory_csv);
}

static void
s_teardown (void)
{
    fs_test_suite_destroy (&s_suite);
}

TestSuite (router_loop, .init = s_setup, .fini = s_teardown, .timeout = 180);

// ---- sending as intake ------------------------------------------------------------------

//  intake.referral_requested and intake.consent_changed as tests/support/fs_test_router.c
//  sends them
typedef fs_test_router_req_t s_req_t;
#define s_request(...) fs_test_router_request (s_suite, __VA_ARGS__)
#define s_consent(...) fs_test_router_consent (s_suite, __VA_ARGS__)


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
