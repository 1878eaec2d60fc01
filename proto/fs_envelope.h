/*  fs_envelope - the one envelope every message between services travels in.

    On the wire: a msgpack map {v, id, type, time, source, correlation_id, causation_id,
    payload}; `payload` is the message of `type`, defined in messages.def (fs_envelope_wire). */
#ifndef FS_ENVELOPE_H_INCLUDED
#define FS_ENVELOPE_H_INCLUDED

#define FS_ENVELOPE_VERSION 1

typedef struct {
    fs_envelope_wire_t hdr;     /* v, id, type, time, source, correlation_id, causation_id, payload bytes */
    const fs_type_t *ptype;     /* the payload's definition, looked up from hdr.type */
    void *payload;              /* decoded payload (owned), a struct of ptype */
} fs_envelope_t;

/* Encodes `payload` (of type ptype) in a fresh envelope: new id, time now, source.
   Correlation comes from `cause` (or is the new id when cause is NULL, a chain's start);
   causation is cause's id. Writes the new id into id_out[FS_UUID_LEN + 1] when not NULL.
   Returns 0 and a malloc'd buffer, or a code (payload invalid) with err filled. */
int fs_envelope_encode (const char *source, const fs_type_t *ptype, const void *payload,
                        const fs_envelope_t *cause, char **data, size_t *len,
                        char *id_out, fs_proto_error_t *err);

/* Decodes envelope and payload. Rejects len > max_len (too_large), versions other than
   FS_ENVELOPE_VERSION, unknown types, invalid payloads. On error *env is zeroed. */
int fs_envelope_decode (const void *data, size_t len, size_t max_len, fs_envelope_t *env,
                        fs_proto_error_t *err);

void fs_envelope_clear (fs_envelope_t *env);

#endif
