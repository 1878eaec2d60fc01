/*  test_fs_redis - fs_redis: URL parsing, and against the test Redis: replies, error
    replies, loss and reconnection, databases, key prefixes. */
#include "fs_test.h"
#include <sys/socket.h>
#include <netinet/in.h>

static char *s_url;             /* the test Redis */
static char *s_prefix;          /* every key this test writes starts with it */

//  Deletes the keys under s_prefix in database db
static void
s_forget_keys (int db)
{
    char base [256], err [256];
    snprintf (base, sizeof base, "%.*s/%d", (int) strcspn (s_url + 8, "/") + 8, s_url, db);
    fs_redis_t *redis = fs_redis_new (base, err, sizeof err);
    cr_assert (redis, "%s", err);
    char pattern [300];
    snprintf (pattern, sizeof pattern, "%s*", s_prefix);
    redisReply *keys = fs_redis_command (redis, "KEYS %s", pattern);
    cr_assert (keys, "%s", fs_redis_error (redis));
    for (size_t i = 0; i < keys->elements; i++) {
        redisReply *done = fs_redis_command (redis, "DEL %s", keys->element [i]->str);
        cr_assert (done, "%s", fs_redis_error (redis));
        freeReplyObject (done);
    }
    freeReplyObject (keys);
    fs_redis_destroy (&redis);
}

static void
s_setup (void)
{
    s_url = fs_test_redis_url ();
    s_prefix = fs_test_redis_prefix ("fs_redis");
}

static void
s_teardown (void)
{
    s_forget_keys (0);
    s_forget_keys (3);
    free (s_url);
    free (s_prefix);
}

TestSuite (fs_redis, .init = s_setup, .fini = s_teardown, .timeout = 120);
//  URL parsing needs no server
TestSuite (fs_redis_url, .timeout = 60);

//  The test Redis with another path (e.g. "/3"): redis://host:port<path>
static char *
s_url_with (const char *path)
{
    return zsys_sprintf ("%.*s%s", (int) strcspn (s_url + 8, "/") + 8, s_url, path);
}

static fs_redis_t *
s_connected (const char *url)
{
    char err [256];
    fs_redis_t *redis = fs_redis_new (url, err, sizeof err);
    cr_assert (redis, "%s: %s", url, err);
    cr_assert_eq (fs_redis_connect (redis, 10000), 0, "%s", fs_redis_error (redis));
    return redis;
}

static long long
s_client_id (fs_redis_t *redis)
{
    redisReply *reply = fs_redis_command (redis, "CLIENT ID");
    cr_assert (reply, "%s", fs_redis_error (redis));
    cr_assert_eq (reply->type, REDIS_REPLY_INTEGER);
    long long id = reply->integer;
    freeReplyObject (reply);
    return id;
}

//  Ends redis's connection from another one, as a server restart or an operator would
static void
s_kill_client (fs_redis_t *redis)
{
    long long id = s_client_id (redis);
    fs_redis_t *killer = s_connected (s_url);
    redisReply *reply = fs_redis_command (killer, "CLIENT KILL ID %lld", id);
    cr_assert (reply, "%s", fs_redis_error (killer));
    cr_assert_eq (reply->integer, 1, "CLIENT KILL found no client %lld", id);
    freeReplyObject (reply);
    fs_redis_destroy (&killer);
}

static int
s_closed_port (void)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    cr_assert (fd >= 0);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    socklen_t len = sizeof addr;
    cr_assert_eq (bind (fd, (struct sockaddr *) &addr, sizeof addr), 0);
    cr_assert_eq (getsockname (fd, (struct sockaddr *) &addr, &len), 0);
    close (fd);
    return ntohs (addr.sin_port);
}

Test (fs_redis_url, good_urls_parse)
{
    const char *urls [] = {
        "redis://127.0.0.1", "redis://127.0.0.1:6379", "redis://localhost:1/", "redis://h/0",
        "redis://h:65535/15", "REDIS://h", "redis://:secret@h:7/2", "redis://:p%40ss%2Fw@h",
        "redis://:a:b@h", "redis://[::1]:6379/1", "redis://[::1]", "redis://redis-1.svc_x.local",
    };
    for (size_t i = 0; i < sizeof urls / sizeof urls [0]; i++) {
        char err [256] = "untouched";
        fs_redis_t *redis = fs_redis_new (urls [i], err, sizeof err);
        cr_assert (redis, "%s refused: %s", urls [i], err);
        cr_assert_str_eq (err, "");
        cr_assert_str_eq (fs_redis_error (redis), "");
        fs_redis_destroy (&redis);
        cr_assert_null (redis);
        fs_redis_destroy (&redis);      //  idempotent
    }
}

Test (fs_redis_url, bad_urls_are_refused_with_a_reason)
{
    struct { const char *url; const char *says; } cases [] = {
        { "", "must start with redis://" },
        { "http://h:6379", "must start with redis://" },
        { "127.0.0.1:6379", "must start with redis://" },
        { "rediss://h", "TLS" },
        { "unix:///tmp/redis.sock", "unix sockets" },
        { "redis://", "missing host" },
        { "redis://:6379", "missing host" },
        { "redis:///0", "missing host" },
        { "redis://h:0", "port" },
        { "redis://h:65536", "port" },
        { "redis://h:63a", "port" },
        { "redis://h:", "port" },
        { "redis://h/abc", "database" },
        { "redis://h/-1", "database" },
        { "redis://h/1/2", "database" },
        { "redis://h/99999999999", "database" },
        { "redis://user:secret@h", "user names" },
        { "redis://:@h", "empty password" },
        { "redis://:p%zz@h", "percent-encoding" },
        { "redis://:p%4@h", "percent-encoding" },
        { "redis://:p%00@h", "NUL" },
        { "redis://h?db=1", "query" },
        { "redis://h#x", "query" },
        { "redis://h /0", "white space" },
        { "redis://::1:6379", "brackets" },
        { "redis://[::1:6379", "unclosed" },
        { "redis://[::1]x", "after ]" },
        { "redis://[zz]:1", "IPv6" },
        { "redis://h$st:1", "host" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        char err [256] = "";
        fs_redis_t *redis = fs_redis_new (cases [i].url, err, sizeof err);
        cr_assert_null (redis, "%s accepted", cases [i].url);
        cr_assert (strncmp (err, "bad Redis URL: ", 15) == 0 && strstr (err, cases [i].says),
                   "%s: got '%s', expected '%s'", cases [i].url, err, cases [i].says);
    }
    //  The password never shows in the message
    char err [256] = "";
    cr_assert_null (fs_redis_new ("redis://admin:hunter2@h", err, sizeof err));
    cr_assert_null (strstr (err, "hunter2"), "%s", err);
}

Test (fs_redis, commands_and_replies)
{
    fs_redis_t *redis = s_connected (s_url);
    cr_assert_eq (fs_redis_ping (redis), 0);

    char key [300];
    snprintf (key, sizeof key, "%sblob", s_prefix);
    const char blob [] = { 'a', 0, 'b', '\r', '\n', (char) 0xff };
    redisReply *reply = fs_redis_command (redis, "SET %s %b", key, blob, sizeof blob);
    cr_assert (reply, "%s", fs_redis_error (redis));
    cr_assert_eq (reply->type, REDIS_REPLY_STATUS);
    cr_assert_str_eq (reply->str, "OK");
    freeReplyObject (reply);
    reply = fs_redis_command (redis, "GET %s", key);
    cr_assert (reply);
    cr_assert_eq (reply->type, REDIS_REPLY_STRING);
    cr_assert_eq (reply->len, sizeof blob);
    cr_assert_eq (memcmp (reply->str, blob, sizeof blob), 0);
    freeReplyObject (reply);

    snprintf (key, sizeof key, "%scount", s_prefix);
    for (long long i = 1; i <= 3; i++) {
        reply = fs_redis_command (redis, "INCR %s", key);
        cr_assert (reply);
        cr_assert_eq (reply->type, REDIS_REPLY_INTEGER);
        cr_assert_eq (reply->integer, i);
        freeReplyObject (reply);
    }

    snprintf (key, sizeof key, "%squeue", s_prefix);
    reply = fs_redis_command (redis, "RPUSH %s one two three", key);
    cr_assert (reply);
    freeReplyObject (reply);
    reply = fs_redis_command (redis, "LRANGE %s 0 -1", key);
    cr_assert (reply);
    cr_assert_eq (reply->type, REDIS_REPLY_ARRAY);
    cr_assert_eq (reply->elements, 3);
    cr_assert_str_eq (reply->element [2]->str, "three");
    freeReplyObject (reply);

    snprintf (key, sizeof key, "%snothing", s_prefix);
    reply = fs_redis_command (redis, "GET %s", key);
    cr_assert (reply, "a missing key is an answer, not a failure");
    cr_assert_eq (reply->type, REDIS_REPLY_NIL);
    freeReplyObject (reply);
    fs_redis_destroy (&redis);
}

Test (fs_redis, error_reply_is_freed_and_kept_as_text)
{
    fs_redis_t *redis = s_connected (s_url);
    long long id = s_client_id (redis);
    char key [300];
    snprintf (key, sizeof key, "%sname", s_prefix);
    redisReply *reply = fs_redis_command (redis, "SET %s %s", key, "Montserrat");
    cr_assert (reply);
    freeReplyObject (reply);

    cr_assert_null (fs_redis_command (redis, "INCR %s", key));
    cr_assert (strstr (fs_redis_error (redis), "not an integer"), "%s", fs_redis_error (redis));
    cr_assert_null (fs_redis_command (redis, "NOSUCHCOMMAND"));
    cr_assert (strstr (fs_redis_error (redis), "unknown command"), "%s", fs_redis_error (redis));

    //  An error reply is not an I/O error: the same connection goes on
    cr_assert_eq (s_client_id (redis), id);
    cr_assert_str_eq (fs_redis_error (redis), "");
    fs_redis_destroy (&redis);
}

Test (fs_redis, reconnects_after_client_kill)
{
    fs_redis_t *redis = s_connected (s_url);
    long long before = s_client_id (redis);
    s_kill_client (redis);

    //  The next call fails and says why ...
    cr_assert_eq (fs_redis_ping (redis), -1);
    cr_assert (strstr (fs_redis_error (redis), "connection lost"), "%s", fs_redis_error (redis));
    //  ... and the one after works on a new connection
    long long after = s_client_id (redis);
    cr_assert_neq (before, after);
    cr_assert_eq (fs_redis_ping (redis), 0);
    fs_redis_destroy (&redis);
}

Test (fs_redis, big_write_to_a_killed_connection_does_not_kill_us)
{
    //  Without care, write() on the closed socket raises SIGPIPE and ends this process
    fs_redis_t *redis = s_connected (s_url);
    s_kill_client (redis);
    size_t size = 8 * 1024 * 1024;
    char *big = (char *) calloc (1, size);
    cr_assert (big);
    char key [300];
    snprintf (key, sizeof key, "%sbig", s_prefix);
    redisReply *reply = fs_redis_command (redis, "SET %s %b", key, big, size);
    cr_assert_null (reply, "a write to a killed connection succeeded");
    free (big);
    cr_assert_eq (fs_redis_ping (redis), 0, "%s", fs_redis_error (redis));
    fs_redis_destroy (&redis);
}

Test (fs_redis, url_database_is_selected)
{
    char *url3 = s_url_with ("/3");
    fs_redis_t *db3 = s_connected (url3);
    char key [300];
    snprintf (key, sizeof key, "%sin3", s_prefix);
    redisReply *reply = fs_redis_command (db3, "SET %s x", key);
    cr_assert (reply);
    freeReplyObject (reply);

    char *url0 = s_url_with ("/0");
    fs_redis_t *db0 = s_connected (url0);
    reply = fs_redis_command (db0, "EXISTS %s", key);
    cr_assert (reply);
    cr_assert_eq (reply->integer, 0, "the key went to database 0");
    freeReplyObject (reply);

    //  Reconnected, the database is selected again
    s_kill_client (db3);
    cr_assert_eq (fs_redis_ping (db3), -1);
    reply = fs_redis_command (db3, "EXISTS %s", key);
    cr_assert (reply, "%s", fs_redis_error (db3));
    cr_assert_eq (reply->integer, 1);
    freeReplyObject (reply);

    fs_redis_destroy (&db0);
    fs_redis_destroy (&db3);
    zstr_free (&url0);
    zstr_free (&url3);
}

Test (fs_redis, password_is_sent)
{
    //  The test Redis has no password, so it answers AUTH with an error
    char *url = zsys_sprintf ("redis://:not-needed@%.*s", (int) strcspn (s_url + 8, "/"),
                              s_url + 8);
    char err [256];
    fs_redis_t *redis = fs_redis_new (url, err, sizeof err);
    cr_assert (redis, "%s", err);
    cr_assert_eq (fs_redis_connect (redis, 0), -1);
    cr_assert (strstr (fs_redis_error (redis), "AUTH"), "%s", fs_redis_error (redis));
    cr_assert_null (fs_redis_command (redis, "PING"));
    cr_assert (strstr (fs_redis_error (redis), "AUTH"), "%s", fs_redis_error (redis));
    fs_redis_destroy (&redis);
    zstr_free (&url);
}

Test (fs_redis, connect_gives_up_after_timeout)
{
    char *url = zsys_sprintf ("redis://127.0.0.1:%d/0", s_closed_port ());
    char err [256];
    fs_redis_t *redis = fs_redis_new (url, err, sizeof err);
    cr_assert (redis, "%s", err);
    cr_assert_eq (fs_redis_connect (redis, 700), -1);
    cr_assert (strstr (fs_redis_error (redis), "cannot connect to Redis"), "%s",
               fs_redis_error (redis));
    cr_assert_eq (fs_redis_ping (redis), -1);

    zsys_interrupted = 1;
    int rc = fs_redis_connect (redis, 600000);       //  ends at once, interrupted
    zsys_interrupted = 0;
    cr_assert_eq (rc, -1);
    cr_assert (strstr (fs_redis_error (redis), "interrupted"), "%s", fs_redis_error (redis));
    fs_redis_destroy (&redis);
    zstr_free (&url);
}

Test (fs_redis, prefixes_keep_tests_apart)
{
    char *other = fs_test_redis_prefix ("fs_redis");
    cr_assert_str_neq (other, s_prefix);
    char start [64];
    snprintf (start, sizeof start, "test:fs_redis:%d:", (int) getpid ());
    cr_assert (strncmp (s_prefix, start, strlen (start)) == 0, "%s", s_prefix);
    cr_assert_eq (s_prefix [strlen (s_prefix) - 1], ':');

    fs_redis_t *redis = s_connected (s_url);
    char key [300];
    snprintf (key, sizeof key, "%sk", s_prefix);
    redisReply *reply = fs_redis_command (redis, "SET %s mine", key);
    cr_assert (reply);
    freeReplyObject (reply);
    reply = fs_redis_command (redis, "KEYS %s*", other);
    cr_assert (reply);
    cr_assert_eq (reply->elements, 0, "another prefix sees this test's keys");
    freeReplyObject (reply);
    reply = fs_redis_command (redis, "KEYS %s*", s_prefix);
    cr_assert (reply);
    cr_assert_eq (reply->elements, 1);
    freeReplyObject (reply);
    fs_redis_destroy (&redis);
    free (other);
}
