/*  test_router_deadline_hold - the acceptance deadline of a referral held for consent counts
    from its release (requested_at, migration 013), not from its creation: routed through the
    real referral-router, held (consent missing), released by a consent grant or by an
    operator's override; or a draft the requester sends on later. Not overdue right after
    release although created long before the limit, overdue once the urgency's time has
    passed since the release, with due_at = requested_at + that time. Time "passes" by
    moving the referral's timestamps back. */
#include "fs_test.h"

static fs_test_suite_t *s_suite;
static char s_out [4096], s_err [4096];

static const char *s_services_csv =
    FS_TEST_ROUTER_SERVICES_HEADER
    "CSS01,social_services_centre,CSS One,neighbourhood,01,,,lives_in_city,*,,"
    "Anyone living in neighbourhood 01,capacity,internal,notification,true\n"
    "OH-01,housing_office,Housing One,district,01,18,,lives_in_city,housing,,"
    "Adults living in district 01,capacity,feed,housing-feed,true\n";
static const char *s_territory_csv =
    "district_code,district,neighbourhood_code,neighbourhood\n01,One,01,N one\n";

//  `finestra-referral-router ARGS...` on the suite's stores, output captured, with the
//  suite's deadlines: preferent 1 hour (urgent 1 s is never used here)
static fs_test_command_t s_router = {
    FS_TEST_COMMAND_CAPTURE ("referral-router", s_out, s_err),
    .settings = (const char *const []) { "FINESTRA_ROUTER_DEADLINE_PREFERENT_S=3600", NULL }
};
#define s_run(...) fs_test_command_runl (&s_router, __VA_ARGS__)

static void
s_setup (void)
{
    const char *const settings [] = {
        "FINESTRA_ROUTER_DEADLINE_PREFERENT_S=3600", "FINESTRA_ROUTER_DEADLINE_SCAN_MS=100", NULL
    };
    s_suite = fs_test_router_suite (&s_router, "router_deadline_hold", settings,
                                    "referral-router", s_services_csv, s_territory_csv);
}

static void
s_teardown (void)
{
    fs_test_suite_destroy (&s_suite);
}

TestSuite (router_deadline_hold, .init = s_setup, .fini = s_teardown, .timeout = 120);

#define s_expect(sql, ref, expected) fs_test_pg_expect_text (s_suite->pg_url, sql, ref, expected)

//  Runs sql with event_ref as $1 (asserts it succeeds)
static void
s_exec (const char *sql, const char *event_ref)
{
    const char *values [1] = { event_ref };
    free (fs_test_pg_text (s_suite->pg_url, sql, 1, values));
}

//  The referral of event_ref: "status|reason_code"
static void
s_expect_status (const char *event_ref, const char *expected)
{
    s_expect ("SELECT status || '|' || coalesce (reason_code, '-') FROM"
              " referral_router.referrals WHERE event_ref = $1", event_ref, expected);
}

//  A preferent complementation referral for person, held because no consent covers it,
//  then left on hold for two hours (created_at moved back)
static void
s_held (const char *event_ref, const char *person)
{
    fs_test_router_request (s_suite, event_ref, person, &(fs_test_router_req_t) {
        .level = "complementation", .codes = { "Z59.1" }, .minors = -1 });
    s_expect_status (event_ref, "on-hold|consent_missing");
    s_expect ("SELECT (requested_at IS NULL)::text FROM referral_router.referrals"
              " WHERE event_ref = $1", event_ref, "true");
    s_exec ("UPDATE referral_router.referrals SET created_at = created_at - interval '2 hours'"
            " WHERE event_ref = $1", event_ref);
}

//  After the release: counted from it, not from created_at; overdue only once the hour
//  has passed since the release
static void
s_deadline_from_release (const char *event_ref)
{
    s_expect_status (event_ref, "requested|-");
    //  Became requested just now (well after the creation two hours ago)
    s_expect ("SELECT (requested_at > now () - interval '5 minutes'"
              " AND requested_at - created_at > interval '2 hours')::text"
              " FROM referral_router.referrals WHERE event_ref = $1", event_ref, "true");
    //  Not breached right after release: an operator's scan and the router's own (every
    //  100 ms: a second of them) find nothing, though created_at + 1 hour is long past
    cr_assert_eq (s_run ("escalate-overdue", NULL), 0, "%s", s_err);
    cr_assert_str_eq (s_out, "0 referrals overdue, escalated\n");
    usleep (1000 * 1000);
    s_expect ("SELECT count(*) FROM referral_router.referral_escalations e"
              " JOIN referral_router.referrals r ON r.id = e.referral_id"
              " WHERE r.event_ref = $1", event_ref, "0");
    s_expect ("SELECT (overdue_at IS NULL)::text FROM referral_router.referrals"
              " WHERE event_ref = $1", event_ref, "true");
    //  59 minutes after the release (3 h 59 min after creation): still in time
    s_exec ("UPDATE referral_router.referrals SET created_at = created_at - interval '59 min',"
            " requested_at = requested_at - interval '59 min' WHERE event_ref = $1", event_ref);
    cr_assert_eq (s_run ("escalate-overdue", NULL), 0, "%s", s_err);
    cr_assert_str_eq (s_out, "0 referrals overdue, escalated\n");
    //  Two more minutes: past the hour since the release. The router's timer or this scan
    //  escalates it, once
    s_exec ("UPDATE referral_router.referrals SET created_at = created_at - interval '2 min',"
            " requested_at = requested_at - interval '2 min' WHERE event_ref = $1", event_ref);
    cr_assert_eq (s_run ("escalate-overdue", NULL), 0, "%s", s_err);
    cr_assert (fs_test_pg_wait (s_suite->pg_url, "SELECT count(*) FROM"
                                " referral_router.referral_escalations", 1, 20000));
    //  Due one hour after the release (to the millisecond the scan carries), three hours
    //  after the creation
    s_expect ("SELECT (abs (extract (epoch FROM e.due_at - r.requested_at) - 3600) < 0.001)"
              "::text || '|' || (e.due_at - r.created_at > interval '3 hours')::text || '|'"
              " || e.deadline FROM referral_router.referral_escalations e"
              " JOIN referral_router.referrals r ON r.id = e.referral_id"
              " WHERE r.event_ref = $1", event_ref, "true|true|acceptance");
    s_expect ("SELECT (overdue_at IS NOT NULL)::text || status FROM referral_router.referrals"
              " WHERE event_ref = $1", event_ref, "truerequested");
    //  The referral.overdue told on the sender's feed carries the release as requested_at
    PGconn *conn = PQconnectdb (s_suite->pg_url);
    cr_assert (PQstatus (conn) == CONNECTION_OK);
    const char *values [1] = { event_ref };
    PGresult *result = PQexecParams (conn, "SELECT f.payload, (extract (epoch FROM"
        " r.requested_at) * 1000)::bigint::text FROM referral_router.feed_items f"
        " JOIN referral_router.referrals r ON r.id = f.referral_id WHERE r.event_ref = $1"
        " AND f.item_type = 'referral.overdue' ORDER BY f.seq LIMIT 1", 1, NULL, values, NULL,
        NULL, 1);
    cr_assert (PQresultStatus (result) == PGRES_TUPLES_OK, "%s", PQerrorMessage (conn));
    cr_assert_eq (PQntuples (result), 1, "no referral.overdue on a feed");
    fs_referral_overdue_t overdue = { 0 };
    fs_proto_error_t err;
    cr_assert_eq (fs_proto_decode (&fs_referral_overdue_type, PQgetvalue (result, 0, 0),
                                   (size_t) PQgetlength (result, 0, 0), &overdue, &err), 0,
                  "%s", err.message);
    char expected [40];
    fs_rfc3339 (atoll (PQgetvalue (result, 0, 1)), expected);
    cr_expect_str_eq (overdue.requested_at, expected);
    fs_proto_clear (&fs_referral_overdue_type, &overdue);
    PQclear (result);
    PQfinish (conn);
    //  Later scans: nothing more
    cr_assert_eq (s_run ("escalate-overdue", NULL), 0, "%s", s_err);
    cr_assert_str_eq (s_out, "0 referrals overdue, escalated\n");
    s_expect ("SELECT count(*) FROM referral_router.referral_escalations e"
              " JOIN referral_router.referrals r ON r.id = e.referral_id"
              " WHERE r.event_ref = $1", event_ref, "1");
}

Test (router_deadline_hold, released_by_consent_counts_from_the_release)
{
    char person [FS_UUID_LEN + 1], consent [FS_UUID_LEN + 1];
    fs_uuid (person);
    s_held ("ev-hold-consent", person);
    fs_uuid (consent);
    fs_test_router_consent (s_suite, consent, person, "granted", "housing",
                            "identity contact social_health", NULL);
    s_deadline_from_release ("ev-hold-consent");
}

Test (router_deadline_hold, released_by_override_counts_from_the_release)
{
    char person [FS_UUID_LEN + 1];
    fs_uuid (person);
    s_held ("ev-hold-override", person);
    char *id = fs_test_pg_text (s_suite->pg_url, "SELECT id::text FROM"
                                " referral_router.referrals WHERE event_ref = $1", 1,
                                (const char *const []) { "ev-hold-override" });
    cr_assert_eq (s_run ("override-consent", id, "--basis", "vital_interest", "--by",
                         "duty-officer", "--reason", "at risk tonight", NULL), 0, "%s", s_err);
    free (id);
    s_deadline_from_release ("ev-hold-override");
}

//  A draft (nothing fitted) the requester sends on two hours later: counted from then too
Test (router_deadline_hold, draft_requested_later_counts_from_the_request)
{
    //  The sender reads its feed: the overdue item lands there
    cr_assert_eq (s_run ("sender-feed", "primary-care", "pc-feed", NULL), 0, "%s", s_err);
    char id [FS_UUID_LEN + 1], correlation [FS_UUID_LEN + 1];
    fs_uuid (id);
    fs_uuid (correlation);
    const char *values [2] = { id, correlation };
    free (fs_test_pg_text (s_suite->pg_url, "INSERT INTO referral_router.referrals (id,"
        " event_ref, source, event_type, urgency, status, correlation_id, created_at)"
        " VALUES ($1::uuid, 'ev-draft', 'primary-care', 'health.social_risk_detected',"
        " 'preferent', 'draft', $2::uuid, now () - interval '2 hours')", 2, values));
    s_expect ("SELECT (requested_at IS NULL)::text FROM referral_router.referrals"
              " WHERE event_ref = $1", "ev-draft", "true");
    cr_assert_eq (s_run ("transition", id, "requested", "--as", "requester", NULL), 0, "%s",
                  s_err);
    s_deadline_from_release ("ev-draft");
}
