/*  fs_test_router - the referral-router's side of integration tests: its directory loaded
    with the real command from a test's own CSV, and intake's messages sent on its bus as
    intake would (intake.referral_requested, intake.consent_changed), each acked `applied`. */
#include "fs_test.h"

extern const char *fs_test_source_dir;

static void
s_write (const char *path, const char *text)
{
    FILE *file = fopen (path, "w");
    cr_assert (file);
    fputs (text, file);
    fclose (file);
}

void
fs_test_router_load (const fs_test_command_t *router, const char *tag, const char *services_csv,
                     const char *territory_csv)
{
    char services [128], territory [128], needs [512], zcodes [512];
    snprintf (services, sizeof services, "/tmp/test_%s.%d.services.csv", tag, getpid ());
    snprintf (territory, sizeof territory, "/tmp/test_%s.%d.territory.csv", tag, getpid ());
    snprintf (needs, sizeof needs, "%s/services/referral-router/data/needs.csv",
              fs_test_source_dir);
    snprintf (zcodes, sizeof zcodes, "%s/services/referral-router/data/zcodes.csv",
              fs_test_source_dir);
    s_write (services, services_csv);
    s_write (territory, territory_csv);
    int rc = fs_test_command_runl (router, "load-directory", services, needs, zcodes, territory,
                                  NULL);
    unlink (services);
    unlink (territory);
    cr_assert_eq (rc, 0, "load-directory: %s", router->err ? router->err : "");
}

fs_test_suite_t *
fs_test_router_suite (fs_test_command_t *router, const char *tag, const char *const *settings,
                      const char *services, const char *services_csv,
                      const char *territory_csv)
{
    fs_test_suite_t *suite = fs_test_suite_new (tag);
    for (int i = 0; settings && settings [i]; i++) {
        char name [128];
        const char *equals = strchr (settings [i], '=');
        cr_assert (equals && equals - settings [i] < (int) sizeof name, "%s", settings [i]);
        snprintf (name, sizeof name, "%.*s", (int) (equals - settings [i]), settings [i]);
        fs_test_suite_setenv (suite, name, equals + 1);
    }
    char copy [256];
    snprintf (copy, sizeof copy, "%s", services);
    char *save = NULL;
    for (char *service = strtok_r (copy, " ", &save); service;
         service = strtok_r (NULL, " ", &save))
        fs_test_suite_start (suite, service);
    fs_test_command_use_suite (router, suite);
    fs_test_router_load (router, tag, services_csv, territory_csv);
    return suite;
}

void
fs_test_router_send (fs_test_suite_t *suite, const fs_type_t *type, const void *payload)
{
    int index = -1;
    for (int i = 0; fs_services [i].name; i++)
        if (streq (fs_services [i].name, "referral-router"))
            index = i;
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    zsock_set_linger (dealer, 0);
    zsock_set_rcvtimeo (dealer, 10000);
    cr_assert_eq (zsock_connect (dealer, "tcp://127.0.0.1:%d", suite->bus_ports [index]), 0);
    char *data = NULL;
    size_t len = 0;
    fs_proto_error_t err;
    cr_assert_eq (fs_envelope_encode ("intake", type, payload, NULL, &data, &len, NULL, &err), 0,
                  "%s", err.message);
    zframe_t *frame = zframe_new (data, len);
    free (data);
    cr_assert_eq (zframe_send (&frame, dealer, 0), 0);
    zframe_t *answer = zframe_recv (dealer);
    cr_assert (answer, "no ack from the router");
    fs_ack_t ack = { 0 };
    cr_assert_eq (fs_proto_decode (&fs_ack_type, zframe_data (answer), zframe_size (answer),
                                   &ack, &err), 0);
    cr_assert_str_eq (ack.status, "applied", "%s: %s", ack.code ? ack.code : "",
                      ack.reason ? ack.reason : "");
    fs_proto_clear (&fs_ack_type, &ack);
    zframe_destroy (&answer);
    zsock_destroy (&dealer);
}

//  Up to 4 items (NULL-ended) into list, marking field index present when any
static void
s_list (fs_strlist_t *list, uint64_t *present, int index, const char *const *items)
{
    size_t n = 0;
    while (n < 4 && items [n])
        n++;
    if (!n)
        return;
    list->items = (char **) zmalloc (n * sizeof (char *));
    for (size_t i = 0; i < n; i++)
        list->items [i] = strdup (items [i]);
    list->n = n;
    *present |= 1ull << index;
}

//  The request fs_test_router_request sends, into req
static void
s_request_fill (fs_referral_requested_t *out, const char *event_ref, const char *person,
                const fs_test_router_req_t *r)
{
    const fs_type_t *t = &fs_referral_requested_type;
    fs_referral_requested_t req = { 0 };
    char case_id [FS_UUID_LEN + 1];
    fs_uuid (case_id);
    fs_proto_set_str (t, &req, "event_ref", event_ref);
    fs_proto_set_str (t, &req, "source", "primary-care");
    fs_proto_set_str (t, &req, "event_type", r->event_type ? r->event_type
                                                           : "health.social_risk_detected");
    fs_proto_set_str (t, &req, "urgency", r->urgency ? r->urgency : "preferent");
    fs_proto_set_str (t, &req, "case_id", case_id);
    fs_proto_set_str (t, &req, "person_id", person);
    fs_proto_set_str (t, &req, "centre", "CSS01");
    fs_proto_set_str (t, &req, "suggested_level", r->level);
    fs_proto_set_str (t, &req, "note", "Lives alone, behind on rent");
    s_list (&req.icd10_codes, &req.present, fs_referral_requested_F_icd10_codes, r->codes);
    s_list (&req.needs, &req.present, fs_referral_requested_F_needs, r->needs);
    if (r->minors >= 0)
        fs_proto_set_int (t, &req, "minors", r->minors);
    const fs_type_t *st = &fs_referral_subject_type;
    fs_proto_set_str (st, &req.subject, "given_name", "Laia");
    fs_proto_set_str (st, &req.subject, "family_name", "Puig Serra");
    fs_proto_set_str (st, &req.subject, "doc_type", "DNI");
    fs_proto_set_str (st, &req.subject, "doc_number", "12345678Z");
    fs_proto_set_str (st, &req.subject, "birth_date", r->birth ? r->birth : "1985-03-02");
    fs_proto_set_str (st, &req.subject, "phone", "+34600000000");
    fs_proto_set_str (st, &req.subject, "email", "laia@example.org");
    fs_proto_set_str (st, &req.subject, "language", "ca");
    fs_proto_set_str (st, &req.subject, "residency", r->residency ? r->residency
                                                                  : "lives_in_city");
    const fs_type_t *at = &fs_referral_address_type;
    fs_proto_set_str (at, &req.subject.address, "street", "Carrer Nou");
    fs_proto_set_str (at, &req.subject.address, "number", "3");
    fs_proto_set_str (at, &req.subject.address, "postcode", "08001");
    fs_proto_set_str (at, &req.subject.address, "neighbourhood", r->hood ? r->hood : "01");
    req.subject.present |= 1ull << fs_referral_subject_F_address;
    req.present |= 1ull << fs_referral_requested_F_subject;
    *out = req;
}

void
fs_test_router_request (fs_test_suite_t *suite, const char *event_ref, const char *person,
                        const fs_test_router_req_t *r)
{
    fs_referral_requested_t req;
    s_request_fill (&req, event_ref, person, r);
    fs_test_router_send (suite, &fs_referral_requested_type, &req);
    fs_proto_clear (&fs_referral_requested_type, &req);
}

char *
fs_test_router_request_encode (const char *event_ref, const char *person,
                               const fs_test_router_req_t *r, size_t *len, char *id_out)
{
    fs_referral_requested_t req;
    s_request_fill (&req, event_ref, person, r);
    char *data = NULL;
    fs_proto_error_t err;
    cr_assert_eq (fs_envelope_encode ("intake", &fs_referral_requested_type, &req, NULL, &data,
                                      len, id_out, &err), 0, "%s", err.message);
    fs_proto_clear (&fs_referral_requested_type, &req);
    return data;
}

void
fs_test_router_consent (fs_test_suite_t *suite, const char *consent_id, const char *person,
                        const char *status, const char *recipients, const char *categories,
                        const char *expires_at)
{
    const fs_type_t *t = &fs_consent_changed_type;
    fs_consent_changed_t change = { 0 };
    fs_proto_set_str (t, &change, "consent_id", consent_id);
    fs_proto_set_str (t, &change, "person_id", person);
    fs_proto_set_str (t, &change, "status", status);
    fs_proto_set_str (t, &change, "purpose", "social_health_coordination");
    fs_proto_set_str (t, &change, "expires_at", expires_at);
    char r [256], c [256];
    snprintf (r, sizeof r, "%s", recipients ? recipients : "");
    snprintf (c, sizeof c, "%s", categories ? categories : "");
    const char *rl [5] = { 0 }, *cl [5] = { 0 };
    char *save = NULL;
    size_t n = 0;
    for (char *w = strtok_r (r, " ", &save); w && n < 4; w = strtok_r (NULL, " ", &save))
        rl [n++] = w;
    n = 0;
    for (char *w = strtok_r (c, " ", &save); w && n < 4; w = strtok_r (NULL, " ", &save))
        cl [n++] = w;
    s_list (&change.recipients, &change.present, fs_consent_changed_F_recipients, rl);
    s_list (&change.data_categories, &change.present, fs_consent_changed_F_data_categories, cl);
    fs_test_router_send (suite, t, &change);
    fs_proto_clear (t, &change);
}
