/*  test_router_feed_curve - the referral-router's feed endpoint with its CURVE on, a real
    process: a listed key reads the feed its certificate names and no other (not_your_feed),
    an unlisted key and a plain client get nothing; a bad certificate stops start-up. */
#include "fs_test.h"

//  Keys in a temporary directory: the router's feed pair; "eaia" listed, "saier" not
static void
s_keys_make (fs_test_curve_keys_t *keys)
{
    fs_test_curve_keys_make (keys, "feed-curve", "router-feed", "referral-router", "readers",
                             "eaia", "saier");
}

//  A read of feed as client (NULL: plain); 0 with the answer, -1 when none came in time
static int
s_read (const char *endpoint, zcert_t *client, const char *server_key, const char *feed,
        fs_feed_answer_t *answer)
{
    zsock_t *req = zsock_new (ZMQ_REQ);
    cr_assert (req);
    zsock_set_linger (req, 0);
    zsock_set_rcvtimeo (req, 3000);
    if (client) {
        zcert_apply (client, req);
        zsock_set_curve_serverkey (req, server_key);
    }
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 3);
    msgpack_pack_str (&pk, 1);
    msgpack_pack_str_body (&pk, "v", 1);
    msgpack_pack_int (&pk, 1);
    msgpack_pack_str (&pk, 4);
    msgpack_pack_str_body (&pk, "feed", 4);
    msgpack_pack_str (&pk, strlen (feed));
    msgpack_pack_str_body (&pk, feed, strlen (feed));
    msgpack_pack_str (&pk, 5);
    msgpack_pack_str_body (&pk, "after", 5);
    msgpack_pack_int (&pk, 0);
    int rc = -1;
    if (zsock_connect (req, "%s", endpoint) == 0) {
        zframe_t *frame = zframe_new (buffer.data, buffer.size);
        if (zframe_send (&frame, req, 0) == 0) {
            zframe_t *reply = zframe_recv (req);
            fs_proto_error_t err;
            if (reply && fs_proto_decode (&fs_feed_answer_type, zframe_data (reply),
                                          zframe_size (reply), answer, &err) == 0)
                rc = 0;
            zframe_destroy (&reply);
        }
        zframe_destroy (&frame);
    }
    msgpack_sbuffer_destroy (&buffer);
    zsock_destroy (&req);
    return rc;
}

Test (router_feed_curve, each_key_reads_its_own_feed, .timeout = 120)
{
    fs_test_curve_keys_t keys;
    s_keys_make (&keys);
    fs_test_suite_t *suite = fs_test_suite_new ("feed_curve");
    fs_test_suite_setenv (suite, "FINESTRA_ROUTER_FEED_CURVE", "on");
    fs_test_suite_setenv (suite, "FINESTRA_ROUTER_FEED_CURVE_SERVER_CERT", keys.server_cert);
    fs_test_suite_setenv (suite, "FINESTRA_ROUTER_FEED_CURVE_CLIENTS_DIR", keys.clients);
    fs_test_suite_start (suite, "referral-router");
    //  Both feeds exist (a directory service is reached through each)
    const char *sql = "INSERT INTO referral_router.sender_feeds (source, feed)"
                      " VALUES ('eaia-system', 'eaia'), ('saier-system', 'saier')";
    PGconn *conn = PQconnectdb (suite->pg_url);
    PGresult *result = PQexec (conn, sql);
    cr_assert_eq (PQresultStatus (result), PGRES_COMMAND_OK, "%s", PQerrorMessage (conn));
    PQclear (result);
    PQfinish (conn);
    const char *server_key = zcert_public_txt (keys.server);
    fs_feed_answer_t answer = { 0 };
    cr_assert_eq (s_read (suite->feed_endpoint, keys.allowed, server_key, "eaia", &answer), 0,
                  "the listed key is answered (logs in %s)", suite->log_dir);
    cr_expect_str_eq (answer.status, "ok");
    fs_proto_clear (&fs_feed_answer_type, &answer);
    //  Its key names eaia: another feed is refused
    cr_assert_eq (s_read (suite->feed_endpoint, keys.allowed, server_key, "saier", &answer), 0);
    cr_expect_str_eq (answer.status, "error");
    cr_expect_str_eq (answer.error.code, "not_your_feed");
    fs_proto_clear (&fs_feed_answer_type, &answer);
    //  An unlisted key and a plain client get no answer at all (ZAP refuses them)
    cr_expect_eq (s_read (suite->feed_endpoint, keys.unknown, server_key, "saier", &answer), -1);
    cr_expect_eq (s_read (suite->feed_endpoint, NULL, NULL, "eaia", &answer), -1);
    fs_test_suite_destroy (&suite);

    //  A certificate without its secret stops start-up, naming the setting
    suite = fs_test_suite_new ("feed_curve_bad");
    char public_only [192];
    snprintf (public_only, sizeof public_only, "%s/public-only.key", keys.dir);
    cr_assert_eq (zcert_save_public (keys.server, public_only), 0);
    fs_test_suite_setenv (suite, "FINESTRA_ROUTER_FEED_CURVE", "on");
    fs_test_suite_setenv (suite, "FINESTRA_ROUTER_FEED_CURVE_SERVER_CERT", public_only);
    fs_test_suite_setenv (suite, "FINESTRA_ROUTER_FEED_CURVE_CLIENTS_DIR", keys.clients);
    fs_test_suite_spawn (suite, "referral-router");
    //  Signal 0 sends nothing: this waits for the router to leave on its own
    int code = fs_test_suite_stop (suite, "referral-router", 0, 30000);
    cr_expect (code > 0 && code < 128, "start-up refused (got %d)", code);
    char log [512], text [65536] = "";
    snprintf (log, sizeof log, "%s/referral-router.log", suite->log_dir);
    FILE *file = fopen (log, "r");
    if (file) {
        size_t n = fread (text, 1, sizeof text - 1, file);
        text [n] = 0;
        fclose (file);
    }
    cr_expect (strstr (text, "FINESTRA_ROUTER_FEED_CURVE_SERVER_CERT"), "%s", text);
    fs_test_suite_destroy (&suite);
    fs_test_curve_keys_destroy (&keys);
}
