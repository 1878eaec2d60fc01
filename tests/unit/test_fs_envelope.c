/*  test_fs_envelope - wrapping every catalogue message, chaining correlation and causation,
    and refusing what should be refused (size, version, type, payload) with the right path. */
#include "proto_testkit.h"

#define S_MAX_LEN (1024 * 1024)

//  A valid eviction payload: the catalogue message with an INT to break.
static void
s_eviction (fs_ev_eviction_scheduled_t *ev)
{
    memset (ev, 0, sizeof *ev);
    fs_proto_set_str (&fs_ev_eviction_scheduled_type, ev, "eviction_date", "2026-03-01");
    fs_proto_set_int (&fs_ev_eviction_scheduled_type, ev, "household_size", 3);
    fs_proto_set_int (&fs_ev_eviction_scheduled_type, ev, "minors", 1);
}

//  Encodes a fresh envelope around an eviction payload (cause may be NULL).
static char *
s_envelope_bytes (const fs_envelope_t *cause, size_t *len, char *id)
{
    fs_ev_eviction_scheduled_t ev;
    s_eviction (&ev);
    char *data;
    fs_proto_error_t err;
    int rc = fs_envelope_encode ("intake", &fs_ev_eviction_scheduled_type, &ev, cause,
                                 &data, len, id, &err);
    cr_assert_eq (rc, 0, "%s", err.message);
    fs_proto_clear (&fs_ev_eviction_scheduled_type, &ev);
    return data;
}

//  Decodes and checks the outcome; on error, the envelope is left all zeros.
static void
s_expect (const char *data, size_t len, size_t max_len, int code, const char *field)
{
    fs_envelope_t env;
    memset (&env, 0x5a, sizeof env);
    fs_proto_error_t err;
    int rc = fs_envelope_decode (data, len, max_len, &env, &err);
    cr_assert_eq (rc, code, "expected %s, got %s (%s: %s)", fs_proto_code_name (code),
                  fs_proto_code_name (rc), err.field, err.message);
    cr_assert_eq ((int) err.code, code);
    if (code) {
        cr_assert_str_eq (err.field, field, "field %s (%s)", err.field, err.message);
        cr_assert_gt (strlen (err.message), 0);
        if (*field)
            cr_assert_eq (strncmp (err.message, field, strlen (field)), 0, "%s", err.message);
        fs_envelope_t zero;
        memset (&zero, 0, sizeof zero);
        cr_assert_eq (memcmp (&env, &zero, sizeof env), 0, "envelope not zeroed");
    }
    fs_envelope_clear (&env);
}

static void
s_expect_edit (const char *path, tk_op_t op, msgpack_object val, int code, const char *field)
{
    size_t len;
    char *data = s_envelope_bytes (NULL, &len, NULL);
    size_t elen;
    char *edited = tk_edit (data, len, path, op, val, &elen);
    s_expect (edited, elen, S_MAX_LEN, code, field);
    free (edited);
    free (data);
}

Test (fs_envelope, every_catalogue_message_round_trips)
{
    for (size_t i = 0; fs_proto_messages [i]; i++) {
        const fs_type_t *t = fs_proto_messages [i];
        for (int variant = TK_MIN; variant <= TK_MAX; variant++) {
            void *payload = calloc (1, t->size);
            tk_fill (t, payload, (tk_variant_t) variant);
            char id [FS_UUID_LEN + 1] = "";
            char *data;
            size_t len;
            fs_proto_error_t err;
            int64_t before = fs_now_ms ();
            cr_assert_eq (fs_envelope_encode ("benefits-office", t, payload, NULL, &data, &len,
                                              id, &err), 0, "%s: %s", t->name, err.message);
            int64_t after = fs_now_ms ();
            cr_assert_eq (strlen (id), FS_UUID_LEN);

            fs_envelope_t env;
            cr_assert_eq (fs_envelope_decode (data, len, S_MAX_LEN, &env, &err), 0,
                          "%s: %s", t->name, err.message);
            cr_assert_eq (env.hdr.v, FS_ENVELOPE_VERSION);
            cr_assert_str_eq (env.hdr.id, id);
            cr_assert_str_eq (env.hdr.type, t->wire);
            cr_assert_str_eq (env.hdr.source, "benefits-office");
            cr_assert_eq (env.ptype, t);
            int64_t when;
            cr_assert_eq (fs_rfc3339_parse (env.hdr.time, &when), 0);
            cr_assert (when >= before - 1 && when <= after + 1, "time %s", env.hdr.time);
            cr_assert (tk_equal (t, payload, env.payload), "%s payload differs", t->name);
            //  hdr.payload holds the payload's own bytes
            char *pbytes;
            size_t plen;
            cr_assert_eq (fs_proto_encode (t, payload, &pbytes, &plen, NULL), 0);
            cr_assert_eq (env.hdr.payload.len, plen);
            cr_assert_eq (memcmp (env.hdr.payload.data, pbytes, plen), 0);
            free (pbytes);
            //  A chain's start: correlation is its own id, no causation
            cr_assert_str_eq (env.hdr.correlation_id, id);
            cr_assert_null (env.hdr.causation_id);
            cr_assert_not (FS_PRESENT (&env.hdr, fs_envelope_wire_F_causation_id));

            fs_envelope_clear (&env);
            fs_envelope_clear (&env);           //  idempotent
            free (data);
            fs_proto_clear (t, payload);
            free (payload);
        }
    }
}

Test (fs_envelope, correlation_and_causation_chain)
{
    char id_a [FS_UUID_LEN + 1], id_b [FS_UUID_LEN + 1], id_c [FS_UUID_LEN + 1];
    size_t len;
    fs_envelope_t a, b, c;
    char *data = s_envelope_bytes (NULL, &len, id_a);
    cr_assert_eq (fs_envelope_decode (data, len, S_MAX_LEN, &a, NULL), 0);
    free (data);
    data = s_envelope_bytes (&a, &len, id_b);
    cr_assert_eq (fs_envelope_decode (data, len, S_MAX_LEN, &b, NULL), 0);
    free (data);
    data = s_envelope_bytes (&b, &len, id_c);
    cr_assert_eq (fs_envelope_decode (data, len, S_MAX_LEN, &c, NULL), 0);
    free (data);

    cr_assert_str_eq (a.hdr.correlation_id, a.hdr.id);
    cr_assert_null (a.hdr.causation_id);
    //  b was caused by a: same chain, a is its cause
    cr_assert_str_eq (b.hdr.id, id_b);
    cr_assert_str_eq (b.hdr.correlation_id, id_a);
    cr_assert_str_eq (b.hdr.causation_id, id_a);
    //  c was caused by b: still a's chain, b is its cause
    cr_assert_str_eq (c.hdr.correlation_id, id_a);
    cr_assert_str_eq (c.hdr.causation_id, id_b);
    //  every id is new
    cr_assert_str_neq (id_a, id_b);
    cr_assert_str_neq (id_b, id_c);
    cr_assert_str_neq (id_a, id_c);
    fs_envelope_clear (&a);
    fs_envelope_clear (&b);
    fs_envelope_clear (&c);
}

Test (fs_envelope, id_out_is_optional)
{
    fs_ev_eviction_scheduled_t ev;
    s_eviction (&ev);
    char *data;
    size_t len;
    cr_assert_eq (fs_envelope_encode ("intake", &fs_ev_eviction_scheduled_type, &ev, NULL,
                                      &data, &len, NULL, NULL), 0);
    s_expect (data, len, S_MAX_LEN, 0, "");
    free (data);
    fs_proto_clear (&fs_ev_eviction_scheduled_type, &ev);
}

Test (fs_envelope, too_large_comes_first)
{
    size_t len;
    char *data = s_envelope_bytes (NULL, &len, NULL);
    s_expect (data, len, len, 0, "");
    s_expect (data, len, len - 1, FS_PROTO_TOO_LARGE, "");
    //  Garbage over the limit is too large, not malformed: nothing else is looked at
    s_expect ("\xc1\xc1\xc1\xc1", 4, 3, FS_PROTO_TOO_LARGE, "");
    free (data);
}

Test (fs_envelope, unsupported_version)
{
    s_expect_edit ("v", TK_SET, tk_int (2), FS_PROTO_UNSUPPORTED_VERSION, "v");
    s_expect_edit ("v", TK_SET, tk_int (0), FS_PROTO_UNSUPPORTED_VERSION, "v");
    s_expect_edit ("v", TK_SET, tk_int (-1), FS_PROTO_UNSUPPORTED_VERSION, "v");
    s_expect_edit ("v", TK_SET, tk_uint (UINT64_MAX), FS_PROTO_UNSUPPORTED_VERSION, "v");
    s_expect_edit ("v", TK_SET, tk_int (1), 0, "");
    //  The version is judged before the rest: a v2 envelope may look different
    const char v2 [] = "\x82\xa1v\x02\xa4" "what\xa4" "ever";
    s_expect (v2, sizeof v2 - 1, S_MAX_LEN, FS_PROTO_UNSUPPORTED_VERSION, "v");
    //  A version that is not an integer, or none, is an ordinary field error
    s_expect_edit ("v", TK_SET, tk_str ("1"), FS_PROTO_INVALID_FIELD, "v");
    s_expect_edit ("v", TK_REMOVE, tk_nil (), FS_PROTO_MISSING_FIELD, "v");
}

Test (fs_envelope, unknown_type)
{
    s_expect_edit ("type", TK_SET, tk_str ("no.such_type"), FS_PROTO_UNKNOWN_TYPE, "type");
    //  A nested struct's name is not a message type
    s_expect_edit ("type", TK_SET, tk_str ("fs_ack"), FS_PROTO_UNKNOWN_TYPE, "type");
    s_expect_edit ("type", TK_SET, tk_str (""), FS_PROTO_INVALID_FIELD, "type");
    s_expect_edit ("type", TK_SET, tk_int (1), FS_PROTO_INVALID_FIELD, "type");
    //  Another catalogue type: the payload is judged as that type
    s_expect_edit ("type", TK_SET, tk_str ("notification.queued"), FS_PROTO_MISSING_FIELD,
                   "payload.notification_id");
}

Test (fs_envelope, payload_errors_are_prefixed)
{
    s_expect_edit ("payload.household_size", TK_SET, tk_int (0), FS_PROTO_INVALID_FIELD,
                   "payload.household_size");
    s_expect_edit ("payload.minors", TK_REMOVE, tk_nil (), FS_PROTO_MISSING_FIELD, "payload.minors");
    s_expect_edit ("payload.eviction_date", TK_SET, tk_str ("2023-02-29"), FS_PROTO_INVALID_FIELD,
                   "payload.eviction_date");
    s_expect_edit ("payload.minors", TK_DUP, tk_nil (), FS_PROTO_INVALID_FIELD, "payload.minors");
    s_expect_edit ("payload", TK_SET, tk_int (5), FS_PROTO_INVALID_FIELD, "payload");
    s_expect_edit ("payload", TK_SET, tk_empty_map (), FS_PROTO_MISSING_FIELD, "payload.eviction_date");
    s_expect_edit ("payload", TK_REMOVE, tk_nil (), FS_PROTO_MISSING_FIELD, "payload");
    s_expect_edit ("payload.x_future", TK_SET, tk_int (5), 0, "");

    size_t len;
    char *data = s_envelope_bytes (NULL, &len, NULL);
    size_t elen;
    char *edited = tk_edit (data, len, "payload.household_size", TK_SET, tk_int (51), &elen);
    fs_envelope_t env;
    fs_proto_error_t err;
    cr_assert_eq (fs_envelope_decode (edited, elen, S_MAX_LEN, &env, &err), FS_PROTO_INVALID_FIELD);
    cr_assert_str_eq (err.message, "payload.household_size: must be between 1 and 50");
    free (edited);
    free (data);
}

Test (fs_envelope, header_field_errors)
{
    s_expect_edit ("id", TK_SET, tk_str ("not-a-uuid"), FS_PROTO_INVALID_FIELD, "id");
    s_expect_edit ("id", TK_REMOVE, tk_nil (), FS_PROTO_MISSING_FIELD, "id");
    s_expect_edit ("time", TK_SET, tk_str ("yesterday"), FS_PROTO_INVALID_FIELD, "time");
    s_expect_edit ("correlation_id", TK_REMOVE, tk_nil (), FS_PROTO_MISSING_FIELD, "correlation_id");
    s_expect_edit ("causation_id", TK_SET, tk_int (1), FS_PROTO_INVALID_FIELD, "causation_id");
    s_expect_edit ("causation_id", TK_SET, tk_str ("0e9b1a3c-5d7f-4a2b-8c6d-1f3e5a7b9c0d"), 0, "");
    s_expect_edit ("source", TK_SET, tk_str (""), FS_PROTO_INVALID_FIELD, "source");
    s_expect_edit ("source", TK_DUP, tk_nil (), FS_PROTO_INVALID_FIELD, "source");
    s_expect_edit ("x_future", TK_SET, tk_str ("ignored"), 0, "");
}

Test (fs_envelope, malformed)
{
    s_expect ("", 0, S_MAX_LEN, FS_PROTO_MALFORMED, "");
    s_expect ("\x91\x01", 2, S_MAX_LEN, FS_PROTO_MALFORMED, "");
    s_expect ("\x81\x01\x01", 3, S_MAX_LEN, FS_PROTO_MALFORMED, "");
    size_t len;
    char *data = s_envelope_bytes (NULL, &len, NULL);
    for (size_t cut = 0; cut < len; cut++) {
        char *prefix = malloc (cut? cut: 1);
        memcpy (prefix, data, cut);
        s_expect (prefix, cut, S_MAX_LEN, FS_PROTO_MALFORMED, "");
        free (prefix);
    }
    char *longer = malloc (len + 1);
    memcpy (longer, data, len);
    longer [len] = (char) 0xc0;
    s_expect (longer, len + 1, S_MAX_LEN, FS_PROTO_MALFORMED, "");
    free (longer);
    free (data);
    //  Nesting past the limit anywhere in the envelope
    char deep [40];
    memset (deep, 0x91, sizeof deep - 1);
    deep [sizeof deep - 1] = 0x00;
    s_expect (deep, sizeof deep, S_MAX_LEN, FS_PROTO_TOO_DEEP, "");
}

Test (fs_envelope, encode_errors)
{
    fs_ev_eviction_scheduled_t ev;
    s_eviction (&ev);
    char *data = (char *) &ev;
    size_t len = 7;
    fs_proto_error_t err;
    char id [FS_UUID_LEN + 1] = "untouched";
    //  Invalid payload: nothing is produced, the path says where
    fs_proto_set_int (&fs_ev_eviction_scheduled_type, &ev, "household_size", 0);
    cr_assert_eq (fs_envelope_encode ("intake", &fs_ev_eviction_scheduled_type, &ev, NULL,
                                      &data, &len, id, &err), FS_PROTO_INVALID_FIELD);
    cr_assert_null (data);
    cr_assert_eq (len, 0);
    cr_assert_str_eq (id, "untouched");
    cr_assert_str_eq (err.field, "payload.household_size");
    cr_assert_str_eq (err.message, "payload.household_size: must be between 1 and 50");
    fs_proto_set_int (&fs_ev_eviction_scheduled_type, &ev, "household_size", 2);
    fs_proto_set_str (&fs_ev_eviction_scheduled_type, &ev, "eviction_date", NULL);
    cr_assert_eq (fs_envelope_encode ("intake", &fs_ev_eviction_scheduled_type, &ev, NULL,
                                      &data, &len, id, &err), FS_PROTO_MISSING_FIELD);
    cr_assert_str_eq (err.field, "payload.eviction_date");
    fs_proto_set_str (&fs_ev_eviction_scheduled_type, &ev, "eviction_date", "2026-03-01");
    //  A source the envelope refuses
    char long_source [66];
    memset (long_source, 's', 65);
    long_source [65] = 0;
    cr_assert_eq (fs_envelope_encode (long_source, &fs_ev_eviction_scheduled_type, &ev, NULL,
                                      &data, &len, id, &err), FS_PROTO_INVALID_FIELD);
    cr_assert_str_eq (err.field, "source");
    cr_assert_null (data);
    cr_assert_eq (fs_envelope_encode (NULL, &fs_ev_eviction_scheduled_type, &ev, NULL,
                                      &data, &len, id, &err), FS_PROTO_MISSING_FIELD);
    cr_assert_str_eq (err.field, "source");
    //  Only catalogue messages travel in envelopes
    fs_ack_t ack = { 0 };
    cr_assert_eq (fs_envelope_encode ("intake", &fs_ack_type, &ack, NULL, &data, &len, id, &err),
                  FS_PROTO_UNKNOWN_TYPE);
    cr_assert_str_eq (err.field, "type");
    cr_assert_null (data);
    cr_assert_str_eq (id, "untouched");
    cr_assert_eq (fs_envelope_encode ("intake", &fs_ev_eviction_scheduled_type, &ev, NULL,
                                      &data, &len, id, &err), 0);
    cr_assert_str_neq (id, "untouched");
    free (data);
    fs_proto_clear (&fs_ev_eviction_scheduled_type, &ev);
}

Test (fs_envelope, mutations_never_crash)
{
    uint64_t state = 777;
    size_t len;
    fs_envelope_t cause;
    char *first = s_envelope_bytes (NULL, &len, NULL);
    cr_assert_eq (fs_envelope_decode (first, len, S_MAX_LEN, &cause, NULL), 0);
    char *data = s_envelope_bytes (&cause, &len, NULL);
    int survived = 0;
    for (int m = 0; m < 10000; m++) {
        char *copy = malloc (len);
        memcpy (copy, data, len);
        int edits = 1 + (int) (tk_rand (&state) % 3);
        for (int e = 0; e < edits; e++) {
            size_t at = (size_t) (tk_rand (&state) % len);
            if (tk_rand (&state) & 1)
                copy [at] ^= (char) (1u << (tk_rand (&state) % 8));
            else
                copy [at] = (char) tk_rand (&state);
        }
        fs_envelope_t env;
        fs_proto_error_t err;
        int rc = fs_envelope_decode (copy, len, S_MAX_LEN, &env, &err);
        cr_assert_eq (rc, (int) err.code);
        if (rc == 0) {
            //  What still decodes is a whole, valid envelope and payload
            cr_assert_not_null (env.ptype);
            cr_assert_not_null (env.payload);
            cr_assert_eq (fs_proto_validate (&fs_envelope_wire_type, &env.hdr, NULL), 0);
            cr_assert_eq (fs_proto_validate (env.ptype, env.payload, NULL), 0);
            char *again;
            size_t again_len;
            cr_assert_eq (fs_proto_encode (&fs_envelope_wire_type, &env.hdr, &again, &again_len, NULL), 0);
            fs_envelope_t env2;
            cr_assert_eq (fs_envelope_decode (again, again_len, S_MAX_LEN, &env2, NULL), 0);
            cr_assert (tk_equal (env.ptype, env.payload, env2.payload));
            fs_envelope_clear (&env2);
            free (again);
            survived++;
        }
        else {
            cr_assert_null (env.payload);
            cr_assert_gt (strlen (err.message), 0);
        }
        fs_envelope_clear (&env);
        free (copy);
    }
    cr_assert_gt (survived, 0);
    cr_assert_lt (survived, 10000);
    fs_envelope_clear (&cause);
    free (first);
    free (data);
}
