/*  test_ingest_curve - intake with FINESTRA_CURVE=on, a real process: only listed client keys
    get in (ZAP refuses the rest, NULL clients too), each only as its own source; bad
    settings stop start-up with the setting's name; finestra-keys makes what intake loads. */
#include "fs_test.h"
#include <signal.h>

extern const char *fs_test_bin_dir;

//  Keys for one suite, in a temporary directory: intake's pair; "primary-care" listed,
//  "hospital" not
static void
s_keys_make (fs_test_curve_keys_t *keys)
{
    fs_test_curve_keys_make (keys, "curve", "intake", "intake", "clients", "primary-care",
                             "hospital");
}

//  secret_file: name intake.key_secret itself (what the operators' guide says) rather than
//  intake.key (zcert_load then reads the _secret file beside it)
static fs_test_suite_t *
s_suite_new (const fs_test_curve_keys_t *keys, bool secret_file)
{
    fs_test_suite_t *suite = fs_test_suite_new ("curve");
    fs_test_suite_setenv (suite, "FINESTRA_CURVE", "on");
    char cert [160];
    snprintf (cert, sizeof cert, "%s%s", keys->server_cert, secret_file ? "_secret" : "");
    fs_test_suite_setenv (suite, "FINESTRA_CURVE_SERVER_CERT", cert);
    fs_test_suite_setenv (suite, "FINESTRA_CURVE_CLIENTS_DIR", keys->clients);
    return suite;
}

//  Publishes one event over REQ as client (NULL: a plain NULL-mechanism client), expecting
//  intake's public key server_key. 0 and the receipt, or -1 when no answer came in time
static int
s_publish (const char *endpoint, zcert_t *client, const char *server_key, zchunk_t *event,
           fs_ingest_receipt_t *receipt, int timeout_ms)
{
    zsock_t *req = zsock_new (ZMQ_REQ);
    cr_assert (req);
    zsock_set_linger (req, 0);
    zsock_set_rcvtimeo (req, timeout_ms);
    zsock_set_sndtimeo (req, timeout_ms);
    if (client) {
        zcert_apply (client, req);
        zsock_set_curve_serverkey (req, server_key);
    }
    int rc = -1;
    if (zsock_connect (req, "%s", endpoint) == 0) {
        zframe_t *frame = zframe_new (zchunk_data (event), zchunk_size (event));
        if (zframe_send (&frame, req, 0) == 0) {
            zframe_t *answer = zframe_recv (req);
            fs_proto_error_t err;
            if (answer
            &&  fs_proto_decode (&fs_ingest_receipt_type, zframe_data (answer),
                                 zframe_size (answer), receipt, &err) == 0)
                rc = 0;
            zframe_destroy (&answer);
        }
        zframe_destroy (&frame);
    }
    zsock_destroy (&req);
    return rc;
}

//  The listed key publishing as its own name: accepted and stored
static void
s_assert_accepted (fs_test_suite_t *suite, const fs_test_curve_keys_t *keys, const char *id)
{
    zchunk_t *event = fs_test_event_social_risk (id, "primary-care", "ordinary");
    fs_ingest_receipt_t receipt = { 0 };
    cr_assert_eq (s_publish (suite->ingest_endpoint, keys->allowed, zcert_public_txt (keys->server),
                             event, &receipt, 10000), 0,
                  "no receipt for the listed key (logs in %s)", suite->log_dir);
    cr_assert_str_eq (receipt.status, "accepted", "%s: %s", receipt.status,
                      receipt.error.message ? receipt.error.message : "");
    fs_proto_clear (&fs_ingest_receipt_type, &receipt);
    zchunk_destroy (&event);
    char sql [256];
    snprintf (sql, sizeof sql, "SELECT count(*) FROM intake.events"
                               " WHERE source = 'primary-care' AND external_id = '%s'", id);
    cr_assert_eq (fs_test_pg_long (suite->pg_url, sql), 1);
}

Test (ingest_curve, only_listed_keys_each_as_its_own_source)
{
    fs_test_curve_keys_t keys;
    s_keys_make (&keys);
    fs_test_suite_t *suite = s_suite_new (&keys, false);
    fs_test_suite_start (suite, "intake");
    const char *server_key = zcert_public_txt (keys.server);

    s_assert_accepted (suite, &keys, "curve-1");

    //  The listed key publishing as another source: rejected, nothing stored
    zchunk_t *event = fs_test_event_social_risk ("curve-2", "hospital", "ordinary");
    fs_ingest_receipt_t receipt = { 0 };
    cr_assert_eq (s_publish (suite->ingest_endpoint, keys.allowed, server_key, event, &receipt,
                             10000), 0);
    cr_assert_str_eq (receipt.status, "rejected");
    cr_assert_str_eq (receipt.error.code, "source_mismatch");
    cr_assert_str_eq (receipt.error.field, "source");
    cr_assert (receipt.ref == NULL);
    fs_proto_clear (&fs_ingest_receipt_type, &receipt);

    //  A key not in the directory (whatever its certificate says): ZAP refuses the
    //  connection, so the request is never read. Without a ZAP handler libzmq would let
    //  this key in
    cr_assert_eq (s_publish (suite->ingest_endpoint, keys.unknown, server_key, event, &receipt,
                             1500), -1, "an unknown key got a receipt");
    //  A plain (NULL mechanism) client
    cr_assert_eq (fs_test_publish (suite->ingest_endpoint, zchunk_data (event),
                                   zchunk_size (event), &receipt, 1500), -1,
                  "a NULL client got a receipt");
    //  The listed key talking to another server key: the handshake fails
    zcert_t *other = zcert_new ();
    cr_assert_eq (s_publish (suite->ingest_endpoint, keys.allowed, zcert_public_txt (other), event,
                             &receipt, 1500), -1, "a receipt under the wrong server key");
    zcert_destroy (&other);
    zchunk_destroy (&event);
    cr_assert_eq (fs_test_pg_long (suite->pg_url,
                  "SELECT count(*) FROM intake.events WHERE source <> 'primary-care'"), 0);
    cr_assert_eq (fs_test_pg_long (suite->pg_url, "SELECT count(*) FROM intake.events"), 1);

    //  Refused peers leave intake serving the listed one
    s_assert_accepted (suite, &keys, "curve-3");
    cr_assert_eq (fs_test_suite_stop (suite, "intake", SIGTERM, 5000), 0);
    fs_test_suite_destroy (&suite);
    fs_test_curve_keys_destroy (&keys);
}

//  Operators add and remove client certificates while intake runs (key rotation)
Test (ingest_curve, clients_dir_changes_apply_without_restart)
{
    fs_test_curve_keys_t keys;
    s_keys_make (&keys);
    fs_test_suite_t *suite = s_suite_new (&keys, true);
    fs_test_suite_start (suite, "intake");
    const char *server_key = zcert_public_txt (keys.server);

    //  A new publisher's certificate dropped in: it gets in, as its name
    char path [192];
    snprintf (path, sizeof path, "%s/hospital.key", keys.clients);
    cr_assert_eq (zcert_save_public (keys.unknown, path), 0);
    zchunk_t *event = fs_test_event_social_risk ("rot-1", "hospital", "ordinary");
    fs_ingest_receipt_t receipt = { 0 };
    cr_assert_eq (s_publish (suite->ingest_endpoint, keys.unknown, server_key, event, &receipt,
                             10000), 0, "a newly listed key got no receipt");
    cr_assert_str_eq (receipt.status, "accepted");
    fs_proto_clear (&fs_ingest_receipt_type, &receipt);
    zchunk_destroy (&event);

    //  primary-care's certificate removed: its key is refused from then on
    snprintf (path, sizeof path, "%s/primary-care.key", keys.clients);
    cr_assert_eq (unlink (path), 0);
    event = fs_test_event_social_risk ("rot-2", "primary-care", "ordinary");
    cr_assert_eq (s_publish (suite->ingest_endpoint, keys.allowed, server_key, event, &receipt,
                             1500), -1, "a removed key still got a receipt");
    zchunk_destroy (&event);
    cr_assert_eq (fs_test_pg_long (suite->pg_url,
                  "SELECT count(*) FROM intake.events WHERE source = 'primary-care'"), 0);
    fs_test_suite_destroy (&suite);
    fs_test_curve_keys_destroy (&keys);
}

//  Start-up with CURVE on and a bad setting: intake exits non-zero naming the setting
static void
s_assert_refuses_start (const char *cert, const char *clients, const char *expected)
{
    fs_test_suite_t *suite = fs_test_suite_new ("curvebad");
    fs_test_suite_setenv (suite, "FINESTRA_CURVE", "on");
    if (cert)
        fs_test_suite_setenv (suite, "FINESTRA_CURVE_SERVER_CERT", cert);
    if (clients)
        fs_test_suite_setenv (suite, "FINESTRA_CURVE_CLIENTS_DIR", clients);
    fs_test_suite_spawn (suite, "intake");
    //  Signal 0 sends nothing: this waits for intake to leave on its own
    int code = fs_test_suite_stop (suite, "intake", 0, 30000);
    cr_assert (code > 0 && code < 128, "intake did not refuse to start (%d) without %s", code,
               expected);
    char log [512];
    snprintf (log, sizeof log, "%s/intake.log", suite->log_dir);
    FILE *file = fopen (log, "r");
    cr_assert (file);
    char text [16384] = "";
    size_t len = fread (text, 1, sizeof text - 1, file);
    text [len] = 0;
    fclose (file);
    cr_assert (strstr (text, expected), "the log does not name %s:\n%s", expected, text);
    //  Next runs append to the same log: start each case clean
    unlink (log);
    fs_test_suite_destroy (&suite);
}

Test (ingest_curve, bad_settings_stop_start_up)
{
    fs_test_curve_keys_t keys;
    s_keys_make (&keys);
    char public_only [192], missing [192];
    snprintf (public_only, sizeof public_only, "%s/clients/primary-care.key", keys.dir);
    snprintf (missing, sizeof missing, "%s/nothing-here", keys.dir);
    s_assert_refuses_start (NULL, keys.clients, "FINESTRA_CURVE_SERVER_CERT");
    s_assert_refuses_start (missing, keys.clients, "FINESTRA_CURVE_SERVER_CERT");
    s_assert_refuses_start (public_only, keys.clients, "has no secret key");
    s_assert_refuses_start (keys.server_cert, NULL, "FINESTRA_CURVE_CLIENTS_DIR");
    s_assert_refuses_start (keys.server_cert, missing, "FINESTRA_CURVE_CLIENTS_DIR");
    fs_test_curve_keys_destroy (&keys);
}

//  Runs finestra-keys with args; its stdout (malloc'd) and exit code
static int
s_keys_tool (const char *args, char **out)
{
    char command [512];
    snprintf (command, sizeof command, "%s/finestra-keys %s 2>/dev/null", fs_test_bin_dir, args);
    FILE *pipe = popen (command, "r");
    cr_assert (pipe);
    char buffer [4096];
    size_t len = fread (buffer, 1, sizeof buffer - 1, pipe);
    buffer [len] = 0;
    int status = pclose (pipe);
    if (out)
        *out = strdup (buffer);
    return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

//  finestra-keys makes pairs intake and publishers load, lists them, never overwrites
Test (ingest_curve, finestra_keys_makes_and_lists_pairs)
{
    char dir [] = "/tmp/finestra-keys-XXXXXX";
    cr_assert (mkdtemp (dir));
    char args [256], *out = NULL;
    snprintf (args, sizeof args, "new primary-care %s", dir);
    cr_assert_eq (s_keys_tool (args, &out), 0);
    free (out);
    snprintf (args, sizeof args, "server %s", dir);
    cr_assert_eq (s_keys_tool (args, &out), 0);
    free (out);

    char path [128];
    snprintf (path, sizeof path, "%s/primary-care.key_secret", dir);
    struct stat st;
    cr_assert_eq (stat (path, &st), 0);
    cr_assert_eq (st.st_mode & 0777, 0600, "secret file mode %o", st.st_mode & 0777);
    zcert_t *secret = zcert_load (path);
    cr_assert (secret);
    cr_assert_str_eq (zcert_meta (secret, "name"), "primary-care");
    snprintf (path, sizeof path, "%s/primary-care.key", dir);
    zcert_t *public = zcert_load (path);
    cr_assert (public);
    cr_assert_str_eq (zcert_public_txt (public), zcert_public_txt (secret));
    snprintf (path, sizeof path, "%s/intake.key_secret", dir);
    zcert_t *server = zcert_load (path);
    cr_assert (server);
    cr_assert_str_eq (zcert_meta (server, "name"), "intake");

    //  list: one line per pair, name and public key
    snprintf (args, sizeof args, "list %s", dir);
    cr_assert_eq (s_keys_tool (args, &out), 0);
    char line [128];
    snprintf (line, sizeof line, "primary-care\t%s\t", zcert_public_txt (secret));
    cr_assert (strstr (out, line), "list: %s", out);
    snprintf (line, sizeof line, "intake\t%s\t", zcert_public_txt (server));
    cr_assert (strstr (out, line), "list: %s", out);
    int lines = 0;
    for (char *c = out; *c; c++)
        lines += *c == '\n';
    cr_assert_eq (lines, 2, "list: %s", out);
    free (out);

    //  Never overwrites a key; refuses names that are not sources, and missing directories
    snprintf (args, sizeof args, "new primary-care %s", dir);
    cr_assert_eq (s_keys_tool (args, NULL), 1);
    snprintf (path, sizeof path, "%s/primary-care.key_secret", dir);
    zcert_t *again = zcert_load (path);
    cr_assert (again);
    cr_assert_str_eq (zcert_public_txt (again), zcert_public_txt (secret));
    snprintf (args, sizeof args, "new ../escape %s", dir);
    cr_assert_eq (s_keys_tool (args, NULL), 2);
    cr_assert_eq (s_keys_tool ("list /nonexistent-finestra-dir", NULL), 1);
    cr_assert_eq (s_keys_tool ("frobnicate", NULL), 2);

    zcert_destroy (&again);
    zcert_destroy (&public);
    zcert_destroy (&secret);
    zcert_destroy (&server);
    char command [128];
    snprintf (command, sizeof command, "rm -rf '%s'", dir);
    cr_assert_eq (system (command), 0);
}
