/*  test_router_transition - the lifecycle applied to stored referrals through the real binary
    (`finestra-referral-router transition`): every row of the transition table applied, and
    refused for the other party; each refusal changes nothing; history, reasons, the
    rejections view and the emitted referral.status_changed (actor, reason_code, correlation). */
#include "fs_test.h"
#include "router_rules.h"


static char *s_url;                 //  the suite's database
static char s_out [16384];          //  the last command's stdout
static char s_err [16384];          //  and stderr

//  `finestra-referral-router ARGS...` on the suite's database; stdout and stderr land in
//  s_out and s_err
static fs_test_command_t s_router = {
    .service = "referral-router", .redis_prefix = "test:router_transition:",
    .settings = (const char *const []) { "FINESTRA_PG_CONNECT_TIMEOUT_MS=10000", NULL },
    .capture = true, .out = s_out, .out_size = sizeof s_out, .err = s_err,
    .err_size = sizeof s_err
};
#define s_run(...) fs_test_command_runl (&s_router, __VA_ARGS__)

static PGconn *
s_connect (void)
{
    PGconn *conn = PQconnectdb (s_url);
    cr_assert (PQstatus (conn) == CONNECTION_OK, "%s", PQerrorMessage (conn));
    return conn;
}

//  The first column of the first row as text, "" for NULL (malloc'd); params as PQexecParams
#define s_text(sql, n, values) fs_test_pg_text (s_url, sql, n, values)

#define s_expect(sql, id, expected) fs_test_pg_expect_text (s_url, sql, id, expected)

//  A referral in status, as the router would have stored it; its id into id
static void
s_referral (const char *status, char *id)
{
    fs_uuid (id);
    char correlation [FS_UUID_LEN + 1];
    fs_uuid (correlation);
    const char *values [3] = { id, status, correlation };
    free (s_text ("INSERT INTO referral_router.referrals (id, event_ref, source, event_type,"
                  " urgency, status, correlation_id) VALUES ($1::uuid, 'ev-' || $1, 'primary-care',"
                  " 'health.social_risk_detected', 'ordinary', $2, $3::uuid)", 3, values));
}

//  Everything a transition writes, for one referral, as one text
static char *
s_state (const char *id)
{
    const char *values [1] = { id };
    return s_text ("SELECT concat_ws ('|', (SELECT status || ':' || coalesce (reason_code, '')"
                   " FROM referral_router.referrals WHERE id = $1),"
                   " (SELECT count(*) FROM referral_router.referral_transitions"
                   "  WHERE referral_id = $1),"
                   " (SELECT count(*) FROM referral_router.outbox WHERE correlation_id ="
                   "  (SELECT correlation_id FROM referral_router.referrals WHERE id = $1)))",
                   1, values);
}

static const char *
s_actor (router_actor_t actor)
{
    return actor == ROUTER_ACTOR_REQUESTER ? "requester" : "target";
}

//  A reason that explains status and needs no text
static const char *
s_reason_for (router_status_t status)
{
    for (size_t i = 0; i < router_nreasons; i++)
        if ((router_reasons [i].statuses & (1u << status)) && !router_reasons [i].needs_text)
            return router_reasons [i].code;
    return NULL;
}

Test (router_transition, every_row_of_the_table_applies_and_only_for_its_party)
{
    for (size_t i = 0; i < router_ntransitions; i++) {
        const router_transition_t *row = &router_transitions [i];
        const char *from = router_status_name (row->from), *to = router_status_name (row->to);
        char id [FS_UUID_LEN + 1];
        s_referral (from, id);
        const char *reason = row->reason_required ? s_reason_for (row->to) : NULL;
        //  The other party, when the row is not for both, is refused and nothing changes
        if (row->who != ROUTER_ACTOR_BOTH) {
            router_actor_t other = row->who == ROUTER_ACTOR_TARGET ? ROUTER_ACTOR_REQUESTER
                                                                    : ROUTER_ACTOR_TARGET;
            int rc = reason ? s_run ("transition", id, to, "--as", s_actor (other), "--reason",
                                     reason, NULL)
                            : s_run ("transition", id, to, "--as", s_actor (other), NULL);
            cr_assert_eq (rc, 1, "%s -> %s by the %s: %s", from, to, s_actor (other), s_out);
            cr_assert (strstr (s_err, "is made by the"), "%s", s_err);
            char expected [64];
            snprintf (expected, sizeof expected, "%s:|0|0", from);
            char *state = s_state (id);
            cr_assert_str_eq (state, expected, "%s -> %s", from, to);
            free (state);
        }
        router_actor_t actor = row->who == ROUTER_ACTOR_TARGET ? ROUTER_ACTOR_TARGET
                                                                : ROUTER_ACTOR_REQUESTER;
        int rc = reason ? s_run ("transition", id, to, "--as", s_actor (actor), "--reason",
                                 reason, NULL)
                        : s_run ("transition", id, to, "--as", s_actor (actor), NULL);
        cr_assert_eq (rc, 0, "%s -> %s by the %s: %s", from, to, s_actor (actor), s_err);
        //  Applied: the status, one history row, one event per consumer (notification,
        //  reporting)
        char expected [64];
        snprintf (expected, sizeof expected, "%s:%s|1|2", to, reason ? reason : "");
        char *state = s_state (id);
        cr_assert_str_eq (state, expected, "%s -> %s", from, to);
        free (state);
    }
}

Test (router_transition, a_referral_s_path_and_its_history)
{
    char id [FS_UUID_LEN + 1];
    s_referral ("requested", id);
    cr_assert_eq (s_run ("transition", id, "accepted", "--as", "target", NULL), 0, "%s", s_err);
    cr_assert_eq (s_run ("transition", id, "in-progress", "--as", "target", NULL), 0);
    cr_assert_eq (s_run ("transition", id, "on-hold", "--as", "target", "--reason",
                         "awaiting_person", "--text", "waiting for the padró certificate",
                         NULL), 0, "%s", s_err);
    cr_assert_eq (s_run ("transition", id, "in-progress", "--as", "target", NULL), 0);
    cr_assert_eq (s_run ("transition", id, "completed", "--as", "target", NULL), 0);
    s_expect ("SELECT string_agg (from_status || '>' || to_status || ':' || actor || ':'"
              " || coalesce (reason_code, '-'), ' ' ORDER BY id)"
              " FROM referral_router.referral_transitions WHERE referral_id = $1", id,
              "requested>accepted:target:- accepted>in-progress:target:-"
              " in-progress>on-hold:target:awaiting_person on-hold>in-progress:target:-"
              " in-progress>completed:target:-");
    //  Final: nothing more, for either party
    cr_assert_eq (s_run ("transition", id, "in-progress", "--as", "target", NULL), 1);
    cr_assert (strstr (s_err, "none: completed is final"), "%s", s_err);
    cr_assert_eq (s_run ("transition", id, "cancelled", "--as", "requester", "--reason",
                         "need_resolved", NULL), 1);
    //  The events: the sender is told each change, in the chain's correlation
    PGconn *conn = s_connect ();
    const char *values [1] = { id };
    PGresult *result = PQexecParams (conn, "SELECT o.envelope FROM referral_router.outbox o"
        " JOIN referral_router.referrals r ON r.correlation_id = o.correlation_id"
        " WHERE r.id = $1 AND o.consumer = 'notification' ORDER BY o.seq", 1, NULL, values,
        NULL, NULL, 1);
    cr_assert (PQresultStatus (result) == PGRES_TUPLES_OK, "%s", PQerrorMessage (conn));
    cr_assert_eq (PQntuples (result), 5);
    fs_envelope_t env;
    fs_proto_error_t err;
    cr_assert_eq (fs_envelope_decode (PQgetvalue (result, 2, 0),
                                      (size_t) PQgetlength (result, 2, 0), 1 << 20, &env, &err),
                  0, "%s", err.message);
    cr_assert_str_eq (env.hdr.type, "referral.status_changed");
    const fs_referral_status_changed_t *changed = env.payload;
    cr_assert_str_eq (changed->referral_id, id);
    cr_assert_str_eq (changed->status, "on-hold");
    cr_assert_str_eq (changed->previous, "in-progress");
    cr_assert_str_eq (changed->actor, "target");
    cr_assert_str_eq (changed->reason_code, "awaiting_person");
    cr_assert_str_eq (changed->reason, "waiting for the padró certificate");
    char *correlation = s_text ("SELECT correlation_id::text FROM referral_router.referrals"
                                " WHERE id = $1", 1, values);
    cr_assert_str_eq (env.hdr.correlation_id, correlation);
    free (correlation);
    fs_envelope_clear (&env);
    PQclear (result);
    PQfinish (conn);
}

Test (router_transition, refusals_change_nothing)
{
    char id [FS_UUID_LEN + 1];
    s_referral ("requested", id);
    struct { const char *args [8]; const char *error; } refused [] = {
        { { "completed", "--as", "target" }, "requested -> completed is not a transition;"
          " allowed from requested for the target: accepted, rejected (reason),"
          " entered-in-error" },
        { { "accepted", "--as", "requester" }, "made by the target, not the requester" },
        { { "rejected", "--as", "target" }, "requires a reason (one of: outside_criteria," },
        { { "rejected", "--as", "target", "--reason", "too_busy" }, "unknown reason" },
        { { "rejected", "--as", "target", "--reason", "need_resolved" },
          "reason need_resolved does not explain rejected" },
        { { "rejected", "--as", "target", "--reason", "other" },
          "reason other needs a text" },
        { { "accepted", "--as", "target", "--reason", "no_capacity" },
          "reason no_capacity does not explain accepted" },
    };
    char *before = s_state (id);
    for (size_t i = 0; i < sizeof refused / sizeof refused [0]; i++) {
        const char *const *a = refused [i].args;
        int rc = s_run ("transition", id, a [0], a [1], a [2], a [3], a [4], NULL);
        cr_assert_eq (rc, 1, "case %zu: %s", i, s_out);
        cr_assert (strstr (s_err, refused [i].error), "case %zu: \"%s\" not in %s", i,
                   refused [i].error, s_err);
        char *after = s_state (id);
        cr_assert_str_eq (before, after, "case %zu", i);
        free (after);
    }
    free (before);
    //  No such referral, bad arguments
    char other [FS_UUID_LEN + 1];
    fs_uuid (other);
    cr_assert_eq (s_run ("transition", other, "accepted", "--as", "target", NULL), 1);
    cr_assert (strstr (s_err, "no referral"), "%s", s_err);
    cr_assert_eq (s_run ("transition", id, "done", "--as", "target", NULL), 2);
    cr_assert_eq (s_run ("transition", id, "accepted", "--as", "both", NULL), 2);
    cr_assert_eq (s_run ("transition", "42", "accepted", "--as", "target", NULL), 2);
    cr_assert_eq (s_run ("transition", id, "accepted", NULL), 2);
}

Test (router_transition, inappropriate_referrals_are_counted)
{
    const char *reasons [] = { "outside_criteria", "outside_criteria", "not_our_territory",
                               "no_capacity", "person_declined" };
    for (size_t i = 0; i < 5; i++) {
        char id [FS_UUID_LEN + 1];
        s_referral ("requested", id);
        cr_assert_eq (s_run ("transition", id, "rejected", "--as", "target", "--reason",
                             reasons [i], NULL), 0, "%s", s_err);
    }
    s_expect ("SELECT sum (referrals) FILTER (WHERE inappropriate) || '/' || sum (referrals)"
              " FROM referral_router.rejections WHERE reason_code IN ('outside_criteria',"
              " 'not_our_territory', 'no_capacity', 'person_declined')", NULL, "3/5");
    s_expect ("SELECT referrals FROM referral_router.rejections"
              " WHERE reason_code = 'outside_criteria'", NULL, "2");
}

static void
s_setup (void)
{
    s_url = fs_test_db_create ("router_transition");
    s_router.pg_url = s_url;
    //  Any command applies the migrations
    cr_assert_eq (s_run ("map-zcode", "Z59", NULL), 1, "%s", s_err);
}

static void
s_teardown (void)
{
    fs_test_db_drop (s_url);
    free (s_url);
    s_url = NULL;
}

TestSuite (router_transition, .init = s_setup, .fini = s_teardown, .timeout = 180);
