/*  fuzz_envelope - libFuzzer harness for the envelope and payload decoders (clang only;
    not part of the CMake build). How to run it: proto/README.md, "Fuzzing". */
#include "finestra.h"

//  Whatever decodes must re-encode, and decode again to the same payload bytes.
static void
s_check_roundtrip (const fs_type_t *t, const void *msg)
{
    char *bytes = NULL, *again = NULL;
    size_t len = 0, again_len = 0;
    if (fs_proto_encode (t, msg, &bytes, &len, NULL) != 0)
        abort ();
    void *copy = calloc (1, t->size);
    if (!copy || fs_proto_decode (t, bytes, len, copy, NULL) != 0)
        abort ();
    if (fs_proto_encode (t, copy, &again, &again_len, NULL) != 0
    ||  again_len != len || memcmp (again, bytes, len) != 0)
        abort ();
    fs_proto_clear (t, copy);
    free (copy);
    free (bytes);
    free (again);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    fs_envelope_t env;
    fs_proto_error_t err;
    if (fs_envelope_decode (data, size, 1 << 20, &env, &err) == 0) {
        s_check_roundtrip (&fs_envelope_wire_type, &env.hdr);
        s_check_roundtrip (env.ptype, env.payload);
        fs_envelope_clear (&env);
    }
    else
    if (err.code == FS_PROTO_OK || env.payload)
        abort ();           //  an error must say which, and leave nothing behind

    //  The same bytes as an external ingest event: nested maps, RAW data
    fs_ingest_event_t ev;
    if (fs_proto_decode (&fs_ingest_event_type, data, size, &ev, &err) == 0) {
        s_check_roundtrip (&fs_ingest_event_type, &ev);
        fs_proto_clear (&fs_ingest_event_type, &ev);
    }
    return 0;
}
