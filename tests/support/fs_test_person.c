/*  fs_test_person - events about one person, built with the codec (fs_ingest_event_t) and
    published through intake's real ingest socket: the subject, the event types tests about
    a person's facts send most, and the wait for intake to have processed one. */
#include "fs_test.h"

char *
fs_test_person_encode (fs_test_publisher_t *self, const fs_test_person_t *who,
                       const fs_type_t *dt, void *data, size_t *len)
{
    fs_ingest_event_t event = { 0 };
    const fs_type_t *et = &fs_ingest_event_type;
    char id [64];
    snprintf (id, sizeof id, "%s-%d", self->id_prefix, ++self->counter);
    fs_proto_set_int (et, &event, "v", 1);
    fs_proto_set_str (et, &event, "id", id);
    fs_proto_set_str (et, &event, "source", "city-system");
    fs_proto_set_str (et, &event, "type", dt->wire);
    fs_proto_set_str (et, &event, "occurred_at", self->at);
    const fs_type_t *st = &fs_ingest_subject_type;
    fs_proto_set_str (st, &event.subject, "doc_type", "DNI");
    fs_proto_set_str (st, &event.subject, "doc_number", who->dni);
    fs_proto_set_str (st, &event.subject, "given_name", who->given);
    fs_proto_set_str (st, &event.subject, "family_name", who->family);
    fs_proto_set_str (st, &event.subject, "birth_date", who->birth);
    fs_proto_set_str (st, &event.subject, "sex", who->sex);
    const fs_type_t *at = &fs_ingest_address_type;
    fs_proto_set_str (at, &event.subject.address, "street", who->street);
    fs_proto_set_str (at, &event.subject.address, "number", who->number);
    fs_proto_set_str (at, &event.subject.address, "postcode", who->postcode);
    event.subject.present |= 1ull << fs_ingest_subject_F_address;
    event.present |= 1ull << fs_ingest_event_F_subject;
    fs_proto_error_t err;
    cr_assert_eq (fs_proto_encode (dt, data, &event.data.data, &event.data.len, &err), 0,
                  "test data invalid: %s", err.message);
    event.present |= 1ull << fs_ingest_event_F_data;
    char *bytes;
    cr_assert_eq (fs_proto_encode (et, &event, &bytes, len, &err), 0, "%s", err.message);
    fs_proto_clear (et, &event);
    fs_proto_clear (dt, data);
    return bytes;
}

void
fs_test_person_publish (fs_test_publisher_t *self, const fs_test_person_t *who,
                        const fs_type_t *dt, void *data, char *ref)
{
    size_t len;
    char *bytes = fs_test_person_encode (self, who, dt, data, &len);
    fs_ingest_receipt_t receipt = { 0 };
    cr_assert_eq (fs_test_publish (self->suite->ingest_endpoint, bytes, len, &receipt, 10000),
                  0, "no receipt from intake (logs in %s)", self->suite->log_dir);
    cr_assert_str_eq (receipt.status, "accepted", "%s: %s", dt->wire,
                      FS_PRESENT (&receipt, fs_ingest_receipt_F_error)
                      ? receipt.error.message : "");
    snprintf (ref, FS_UUID_LEN + 1, "%s", receipt.ref);
    fs_proto_clear (&fs_ingest_receipt_type, &receipt);
    free (bytes);
}

void
fs_test_person_processed (fs_test_publisher_t *self, const char *ref)
{
    char sql [256];
    snprintf (sql, sizeof sql, "SELECT count(*) FROM intake.events WHERE ref = '%s'"
              " AND processed_at IS NOT NULL AND process_error IS NULL", ref);
    cr_assert (fs_test_pg_wait (self->suite->pg_url, sql, 1, 20000),
               "intake did not process %s (logs in %s)", ref, self->suite->log_dir);
}

void
fs_test_person_gender_violence (fs_test_publisher_t *self, const fs_test_person_t *who,
                                char *ref)
{
    const fs_type_t *t = &fs_ev_emergency_intervention_type;
    fs_ev_emergency_intervention_t data = { 0 };
    fs_proto_set_str (t, &data, "kind", "gender_violence");
    fs_proto_set_str (t, &data, "at", self->at);
    fs_proto_set_int (t, &data, "minors_involved", 0);
    fs_proto_set_str (t, &data, "urgency", "urgent");
    fs_test_person_publish (self, who, t, &data, ref);
}

void
fs_test_person_eviction (fs_test_publisher_t *self, const fs_test_person_t *who, int size,
                         char *ref)
{
    const fs_type_t *t = &fs_ev_eviction_scheduled_type;
    fs_ev_eviction_scheduled_t data = { 0 };
    fs_proto_set_str (t, &data, "eviction_date", "2026-07-01");
    fs_proto_set_int (t, &data, "household_size", size);
    fs_proto_set_int (t, &data, "minors", 0);
    fs_test_person_publish (self, who, t, &data, ref);
}

void
fs_test_person_registered (fs_test_publisher_t *self, const fs_test_person_t *who, char *ref)
{
    const fs_type_t *t = &fs_ev_address_changed_type;
    fs_ev_address_changed_t data = { 0 };
    const fs_type_t *at = &fs_ingest_address_type;
    fs_proto_set_str (at, &data.new_address, "street", who->street);
    fs_proto_set_str (at, &data.new_address, "number", who->number);
    fs_proto_set_str (at, &data.new_address, "postcode", who->postcode);
    data.present |= 1ull << fs_ev_address_changed_F_new_address;
    fs_proto_set_str (t, &data, "effective_date", "2025-01-15");
    fs_test_person_publish (self, who, t, &data, ref);
}
