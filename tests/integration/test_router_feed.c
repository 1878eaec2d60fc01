/*  test_router_feed - the referral-router's outbound feed (proto/FEED.md) through the real
    binary: a reader catching up from its cursor after being down, re-reading, long poll
    woken by an append, the closed loop (status changes on the sender's feed), targets
    reporting decisions on the feed, every refusal, retention and cursor_expired, and the
    page's tables equal to the definitions. */
#include "fs_test.h"
#include <sys/wait.h>

static fs_test_suite_t *s_suite;

//  `finestra-referral-router ARGS...` on the suite's database (set by s_setup), stdout to
//  /dev/null
static fs_test_command_t s_router = { .service = "referral-router" };
#define s_run(...) fs_test_command_runl (&s_router, __VA_ARGS__)

static void
s_setup (void)
{
    s_suite = fs_test_suite_new ("router_feed");
    fs_test_suite_setenv (s_suite, "FINESTRA_ROUTER_FEED_PURGE_MS", "200");
    fs_test_suite_setenv (s_suite, "FINESTRA_ROUTER_FEED_MAX_BYTES", "4096");
    fs_test_suite_start (s_suite, "referral-router");
    fs_test_command_use_suite (&s_router, s_suite);
}

static void
s_teardown (void)
{
    fs_test_suite_destroy (&s_suite);
}

//  Runs sql with text parameters on the suite's database; the first value, "" when none
#define s_sql(sql, n, values) fs_test_pg_text (s_suite->pg_url, sql, n, values)

//  A referral from `source`, stored as routing leaves it (status requested); id out
static void
s_referral (const char *source, const char *urgency, char *id)
{
    fs_uuid (id);
    char correlation [FS_UUID_LEN + 1];
    fs_uuid (correlation);
    const char *values [4] = { id, source, urgency, correlation };
    free (s_sql ("INSERT INTO referral_router.referrals (id, event_ref, source, event_type,"
                 " urgency, status, correlation_id) VALUES ($1::uuid, 'ev-' || $1, $2,"
                 " 'health.social_risk_detected', $3, 'requested', $4::uuid)", 4, values));
}

//  ---- a reader's side: requests packed by hand, answers decoded by the definition --------

static void
s_pack_str (msgpack_packer *pk, const char *s)
{
    msgpack_pack_str (pk, strlen (s));
    msgpack_pack_str_body (pk, s, strlen (s));
}

//  A read request; max or wait_ms < 0 leaves them out
static msgpack_sbuffer *
s_read_request (const char *feed, int64_t after, int64_t max, int64_t wait_ms)
{
    msgpack_sbuffer *buffer = msgpack_sbuffer_new ();
    msgpack_packer pk;
    msgpack_packer_init (&pk, buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 3 + (max >= 0) + (wait_ms >= 0));
    s_pack_str (&pk, "v");
    msgpack_pack_int64 (&pk, 1);
    s_pack_str (&pk, "feed");
    s_pack_str (&pk, feed);
    s_pack_str (&pk, "after");
    msgpack_pack_int64 (&pk, after);
    if (max >= 0) {
        s_pack_str (&pk, "max");
        msgpack_pack_int64 (&pk, max);
    }
    if (wait_ms >= 0) {
        s_pack_str (&pk, "wait_ms");
        msgpack_pack_int64 (&pk, wait_ms);
    }
    return buffer;
}

//  A transition request; reason NULL leaves it out
static msgpack_sbuffer *
s_transition_request (const char *feed, const char *referral, const char *status,
                      const char *reason_code)
{
    msgpack_sbuffer *buffer = msgpack_sbuffer_new ();
    msgpack_packer pk;
    msgpack_packer_init (&pk, buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 5 + (reason_code != NULL));
    s_pack_str (&pk, "v");
    msgpack_pack_int64 (&pk, 1);
    s_pack_str (&pk, "feed");
    s_pack_str (&pk, feed);
    s_pack_str (&pk, "op");
    s_pack_str (&pk, "transition");
    s_pack_str (&pk, "referral_id");
    s_pack_str (&pk, referral);
    s_pack_str (&pk, "status");
    s_pack_str (&pk, status);
    if (reason_code) {
        s_pack_str (&pk, "reason_code");
        s_pack_str (&pk, reason_code);
    }
    return buffer;
}

static zsock_t *
s_reader (void)
{
    zsock_t *req = zsock_new_req (s_suite->feed_endpoint);
    cr_assert (req);
    zsock_set_rcvtimeo (req, 20000);
    zsock_set_linger (req, 0);
    return req;
}

//  Receives one answer on req and decodes it into answer
static void
s_receive (zsock_t *req, fs_feed_answer_t *answer)
{
    zframe_t *frame = zframe_recv (req);
    cr_assert (frame, "no answer from the feed endpoint");
    fs_proto_error_t err;
    int rc = fs_proto_decode (&fs_feed_answer_type, zframe_data (frame), zframe_size (frame),
                              answer, &err);
    zframe_destroy (&frame);
    cr_assert_eq (rc, 0, "answer does not decode: %s", err.message);
}

//  Sends one request (raw bytes) and decodes the answer
static void
s_ask_bytes (const void *data, size_t len, fs_feed_answer_t *answer)
{
    zsock_t *req = s_reader ();
    zframe_t *frame = zframe_new (data, len);
    cr_assert (zframe_send (&frame, req, 0) == 0);
    s_receive (req, answer);
    zsock_destroy (&req);
}

static void
s_ask (msgpack_sbuffer *request, fs_feed_answer_t *answer)
{
    s_ask_bytes (request->data, request->size, answer);
    msgpack_sbuffer_free (request);
}

static const fs_feed_item_t *
s_item (const fs_feed_answer_t *answer, size_t i)
{
    cr_assert (i < answer->items.n);
    return &((const fs_feed_item_t *) answer->items.items) [i];
}

static void
s_expect_error (fs_feed_answer_t *answer, const char *code)
{
    cr_expect_str_eq (answer->status, "error");
    cr_expect (FS_PRESENT (answer, fs_feed_answer_F_error));
    if (FS_PRESENT (answer, fs_feed_answer_F_error))
        cr_expect_str_eq (answer->error.code, code, "expected %s, got %s: %s", code,
                          answer->error.code, answer->error.message);
    fs_proto_clear (&fs_feed_answer_type, answer);
}

//  Moves referral through statuses as its target (operator `transition`), each change
//  appended to the sender's feed
static void
s_progress (const char *referral)
{
    cr_assert_eq (s_run ("transition", referral, "accepted", "--as", "target", NULL), 0);
    cr_assert_eq (s_run ("transition", referral, "in-progress", "--as", "target", NULL), 0);
    cr_assert_eq (s_run ("transition", referral, "completed", "--as", "target", NULL), 0);
}

//  Reads the whole feed from after, max per request, into seqs/statuses; returns the count
static size_t
s_read_all (const char *feed, int64_t after, int64_t max, int64_t *seqs, char (*statuses)[32],
            char (*referrals)[FS_UUID_LEN + 1], size_t cap)
{
    size_t n = 0;
    bool more = true;
    while (more) {
        fs_feed_answer_t answer = { 0 };
        s_ask (s_read_request (feed, after, max, -1), &answer);
        cr_assert_str_eq (answer.status, "ok");
        for (size_t i = 0; i < answer.items.n; i++) {
            const fs_feed_item_t *item = s_item (&answer, i);
            cr_assert (n < cap);
            cr_assert_str_eq (item->type, "referral.status_changed");
            fs_referral_status_changed_t changed = { 0 };
            fs_proto_error_t err;
            cr_assert_eq (fs_proto_decode (&fs_referral_status_changed_type, item->data.data,
                                           item->data.len, &changed, &err), 0, "%s",
                          err.message);
            seqs [n] = item->seq;
            snprintf (statuses [n], 32, "%s", changed.status);
            snprintf (referrals [n], FS_UUID_LEN + 1, "%s", changed.referral_id);
            cr_assert_str_eq (item->referral_id, changed.referral_id);
            fs_proto_clear (&fs_referral_status_changed_type, &changed);
            n++;
        }
        cr_assert (answer.next >= after);
        cr_assert ((size_t) (int64_t) answer.items.n <= (size_t) max);
        after = answer.next;
        more = answer.more;
        fs_proto_clear (&fs_feed_answer_type, &answer);
    }
    return n;
}

TestSuite (router_feed, .init = s_setup, .fini = s_teardown, .timeout = 240);

//  A reader down while referrals change gets everything from its saved cursor, in order,
//  nothing missing; an older cursor gives the same items again
Test (router_feed, catches_up_from_its_cursor)
{
    cr_assert_eq (s_run ("sender-feed", "primary-care", "health-primary-care", NULL), 0);
    //  Known (a sender is told on it) and empty: the first read
    fs_feed_answer_t answer = { 0 };
    s_ask (s_read_request ("health-primary-care", 0, -1, -1), &answer);
    cr_assert_str_eq (answer.status, "ok");
    cr_assert_eq (answer.items.n, 0);
    cr_assert_eq (answer.next, 0);
    cr_assert_eq (answer.more, false);
    fs_proto_clear (&fs_feed_answer_type, &answer);

    //  While the reader is away: 2 referrals go requested -> accepted -> in-progress ->
    //  completed; one of a sender inside the suite tells nobody on this feed
    char a [FS_UUID_LEN + 1], b [FS_UUID_LEN + 1], other [FS_UUID_LEN + 1];
    s_referral ("primary-care", "ordinary", a);
    s_referral ("primary-care", "urgent", b);
    s_referral ("css-desk", "ordinary", other);
    s_progress (a);
    s_progress (other);
    s_progress (b);
    //  The reader comes back with its cursor (0) and reads 2 at a time
    int64_t seqs [16];
    char statuses [16][32], referrals [16][FS_UUID_LEN + 1];
    size_t n = s_read_all ("health-primary-care", 0, 2, seqs, statuses, referrals, 16);
    cr_assert_eq (n, 6, "6 changes of primary-care's referrals, got %zu", n);
    const char *expected [3] = { "accepted", "in-progress", "completed" };
    for (size_t i = 0; i < n; i++) {
        cr_expect_str_eq (referrals [i], i < 3 ? a : b);
        cr_expect_str_eq (statuses [i], expected [i % 3]);
        if (i > 0)
            cr_expect (seqs [i] > seqs [i - 1], "seq strictly increasing");
    }
    //  The cursor saved after the third item: the rest again, the same items
    int64_t seqs2 [16];
    char statuses2 [16][32], referrals2 [16][FS_UUID_LEN + 1];
    size_t n2 = s_read_all ("health-primary-care", seqs [2], 100, seqs2, statuses2, referrals2, 16);
    cr_assert_eq (n2, 3);
    for (size_t i = 0; i < n2; i++) {
        cr_expect_eq (seqs2 [i], seqs [i + 3]);
        cr_expect_str_eq (statuses2 [i], statuses [i + 3]);
    }
    //  Read from the start again: identical
    n2 = s_read_all ("health-primary-care", 0, 1000, seqs2, statuses2, referrals2, 16);
    cr_assert_eq (n2, 6);
    for (size_t i = 0; i < n2; i++)
        cr_expect_eq (seqs2 [i], seqs [i]);
    //  After the last: nothing, next stays
    s_ask (s_read_request ("health-primary-care", seqs [5], -1, 0), &answer);
    cr_assert_eq (answer.items.n, 0);
    cr_assert_eq (answer.next, seqs [5]);
    fs_proto_clear (&fs_feed_answer_type, &answer);
    //  Monitoring saw the reader's last cursor
    char *last = s_sql ("SELECT last_after FROM referral_router.feed_readers"
                        " WHERE feed = 'health-primary-care'", 0, NULL);
    char want [24];
    snprintf (want, sizeof want, "%" PRId64, seqs [5]);
    cr_expect_str_eq (last, want);
    free (last);
}

//  A long poll with nothing newer is answered when an item is appended (the wait is 30 s;
//  the answer comes well within the socket's 20 s)
Test (router_feed, long_poll_wakes_on_append)
{
    cr_assert_eq (s_run ("sender-feed", "hospital", "hospital-del-mar", NULL), 0);
    char a [FS_UUID_LEN + 1];
    s_referral ("hospital", "preferent", a);
    zsock_t *req = s_reader ();
    msgpack_sbuffer *request = s_read_request ("hospital-del-mar", 0, 10, 30000);
    zframe_t *frame = zframe_new (request->data, request->size);
    msgpack_sbuffer_free (request);
    cr_assert (zframe_send (&frame, req, 0) == 0);
    //  The request is parked (no item yet): then a change is made
    zpoller_t *poller = zpoller_new (req, NULL);
    cr_assert_null (zpoller_wait (poller, 300), "answered before anything was appended");
    zpoller_destroy (&poller);
    cr_assert_eq (s_run ("transition", a, "accepted", "--as", "target", NULL), 0);
    fs_feed_answer_t answer = { 0 };
    s_receive (req, &answer);
    zsock_destroy (&req);
    cr_assert_str_eq (answer.status, "ok");
    cr_assert_eq (answer.items.n, 1);
    cr_expect_str_eq (s_item (&answer, 0)->type, "referral.status_changed");
    cr_expect_str_eq (s_item (&answer, 0)->referral_id, a);
    cr_expect_eq (answer.next, s_item (&answer, 0)->seq);
    fs_proto_clear (&fs_feed_answer_type, &answer);
    //  A wait that ends with nothing answers empty
    s_ask (s_read_request ("hospital-del-mar", 1000000, 10, 200), &answer);
    cr_assert_str_eq (answer.status, "ok");
    cr_assert_eq (answer.items.n, 0);
    fs_proto_clear (&fs_feed_answer_type, &answer);
}

//  A target reached by feed reports its decisions on the feed; the sender's feed hears
Test (router_feed, target_reports_on_its_feed)
{
    cr_assert_eq (s_run ("sender-feed", "primary-care", "health-primary-care", NULL), 0);
    char a [FS_UUID_LEN + 1];
    s_referral ("primary-care", "ordinary", a);
    //  As routing records a delivery by feed (router_feed_append of referral.requested)
    const char *values [1] = { a };
    free (s_sql ("INSERT INTO referral_router.referral_feeds (referral_id, feed)"
                 " VALUES ($1::uuid, 'eaia')", 1, values));
    fs_feed_answer_t answer = { 0 };
    //  Another feed may not decide on it
    s_ask (s_transition_request ("saier", a, "accepted", NULL), &answer);
    s_expect_error (&answer, "not_your_referral");
    //  Not allowed from requested (the error lists what is)
    s_ask (s_transition_request ("eaia", a, "completed", NULL), &answer);
    cr_expect (strstr (answer.error.message, "accepted"), "%s", answer.error.message);
    s_expect_error (&answer, "transition_refused");
    //  A rejection needs a reason of the vocabulary
    s_ask (s_transition_request ("eaia", a, "rejected", "no-such-reason"), &answer);
    s_expect_error (&answer, "invalid_reason");
    char *status = s_sql ("SELECT status FROM referral_router.referrals WHERE id = $1::uuid",
                          1, values);
    cr_expect_str_eq (status, "requested", "refusals changed nothing");
    free (status);
    //  Accepted by its target
    s_ask (s_transition_request ("eaia", a, "accepted", NULL), &answer);
    cr_assert_str_eq (answer.status, "ok", "%s", FS_PRESENT (&answer, fs_feed_answer_F_error)
                      ? answer.error.message : "");
    cr_expect_str_eq (answer.referral_status, "accepted");
    fs_proto_clear (&fs_feed_answer_type, &answer);
    char *history = s_sql ("SELECT actor || ':' || to_status FROM"
                           " referral_router.referral_transitions WHERE referral_id = $1::uuid",
                           1, values);
    cr_expect_str_eq (history, "target:accepted");
    free (history);
    //  The sender's feed has the change; the requester cancels it: the target's feed hears
    s_ask (s_read_request ("health-primary-care", 0, -1, -1), &answer);
    cr_assert_eq (answer.items.n, 1);
    fs_proto_clear (&fs_feed_answer_type, &answer);
    s_ask (s_transition_request ("health-primary-care", a, "cancelled", "need_resolved"),
           &answer);
    cr_assert_str_eq (answer.status, "ok", "%s", FS_PRESENT (&answer, fs_feed_answer_F_error)
                      ? answer.error.message : "");
    fs_proto_clear (&fs_feed_answer_type, &answer);
    history = s_sql ("SELECT string_agg (actor || ':' || to_status, ',' ORDER BY id) FROM"
                     " referral_router.referral_transitions WHERE referral_id = $1::uuid",
                     1, values);
    cr_expect_str_eq (history, "target:accepted,requester:cancelled");
    free (history);
    s_ask (s_read_request ("eaia", 0, -1, -1), &answer);
    cr_assert_eq (answer.items.n, 1, "the target hears of the cancellation");
    fs_referral_status_changed_t changed = { 0 };
    fs_proto_error_t err;
    cr_assert_eq (fs_proto_decode (&fs_referral_status_changed_type, s_item (&answer, 0)->data.data,
                                   s_item (&answer, 0)->data.len, &changed, &err), 0);
    cr_expect_str_eq (changed.status, "cancelled");
    cr_expect_str_eq (changed.reason_code, "need_resolved");
    fs_proto_clear (&fs_referral_status_changed_type, &changed);
    fs_proto_clear (&fs_feed_answer_type, &answer);
}

//  Bad requests get their specific codes and the endpoint goes on serving
Test (router_feed, refuses_bad_requests)
{
    cr_assert_eq (s_run ("sender-feed", "primary-care", "health-primary-care", NULL), 0);
    fs_feed_answer_t answer = { 0 };
    s_ask_bytes ("\xc1\x00", 2, &answer);
    s_expect_error (&answer, "malformed");
    s_ask_bytes ("\x93\x01\x02\x03", 4, &answer);       //  an array, not a map
    s_expect_error (&answer, "malformed");
    //  No version; another version
    s_ask_bytes ("\x81\xa4" "feed" "\xa4" "eaia", 11, &answer);
    s_expect_error (&answer, "missing_field");
    s_ask_bytes ("\x82\xa1v\x02\xa4" "feed" "\xa4" "eaia", 14, &answer);
    s_expect_error (&answer, "unsupported_version");
    //  Unknown feed; a name that cannot be one
    s_ask (s_read_request ("no-such-feed", 0, -1, -1), &answer);
    s_expect_error (&answer, "unknown_feed");
    s_ask (s_read_request ("Bad Name", 0, -1, -1), &answer);
    s_expect_error (&answer, "invalid_field");
    //  Bad cursor, bad max, bad wait
    s_ask (s_read_request ("health-primary-care", -5, -1, -1), &answer);
    cr_expect_str_eq (answer.error.field, "after");
    s_expect_error (&answer, "invalid_field");
    s_ask (s_read_request ("health-primary-care", 0, 0, -1), &answer);
    s_expect_error (&answer, "invalid_field");
    s_ask (s_read_request ("health-primary-care", 0, 10, 60000), &answer);
    s_expect_error (&answer, "invalid_field");
    //  No cursor
    s_ask_bytes ("\x82\xa1v\x01\xa4" "feed" "\xa4" "eaia", 14, &answer);
    cr_expect_str_eq (answer.error.field, "after");
    s_expect_error (&answer, "missing_field");
    //  Too large
    char big [5000];
    memset (big, 0xc0, sizeof big);
    s_ask_bytes (big, sizeof big, &answer);
    s_expect_error (&answer, "too_large");
    //  Two frames
    zsock_t *req = s_reader ();
    zstr_sendm (req, "one");
    zstr_send (req, "two");
    s_receive (req, &answer);
    zsock_destroy (&req);
    s_expect_error (&answer, "malformed");
    //  And it still serves
    s_ask (s_read_request ("health-primary-care", 0, -1, -1), &answer);
    cr_expect_str_eq (answer.status, "ok");
    fs_proto_clear (&fs_feed_answer_type, &answer);
}

//  Items past retention are removed; a cursor below them is told, never silently skipped
Test (router_feed, retention_and_cursor_expired)
{
    cr_assert_eq (s_run ("sender-feed", "primary-care", "health-primary-care", NULL), 0);
    char a [FS_UUID_LEN + 1], b [FS_UUID_LEN + 1];
    s_referral ("primary-care", "ordinary", a);
    s_referral ("primary-care", "ordinary", b);
    s_progress (a);
    s_progress (b);
    int64_t seqs [8];
    char statuses [8][32], referrals [8][FS_UUID_LEN + 1];
    cr_assert_eq (s_read_all ("health-primary-care", 0, 100, seqs, statuses, referrals, 8), 6);
    //  a's three items become older than the 90 days kept
    const char *values [1] = { a };
    free (s_sql ("UPDATE referral_router.feed_items SET created_at = now () - interval '91 days'"
                 " WHERE referral_id = $1::uuid", 1, values));
    cr_assert (fs_test_pg_wait (s_suite->pg_url, "SELECT count(*) FROM referral_router.feed_items"
                                " WHERE feed = 'health-primary-care'", 3, 20000),
               "retention removes the old items");
    //  A reader whose cursor is before the loss is told, with where to go on
    fs_feed_answer_t answer = { 0 };
    s_ask (s_read_request ("health-primary-care", seqs [0], -1, -1), &answer);
    cr_expect_eq (answer.oldest, seqs [3]);
    cr_expect_eq (answer.next, seqs [2]);
    s_expect_error (&answer, "cursor_expired");
    //  One that had read them all goes on; a first reader (0) starts at the oldest kept
    s_ask (s_read_request ("health-primary-care", seqs [2], -1, -1), &answer);
    cr_assert_str_eq (answer.status, "ok");
    cr_assert_eq (answer.items.n, 3);
    cr_expect_eq (s_item (&answer, 0)->seq, seqs [3]);
    fs_proto_clear (&fs_feed_answer_type, &answer);
    s_ask (s_read_request ("health-primary-care", 0, -1, -1), &answer);
    cr_assert_eq (answer.items.n, 3);
    fs_proto_clear (&fs_feed_answer_type, &answer);
}

//  FINESTRA_ROUTER_FEED_MAX_BYTES (4096 here) bounds an answer: fewer items, `more` set
Test (router_feed, answer_bytes_bounded)
{
    cr_assert_eq (s_run ("sender-feed", "primary-care", "health-primary-care", NULL), 0);
    char a [FS_UUID_LEN + 1];
    s_referral ("primary-care", "ordinary", a);
    //  Items with a large payload each (a reason text of 1000 bytes), through the real code
    char reason [1001];
    memset (reason, 'x', 1000);
    reason [1000] = 0;
    cr_assert_eq (s_run ("transition", a, "accepted", "--as", "target", NULL), 0);
    cr_assert_eq (s_run ("transition", a, "on-hold", "--as", "target", "--reason", "other",
                         "--text", reason, NULL), 0);
    cr_assert_eq (s_run ("transition", a, "in-progress", "--as", "target", NULL), 0);
    cr_assert_eq (s_run ("transition", a, "on-hold", "--as", "target", "--reason", "other",
                         "--text", reason, NULL), 0);
    cr_assert_eq (s_run ("transition", a, "in-progress", "--as", "target", NULL), 0);
    cr_assert_eq (s_run ("transition", a, "on-hold", "--as", "target", "--reason", "other",
                         "--text", reason, NULL), 0);
    cr_assert_eq (s_run ("transition", a, "in-progress", "--as", "target", NULL), 0);
    cr_assert_eq (s_run ("transition", a, "on-hold", "--as", "target", "--reason", "other",
                         "--text", reason, NULL), 0);
    fs_feed_answer_t answer = { 0 };
    s_ask (s_read_request ("health-primary-care", 0, 100, -1), &answer);
    cr_assert_str_eq (answer.status, "ok");
    cr_expect (answer.items.n >= 1 && answer.items.n < 8, "got %zu items", answer.items.n);
    cr_expect (answer.more);
    fs_proto_clear (&fs_feed_answer_type, &answer);
    int64_t seqs [16];
    char statuses [16][32], referrals [16][FS_UUID_LEN + 1];
    cr_expect_eq (s_read_all ("health-primary-care", 0, 100, seqs, statuses, referrals, 16), 8);
}

//  Appends committing concurrently (4 processes changing referrals of one sender) while a
//  reader follows with long polls: it sees every item once, in seq order, none skipped —
//  seq order is commit order within a feed
Test (router_feed, concurrent_appends_never_skipped)
{
    enum { WRITERS = 4, EACH = 6 };
    cr_assert_eq (s_run ("sender-feed", "primary-care", "health-primary-care", NULL), 0);
    char ids [WRITERS * EACH][FS_UUID_LEN + 1];
    for (int i = 0; i < WRITERS * EACH; i++)
        s_referral ("primary-care", "ordinary", ids [i]);
    pid_t writers [WRITERS];
    for (int w = 0; w < WRITERS; w++) {
        writers [w] = fork ();
        cr_assert (writers [w] >= 0);
        if (writers [w] == 0) {
            for (int i = 0; i < EACH; i++) {
                const char *id = ids [w * EACH + i];
                if (s_run ("transition", id, "accepted", "--as", "target", NULL)
                ||  s_run ("transition", id, "in-progress", "--as", "target", NULL))
                    _exit (1);
            }
            _exit (0);
        }
    }
    //  Follow while they write: every item once, strictly increasing
    int64_t after = 0, seen = 0, last = 0;
    while (seen < WRITERS * EACH * 2) {
        fs_feed_answer_t answer = { 0 };
        s_ask (s_read_request ("health-primary-care", after, 3, 5000), &answer);
        cr_assert_str_eq (answer.status, "ok");
        for (size_t i = 0; i < answer.items.n; i++) {
            cr_assert (s_item (&answer, i)->seq > last, "seq %" PRId64 " after %" PRId64,
                       s_item (&answer, i)->seq, last);
            last = s_item (&answer, i)->seq;
            seen++;
        }
        cr_assert (answer.items.n > 0, "no item within 5 s with %" PRId64 " of %d seen",
                   seen, WRITERS * EACH * 2);
        after = answer.next;
        fs_proto_clear (&fs_feed_answer_type, &answer);
    }
    for (int w = 0; w < WRITERS; w++) {
        int status = 0;
        cr_assert (waitpid (writers [w], &status, 0) == writers [w]);
        cr_expect (WIFEXITED (status) && WEXITSTATUS (status) == 0);
    }
    //  What was seen is what is stored: the count matched and nothing is left after it
    char *stored = s_sql ("SELECT count(*) FROM referral_router.feed_items"
                          " WHERE feed = 'health-primary-care'", 0, NULL);
    cr_expect_str_eq (stored, "48");
    free (stored);
    fs_feed_answer_t answer = { 0 };
    s_ask (s_read_request ("health-primary-care", after, -1, 0), &answer);
    cr_expect_eq (answer.items.n, 0);
    fs_proto_clear (&fs_feed_answer_type, &answer);
}

//  The endpoint's connection is cut: the reader is told `unavailable` (or served by the
//  new connection), the endpoint reconnects and LISTENs again, and a long poll still wakes
Test (router_feed, survives_a_lost_connection)
{
    cr_assert_eq (s_run ("sender-feed", "primary-care", "health-primary-care", NULL), 0);
    char a [FS_UUID_LEN + 1];
    s_referral ("primary-care", "ordinary", a);
    free (s_sql ("SELECT count (pg_terminate_backend (pid)) FROM pg_stat_activity"
                 " WHERE datname = current_database () AND pid <> pg_backend_pid ()", 0, NULL));
    bool ok = false, unavailable = false;
    //  Up to 30 s: how soon it answers on a loaded host is not the point, that it does
    for (int attempt = 0; attempt < 300 && !ok; attempt++) {
        fs_feed_answer_t answer = { 0 };
        s_ask (s_read_request ("health-primary-care", 0, -1, -1), &answer);
        ok = streq (answer.status, "ok");
        if (!ok) {
            cr_assert_str_eq (answer.error.code, "unavailable", "%s", answer.error.message);
            unavailable = true;
            usleep (100 * 1000);
        }
        fs_proto_clear (&fs_feed_answer_type, &answer);
    }
    cr_assert (ok, "the endpoint answers again");
    (void) unavailable;         //  either: the first statement after the cut fails, or not
    //  LISTEN again within its check (1 s): then a long poll wakes on an append
    usleep (1500 * 1000);
    zsock_t *req = s_reader ();
    msgpack_sbuffer *request = s_read_request ("health-primary-care", 0, 10, 30000);
    zframe_t *frame = zframe_new (request->data, request->size);
    msgpack_sbuffer_free (request);
    cr_assert (zframe_send (&frame, req, 0) == 0);
    usleep (200 * 1000);
    cr_assert_eq (s_run ("transition", a, "accepted", "--as", "target", NULL), 0);
    fs_feed_answer_t answer = { 0 };
    s_receive (req, &answer);
    zsock_destroy (&req);
    cr_assert_str_eq (answer.status, "ok");
    cr_assert_eq (answer.items.n, 1);
    fs_proto_clear (&fs_feed_answer_type, &answer);
}

//  proto/FEED.md's tables are fs_proto_doc's output for the definitions in this build
Test (router_feed_doc, tables_match_definitions)
{
    FILE *doc = popen (FS_TEST_BIN_DIR "/fs_proto_doc --feed", "r");
    cr_assert (doc);
    static char tables [65536], page [262144];
    size_t n = fread (tables, 1, sizeof tables - 1, doc);
    tables [n] = 0;
    cr_assert_eq (pclose (doc), 0);
    cr_assert (n > 100);
    FILE *file = fopen (FS_TEST_SOURCE_DIR "/proto/FEED.md", "r");
    cr_assert (file);
    size_t m = fread (page, 1, sizeof page - 1, file);
    page [m] = 0;
    fclose (file);
    cr_assert_not_null (strstr (page, tables), "proto/FEED.md is out of date: regenerate its"
                        " tables with fs_proto_doc --feed");
}
