/*  fs_test_ingest - a publisher for tests: builds contract-v1 events by hand (independent of
    the codec under test) and sends them to intake over a real REQ socket. */
#include "fs_test.h"

static void
s_str (msgpack_packer *pk, const char *s)
{
    msgpack_pack_str (pk, strlen (s));
    msgpack_pack_str_body (pk, s, strlen (s));
}

zchunk_t *
fs_test_event_social_risk (const char *id, const char *source, const char *urgency)
{
    char now [32];
    fs_rfc3339 (fs_now_ms (), now);
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 7);
    s_str (&pk, "v");            msgpack_pack_int (&pk, 1);
    s_str (&pk, "id");           s_str (&pk, id);
    s_str (&pk, "source");       s_str (&pk, source);
    s_str (&pk, "type");         s_str (&pk, "health.social_risk_detected");
    s_str (&pk, "occurred_at");  s_str (&pk, now);
    s_str (&pk, "subject");
    msgpack_pack_map (&pk, 6);
    s_str (&pk, "doc_type");     s_str (&pk, "DNI");
    s_str (&pk, "doc_number");   s_str (&pk, "12345678Z");
    s_str (&pk, "given_name");   s_str (&pk, "Anna");
    s_str (&pk, "family_name");  s_str (&pk, "Puig i Ferrer");
    s_str (&pk, "birth_date");   s_str (&pk, "1980-04-01");
    s_str (&pk, "address");
    msgpack_pack_map (&pk, 3);
    s_str (&pk, "street");       s_str (&pk, "Carrer de la Riera Baixa");
    s_str (&pk, "number");       s_str (&pk, "7");
    s_str (&pk, "postcode");     s_str (&pk, "08001");
    s_str (&pk, "data");
    msgpack_pack_map (&pk, 3);
    s_str (&pk, "icd10_codes");  msgpack_pack_array (&pk, 1); s_str (&pk, "Z59.0");
    s_str (&pk, "suggested_level"); s_str (&pk, "complementation");
    s_str (&pk, "urgency");      s_str (&pk, urgency);
    zchunk_t *chunk = zchunk_new (buffer.data, buffer.size);
    msgpack_sbuffer_destroy (&buffer);
    return chunk;
}

int
fs_test_publish (const char *endpoint, const void *data, size_t len, fs_ingest_receipt_t *receipt,
                 int timeout_ms)
{
    zsock_t *req = zsock_new (ZMQ_REQ);
    zsock_set_linger (req, 0);
    zsock_set_rcvtimeo (req, timeout_ms);
    zsock_set_sndtimeo (req, timeout_ms);
    int rc = -1;
    if (zsock_connect (req, "%s", endpoint) == 0) {
        zframe_t *frame = zframe_new (data, len);
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

void
fs_test_publish_accepted (fs_test_suite_t *suite, const char *id)
{
    zchunk_t *event = fs_test_event_social_risk (id, "primary-care", "urgent");
    fs_ingest_receipt_t receipt = { 0 };
    cr_assert_eq (fs_test_publish (suite->ingest_endpoint, zchunk_data (event),
                                   zchunk_size (event), &receipt, 10000), 0,
                  "no receipt (log in %s)", suite->log_dir);
    cr_assert_str_eq (receipt.status, "accepted");
    fs_proto_clear (&fs_ingest_receipt_type, &receipt);
    zchunk_destroy (&event);
}
