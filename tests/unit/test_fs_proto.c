/*  test_fs_proto - the generic codec: round trips of every definition, every error code,
    hostile bytes (truncated, random, mutated, deep, lying lengths), bounds at their edges. */
#include "proto_testkit.h"

//  Decodes data as t and checks the outcome: code, and for errors the field path,
//  a message that starts with it, and a struct left all zeros.
static void
s_expect (const fs_type_t *t, const char *data, size_t len, int code, const char *field)
{
    void *msg = malloc (t->size);
    cr_assert_not_null (msg);
    memset (msg, 0xa5, t->size);            //  decode must not trust what it is given
    fs_proto_error_t err;
    int rc = fs_proto_decode (t, data, len, msg, &err);
    cr_assert_eq (rc, code, "%s: expected %s, got %s (%s: %s)", t->name,
                  fs_proto_code_name (code), fs_proto_code_name (rc), err.field, err.message);
    cr_assert_eq ((int) err.code, code);
    if (code) {
        cr_assert_str_eq (err.field, field, "field: %s (%s)", err.field, err.message);
        cr_assert_gt (strlen (err.message), 0);
        if (*field)
            cr_assert_eq (strncmp (err.message, field, strlen (field)), 0, "message: %s", err.message);
        char *zero = calloc (1, t->size);
        cr_assert_eq (memcmp (msg, zero, t->size), 0, "struct not zeroed after an error");
        free (zero);
    }
    fs_proto_clear (t, msg);
    free (msg);
}

//  Edits the sample at path and expects code/field from decoding the result.
static void
s_expect_edit (const fs_type_t *t, tk_variant_t variant, const char *path, tk_op_t op,
               msgpack_object val, int code, const char *field)
{
    char *data;
    size_t len;
    tk_sample_bytes (t, variant, &data, &len);
    size_t elen;
    char *edited = tk_edit (data, len, path, op, val, &elen);
    s_expect (t, edited, elen, code, field);
    free (edited);
    free (data);
}

//  The message of decoding an edit, for checking the words people read.
static void
s_edit_message (const fs_type_t *t, const char *path, msgpack_object val, char *message,
                size_t size)
{
    char *data;
    size_t len;
    tk_sample_bytes (t, TK_MAX, &data, &len);
    size_t elen;
    char *edited = tk_edit (data, len, path, TK_SET, val, &elen);
    void *msg = calloc (1, t->size);
    fs_proto_error_t err;
    cr_assert_neq (fs_proto_decode (t, edited, elen, msg, &err), 0);
    snprintf (message, size, "%s", err.message);
    fs_proto_clear (t, msg);
    free (msg);
    free (edited);
    free (data);
}

//  Decodes, and when that succeeds checks the round trip holds: validate passes,
//  encode succeeds, and decoding that gives the same struct and the same bytes.
static int
s_decode_roundtrip (const fs_type_t *t, const char *data, size_t len)
{
    void *a = calloc (1, t->size);
    cr_assert_not_null (a);
    fs_proto_error_t err;
    int rc = fs_proto_decode (t, data, len, a, &err);
    cr_assert_eq (rc, (int) err.code);
    if (rc == 0) {
        cr_assert_eq (fs_proto_validate (t, a, &err), 0, "%s", err.message);
        char *bytes1, *bytes2;
        size_t len1, len2;
        cr_assert_eq (fs_proto_encode (t, a, &bytes1, &len1, &err), 0, "%s", err.message);
        void *b = calloc (1, t->size);
        cr_assert_eq (fs_proto_decode (t, bytes1, len1, b, &err), 0, "%s", err.message);
        cr_assert (tk_equal (t, a, b));
        cr_assert_eq (fs_proto_encode (t, b, &bytes2, &len2, &err), 0);
        cr_assert_eq (len1, len2);
        cr_assert_eq (memcmp (bytes1, bytes2, len1), 0);
        free (bytes1);
        free (bytes2);
        fs_proto_clear (t, b);
        free (b);
    }
    else {
        cr_assert_gt (strlen (err.message), 0);
        cr_assert_neq (strcmp (fs_proto_code_name (rc), "unknown"), 0);
    }
    fs_proto_clear (t, a);
    free (a);
    return rc;
}

//  ---------------------------------------------------------------------------

Test (fs_proto, code_names)
{
    cr_assert_str_eq (fs_proto_code_name (FS_PROTO_OK), "ok");
    cr_assert_str_eq (fs_proto_code_name (FS_PROTO_MALFORMED), "malformed");
    cr_assert_str_eq (fs_proto_code_name (FS_PROTO_UNSUPPORTED_VERSION), "unsupported_version");
    cr_assert_str_eq (fs_proto_code_name (FS_PROTO_MISSING_FIELD), "missing_field");
    cr_assert_str_eq (fs_proto_code_name (FS_PROTO_INVALID_FIELD), "invalid_field");
    cr_assert_str_eq (fs_proto_code_name (FS_PROTO_UNKNOWN_TYPE), "unknown_type");
    cr_assert_str_eq (fs_proto_code_name (FS_PROTO_TOO_LARGE), "too_large");
    cr_assert_str_eq (fs_proto_code_name (FS_PROTO_TOO_DEEP), "too_deep");
    cr_assert_str_eq (fs_proto_code_name ((fs_proto_code_t) 99), "unknown");
}

Test (fs_proto, descriptors_are_consistent)
{
    for (size_t d = 0; tk_all_types [d]; d++) {
        const fs_type_t *t = tk_all_types [d];
        cr_assert_gt (t->nfields, 0, "%s", t->name);
        cr_assert_leq (t->nfields, 64, "%s", t->name);
        cr_assert_not_null (t->doc);
        for (size_t i = 0; i < t->nfields; i++) {
            const fs_field_t *f = &t->fields [i];
            cr_assert_eq (fs_proto_field_index (t, f->name), (int) i, "%s.%s", t->name, f->name);
            cr_assert_geq (f->offset, sizeof (uint64_t), "%s.%s overlaps present", t->name, f->name);
            cr_assert_lt (f->offset, t->size);
            cr_assert_eq (f->kind == FS_T_ENUM, f->choices != NULL, "%s.%s choices", t->name, f->name);
            cr_assert_eq (f->kind == FS_T_MAP || f->kind == FS_T_MAPLIST, f->sub != NULL);
            cr_assert (f->min <= f->max, "%s.%s bounds", t->name, f->name);
        }
    }
    //  Generated indices agree with the descriptors
    cr_assert_eq (fs_ingest_subject_F_phone, fs_proto_field_index (&fs_ingest_subject_type, "phone"));
    cr_assert_eq (fs_envelope_wire_F_payload, fs_proto_field_index (&fs_envelope_wire_type, "payload"));
    cr_assert_eq (fs_ingest_event_F__COUNT, (int) fs_ingest_event_type.nfields);
    cr_assert_eq (fs_proto_field_index (&fs_ack_type, "nope"), -1);
    cr_assert_eq (fs_proto_field_index (&fs_ack_type, NULL), -1);
    cr_assert_eq (fs_ingest_subject_type.fields [fs_ingest_subject_F_address].sub,
                  &fs_ingest_address_type);
}

Test (fs_proto, catalogue_lookup)
{
    size_t n = 0;
    for (size_t i = 0; fs_proto_messages [i]; i++, n++) {
        const fs_type_t *t = fs_proto_messages [i];
        cr_assert_not_null (t->wire, "%s", t->name);
        cr_assert_eq (fs_proto_lookup (t->wire), t);
    }
    //  Every FS_MESSAGE is in the catalogue, and no FS_STRUCT
    size_t expected = 0;
    for (size_t d = 0; tk_all_types [d]; d++)
        expected += tk_all_types [d]->wire != NULL;
    cr_assert_eq (n, expected);
    cr_assert_geq (n, 6);
    cr_assert_eq (fs_proto_lookup ("intake.referral_requested"), &fs_referral_requested_type);
    cr_assert_null (fs_proto_lookup ("no.such_type"));
    cr_assert_null (fs_proto_lookup (""));
    cr_assert_null (fs_proto_lookup (NULL));
    cr_assert_null (fs_ingest_event_type.wire);
}

Test (fs_proto, roundtrip_every_definition)
{
    for (size_t d = 0; tk_all_types [d]; d++) {
        const fs_type_t *t = tk_all_types [d];
        for (int variant = TK_MIN; variant <= TK_MAX; variant++) {
            void *msg = calloc (1, t->size);
            tk_fill (t, msg, (tk_variant_t) variant);
            fs_proto_error_t err;
            cr_assert_eq (fs_proto_validate (t, msg, &err), 0, "%s: %s", t->name, err.message);
            cr_assert_eq (err.code, FS_PROTO_OK);
            char *bytes;
            size_t len;
            cr_assert_eq (fs_proto_encode (t, msg, &bytes, &len, &err), 0, "%s: %s",
                          t->name, err.message);
            void *back = calloc (1, t->size);
            cr_assert_eq (fs_proto_decode (t, bytes, len, back, &err), 0, "%s/%d: %s",
                          t->name, variant, err.message);
            cr_assert (tk_equal (t, msg, back), "%s/%d differs after decoding", t->name, variant);
            char *again;
            size_t again_len;
            cr_assert_eq (fs_proto_encode (t, back, &again, &again_len, &err), 0);
            cr_assert_eq (again_len, len, "%s", t->name);
            cr_assert_eq (memcmp (again, bytes, len), 0, "%s re-encodes differently", t->name);
            //  The same bytes through fs_proto_pack with a caller's packer
            msgpack_sbuffer sbuf;
            msgpack_sbuffer_init (&sbuf);
            msgpack_packer pk;
            msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
            fs_proto_pack (t, back, &pk);
            cr_assert_eq (sbuf.size, len);
            cr_assert_eq (memcmp (sbuf.data, bytes, len), 0);
            msgpack_sbuffer_destroy (&sbuf);
            free (again);
            free (bytes);
            fs_proto_clear (t, back);
            fs_proto_clear (t, msg);
            free (back);
            free (msg);
        }
    }
}

Test (fs_proto, pack_writes_present_fields_in_order_and_raw_verbatim)
{
    fs_ingest_event_t ev = { 0 };
    tk_fill (&fs_ingest_event_type, &ev, TK_MAX);
    char *bytes;
    size_t len;
    cr_assert_eq (fs_proto_encode (&fs_ingest_event_type, &ev, &bytes, &len, NULL), 0);
    //  The RAW value appears byte for byte
    bool found = false;
    for (size_t at = 0; at + ev.data.len <= len && !found; at++)
        found = memcmp (bytes + at, ev.data.data, ev.data.len) == 0;
    cr_assert (found);
    msgpack_unpacked u;
    msgpack_unpacked_init (&u);
    cr_assert_eq (msgpack_unpack_next (&u, bytes, len, NULL), MSGPACK_UNPACK_SUCCESS);
    cr_assert_eq (u.data.type, MSGPACK_OBJECT_MAP);
    cr_assert_eq (u.data.via.map.size, fs_ingest_event_type.nfields);
    for (size_t i = 0; i < fs_ingest_event_type.nfields; i++) {
        msgpack_object key = u.data.via.map.ptr [i].key;
        const char *name = fs_ingest_event_type.fields [i].name;
        cr_assert_eq (key.via.str.size, strlen (name));
        cr_assert_eq (memcmp (key.via.str.ptr, name, strlen (name)), 0);
    }
    msgpack_unpacked_destroy (&u);
    free (bytes);
    fs_proto_clear (&fs_ingest_event_type, &ev);

    //  Absent optional fields are not written at all
    fs_ack_t ack = { 0 };
    fs_proto_set_str (&fs_ack_type, &ack, "id", "0e9b1a3c-5d7f-4a2b-8c6d-1f3e5a7b9c0d");
    fs_proto_set_str (&fs_ack_type, &ack, "status", "applied");
    cr_assert_eq (fs_proto_encode (&fs_ack_type, &ack, &bytes, &len, NULL), 0);
    cr_assert_eq ((unsigned char) bytes [0], 0x82);        //  fixmap of 2
    free (bytes);
    fs_proto_clear (&fs_ack_type, &ack);
}

Test (fs_proto, setters_and_validate)
{
    fs_ev_eviction_scheduled_t ev = { 0 };
    const fs_type_t *t = &fs_ev_eviction_scheduled_type;
    fs_proto_error_t err;
    cr_assert_eq (fs_proto_validate (t, &ev, &err), FS_PROTO_MISSING_FIELD);
    cr_assert_str_eq (err.field, "eviction_date");
    fs_proto_set_str (t, &ev, "eviction_date", "2026-03-01");
    fs_proto_set_int (t, &ev, "household_size", 4);
    cr_assert (FS_PRESENT (&ev, fs_ev_eviction_scheduled_F_eviction_date));
    cr_assert (FS_PRESENT (&ev, fs_ev_eviction_scheduled_F_household_size));
    cr_assert_not (FS_PRESENT (&ev, fs_ev_eviction_scheduled_F_minors));
    cr_assert_eq (fs_proto_validate (t, &ev, &err), FS_PROTO_MISSING_FIELD);
    cr_assert_str_eq (err.field, "minors");
    cr_assert_str_eq (err.message, "minors: is required");
    fs_proto_set_int (t, &ev, "minors", 51);
    cr_assert_eq (fs_proto_validate (t, &ev, &err), FS_PROTO_INVALID_FIELD);
    cr_assert_str_eq (err.message, "minors: must be between 0 and 50");
    fs_proto_set_int (t, &ev, "minors", 2);
    cr_assert_eq (fs_proto_validate (t, &ev, &err), 0);
    cr_assert_eq (fs_proto_validate (t, &ev, NULL), 0);
    //  Setting a string again replaces it; NULL unsets it
    fs_proto_set_str (t, &ev, "eviction_date", "2023-02-29");
    cr_assert_eq (fs_proto_validate (t, &ev, &err), FS_PROTO_INVALID_FIELD);
    cr_assert_str_eq (err.message, "eviction_date: 2023-02-29 is not a calendar date");
    fs_proto_set_str (t, &ev, "eviction_date", NULL);
    cr_assert_not (FS_PRESENT (&ev, fs_ev_eviction_scheduled_F_eviction_date));
    cr_assert_null (ev.eviction_date);
    //  Encode refuses what validate refuses, and leaves no buffer behind
    char *bytes = (char *) &ev;
    size_t len = 99;
    cr_assert_eq (fs_proto_encode (t, &ev, &bytes, &len, &err), FS_PROTO_MISSING_FIELD);
    cr_assert_null (bytes);
    cr_assert_eq (len, 0);

    fs_ev_social_risk_detected_t risk = { 0 };
    fs_proto_set_str (&fs_ev_social_risk_detected_type, &risk, "suggested_level", "orientation");
    fs_proto_set_str (&fs_ev_social_risk_detected_type, &risk, "urgency", "urgent");
    //  A list set by hand: present bit, then the items
    risk.present |= 1u << fs_ev_social_risk_detected_F_icd10_codes;
    cr_assert_eq (fs_proto_validate (&fs_ev_social_risk_detected_type, &risk, &err),
                  FS_PROTO_INVALID_FIELD);
    cr_assert_str_eq (err.message, "icd10_codes: must have between 1 and 16 items");
    risk.icd10_codes.items = calloc (2, sizeof (char *));
    risk.icd10_codes.n = 2;
    risk.icd10_codes.items [0] = strdup ("Z59.0");
    cr_assert_eq (fs_proto_validate (&fs_ev_social_risk_detected_type, &risk, &err),
                  FS_PROTO_INVALID_FIELD);
    cr_assert_str_eq (err.field, "icd10_codes[1]");
    risk.icd10_codes.items [1] = strdup ("Z60.2");
    cr_assert_eq (fs_proto_validate (&fs_ev_social_risk_detected_type, &risk, &err), 0);
    fs_proto_clear (&fs_ev_social_risk_detected_type, &risk);
    fs_proto_clear (t, &ev);
}

Test (fs_proto, validate_nested_and_raw)
{
    fs_ingest_event_t ev = { 0 };
    tk_fill (&fs_ingest_event_type, &ev, TK_MIN);
    fs_proto_error_t err;
    fs_proto_set_str (&fs_ingest_address_type, &ev.subject.address, "postcode", NULL);
    cr_assert_eq (fs_proto_validate (&fs_ingest_event_type, &ev, &err), FS_PROTO_MISSING_FIELD);
    cr_assert_str_eq (err.field, "subject.address.postcode");
    fs_proto_set_str (&fs_ingest_address_type, &ev.subject.address, "postcode", "0800");
    cr_assert_eq (fs_proto_validate (&fs_ingest_event_type, &ev, &err), FS_PROTO_INVALID_FIELD);
    cr_assert_str_eq (err.message, "subject.address.postcode: must be exactly 5 bytes long");
    fs_proto_set_str (&fs_ingest_address_type, &ev.subject.address, "postcode", "08001");
    cr_assert_eq (fs_proto_validate (&fs_ingest_event_type, &ev, &err), 0);

    //  RAW must hold exactly one msgpack value
    char *saved = ev.data.data;
    size_t saved_len = ev.data.len;
    ev.data.data = "\x81\xa1k";                 //  map with a key and no value
    ev.data.len = 3;
    cr_assert_eq (fs_proto_validate (&fs_ingest_event_type, &ev, &err), FS_PROTO_INVALID_FIELD);
    cr_assert_str_eq (err.field, "data");
    ev.data.data = "\x01\x02";                  //  two values
    ev.data.len = 2;
    cr_assert_eq (fs_proto_validate (&fs_ingest_event_type, &ev, &err), FS_PROTO_INVALID_FIELD);
    ev.data.data = NULL;
    ev.data.len = 0;
    cr_assert_eq (fs_proto_validate (&fs_ingest_event_type, &ev, &err), FS_PROTO_MISSING_FIELD);
    cr_assert_str_eq (err.field, "data");
    //  Deep enough on its own, too deep once inside the event map
    char deep [FS_PROTO_MAX_DEPTH + 1];
    memset (deep, 0x91, FS_PROTO_MAX_DEPTH);    //  16 nested one-element arrays
    deep [FS_PROTO_MAX_DEPTH] = 0x00;
    cr_assert_eq (fs_proto_scan (deep, sizeof deep, FS_PROTO_MAX_DEPTH, NULL), 0);
    ev.data.data = deep;
    ev.data.len = sizeof deep;
    cr_assert_eq (fs_proto_validate (&fs_ingest_event_type, &ev, &err), FS_PROTO_INVALID_FIELD);
    ev.data.data = deep + 1;
    ev.data.len = sizeof deep - 1;
    cr_assert_eq (fs_proto_validate (&fs_ingest_event_type, &ev, &err), 0);
    ev.data.data = saved;
    ev.data.len = saved_len;
    fs_proto_clear (&fs_ingest_event_type, &ev);
}

Test (fs_proto, clear_is_idempotent)
{
    fs_ingest_event_t ev = { 0 };
    tk_fill (&fs_ingest_event_type, &ev, TK_MAX);
    fs_proto_clear (&fs_ingest_event_type, &ev);
    fs_ingest_event_t zero = { 0 };
    cr_assert_eq (memcmp (&ev, &zero, sizeof ev), 0);
    fs_proto_clear (&fs_ingest_event_type, &ev);
    fs_proto_clear (&fs_ingest_event_type, NULL);
}

//  ---- errors, each with its field path ------------------------------------

Test (fs_proto, missing_field_has_dotted_path)
{
    const fs_type_t *t = &fs_ingest_event_type;
    s_expect_edit (t, TK_MAX, "subject.address.postcode", TK_REMOVE, tk_nil (),
                   FS_PROTO_MISSING_FIELD, "subject.address.postcode");
    s_expect_edit (t, TK_MAX, "subject.birth_date", TK_REMOVE, tk_nil (),
                   FS_PROTO_MISSING_FIELD, "subject.birth_date");
    s_expect_edit (t, TK_MAX, "occurred_at", TK_REMOVE, tk_nil (),
                   FS_PROTO_MISSING_FIELD, "occurred_at");
    s_expect_edit (t, TK_MAX, "data", TK_REMOVE, tk_nil (), FS_PROTO_MISSING_FIELD, "data");
    //  Optional ones may go
    s_expect_edit (t, TK_MAX, "subject.phone", TK_REMOVE, tk_nil (), 0, "");
    s_expect_edit (t, TK_MAX, "subject.address.neighbourhood", TK_REMOVE, tk_nil (), 0, "");
    //  An empty nested map reports its first required field
    s_expect_edit (t, TK_MAX, "subject.address", TK_SET, tk_empty_map (),
                   FS_PROTO_MISSING_FIELD, "subject.address.street");
}

Test (fs_proto, every_required_field_of_every_definition)
{
    for (size_t d = 0; tk_all_types [d]; d++) {
        const fs_type_t *t = tk_all_types [d];
        for (size_t i = 0; i < t->nfields; i++) {
            const fs_field_t *f = &t->fields [i];
            s_expect_edit (t, TK_MAX, f->name, TK_REMOVE, tk_nil (),
                           f->required? FS_PROTO_MISSING_FIELD: 0, f->required? f->name: "");
        }
    }
}

//  Whether a msgpack value of this type is acceptable for the kind at all.
static bool
s_type_fits (fs_ftype_t kind, msgpack_object_type type)
{
    if (kind == FS_T_RAW)
        return true;
    if (tk_is_string_kind (kind))
        return type == MSGPACK_OBJECT_STR;
    if (kind == FS_T_INT)
        return type == MSGPACK_OBJECT_POSITIVE_INTEGER || type == MSGPACK_OBJECT_NEGATIVE_INTEGER;
    if (kind == FS_T_BOOL)
        return type == MSGPACK_OBJECT_BOOLEAN;
    if (kind == FS_T_MAP)
        return type == MSGPACK_OBJECT_MAP;
    return type == MSGPACK_OBJECT_ARRAY;
}

Test (fs_proto, wrong_type_for_every_field)
{
    msgpack_object wrong [] = {
        tk_nil (), tk_bool (true), tk_int (7), tk_int (-7), tk_float (1.5), tk_str ("s"),
        tk_bin ("b", 1), tk_empty_array (), tk_empty_map (), tk_ext ()
    };
    int checked = 0;
    for (size_t d = 0; tk_all_types [d]; d++) {
        const fs_type_t *t = tk_all_types [d];
        for (size_t i = 0; i < t->nfields; i++) {
            const fs_field_t *f = &t->fields [i];
            for (size_t w = 0; w < sizeof wrong / sizeof wrong [0]; w++) {
                //  nil means "no value": nil_is_absent checks it
                if (s_type_fits (f->kind, wrong [w].type) || wrong [w].type == MSGPACK_OBJECT_NIL)
                    continue;
                s_expect_edit (t, TK_MAX, f->name, TK_SET, wrong [w], FS_PROTO_INVALID_FIELD, f->name);
                checked++;
            }
        }
    }
    cr_assert_gt (checked, 300);
    //  RAW takes anything but nil (no value)
    for (size_t w = 1; w < sizeof wrong / sizeof wrong [0]; w++)
        s_expect_edit (&fs_ingest_event_type, TK_MAX, "data", TK_SET, wrong [w], 0, "");
}

//  Publishers in Python/JavaScript send None/null for "no value": nil makes an optional
//  field absent and a required one missing, in every definition, nested too
Test (fs_proto, nil_is_absent)
{
    int optional = 0;
    for (size_t d = 0; tk_all_types [d]; d++) {
        const fs_type_t *t = tk_all_types [d];
        for (size_t i = 0; i < t->nfields; i++) {
            const fs_field_t *f = &t->fields [i];
            s_expect_edit (t, TK_MAX, f->name, TK_SET, tk_nil (),
                           f->required? FS_PROTO_MISSING_FIELD: 0, f->required? f->name: "");
            optional += !f->required;
        }
    }
    cr_assert_gt (optional, 10);
    const fs_type_t *t = &fs_ingest_event_type;
    s_expect_edit (t, TK_MAX, "subject.phone", TK_SET, tk_nil (), 0, "");
    s_expect_edit (t, TK_MAX, "subject.address.neighbourhood", TK_SET, tk_nil (), 0, "");
    s_expect_edit (t, TK_MAX, "subject.address.postcode", TK_SET, tk_nil (),
                   FS_PROTO_MISSING_FIELD, "subject.address.postcode");
    s_expect_edit (t, TK_MAX, "data", TK_SET, tk_nil (), FS_PROTO_MISSING_FIELD, "data");
    //  The decoded optional field is absent, not present-and-empty
    char *data;
    size_t len;
    tk_sample_bytes (t, TK_MAX, &data, &len);
    size_t elen;
    char *edited = tk_edit (data, len, "subject.phone", TK_SET, tk_nil (), &elen);
    fs_ingest_event_t event = { 0 };
    cr_assert_eq (fs_proto_decode (t, edited, elen, &event, NULL), 0);
    cr_assert_not (FS_PRESENT (&event.subject, fs_ingest_subject_F_phone));
    cr_assert_null (event.subject.phone);
    fs_proto_clear (t, &event);
    free (edited);
    free (data);
}

Test (fs_proto, wrong_type_messages_are_readable)
{
    char message [256];
    s_edit_message (&fs_ev_eviction_scheduled_type, "household_size", tk_float (2.0),
                    message, sizeof message);
    cr_assert_str_eq (message, "household_size: expected an integer");
    s_edit_message (&fs_ingest_subject_type, "birth_date", tk_int (19800101), message, sizeof message);
    cr_assert_str_eq (message, "birth_date: expected a date YYYY-MM-DD");
    s_edit_message (&fs_ingest_subject_type, "birth_date", tk_str ("01/02/1980"), message, sizeof message);
    cr_assert_str_eq (message, "birth_date: expected a date YYYY-MM-DD");
    s_edit_message (&fs_ev_eviction_scheduled_type, "household_size", tk_int (0), message, sizeof message);
    cr_assert_str_eq (message, "household_size: must be between 1 and 50");
    s_edit_message (&fs_ack_type, "status", tk_str ("done"), message, sizeof message);
    cr_assert_str_eq (message, "status: must be one of: applied, duplicate, rejected");
    s_edit_message (&fs_ingest_event_type, "subject", tk_str ("x"), message, sizeof message);
    cr_assert_str_eq (message, "subject: expected a map");
    //  A string where the contract wants a string is not enough: bin is refused
    s_edit_message (&fs_ingest_subject_type, "given_name", tk_bin ("Ana", 3), message, sizeof message);
    cr_assert_str_eq (message, "given_name: expected a string");
}

Test (fs_proto, ints)
{
    const fs_type_t *t = &fs_ev_eviction_scheduled_type;
    s_expect_edit (t, TK_MAX, "household_size", TK_SET, tk_uint (UINT64_MAX), FS_PROTO_INVALID_FIELD, "household_size");
    s_expect_edit (t, TK_MAX, "household_size", TK_SET, tk_uint ((uint64_t) INT64_MAX + 1), FS_PROTO_INVALID_FIELD, "household_size");
    s_expect_edit (t, TK_MAX, "minors", TK_SET, tk_int (-1), FS_PROTO_INVALID_FIELD, "minors");
    s_expect_edit (t, TK_MAX, "minors", TK_SET, tk_int (INT64_MIN), FS_PROTO_INVALID_FIELD, "minors");
    s_expect_edit (t, TK_MAX, "minors", TK_SET, tk_int (0), 0, "");
    //  A big integer in a wide encoding still reads as the number it is
    const char wide [] = "\x83\xad" "eviction_date\xaa" "2026-01-31\xaehousehold_size\xcf\0\0\0\0\0\0\0\x03"
                         "\xa6minors\xd3\0\0\0\0\0\0\0\x01";
    fs_ev_eviction_scheduled_t ev;
    cr_assert_eq (fs_proto_decode (t, wide, sizeof wide - 1, &ev, NULL), 0);
    cr_assert_eq (ev.household_size, 3);
    cr_assert_eq (ev.minors, 1);
    fs_proto_clear (t, &ev);
}

//  Bounds of every bounded field, at min-1, min, max, max+1.
Test (fs_proto, bounds_at_the_edges_for_every_field)
{
    int checked = 0;
    for (size_t d = 0; tk_all_types [d]; d++) {
        const fs_type_t *t = tk_all_types [d];
        for (size_t i = 0; i < t->nfields; i++) {
            const fs_field_t *f = &t->fields [i];
            if (!(f->min || f->max))
                continue;
            //  An edge past INT64's range cannot be sent: skip it (computing it overflows)
            int64_t edges [4] = { f->min == INT64_MIN? 0: f->min - 1, f->min, f->max,
                                  f->max == INT64_MAX? 0: f->max + 1 };
            for (int e = 0; e < 4; e++) {
                if ((e == 0 && f->min == INT64_MIN) || (e == 3 && f->max == INT64_MAX))
                    continue;
                int64_t v = edges [e];
                int want = (e == 1 || e == 2)? 0: FS_PROTO_INVALID_FIELD;
                const char *field = want? f->name: "";
                if (f->kind == FS_T_INT)
                    s_expect_edit (t, TK_MAX, f->name, TK_SET, tk_int (v), want, field);
                else
                if (f->kind == FS_T_STR && v >= 0) {
                    char *text = tk_text ((size_t) v, true);
                    s_expect_edit (t, TK_MAX, f->name, TK_SET, tk_str (text), want, field);
                    free (text);
                }
                else
                if (f->kind == FS_T_STRLIST && v >= 0) {
                    msgpack_object *items = calloc ((size_t) v + 1, sizeof *items);
                    for (int64_t k = 0; k < v; k++)
                        items [k] = tk_str ("Z59.0");
                    s_expect_edit (t, TK_MAX, f->name, TK_SET, tk_array (items, (size_t) v), want, field);
                    free (items);
                }
                else
                    continue;
                checked++;
            }
        }
    }
    cr_assert_gt (checked, 80);
}

Test (fs_proto, strlist_items)
{
    const fs_type_t *t = &fs_ev_social_risk_detected_type;
    msgpack_object items [3] = { tk_str ("Z59.0"), tk_str (""), tk_str ("Z60") };
    s_expect_edit (t, TK_MAX, "icd10_codes", TK_SET, tk_array (items, 3), FS_PROTO_INVALID_FIELD, "icd10_codes[1]");
    char *long_item = tk_text (257, false);
    items [1] = tk_str (long_item);
    s_expect_edit (t, TK_MAX, "icd10_codes", TK_SET, tk_array (items, 3), FS_PROTO_INVALID_FIELD, "icd10_codes[1]");
    free (long_item);
    char *max_item = tk_text (256, true);
    items [1] = tk_str (max_item);
    s_expect_edit (t, TK_MAX, "icd10_codes", TK_SET, tk_array (items, 3), 0, "");
    items [2] = tk_int (3);
    s_expect_edit (t, TK_MAX, "icd10_codes", TK_SET, tk_array (items, 3), FS_PROTO_INVALID_FIELD, "icd10_codes[2]");
    items [2] = tk_strn ("Z5\0", 3);
    s_expect_edit (t, TK_MAX, "icd10_codes", TK_SET, tk_array (items, 3), FS_PROTO_INVALID_FIELD, "icd10_codes[2]");
    items [2] = tk_strn ("Z\xff", 2);
    s_expect_edit (t, TK_MAX, "icd10_codes", TK_SET, tk_array (items, 3), FS_PROTO_INVALID_FIELD, "icd10_codes[2]");
    free (max_item);
}

Test (fs_proto, dates)
{
    const char *good [] = { "2024-02-29", "2000-02-29", "1999-12-31", "2026-01-01", "0001-01-01" };
    const char *bad [] = {
        "2023-02-29", "1900-02-29", "2023-02-30", "2023-04-31", "2023-13-01", "2023-00-10",
        "2023-01-00", "2023-01-32", "2023-1-01", "23-01-01", "2023/01/01", "2023-01-01T00:00:00Z",
        "2023-01-0a", " 2023-01-01", "2023-01-01 ", "", "+023-01-01", "2023-01--1"
    };
    for (size_t i = 0; i < sizeof good / sizeof good [0]; i++)
        s_expect_edit (&fs_ingest_subject_type, TK_MAX, "birth_date", TK_SET, tk_str (good [i]), 0, "");
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++)
        s_expect_edit (&fs_ingest_subject_type, TK_MAX, "birth_date", TK_SET, tk_str (bad [i]),
                       FS_PROTO_INVALID_FIELD, "birth_date");
    char message [256];
    s_edit_message (&fs_ingest_subject_type, "birth_date", tk_str ("2023-02-29"), message, sizeof message);
    cr_assert_str_eq (message, "birth_date: 2023-02-29 is not a calendar date");
}

Test (fs_proto, times)
{
    const char *good [] = {
        "2026-11-22T07:32:36Z", "2026-11-22T07:32:36.1Z", "2026-11-22t07:32:36.123456789z",
        "2026-11-22T07:32:36+01:00", "2026-11-22T07:32:36.5-05:30", "2016-12-31T23:59:60Z"
    };
    const char *bad [] = {
        "2026-11-22", "2026-11-22T07:32Z", "2026-11-22T07:32:36", "2026-11-22T24:00:00Z",
        "2026-11-22T07:60:00Z", "2026-11-22T07:32:61Z", "2026-11-22T07:32:36.Z",
        "2026-11-22T07:32:36.1234567890Z", "2026-11-22T07:32:36+0100", "2026-11-22T07:32:36+24:00",
        "2026-02-30T07:32:36Z", "2026-11-22 07:32:36Z", "2026-11-22T07:32:36ZZ", "x"
    };
    for (size_t i = 0; i < sizeof good / sizeof good [0]; i++)
        s_expect_edit (&fs_ingest_event_type, TK_MAX, "occurred_at", TK_SET, tk_str (good [i]), 0, "");
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++)
        s_expect_edit (&fs_ingest_event_type, TK_MAX, "occurred_at", TK_SET, tk_str (bad [i]),
                       FS_PROTO_INVALID_FIELD, "occurred_at");
}

Test (fs_proto, uuids_and_enums)
{
    const fs_type_t *t = &fs_referral_status_changed_type;
    s_expect_edit (t, TK_MAX, "referral_id", TK_SET, tk_str ("0e9b1a3c-5d7f-4a2b-8c6d-1f3e5a7b9c0d"), 0, "");
    s_expect_edit (t, TK_MAX, "referral_id", TK_SET, tk_str ("0E9B1A3C-5D7F-4A2B-8C6D-1F3E5A7B9C0D"), 0, "");
    const char *bad [] = {
        "0e9b1a3c5d7f4a2b8c6d1f3e5a7b9c0d", "0e9b1a3c-5d7f-4a2b-8c6d-1f3e5a7b9c0", "",
        "0e9b1a3c-5d7f-4a2b-8c6d-1f3e5a7b9c0dd", "0e9b1a3c-5d7f-4a2b-8c6d_1f3e5a7b9c0d",
        "0g9b1a3c-5d7f-4a2b-8c6d-1f3e5a7b9c0d", "{e9b1a3c-5d7f-4a2b-8c6d-1f3e5a7b9c0}"
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++)
        s_expect_edit (t, TK_MAX, "referral_id", TK_SET, tk_str (bad [i]), FS_PROTO_INVALID_FIELD, "referral_id");
    //  Enums match exactly: no case folding, no prefixes, no empty choice
    s_expect_edit (t, TK_MAX, "status", TK_SET, tk_str ("in-progress"), 0, "");
    s_expect_edit (t, TK_MAX, "status", TK_SET, tk_str ("draft"), 0, "");
    const char *bad_enum [] = { "Draft", "in-progres", "in-progressx", "", "draft|requested", "|" };
    for (size_t i = 0; i < sizeof bad_enum / sizeof bad_enum [0]; i++)
        s_expect_edit (t, TK_MAX, "status", TK_SET, tk_str (bad_enum [i]), FS_PROTO_INVALID_FIELD, "status");
}

Test (fs_proto, strings_must_be_utf8_without_nul)
{
    const fs_type_t *t = &fs_ingest_subject_type;
    const char *bad [] = {
        "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xf8\x88\x80\x80\x80",
        "Ana\xc3", "Ana\x80", "\xfe", "\xe2\x82"
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++)
        s_expect_edit (t, TK_MAX, "given_name", TK_SET, tk_str (bad [i]), FS_PROTO_INVALID_FIELD, "given_name");
    s_expect_edit (t, TK_MAX, "given_name", TK_SET, tk_strn ("An\0a", 4), FS_PROTO_INVALID_FIELD, "given_name");
    s_expect_edit (t, TK_MAX, "given_name", TK_SET, tk_strn ("\0", 1), FS_PROTO_INVALID_FIELD, "given_name");
    s_expect_edit (t, TK_MAX, "birth_date", TK_SET, tk_strn ("2024-02-29\0x", 12), FS_PROTO_INVALID_FIELD, "birth_date");
    const char *good [] = { "Núria", "Ñ", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xef\xbf\xbf", "\xf4\x8f\xbf\xbf" };
    for (size_t i = 0; i < sizeof good / sizeof good [0]; i++)
        s_expect_edit (t, TK_MAX, "given_name", TK_SET, tk_str (good [i]), 0, "");
    char message [256];
    s_edit_message (t, "given_name", tk_strn ("a\0b", 3), message, sizeof message);
    cr_assert_str_eq (message, "given_name: must not contain a NUL byte");
}

Test (fs_proto, duplicate_keys)
{
    s_expect_edit (&fs_ingest_event_type, TK_MAX, "subject.given_name", TK_DUP, tk_nil (),
                   FS_PROTO_INVALID_FIELD, "subject.given_name");
    s_expect_edit (&fs_ingest_event_type, TK_MAX, "v", TK_DUP, tk_nil (), FS_PROTO_INVALID_FIELD, "v");
    s_expect_edit (&fs_ingest_event_type, TK_MIN, "subject.address", TK_DUP, tk_nil (),
                   FS_PROTO_INVALID_FIELD, "subject.address");
}

Test (fs_proto, unknown_keys_are_ignored)
{
    char *data;
    size_t len;
    tk_sample_bytes (&fs_ingest_event_type, TK_MAX, &data, &len);
    size_t l1, l2, l3;
    char *e1 = tk_edit (data, len, "x_future", TK_SET, tk_str ("later"), &l1);
    char *e2 = tk_edit (e1, l1, "subject.x_nested", TK_SET, tk_int (5), &l2);
    char *e3 = tk_edit (e2, l2, "subject.address.x", TK_SET, tk_empty_array (), &l3);
    fs_ingest_event_t ev;
    fs_proto_error_t err;
    cr_assert_eq (fs_proto_decode (&fs_ingest_event_type, e3, l3, &ev, &err), 0, "%s", err.message);
    char *again;
    size_t again_len;
    cr_assert_eq (fs_proto_encode (&fs_ingest_event_type, &ev, &again, &again_len, NULL), 0);
    //  Re-encoding drops them: the bytes are the original sample's
    cr_assert_eq (again_len, len);
    cr_assert_eq (memcmp (again, data, len), 0);
    fs_proto_clear (&fs_ingest_event_type, &ev);
    free (again);
    free (e1);
    free (e2);
    free (e3);
    free (data);
    //  A key that is almost a field's name is unknown, not that field
    s_expect_edit (&fs_ack_type, TK_MIN, "statu", TK_SET, tk_int (1), 0, "");
    s_expect_edit (&fs_ack_type, TK_MIN, "Status", TK_SET, tk_int (1), 0, "");
    s_expect_edit (&fs_ack_type, TK_MIN, "status_", TK_SET, tk_int (1), 0, "");
}

Test (fs_proto, malformed_inputs)
{
    const fs_type_t *t = &fs_ack_type;
    s_expect (t, "", 0, FS_PROTO_MALFORMED, "");
    s_expect (t, NULL, 0, FS_PROTO_MALFORMED, "");
    s_expect (t, "\xc1", 1, FS_PROTO_MALFORMED, "");
    s_expect (t, "\x01", 1, FS_PROTO_MALFORMED, "");            //  not a map
    s_expect (t, "\x90", 1, FS_PROTO_MALFORMED, "");            //  an array
    s_expect (t, "\xa3" "abc", 4, FS_PROTO_MALFORMED, "");
    s_expect (t, "\x80\x80", 2, FS_PROTO_MALFORMED, "");        //  trailing bytes
    s_expect (t, "\x81\x01\x02", 3, FS_PROTO_MALFORMED, "");    //  integer key
    s_expect (t, "\x81\xc0\x02", 3, FS_PROTO_MALFORMED, "");    //  nil key
    s_expect (t, "\x80", 1, FS_PROTO_MISSING_FIELD, "id");
    //  A nested value that is not a map is that field's problem
    s_expect_edit (&fs_ingest_event_type, TK_MAX, "subject", TK_SET,
                   tk_array (NULL, 0), FS_PROTO_INVALID_FIELD, "subject");

    char *data;
    size_t len;
    tk_sample_bytes (&fs_ingest_event_type, TK_MAX, &data, &len);
    char *longer = malloc (len + 1);
    memcpy (longer, data, len);
    longer [len] = 0x00;
    s_expect (&fs_ingest_event_type, longer, len + 1, FS_PROTO_MALFORMED, "");
    fs_proto_error_t err;
    cr_assert_eq (fs_proto_scan (longer, len + 1, FS_PROTO_MAX_DEPTH, &err), FS_PROTO_MALFORMED);
    cr_assert (strstr (err.message, "trailing"), "%s", err.message);
    free (longer);
    free (data);
}

Test (fs_proto, nested_key_not_string)
{
    //  {"subject": {1: 2}} inside an otherwise complete event
    char *data;
    size_t len;
    tk_sample_bytes (&fs_ingest_event_type, TK_MAX, &data, &len);
    msgpack_object_kv kv = { .key = tk_int (1), .val = tk_int (2) };
    msgpack_object map = { .type = MSGPACK_OBJECT_MAP };
    map.via.map.ptr = &kv;
    map.via.map.size = 1;
    size_t elen;
    char *edited = tk_edit (data, len, "subject", TK_SET, map, &elen);
    s_expect (&fs_ingest_event_type, edited, elen, FS_PROTO_INVALID_FIELD, "subject");
    free (edited);
    free (data);
}

//  Every cut is quadratic in a message's size (the largest samples are tens of KiB): under
//  valgrind that took 5 minutes. There (vgpreload in LD_PRELOAD) every cut near either end and
//  every 61st between; the normal and ASan builds still try every cut.
static size_t
s_next_cut (size_t cut, size_t len, bool sampled)
{
    if (!sampled || cut < 512 || cut + 512 >= len)
        return cut + 1;
    return cut + 61 < len - 512? cut + 61: len - 512;
}

Test (fs_proto, every_truncation_is_rejected)
{
    const char *preload = getenv ("LD_PRELOAD");
    bool sampled = preload && strstr (preload, "vgpreload");
    for (size_t d = 0; tk_all_types [d]; d++) {
        const fs_type_t *t = tk_all_types [d];
        char *data;
        size_t len;
        tk_sample_bytes (t, TK_MAX, &data, &len);
        for (size_t cut = 0; cut < len; cut = s_next_cut (cut, len, sampled)) {
            //  A heap copy of exactly `cut` bytes, so reading past it is caught
            char *prefix = malloc (cut? cut: 1);
            memcpy (prefix, data, cut);
            s_expect (t, prefix, cut, FS_PROTO_MALFORMED, "");
            free (prefix);
        }
        s_expect (t, data, len, 0, "");
        free (data);
    }
}

Test (fs_proto, too_deep)
{
    //  1000 nested arrays, and 1000 nested maps
    size_t n = 1000;
    char *deep = malloc (n + 1);
    memset (deep, 0x91, n);
    deep [n] = 0x00;
    s_expect (&fs_ack_type, deep, n + 1, FS_PROTO_TOO_DEEP, "");
    free (deep);
    char *maps = malloc (3 * n + 1);
    for (size_t i = 0; i < n; i++)
        memcpy (maps + 3 * i, "\x81\xa1" "a", 3);
    maps [3 * n] = 0x00;
    s_expect (&fs_ack_type, maps, 3 * n + 1, FS_PROTO_TOO_DEEP, "");
    fs_proto_error_t err;
    cr_assert_eq (fs_proto_scan (maps, 3 * n + 1, FS_PROTO_MAX_DEPTH, &err), FS_PROTO_TOO_DEEP);
    cr_assert_str_eq (fs_proto_code_name (err.code), "too_deep");
    //  Exactly the limit passes the scan, one more does not
    cr_assert_eq (fs_proto_scan (maps + 3 * (n - 16), 3 * 16 + 1, 16, NULL), 0);
    cr_assert_eq (fs_proto_scan (maps + 3 * (n - 17), 3 * 17 + 1, 16, NULL), FS_PROTO_TOO_DEEP);
    cr_assert_eq (fs_proto_scan (maps, 3 * n + 1, 100000, NULL), FS_PROTO_TOO_DEEP);   //  clamped
    cr_assert_eq (fs_proto_scan ("\x01", 1, 0, NULL), 0);
    cr_assert_eq (fs_proto_scan ("\x90", 1, 0, NULL), FS_PROTO_TOO_DEEP);
    cr_assert_eq (fs_proto_scan ("\x90", 1, -3, NULL), FS_PROTO_TOO_DEEP);
    free (maps);

    //  Deep inside a RAW field of a valid event
    char *data;
    size_t len;
    tk_sample_bytes (&fs_ingest_event_type, TK_MIN, &data, &len);
    msgpack_object *chain = calloc (n, sizeof *chain);
    for (size_t i = 0; i + 1 < n; i++)
        chain [i] = tk_array (&chain [i + 1], 1);
    chain [n - 1] = tk_int (1);
    //  Packing 1000 levels is msgpack-c's business; the decoder must say too_deep
    size_t elen;
    char *edited = tk_edit (data, len, "data", TK_SET, chain [n - 40], &elen);
    s_expect (&fs_ingest_event_type, edited, elen, FS_PROTO_TOO_DEEP, "");
    free (edited);
    free (chain);
    free (data);
}

Test (fs_proto, lying_lengths_and_counts)
{
    struct { const char *bytes; size_t len; } lies [] = {
        { "\xdd\xff\xff\xff\xff", 5 },              //  array32 of 4 billion
        { "\xdf\xff\xff\xff\xff", 5 },              //  map32
        { "\xdb\xff\xff\xff\xff", 5 },              //  str32
        { "\xc6\xff\xff\xff\xff", 5 },              //  bin32
        { "\xc9\xff\xff\xff\xff\x01", 6 },          //  ext32
        { "\xdc\xff\xff", 3 },                      //  array16
        { "\xde\xff\xff\x01", 4 },                  //  map16
        { "\xda\x00\x05" "abcd", 7 },               //  str16 one byte short
        { "\x93\x01\x02", 3 },                      //  fixarray one element short
        { "\x82\x01\x02\x03", 4 },                  //  fixmap one value short
        { "\xd8\x01" "0123456789abcde", 17 },       //  fixext16 one byte short
        { "\xcb\x00\x00\x00", 4 },                  //  float64 cut
        { "\xdd\xff\xff", 3 },                      //  the length itself cut
        { "\xd9", 1 },
    };
    for (size_t i = 0; i < sizeof lies / sizeof lies [0]; i++) {
        fs_proto_error_t err;
        cr_assert_eq (fs_proto_scan (lies [i].bytes, lies [i].len, FS_PROTO_MAX_DEPTH, &err),
                      FS_PROTO_MALFORMED, "case %zu", i);
        //  Refused on the declaration itself, before walking (or anyone sizing) elements
        if (i < 10)
            cr_assert (strstr (err.message, "declares"), "case %zu: %s", i, err.message);
        s_expect (&fs_ack_type, lies [i].bytes, lies [i].len, FS_PROTO_MALFORMED, "");
    }
    //  A map whose value declares 4 billion elements
    const char inner [] = "\x82\xa2id\xdd\xff\xff\xff\xff\xa6status\xa7" "applied";
    s_expect (&fs_ack_type, inner, sizeof inner - 1, FS_PROTO_MALFORMED, "");
    //  A count that fits the bytes is fine, even when they are all tiny
    char ok [1 + 2 + 300];
    ok [0] = (char) 0xdc;
    ok [1] = 0x01;
    ok [2] = 0x2c;
    memset (ok + 3, 0x00, 300);
    cr_assert_eq (fs_proto_scan (ok, sizeof ok, 4, NULL), 0);
    cr_assert_eq (fs_proto_scan (ok, sizeof ok - 1, 4, NULL), FS_PROTO_MALFORMED);
}

Test (fs_proto, scan_accepts_every_msgpack_type)
{
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    char big [70000];
    memset (big, 'x', sizeof big);
    msgpack_pack_array (&pk, 30);
    msgpack_pack_nil (&pk);
    msgpack_pack_true (&pk);
    msgpack_pack_false (&pk);
    msgpack_pack_int (&pk, 5);
    msgpack_pack_int (&pk, -5);
    msgpack_pack_uint8 (&pk, 200);
    msgpack_pack_uint16 (&pk, 60000);
    msgpack_pack_uint32 (&pk, 4000000000u);
    msgpack_pack_uint64 (&pk, UINT64_MAX);
    msgpack_pack_int8 (&pk, -100);
    msgpack_pack_int16 (&pk, -30000);
    msgpack_pack_int32 (&pk, -2000000000);
    msgpack_pack_int64 (&pk, INT64_MIN);
    msgpack_pack_float (&pk, 1.5f);
    msgpack_pack_double (&pk, 2.5);
    msgpack_pack_str_with_body (&pk, big, 31);
    msgpack_pack_str_with_body (&pk, big, 200);
    msgpack_pack_str_with_body (&pk, big, 300);
    msgpack_pack_str_with_body (&pk, big, 66000);
    msgpack_pack_bin_with_body (&pk, big, 10);
    msgpack_pack_bin_with_body (&pk, big, 300);
    msgpack_pack_bin_with_body (&pk, big, 66000);
    msgpack_pack_ext_with_body (&pk, big, 1, 1);
    msgpack_pack_ext_with_body (&pk, big, 16, 1);
    msgpack_pack_ext_with_body (&pk, big, 3, 1);
    msgpack_pack_ext_with_body (&pk, big, 300, 1);
    msgpack_pack_ext_with_body (&pk, big, 66000, 1);
    msgpack_pack_array (&pk, 20);
    for (int i = 0; i < 20; i++)
        msgpack_pack_int (&pk, i);
    msgpack_pack_map (&pk, 20);
    for (int i = 0; i < 20; i++) {
        msgpack_pack_int (&pk, i);
        msgpack_pack_map (&pk, 0);
    }
    msgpack_pack_array (&pk, 0);
    fs_proto_error_t err;
    cr_assert_eq (fs_proto_scan (sbuf.data, sbuf.size, 4, &err), 0, "%s", err.message);
    cr_assert_eq (err.code, FS_PROTO_OK);
    cr_assert_str_eq (err.message, "");
    //  And every prefix of it is refused
    for (size_t cut = 0; cut < sbuf.size; cut += 97)
        cr_assert_eq (fs_proto_scan (sbuf.data, cut, 4, NULL), FS_PROTO_MALFORMED);
    msgpack_sbuffer_destroy (&sbuf);
}

//  ---- hostile bytes at volume ----------------------------------------------

Test (fs_proto, random_bytes_never_crash)
{
    uint64_t state = 0x9e3779b97f4a7c15ULL;
    unsigned char buf [64];
    int decoded = 0;
    for (int i = 0; i < 20000; i++) {
        size_t len = (size_t) (tk_rand (&state) % sizeof buf);
        for (size_t k = 0; k < len; k++)
            buf [k] = (unsigned char) tk_rand (&state);
        //  Half start like a small map, to get past the first check
        if (len && (i & 1))
            buf [0] = (unsigned char) (0x80 | (buf [0] & 0x0f));
        char *copy = malloc (len? len: 1);
        memcpy (copy, buf, len);
        const fs_type_t *t = tk_all_types [(size_t) i % 4];
        if (s_decode_roundtrip (t, copy, len) == 0)
            decoded++;
        fs_proto_scan (copy, len, FS_PROTO_MAX_DEPTH, NULL);
        free (copy);
    }
    //  Random bytes almost never form a valid message; a few empty maps may
    cr_assert_lt (decoded, 2000);
}

Test (fs_proto, mutations_of_valid_messages)
{
    uint64_t state = 12345;
    static const unsigned char specials [] = {
        0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc7,
        0xca, 0xcb, 0xcf, 0xd3, 0xd4, 0xd8, 0xd9, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xff
    };
    int still_valid = 0, total = 0;
    for (size_t d = 0; tk_all_types [d]; d++) {
        const fs_type_t *t = tk_all_types [d];
        for (int variant = TK_MIN; variant <= TK_MAX; variant++) {
            char *data;
            size_t len;
            tk_sample_bytes (t, (tk_variant_t) variant, &data, &len);
            for (int m = 0; m < 1200; m++) {
                char *copy = malloc (len + 8);
                memcpy (copy, data, len);
                size_t clen = len;
                int edits = 1 + (int) (tk_rand (&state) % 3);
                for (int e = 0; e < edits && clen > 0; e++) {
                    size_t at = (size_t) (tk_rand (&state) % clen);
                    switch (tk_rand (&state) % 5) {
                        case 0: copy [at] ^= (char) (1u << (tk_rand (&state) % 8)); break;
                        case 1: copy [at] = (char) specials [tk_rand (&state) % sizeof specials]; break;
                        case 2: copy [at] = (char) tk_rand (&state); break;
                        case 3:     //  delete a byte
                            memmove (copy + at, copy + at + 1, clen - at - 1);
                            clen--;
                            break;
                        case 4:     //  insert a byte
                            memmove (copy + at + 1, copy + at, clen - at);
                            copy [at] = (char) specials [tk_rand (&state) % sizeof specials];
                            clen++;
                            break;
                    }
                }
                char *exact = malloc (clen? clen: 1);
                memcpy (exact, copy, clen);
                free (copy);
                if (s_decode_roundtrip (t, exact, clen) == 0)
                    still_valid++;
                total++;
                free (exact);
            }
            free (data);
        }
    }
    //  Both outcomes happen, so both paths were exercised
    cr_assert_gt (still_valid, 0);
    cr_assert_lt (still_valid, total);
}

Test (fs_proto, decode_object_reports_path_prefix)
{
    char *data;
    size_t len;
    tk_sample_bytes (&fs_ingest_address_type, TK_MIN, &data, &len);
    size_t elen;
    char *edited = tk_edit (data, len, "postcode", TK_SET, tk_str ("1234"), &elen);
    msgpack_unpacked u;
    msgpack_unpacked_init (&u);
    cr_assert_eq (msgpack_unpack_next (&u, edited, elen, NULL), MSGPACK_UNPACK_SUCCESS);
    fs_ingest_address_t addr;
    fs_proto_error_t err;
    cr_assert_eq (fs_proto_decode_object (&fs_ingest_address_type, &u.data, &addr, "home", &err),
                  FS_PROTO_INVALID_FIELD);
    cr_assert_str_eq (err.field, "home.postcode");
    cr_assert_str_eq (err.message, "home.postcode: must be exactly 5 bytes long");
    msgpack_object not_map = tk_int (3);
    cr_assert_eq (fs_proto_decode_object (&fs_ingest_address_type, &not_map, &addr, "home", &err),
                  FS_PROTO_INVALID_FIELD);
    cr_assert_str_eq (err.field, "home");
    cr_assert_eq (fs_proto_decode_object (&fs_ingest_address_type, &not_map, &addr, NULL, &err),
                  FS_PROTO_MALFORMED);
    msgpack_unpacked_destroy (&u);
    free (edited);
    free (data);
}

//  Setters name fields in code; a wrong name or kind stops the process, even in release
//  builds. Not checked under valgrind: an aborted process leaves Criterion's own buffers
//  behind, which valgrind reports as leaks of the test.
static bool
s_under_valgrind (void)
{
    const char *preload = getenv ("LD_PRELOAD");
    return preload && strstr (preload, "vgpreload");
}

//  Runs fn in a forked process and tells whether it died of SIGABRT.
static bool
s_aborts (void (*fn) (void))
{
    pid_t pid = fork ();
    cr_assert_geq (pid, 0);
    if (pid == 0) {
        fn ();
        _exit (0);
    }
    int status;
    cr_assert_eq (waitpid (pid, &status, 0), pid);
    return WIFSIGNALED (status) && WTERMSIG (status) == SIGABRT;
}

static void
s_set_unknown_name (void)
{
    fs_ack_t ack = { 0 };
    fs_proto_set_str (&fs_ack_type, &ack, "no_such_field", "x");
}

static void
s_set_wrong_kind (void)
{
    fs_ev_eviction_scheduled_t ev = { 0 };
    fs_proto_set_str (&fs_ev_eviction_scheduled_type, &ev, "minors", "2");
}

static void
s_set_right (void)
{
    fs_ack_t ack = { 0 };
    fs_proto_set_str (&fs_ack_type, &ack, "status", "applied");
    fs_proto_clear (&fs_ack_type, &ack);
}

Test (fs_proto, setters_abort_on_programmer_errors)
{
    //  (cr_skip_test would leave the same buffers behind, so the check is just left out)
    if (s_under_valgrind ())
        return;
    cr_assert (s_aborts (s_set_unknown_name));
    cr_assert (s_aborts (s_set_wrong_kind));
    cr_assert_not (s_aborts (s_set_right));
}

Test (fs_proto, unpack_for_a_look_before_decoding)
{
    char *data;
    size_t len;
    tk_sample_bytes (&fs_ack_type, TK_MIN, &data, &len);
    msgpack_unpacked u;
    fs_proto_error_t err;
    cr_assert_eq (fs_proto_unpack (data, len, &u, &err), 0);
    cr_assert_eq (u.data.type, MSGPACK_OBJECT_MAP);
    fs_ack_t ack;
    cr_assert_eq (fs_proto_decode_object (&fs_ack_type, &u.data, &ack, NULL, &err), 0);
    cr_assert_str_eq (ack.status, "applied");
    fs_proto_clear (&fs_ack_type, &ack);
    msgpack_unpacked_destroy (&u);
    //  Refused input still leaves something the caller may destroy
    cr_assert_eq (fs_proto_unpack (data, len - 1, &u, &err), FS_PROTO_MALFORMED);
    msgpack_unpacked_destroy (&u);
    cr_assert_eq (fs_proto_unpack ("\xdd\xff\xff\xff\xff", 5, &u, NULL), FS_PROTO_MALFORMED);
    msgpack_unpacked_destroy (&u);
    free (data);
}
