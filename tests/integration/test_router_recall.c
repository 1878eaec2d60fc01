/*  test_router_recall - a withdrawn consent reaches the targets that already hold data sent
    under it (GDPR art. 7(3), 19), through the real referral-router and notification:
    referral.consent_withdrawn once per referral on the target's feed (read from the feed
    endpoint and feed_items) or on the bus (outbox -> a pending notification); nothing again
    when the withdrawal is repeated; nothing for a referral released on an override's legal
    basis, a cancelled or entered-in-error one, or data another valid consent still covers;
    a completed one is (its target still holds the data). */
#include "fs_test.h"

static fs_test_suite_t *s_suite;
static char s_out [8192], s_err [8192];

static const char *s_services_csv =
    FS_TEST_ROUTER_SERVICES_HEADER
    "CSS01,social_services_centre,CSS One,neighbourhood,01,,,lives_in_city,*,,"
    "Anyone living in neighbourhood 01,capacity,internal,notification,true\n"
    "OH-01,housing_office,Housing One,district,01,18,,lives_in_city,housing,,"
    "Adults living in district 01,capacity,feed,housing-feed,true\n";
static const char *s_territory_csv =
    "district_code,district,neighbourhood_code,neighbourhood\n"
    "01,One,01,N one\n01,One,02,N two\n";

//  `finestra-referral-router ARGS...` on the suite's stores; output in s_out and s_err
static fs_test_command_t s_router = {
    FS_TEST_COMMAND_CAPTURE ("referral-router", s_out, s_err)
};
#define s_run(...) fs_test_command_runl (&s_router, __VA_ARGS__)

static void
s_setup (void)
{
    s_suite = fs_test_router_suite (&s_router, "router_recall", NULL,
                                    "referral-router notification", s_services_csv,
                                    s_territory_csv);
}

static void
s_teardown (void)
{
    fs_test_suite_destroy (&s_suite);
}

TestSuite (router_recall, .init = s_setup, .fini = s_teardown, .timeout = 120);

typedef fs_test_router_req_t s_req_t;
#define s_request(...) fs_test_router_request (s_suite, __VA_ARGS__)
#define s_consent(...) fs_test_router_consent (s_suite, __VA_ARGS__)
#define s_expect(sql, param, expected) \
    fs_test_pg_expect_text (s_suite->pg_url, (sql), (param), (expected))

static char *
s_text (const char *sql, const char *param)
{
    const char *values [1] = { param };
    return fs_test_pg_text (s_suite->pg_url, sql, param ? 1 : 0, values);
}

//  The referral of event_ref: its id (malloc'd)
static char *
s_id (const char *event_ref)
{
    char *id = s_text ("SELECT id FROM referral_router.referrals WHERE event_ref = $1",
                       event_ref);
    cr_assert_eq (strlen (id), FS_UUID_LEN, "no referral for %s", event_ref);
    return id;
}

//  Recalls told for referral id: feed items plus bus envelopes (any consumer)
#define S_RECALLS_TOLD \
    "SELECT (SELECT count(*) FROM referral_router.feed_items WHERE referral_id = $1::uuid" \
    " AND item_type = 'referral.consent_withdrawn') || '+' || (SELECT count(*)" \
    " FROM referral_router.outbox o JOIN referral_router.referrals r" \
    " ON r.correlation_id = o.correlation_id WHERE r.id = $1::uuid" \
    " AND o.type = 'referral.consent_withdrawn' AND o.consumer = 'notification')"

static char *
s_person (void)
{
    char *id = (char *) zmalloc (FS_UUID_LEN + 1);
    fs_uuid (id);
    return id;
}

// ---- the feed endpoint, as a target's system reads it -----------------------------------

static void
s_pack_str (msgpack_packer *pk, const char *s)
{
    msgpack_pack_str (pk, strlen (s));
    msgpack_pack_str_body (pk, s, strlen (s));
}

//  Reads feed from the start: every referral.consent_withdrawn item about referral_id, decoded
//  into recall (the last one); their number
static int
s_feed_recalls (const char *feed, const char *referral_id,
                fs_referral_consent_withdrawn_t *recall)
{
    int64_t cursor = 0;
    int found = 0;
    bool more = true;
    while (more) {
        msgpack_sbuffer buffer;
        msgpack_sbuffer_init (&buffer);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
        msgpack_pack_map (&pk, 4);
        s_pack_str (&pk, "v");
        msgpack_pack_int (&pk, 1);
        s_pack_str (&pk, "feed");
        s_pack_str (&pk, feed);
        s_pack_str (&pk, "after");
        msgpack_pack_int64 (&pk, cursor);
        s_pack_str (&pk, "max");
        msgpack_pack_int (&pk, 100);
        zsock_t *req = zsock_new_req (s_suite->feed_endpoint);
        cr_assert (req);
        zsock_set_rcvtimeo (req, 20000);
        zsock_set_linger (req, 0);
        zframe_t *frame = zframe_new (buffer.data, buffer.size);
        msgpack_sbuffer_destroy (&buffer);
        cr_assert_eq (zframe_send (&frame, req, 0), 0);
        zframe_t *reply = zframe_recv (req);
        cr_assert (reply, "no answer from the feed endpoint");
        fs_feed_answer_t answer = { 0 };
        fs_proto_error_t err;
        cr_assert_eq (fs_proto_decode (&fs_feed_answer_type, zframe_data (reply),
                                       zframe_size (reply), &answer, &err), 0, "%s",
                      err.message);
        zframe_destroy (&reply);
        zsock_destroy (&req);
        cr_assert_str_eq (answer.status, "ok");
        for (size_t i = 0; i < answer.items.n; i++) {
            const fs_feed_item_t *item = &((const fs_feed_item_t *) answer.items.items) [i];
            cursor = item->seq;
            if (!streq (item->type, "referral.consent_withdrawn")
            ||  !FS_PRESENT (item, fs_feed_item_F_referral_id)
            ||  !streq (item->referral_id, referral_id))
                continue;
            fs_proto_clear (&fs_referral_consent_withdrawn_type, recall);
            cr_assert_eq (fs_proto_decode (&fs_referral_consent_withdrawn_type, item->data.data,
                                           item->data.len, recall, &err), 0, "%s",
                          err.message);
            found++;
        }
        more = answer.more;
        fs_proto_clear (&fs_feed_answer_type, &answer);
    }
    return found;
}

//  The list as one string: "a b c"
static void
s_joined (const fs_strlist_t *list, char *out, size_t size)
{
    *out = 0;
    for (size_t i = 0; i < list->n; i++)
        snprintf (out + strlen (out), size - strlen (out), "%s%s", i ? " " : "",
                  list->items [i]);
}

//  The referral.consent_withdrawn envelopes for notification about referral_id: their
//  number; of the last, "target|event_ref|categories" into out
static int
s_bus_recalls (const char *referral_id, char *out, size_t size)
{
    PGconn *conn = PQconnectdb (s_suite->pg_url);
    cr_assert (PQstatus (conn) == CONNECTION_OK);
    const char *values [1] = { referral_id };
    PGresult *result = PQexecParams (conn, "SELECT o.envelope FROM referral_router.outbox o"
        " JOIN referral_router.referrals r ON r.correlation_id = o.correlation_id"
        " WHERE r.id = $1::uuid AND o.consumer = 'notification'"
        " AND o.type = 'referral.consent_withdrawn' ORDER BY o.seq", 1, NULL, values, NULL,
        NULL, 1);
    cr_assert (PQresultStatus (result) == PGRES_TUPLES_OK, "%s", PQerrorMessage (conn));
    int found = PQntuples (result);
    *out = 0;
    for (int row = 0; row < found; row++) {
        fs_envelope_t env;
        fs_proto_error_t err;
        cr_assert_eq (fs_envelope_decode (PQgetvalue (result, row, 0),
                                          (size_t) PQgetlength (result, row, 0), 1 << 20, &env,
                                          &err), 0, "%s", err.message);
        cr_assert_str_eq (env.hdr.type, "referral.consent_withdrawn");
        const fs_referral_consent_withdrawn_t *recall = env.payload;
        char cats [128];
        s_joined (&recall->data_categories, cats, sizeof cats);
        snprintf (out, size, "%s|%s|%s", recall->target, recall->event_ref, cats);
        cr_assert_str_eq (recall->referral_id, referral_id);
        cr_assert (strstr (recall->action, "Stop processing"), "%s", recall->action);
        fs_envelope_clear (&env);
    }
    PQclear (result);
    PQfinish (conn);
    return found;
}

//  finestra_router_consent_recalls_total as the router's /metrics gives it (-1: not there)
static long
s_recalls_counted (void)
{
    int index = -1;
    for (int i = 0; fs_services [i].name; i++)
        if (streq (fs_services [i].name, "referral-router"))
            index = i;
    cr_assert (index >= 0);
    int status = 0;
    char *body = NULL;
    cr_assert_eq (fs_test_http_get (s_suite->http_ports [index], "/metrics", &status, &body), 0);
    cr_assert_eq (status, 200, "%s", body ? body : "");
    static const char series [] =
        "\nfinestra_router_consent_recalls_total{service=\"referral-router\"} ";
    const char *found = strstr (body, series);
    long value = found ? strtol (found + strlen (series), NULL, 10) : -1;
    free (body);
    return value;
}

// ---- the tests ------------------------------------------------------------------------

Test (router_recall, a_withdrawal_reaches_each_target_holding_the_data_once)
{
    char *person = s_person ();
    char consent [FS_UUID_LEN + 1];
    fs_uuid (consent);
    s_consent (consent, person, "granted", "housing social_services",
               "identity contact social_health", NULL);
    //  A housing need -> the housing office, by its feed; a family need -> the centre,
    //  inside the suite; a third referral, cancelled by its requester before the withdrawal
    s_request ("ev-feed", person, &(s_req_t) { .level = "complementation",
               .codes = { "Z59.1" }, .minors = -1 });
    s_request ("ev-int", person, &(s_req_t) { .level = "complementation",
               .needs = { "family_support" }, .minors = -1 });
    s_request ("ev-gone", person, &(s_req_t) { .level = "complementation",
               .needs = { "family_support" }, .minors = -1 });
    char *feed_id = s_id ("ev-feed"), *int_id = s_id ("ev-int"), *gone_id = s_id ("ev-gone");
    s_expect ("SELECT status || '|' || target || '|' || legal_basis FROM"
              " referral_router.referrals WHERE id = $1::uuid", feed_id,
              "requested|OH-01|consent");
    s_expect ("SELECT status || '|' || target || '|' || legal_basis FROM"
              " referral_router.referrals WHERE id = $1::uuid", int_id,
              "requested|CSS01|consent");
    cr_assert_eq (s_run ("transition", gone_id, "cancelled", "--as", "requester", "--reason",
                         "need_resolved", NULL), 0, "%s", s_err);
    //  Nothing recalled while the consent holds
    s_expect (S_RECALLS_TOLD, feed_id, "0+0");
    s_expect (S_RECALLS_TOLD, int_id, "0+0");
    cr_assert_eq (s_recalls_counted (), 0);

    s_consent (consent, person, "withdrawn", NULL, NULL, NULL);

    //  The feed target: one item on its feed, as its reader gets it from the endpoint
    fs_referral_consent_withdrawn_t recall = { 0 };
    cr_assert_eq (s_feed_recalls ("housing-feed", feed_id, &recall), 1);
    char cats [128];
    cr_assert_str_eq (recall.referral_id, feed_id);
    cr_assert_str_eq (recall.event_ref, "ev-feed");
    cr_assert_str_eq (recall.target, "OH-01");
    cr_assert_str_eq (recall.purpose, "social_health_coordination");
    s_joined (&recall.data_categories, cats, sizeof cats);
    cr_assert_str_eq (cats, "identity contact social_health");
    cr_assert (FS_PRESENT (&recall, fs_referral_consent_withdrawn_F_withdrawn_at));
    cr_assert (FS_PRESENT (&recall, fs_referral_consent_withdrawn_F_sent_at));
    cr_assert (strstr (recall.action, "Stop processing"), "%s", recall.action);
    cr_assert (strstr (recall.action, "erase"), "%s", recall.action);
    cr_assert (strstr (recall.action, "not cancelled"), "%s", recall.action);
    //  ... and nothing of it on the bus
    s_expect (S_RECALLS_TOLD, feed_id, "1+0");

    //  The internal target: one envelope to notification, a pending notification for the
    //  centre; not on any feed
    char told [256];
    cr_assert_eq (s_bus_recalls (int_id, told, sizeof told), 1);
    cr_assert_str_eq (told, "CSS01|ev-int|identity contact social_health");
    s_expect (S_RECALLS_TOLD, int_id, "0+1");
    cr_assert (fs_test_pg_wait (s_suite->pg_url, "SELECT count(*) FROM"
               " notification.notifications WHERE recipient = 'service:CSS01'"
               " AND topic = 'referral.consent_withdrawn' AND status = 'pending'", 1, 15000));
    fs_proto_clear (&fs_referral_consent_withdrawn_type, &recall);

    //  Recorded once each; the referrals are not cancelled (the target decides)
    s_expect ("SELECT string_agg (target || ':' || delivery || ':' || array_to_string"
              " (categories, ' '), ',' ORDER BY target) FROM referral_router.consent_recalls"
              " WHERE consent_id = $1::uuid", consent,
              "CSS01:internal:identity contact social_health,"
              "OH-01:feed:identity contact social_health");
    s_expect ("SELECT string_agg (status, ',' ORDER BY event_ref) FROM"
              " referral_router.referrals WHERE person_id = $1::uuid", person,
              "requested,cancelled,requested");
    //  The cancelled one was told to stop using the data already: no recall
    s_expect (S_RECALLS_TOLD, gone_id, "0+0");
    //  Counted once committed (before the withdrawal's ack): the two targets told
    cr_assert_eq (s_recalls_counted (), 2);

    //  The withdrawal again (a re-send): nothing more anywhere
    s_consent (consent, person, "withdrawn", NULL, NULL, NULL);
    cr_assert_eq (s_feed_recalls ("housing-feed", feed_id, &recall), 1);
    fs_proto_clear (&fs_referral_consent_withdrawn_type, &recall);
    s_expect (S_RECALLS_TOLD, feed_id, "1+0");
    s_expect (S_RECALLS_TOLD, int_id, "0+1");
    s_expect ("SELECT count(*) FROM referral_router.consent_recalls r JOIN"
              " referral_router.referrals f ON f.id = r.referral_id"
              " WHERE f.person_id = $1::uuid", person, "2");
    cr_assert_eq (s_recalls_counted (), 2);
    //  Still no new transfer under the withdrawn consent
    s_request ("ev-after", person, &(s_req_t) { .level = "complementation",
               .codes = { "Z59.1" }, .minors = -1 });
    s_expect ("SELECT status || '|' || reason_code FROM referral_router.referrals"
              " WHERE event_ref = $1", "ev-after", "on-hold|consent_withdrawn");
    free (feed_id);
    free (int_id);
    free (gone_id);
    free (person);
}

Test (router_recall, a_referral_sent_on_an_override_basis_is_not_recalled)
{
    char *person = s_person ();
    //  No consent: held; released by an audited override (vital interest)
    s_request ("ev-vital", person, &(s_req_t) { .level = "complementation",
               .codes = { "Z59.1" }, .minors = -1 });
    char *vital = s_id ("ev-vital");
    s_expect ("SELECT status || '|' || reason_code FROM referral_router.referrals"
              " WHERE id = $1::uuid", vital, "on-hold|consent_missing");
    cr_assert_eq (s_run ("override-consent", vital, "--basis", "vital_interest", "--by",
                         "dr-x", "--reason", "person at risk tonight", NULL), 0, "%s", s_err);
    s_expect ("SELECT status || '|' || legal_basis FROM referral_router.referrals"
              " WHERE id = $1::uuid", vital, "requested|vital_interest");
    //  Then a consent, a referral sent under it to the same target, and the withdrawal
    char consent [FS_UUID_LEN + 1];
    fs_uuid (consent);
    s_consent (consent, person, "granted", "housing", "identity contact", NULL);
    s_request ("ev-consented", person, &(s_req_t) { .level = "complementation",
               .codes = { "Z59.1" }, .minors = -1 });
    char *consented = s_id ("ev-consented");
    s_expect ("SELECT status || '|' || legal_basis FROM referral_router.referrals"
              " WHERE id = $1::uuid", consented, "requested|consent");
    s_consent (consent, person, "withdrawn", NULL, NULL, NULL);
    //  Only the referral whose basis was the consent is recalled
    s_expect (S_RECALLS_TOLD, consented, "1+0");
    s_expect (S_RECALLS_TOLD, vital, "0+0");
    s_expect ("SELECT count(*) FROM referral_router.consent_recalls WHERE consent_id = $1::uuid",
              consent, "1");
    s_expect ("SELECT array_to_string (categories, ' ') FROM referral_router.consent_recalls"
              " WHERE consent_id = $1::uuid", consent, "identity contact");
    free (vital);
    free (consented);
    free (person);
}

Test (router_recall, only_what_no_other_valid_consent_covers_is_recalled)
{
    char *person = s_person ();
    char narrow [FS_UUID_LEN + 1], wide [FS_UUID_LEN + 1], other [FS_UUID_LEN + 1];
    fs_uuid (narrow);
    fs_uuid (wide);
    fs_uuid (other);
    //  Two consents for housing (the package takes their union), one for primary care
    s_consent (narrow, person, "granted", "housing", "identity contact", NULL);
    s_consent (wide, person, "granted", "housing", "identity contact social_health", NULL);
    s_consent (other, person, "granted", "primary_care", "identity contact social_health",
               NULL);
    s_request ("ev-two", person, &(s_req_t) { .level = "complementation",
               .codes = { "Z59.1" }, .minors = -1 });
    char *id = s_id ("ev-two");
    s_expect ("SELECT array_to_string (data_categories, ' ') FROM referral_router.referrals"
              " WHERE id = $1::uuid", id, "identity contact social_health");
    //  A consent for another recipient withdrawn: the housing office is not told
    s_consent (other, person, "withdrawn", NULL, NULL, NULL);
    s_expect (S_RECALLS_TOLD, id, "0+0");
    cr_assert_eq (s_recalls_counted (), 0);
    //  The wide one withdrawn: the narrow one still covers identity and contact, so only the
    //  health data are recalled
    s_consent (wide, person, "withdrawn", NULL, NULL, NULL);
    s_expect (S_RECALLS_TOLD, id, "1+0");
    fs_referral_consent_withdrawn_t recall = { 0 };
    cr_assert_eq (s_feed_recalls ("housing-feed", id, &recall), 1);
    char cats [128];
    s_joined (&recall.data_categories, cats, sizeof cats);
    cr_assert_str_eq (cats, "social_health");
    //  The narrow one withdrawn too: now the rest
    s_consent (narrow, person, "withdrawn", NULL, NULL, NULL);
    cr_assert_eq (s_feed_recalls ("housing-feed", id, &recall), 2);
    s_joined (&recall.data_categories, cats, sizeof cats);
    cr_assert_str_eq (cats, "identity contact");
    fs_proto_clear (&fs_referral_consent_withdrawn_type, &recall);
    //  Each telling counts: the same referral recalled twice, for two consents
    cr_assert_eq (s_recalls_counted (), 2);
    s_expect ("SELECT string_agg (array_to_string (categories, ' '), ',' ORDER BY sent_at)"
              " FROM referral_router.consent_recalls WHERE referral_id = $1::uuid", id,
              "social_health,identity contact");
    free (id);
    free (person);
}

Test (router_recall, a_completed_referral_is_recalled_one_entered_in_error_is_not)
{
    char *person = s_person ();
    char consent [FS_UUID_LEN + 1];
    fs_uuid (consent);
    s_consent (consent, person, "granted", "social_services", "identity contact", NULL);
    s_request ("ev-done", person, &(s_req_t) { .level = "complementation",
               .needs = { "family_support" }, .minors = -1 });
    s_request ("ev-error", person, &(s_req_t) { .level = "complementation",
               .needs = { "family_support" }, .minors = -1 });
    char *done = s_id ("ev-done"), *error = s_id ("ev-error");
    //  The centre worked the first to the end: it still holds what it received
    const char *steps [3] = { "accepted", "in-progress", "completed" };
    for (int i = 0; i < 3; i++)
        cr_assert_eq (s_run ("transition", done, steps [i], "--as", "target", NULL), 0, "%s",
                      s_err);
    //  The second was a mistake: its target was told to stop using the data already
    cr_assert_eq (s_run ("transition", error, "entered-in-error", "--as", "requester", NULL),
                  0, "%s", s_err);
    s_consent (consent, person, "withdrawn", NULL, NULL, NULL);
    s_expect (S_RECALLS_TOLD, done, "0+1");
    s_expect (S_RECALLS_TOLD, error, "0+0");
    char told [256];
    cr_assert_eq (s_bus_recalls (done, told, sizeof told), 1);
    cr_assert_str_eq (told, "CSS01|ev-done|identity contact");
    s_expect ("SELECT status FROM referral_router.referrals WHERE id = $1::uuid", done,
              "completed");
    free (done);
    free (error);
    free (person);
}
