/*  test_intake_process - what intake does with an accepted event, against a real intake and
    PostgreSQL: the registry's layers of matching (and the uncertain cases), households,
    consent, every seeded triage rule, assignment and the unplaced queue, what is emitted, and
    events that cannot be applied. Events go in through the ingest socket; rows are checked. */
#include "fs_test.h"
#include <signal.h>

#define S_DAY "2026-05-10"
#define S_AT  S_DAY "T10:00:00+02:00"

//  A subject: document, names, birth date, address
typedef struct {
    const char *doc_type, *doc_number, *given, *family, *birth;
    const char *street, *number, *postcode, *hood;  /* hood: explicit neighbourhood, or NULL */
    const char *phone;
} s_who_t;

static const s_who_t s_anna = { "DNI", "12345678Z", "Anna", "Puig i Ferrer", "1980-04-01",
                                "Carrer de la Riera Baixa", "7", "08001", NULL, NULL };
static const s_who_t s_joan = { "NONE", NULL, "Joan", "Garcia", "1970-01-01",
                                "Carrer de Verdi", "12", "08001", NULL, NULL };

static int s_counter;
static const char *s_source = "test-system";

// ---- helpers -----------------------------------------------------------------------------

static fs_test_suite_t *
s_start (const char *name)
{
    fs_test_suite_t *suite = fs_test_suite_new (name);
    fs_test_suite_setenv (suite, "FINESTRA_INTAKE_PROCESS_POLL_MS", "200");
    fs_test_suite_start (suite, "intake");
    //  A small territory: 01 and 02 served, 03 served by nobody
    PGconn *conn = PQconnectdb (suite->pg_url);
    cr_assert_eq (PQstatus (conn), CONNECTION_OK);
    PGresult *result = PQexec (conn,
        "INSERT INTO intake.districts VALUES ('01', 'Ciutat Vella');"
        "INSERT INTO intake.neighbourhoods VALUES ('01', '01', 'el Raval'),"
        " ('02', '01', 'el Barri Gòtic'), ('03', '01', 'la Barceloneta');"
        "INSERT INTO intake.centres VALUES ('CSS01', 'CSS Raval', '01', true),"
        " ('CSS02', 'CSS Gòtic', '01', true);"
        "INSERT INTO intake.centre_neighbourhoods VALUES ('01', 'CSS01'), ('02', 'CSS02');"
        "INSERT INTO intake.postcodes VALUES ('08001', '01', true), ('08003', '03', true);");
    cr_assert_eq (PQresultStatus (result), PGRES_COMMAND_OK, "%s", PQerrorMessage (conn));
    PQclear (result);
    PQfinish (conn);
    return suite;
}

//  A list of n strings (owned by the list)
static void
s_list (fs_strlist_t *list, size_t n, const char **items)
{
    list->n = n;
    list->items = (char **) calloc (n, sizeof (char *));
    for (size_t i = 0; i < n; i++)
        list->items [i] = strdup (items [i]);
}

static void
s_address (fs_ingest_address_t *address, const char *street, const char *number,
           const char *postcode, const char *hood)
{
    const fs_type_t *t = &fs_ingest_address_type;
    fs_proto_set_str (t, address, "street", street);
    fs_proto_set_str (t, address, "number", number);
    fs_proto_set_str (t, address, "postcode", postcode);
    fs_proto_set_str (t, address, "neighbourhood", hood);
}

//  Publishes one event of type dt about who, with data; expects `accepted`; its ref in ref_out.
//  Clears data.
static void
s_publish (fs_test_suite_t *suite, const s_who_t *who, const fs_type_t *dt, void *data,
           char *ref_out)
{
    fs_ingest_event_t event = { 0 };
    const fs_type_t *et = &fs_ingest_event_type;
    char id [32];
    snprintf (id, sizeof id, "p-%d", ++s_counter);
    fs_proto_set_int (et, &event, "v", 1);
    fs_proto_set_str (et, &event, "id", id);
    fs_proto_set_str (et, &event, "source", s_source);
    fs_proto_set_str (et, &event, "type", dt->wire);
    fs_proto_set_str (et, &event, "occurred_at", S_AT);
    const fs_type_t *st = &fs_ingest_subject_type;
    fs_ingest_subject_t *subject = &event.subject;
    fs_proto_set_str (st, subject, "doc_type", who->doc_type);
    fs_proto_set_str (st, subject, "doc_number", who->doc_number);
    fs_proto_set_str (st, subject, "given_name", who->given);
    fs_proto_set_str (st, subject, "family_name", who->family);
    fs_proto_set_str (st, subject, "birth_date", who->birth);
    fs_proto_set_str (st, subject, "phone", who->phone);
    s_address (&subject->address, who->street, who->number, who->postcode, who->hood);
    subject->present |= 1ull << fs_ingest_subject_F_address;
    event.present |= 1ull << fs_ingest_event_F_subject;
    fs_proto_error_t err;
    cr_assert_eq (fs_proto_encode (dt, data, &event.data.data, &event.data.len, &err), 0,
                  "test data invalid: %s %s", err.field, err.message);
    event.present |= 1ull << fs_ingest_event_F_data;
    char *bytes;
    size_t len;
    cr_assert_eq (fs_proto_encode (et, &event, &bytes, &len, &err), 0,
                  "test event invalid: %s %s", err.field, err.message);
    fs_ingest_receipt_t receipt = { 0 };
    cr_assert_eq (fs_test_publish (suite->ingest_endpoint, bytes, len, &receipt, 10000), 0,
                  "no receipt from intake (log in %s)", suite->log_dir);
    cr_assert_str_eq (receipt.status, "accepted", "%s rejected: %s", dt->wire,
                      FS_PRESENT (&receipt, fs_ingest_receipt_F_error)
                      ? receipt.error.message : "");
    if (ref_out)
        snprintf (ref_out, FS_UUID_LEN + 1, "%s", receipt.ref);
    fs_proto_clear (&fs_ingest_receipt_type, &receipt);
    free (bytes);
    fs_proto_clear (et, &event);
    fs_proto_clear (dt, data);
}

static void
s_attention (fs_test_suite_t *suite, const s_who_t *who, char *ref)
{
    fs_ev_attention_requested_t data = { 0 };
    fs_proto_set_str (&fs_ev_attention_requested_type, &data, "channel", "in_person");
    fs_proto_set_str (&fs_ev_attention_requested_type, &data, "reason", "needs help");
    s_publish (suite, who, &fs_ev_attention_requested_type, &data, ref);
}

static void
s_health (fs_test_suite_t *suite, const s_who_t *who, const char *urgency, char *ref)
{
    fs_ev_social_risk_detected_t data = { 0 };
    const fs_type_t *t = &fs_ev_social_risk_detected_type;
    const char *codes [] = { "Z59.0", "Z60.2" };
    s_list (&data.icd10_codes, 2, codes);
    data.present |= 1ull << fs_ev_social_risk_detected_F_icd10_codes;
    fs_proto_set_str (t, &data, "suggested_level", "complementation");
    fs_proto_set_str (t, &data, "urgency", urgency);
    fs_proto_set_str (t, &data, "consent_ref", "hc-consent-1");
    s_publish (suite, who, t, &data, ref);
}

static void
s_eviction (fs_test_suite_t *suite, const s_who_t *who, const char *date, int minors, char *ref)
{
    fs_ev_eviction_scheduled_t data = { 0 };
    const fs_type_t *t = &fs_ev_eviction_scheduled_type;
    fs_proto_set_str (t, &data, "eviction_date", date);
    fs_proto_set_int (t, &data, "household_size", 3);
    fs_proto_set_int (t, &data, "minors", minors);
    s_publish (suite, who, t, &data, ref);
}

static void
s_emergency (fs_test_suite_t *suite, const s_who_t *who, int minors, char *ref)
{
    fs_ev_emergency_intervention_t data = { 0 };
    const fs_type_t *t = &fs_ev_emergency_intervention_type;
    fs_proto_set_str (t, &data, "kind", "emergency_accommodation");
    fs_proto_set_str (t, &data, "at", S_AT);
    fs_proto_set_int (t, &data, "minors_involved", minors);
    fs_proto_set_str (t, &data, "urgency", "preferent");
    s_publish (suite, who, t, &data, ref);
}

static void
s_grant (fs_test_suite_t *suite, const s_who_t *who, const char *cref, const char *given,
         char *ref)
{
    fs_ev_consent_granted_t data = { 0 };
    const fs_type_t *t = &fs_ev_consent_granted_type;
    const char *categories [] = { "identity", "social_health" };
    const char *recipients [] = { "social_services", "primary_care" };
    fs_proto_set_str (t, &data, "consent_ref", cref);
    fs_proto_set_str (t, &data, "purpose", "social_health_coordination");
    s_list (&data.data_categories, 2, categories);
    s_list (&data.recipients, 2, recipients);
    data.present |= 1ull << fs_ev_consent_granted_F_data_categories;
    data.present |= 1ull << fs_ev_consent_granted_F_recipients;
    fs_proto_set_str (t, &data, "given_at", given);
    fs_proto_set_str (t, &data, "evidence_ref", "doc-77");
    s_publish (suite, who, t, &data, ref);
}

static void
s_revoke (fs_test_suite_t *suite, const s_who_t *who, const char *cref, const char *at,
          char *ref)
{
    fs_ev_consent_revoked_t data = { 0 };
    const fs_type_t *t = &fs_ev_consent_revoked_type;
    fs_proto_set_str (t, &data, "consent_ref", cref);
    fs_proto_set_str (t, &data, "revoked_at", at);
    s_publish (suite, who, t, &data, ref);
}

//  Waits until every stored event is processed
static void
s_drain (fs_test_suite_t *suite)
{
    cr_assert (fs_test_pg_wait (suite->pg_url,
                                "SELECT count(*) FROM intake.events WHERE processed_at IS NULL",
                                0, 20000), "events left unprocessed (log in %s)", suite->log_dir);
}

static long
s_long (fs_test_suite_t *suite, const char *format, ...)
{
    char sql [1024];
    va_list args;
    va_start (args, format);
    vsnprintf (sql, sizeof sql, format, args);
    va_end (args);
    return fs_test_pg_long (suite->pg_url, sql);
}

//  First column of the first row as text ("(none)" without a row, "(null)" for NULL); static
static const char *
s_text (fs_test_suite_t *suite, const char *format, ...)
{
    static char value [1024];
    char sql [1024];
    va_list args;
    va_start (args, format);
    vsnprintf (sql, sizeof sql, format, args);
    va_end (args);
    PGconn *conn = PQconnectdb (suite->pg_url);
    cr_assert_eq (PQstatus (conn), CONNECTION_OK);
    PGresult *result = PQexec (conn, sql);
    cr_assert_eq (PQresultStatus (result), PGRES_TUPLES_OK, "%s: %s", sql, PQerrorMessage (conn));
    snprintf (value, sizeof value, "%s", PQntuples (result) == 0 ? "(none)"
              : PQgetisnull (result, 0, 0) ? "(null)" : PQgetvalue (result, 0, 0));
    PQclear (result);
    PQfinish (conn);
    return value;
}

//  The person file an event resolved to (the case's, or the current household member's)
static const char *
s_person_of_doc (fs_test_suite_t *suite, const char *doc)
{
    return s_text (suite, "SELECT person_id FROM intake.person_documents WHERE doc_number = '%s'",
                   doc);
}

static void
s_stop (fs_test_suite_t **suite_p)
{
    cr_assert_eq (fs_test_suite_stop (*suite_p, "intake", SIGTERM, 5000), 0);
    fs_test_suite_destroy (suite_p);
}

// ---- registry ----------------------------------------------------------------------------

Test (intake_process, same_document_same_person_whatever_the_spelling)
{
    fs_test_suite_t *suite = s_start ("proc_doc");
    s_attention (suite, &s_anna, NULL);
    s_who_t respelled = s_anna;
    respelled.given = "ÀNNA";
    respelled.family = "Ferrer Puig";               //  order, case, accents, particle
    respelled.doc_number = "12345678-z";
    respelled.phone = "+34 600 000 001";
    s_attention (suite, &respelled, NULL);
    s_drain (suite);
    cr_assert_eq (s_long (suite, "SELECT count(*) FROM intake.persons"), 1);
    cr_assert_eq (s_long (suite, "SELECT count(DISTINCT person_id) FROM intake.cases"), 1);
    cr_assert_eq (s_long (suite, "SELECT count(*) FROM intake.cases"), 2);
    //  Contact fields follow the latest event; the name on file stays the first
    cr_assert_str_eq (s_text (suite, "SELECT phone FROM intake.persons"), "+34 600 000 001");
    cr_assert_str_eq (s_text (suite, "SELECT given_name FROM intake.persons"), "Anna");
    cr_assert_eq (s_long (suite, "SELECT count(*) FROM intake.match_candidates"), 0);
    cr_assert_str_eq (s_text (suite, "SELECT check_ok FROM intake.person_documents"), "t");
    s_stop (&suite);
}

Test (intake_process, no_document_three_facts_agree_same_person)
{
    fs_test_suite_t *suite = s_start ("proc_none");
    s_attention (suite, &s_joan, NULL);
    s_who_t again = s_joan;
    again.given = "JOAN";
    again.family = "García";
    again.street = "C. Verdi";                      //  the same address, written otherwise
    s_attention (suite, &again, NULL);
    s_drain (suite);
    cr_assert_eq (s_long (suite, "SELECT count(*) FROM intake.persons"), 1);
    cr_assert_eq (s_long (suite, "SELECT count(*) FROM intake.match_candidates"), 0);

    //  Same name and birth date at another address: not sure, so a new file and a candidate
    s_who_t elsewhere = s_joan;
    elsewhere.street = "Carrer de Sants";
    s_attention (suite, &elsewhere, NULL);
    s_drain (suite);
    cr_assert_eq (s_long (suite, "SELECT count(*) FROM intake.persons"), 2);
    cr_assert_eq (s_long (suite, "SELECT count(*) FROM intake.match_candidates"), 1);
    cr_assert_str_eq (s_text (suite, "SELECT reason FROM intake.match_candidates"),
                      "same name and birth date; no document on either; address differs");
    cr_assert_str_eq (s_text (suite, "SELECT status FROM intake.match_candidates"), "pending");
    //  Two live files share the name now, but exactly one lives at Sants: that one
    s_attention (suite, &elsewhere, NULL);
    s_drain (suite);
    cr_assert_eq (s_long (suite, "SELECT count(*) FROM intake.persons"), 2);
    s_stop (&suite);
}

Test (intake_process, other_document_same_name_is_a_candidate_never_merged)
{
    fs_test_suite_t *suite = s_start ("proc_cand");
    s_attention (suite, &s_anna, NULL);
    s_who_t other = s_anna;
    other.doc_number = "87654321X";
    s_attention (suite, &other, NULL);
    s_drain (suite);
    cr_assert_eq (s_long (suite, "SELECT count(*) FROM intake.persons"), 2);
    cr_assert_eq (s_long (suite, "SELECT count(*) FROM intake.persons WHERE merged_into IS NOT NULL"),
                  0);
    char first [64], second [64];
    snprintf (first, sizeof first, "%s", s_person_of_doc (suite, "12345678Z"));
    snprintf (second, sizeof second, "%s", s_person_of_doc (suite, "87654321X"));
    cr_assert_str_neq (first, second);
    cr_assert_eq (s_long (suite, "SELECT count(*) FROM intake.match_candidates"
                                 " WHERE person_id = '%s' AND candidate_id = '%s'", second, first),
                  1);
    cr_assert_str_eq (s_text (suite, "SELECT reason FROM intake.match_candidates"),
                      "same name and birth date; document differs: DNI 87654321X here,"
                      " DNI 12345678Z there; same address");
    s_stop (&suite);
}

Test (intake_process, wrong_check_letter_registered_flagged)
{
    fs_test_suite_t *suite = s_start ("proc_check");
    s_attention (suite, &s_joan, NULL);
    s_who_t typo = s_joan;
    typo.doc_type = "DNI";
    typo.doc_number = "11111111A";                  //  the right letter is H
    s_attention (suite, &typo, NULL);
    s_drain (suite);
    cr_assert_str_eq (s_text (suite, "SELECT check_ok FROM intake.person_documents"
                                     " WHERE doc_number = '11111111A'"), "f");
    cr_assert_eq (s_long (suite, "SELECT count(*) FROM intake.persons"), 2);
    cr_assert_str_eq (s_text (suite, "SELECT reason FROM intake.match_candidates"),
                      "same name and birth date; document differs: DNI 11111111A here, none"
                      " there; same address; DNI 11111111A has a wrong check letter");
    //  The same flagged document again: the same file, no new candidate
    s_attention (suite, &typo, NULL);
    s_drain (suite);
    cr_assert_eq (s_long (suite, "SELECT count(*) FROM intake.persons"), 2);
    cr_assert_eq (s_long (suite, "SELECT count(*) FROM intake.match_candidates"), 1);
    s_stop (&suite);
}

Test (intake_process, households_moves_and_benefit_members)
{
    fs_test_suite_t *suite = s_start ("proc_house");
    s_attention (suite, &s_anna, NULL);
    s_drain (suite);
    cr_assert_eq (s_long (suite, "SELECT count(*) FROM intake.households"), 1);
    cr_assert_eq (s_long (suite, "SELECT count(*) FROM intake.household_members WHERE until IS NULL"),
                  1);

    //  The register moves her: old membership closed by that event, a new one opened
    fs_ev_address_changed_t change = { 0 };
    s_address (&change.new_address, "Carrer de Sant Pau", "30", "08001", NULL);
    change.present |= 1ull << fs_ev_address_changed_F_new_address;
    fs_proto_set_str (&fs_ev_address_changed_type, &change, "effective_date", S_DAY);
    char moved [FS_UUID_LEN + 1];
    s_publish (suite, &s_anna, &fs_ev_address_changed_type, &change, moved);
    s_drain (suite);
    cr_assert_eq (s_long (suite, "SELECT count(*) FROM intake.households"), 2);
    cr_assert_eq (s_long (suite, "SELECT count(*) FROM intake.household_members"
                                 " WHERE until IS NOT NULL AND closed_by = '%s'", moved), 1);
    cr_assert_str_eq (s_text (suite, "SELECT h.street FROM intake.household_members m"
                                     " JOIN intake.households h ON h.id = m.household_id"
                                     " WHERE m.until IS NULL"), "Carrer de Sant Pau");
    cr_assert_eq (s_long (suite, "SELECT count(*) FROM intake.cases"), 1);   //  no case

    //  A benefit application from the new address, with her partner (DNI) and child (none)
    s_who_t there = s_anna;
    there.street = "C/ Sant Pau";
    there.number = "30";
    fs_ev_benefits_application_submitted_t application = { 0 };
    const fs_type_t *t = &fs_ev_benefits_application_submitted_type;
    fs_proto_set_str (t, &application, "programme", "child_fund_0_17");
    fs_proto_set_str (t, &application, "application_ref", "app-1");
    fs_proto_set_str (t, &application, "submitted_at", S_AT);
    fs_proto_set_str (t, &application, "channel", "online");
    fs_ingest_household_member_t *members = calloc (3, sizeof *members);
    const fs_type_t *mt = &fs_ingest_household_member_type;
    const char *people [3][5] = {
        { "applicant", "Anna", "Puig i Ferrer", "1980-04-01", "12345678Z" },
        { "partner", "Pere", "Soler", "1979-02-02", "87654321X" },
        { "child", "Martí", "Soler Puig", "2015-06-06", NULL } };
    for (int i = 0; i < 3; i++) {
        fs_proto_set_str (mt, &members [i], "relationship", people [i][0]);
        fs_proto_set_str (mt, &members [i], "given_name", people [i][1]);
        fs_proto_set_str (mt, &members [i], "family_name", people [i][2]);
        fs_proto_set_str (mt, &members [i], "birth_date", people [i][3]);
        fs_proto_set_str (mt, &members [i], "doc_type", people [i][4] ? "DNI" : "NONE");
        fs_proto_set_str (mt, &members [i], "doc_number", people [i][4]);
    }
    application.household_members.n = 3;
    application.household_members.items = members;
    application.present |= 1ull << fs_ev_benefits_application_submitted_F_household_members;
    char applied [FS_UUID_LEN + 1];
    s_publish (suite, &there, t, &application, applied);
    s_drain (suite);
    cr_assert_eq (s_long (suite, "SELECT count(*) FROM intake.persons"), 3);
    cr_assert_eq (s_long (suite, "SELECT count(*) FROM intake.households"), 2);
    cr_assert_str_eq (s_text (suite,
        "SELECT string_agg (m.relationship, ',' ORDER BY m.relationship)"
        " FROM intake.household_members m JOIN intake.households h ON h.id = m.household_id"
        " WHERE m.until IS NULL AND h.street = 'Carrer de Sant Pau'"), "applicant,child,partner");
    cr_assert_eq (s_long (suite, "SELECT count(*) FROM intake.cases WHERE event_ref = '%s'",
                          applied), 1);
    cr_assert_eq (s_long (suite, "SELECT count(*) FROM intake.outbox"
                                 " WHERE type = 'intake.benefit_application_received'"
                                 " AND correlation_id = '%s'", applied), 2);
    //  The same application again (another id): the same three people, nobody new
    fs_ev_benefits_application_submitted_t again = { 0 };
    fs_proto_set_str (t, &again, "programme", "child_fund_0_17");
    fs_proto_set_str (t, &again, "application_ref", "app-2");
    fs_proto_set_str (t, &again, "submitted_at", S_AT);
    fs_proto_set_str (t, &again, "channel", "online");
    members = calloc (1, sizeof *members);
    fs_proto_set_str (mt, &members [0], "relationship", "child");
    fs_proto_set_str (mt, &members [0], "given_name", "Marti");
    fs_proto_set_str (mt, &members [0], "family_name", "Soler Puig");
    fs_proto_set_str (mt, &members [0], "birth_date", "2015-06-06");
    again.household_members.n = 1;
    again.household_members.items = members;
    again.present |= 1ull << fs_ev_benefits_application_submitted_F_household_members;
    s_publish (suite, &there, t, &again, NULL);
    s_drain (suite);
    cr_assert_eq (s_long (suite, "SELECT count(*) FROM intake.persons"), 3);
    cr_assert_eq (s_long (suite, "SELECT count(*) FROM intake.household_members WHERE until IS NULL"),
                  3);
    s_stop (&suite);
}

// ---- consent -----------------------------------------------------------------------------

Test (intake_process, consent_granted_revoked_regranted)
{
    fs_test_suite_t *suite = s_start ("proc_consent");
    char ref [FS_UUID_LEN + 1];
    s_grant (suite, &s_anna, "c-1", "2026-01-01T09:00:00Z", ref);
    s_drain (suite);
    cr_assert_eq (s_long (suite, "SELECT count(*) FROM intake.consents WHERE consent_ref = 'c-1'"
                                 " AND withdrawn_at IS NULL AND purpose = 'social_health_coordination'"
                                 " AND recipients = '{social_services,primary_care}'"
                                 " AND data_categories = '{identity,social_health}'"
                                 " AND evidence_ref = 'doc-77' AND source = 'test-system'"
                                 " AND person_id = (SELECT person_id FROM intake.person_documents)"),
                  1);
    cr_assert_eq (s_long (suite, "SELECT count(*) FROM intake.outbox WHERE type ="
                                 " 'intake.consent_changed' AND correlation_id = '%s'", ref), 2);
    cr_assert_eq (s_long (suite, "SELECT count(*) FROM intake.cases"), 0);

    s_revoke (suite, &s_anna, "c-1", "2026-02-01T09:00:00Z", ref);
    s_drain (suite);
    cr_assert_str_eq (s_text (suite, "SELECT withdrawn_at AT TIME ZONE 'UTC'"
                                     " FROM intake.consents WHERE consent_ref = 'c-1'"),
                      "2026-02-01 09:00:00");
    cr_assert_eq (s_long (suite, "SELECT count(*) FROM intake.outbox WHERE type ="
                                 " 'intake.consent_changed' AND correlation_id = '%s'"
                                 " AND consumer = 'referral-router'", ref), 1);

    //  Signed again later: the same record, active again
    s_grant (suite, &s_anna, "c-1", "2026-03-01T09:00:00Z", NULL);
    s_drain (suite);
    cr_assert_eq (s_long (suite, "SELECT count(*) FROM intake.consents"), 1);
    cr_assert_str_eq (s_text (suite, "SELECT withdrawn_at FROM intake.consents"), "(null)");
    cr_assert_str_eq (s_text (suite, "SELECT given_at AT TIME ZONE 'UTC' FROM intake.consents"),
                      "2026-03-01 09:00:00");
    //  Another source's c-1 is another consent
    s_source = "other-system";
    s_grant (suite, &s_anna, "c-1", "2026-03-01T09:00:00Z", NULL);
    s_source = "test-system";
    s_drain (suite);
    cr_assert_eq (s_long (suite, "SELECT count(*) FROM intake.consents"), 2);
    s_stop (&suite);
}

Test (intake_process, revocation_before_its_grant_is_not_lost)
{
    fs_test_suite_t *suite = s_start ("proc_early");
    char revoked [FS_UUID_LEN + 1], granted [FS_UUID_LEN + 1];
    s_revoke (suite, &s_anna, "c-2", "2026-02-01T09:00:00Z", revoked);
    s_drain (suite);
    cr_assert_eq (s_long (suite, "SELECT count(*) FROM intake.consents"), 0);
    cr_assert_eq (s_long (suite, "SELECT count(*) FROM intake.consent_revocations"), 1);
    cr_assert_eq (s_long (suite, "SELECT count(*) FROM intake.outbox WHERE correlation_id = '%s'",
                          revoked), 0);
    s_grant (suite, &s_anna, "c-2", "2026-01-15T09:00:00Z", granted);
    s_drain (suite);
    cr_assert_str_eq (s_text (suite, "SELECT withdrawn_at AT TIME ZONE 'UTC' FROM intake.consents"),
                      "2026-02-01 09:00:00");
    cr_assert_eq (s_long (suite, "SELECT count(*) FROM intake.consent_revocations"), 0);
    //  What the router is told: withdrawn
    cr_assert_eq (s_long (suite, "SELECT count(*) FROM intake.outbox WHERE correlation_id = '%s'"
                                 " AND type = 'intake.consent_changed'", granted), 2);
    s_stop (&suite);
}

// ---- triage ------------------------------------------------------------------------------

//  "level rule due_date" of the case an event opened
static const char *
s_triage (fs_test_suite_t *suite, const char *ref)
{
    return s_text (suite, "SELECT triage_level || ' ' || triage_rule || ' ' || due_date"
                          " FROM intake.cases WHERE event_ref = '%s'", ref);
}

Test (intake_process, every_seeded_triage_rule)
{
    fs_test_suite_t *suite = s_start ("proc_triage");
    char e10 [40], e60 [40], e120 [40], e120m [40], em0 [40], em1 [40];
    char hu [40], hp [40], ho [40], at [40];
    s_eviction (suite, &s_anna, "2026-05-20", 0, e10);
    s_eviction (suite, &s_anna, "2026-07-09", 0, e60);
    s_eviction (suite, &s_anna, "2026-09-07", 0, e120);
    s_eviction (suite, &s_anna, "2026-09-07", 2, e120m);
    s_emergency (suite, &s_anna, 0, em0);
    s_emergency (suite, &s_anna, 1, em1);
    s_health (suite, &s_anna, "urgent", hu);
    s_health (suite, &s_anna, "preferent", hp);
    s_health (suite, &s_anna, "ordinary", ho);
    s_attention (suite, &s_anna, at);
    s_drain (suite);
    cr_assert_str_eq (s_triage (suite, e10), "urgent eviction-30d 2026-05-12");
    cr_assert_str_eq (s_triage (suite, e60), "preferent eviction-90d 2026-05-20");
    cr_assert_str_eq (s_triage (suite, e120), "preferent eviction 2026-05-25");
    cr_assert_str_eq (s_triage (suite, e120m), "urgent eviction-minors 2026-05-12");
    cr_assert_str_eq (s_triage (suite, em0), "urgent emergency 2026-05-12");
    cr_assert_str_eq (s_triage (suite, em1), "urgent emergency-minors 2026-05-11");
    cr_assert_str_eq (s_triage (suite, hu), "urgent health-urgent 2026-05-12");
    cr_assert_str_eq (s_triage (suite, hp), "preferent health-preferent 2026-05-20");
    cr_assert_str_eq (s_triage (suite, ho), "ordinary default 2026-06-09");
    cr_assert_str_eq (s_triage (suite, at), "ordinary default 2026-06-09");

    //  Rules are data: an operator turns one off and the next event follows the rest
    PGconn *conn = PQconnectdb (suite->pg_url);
    PGresult *result = PQexec (conn, "UPDATE intake.triage_rules SET enabled = false"
                                     " WHERE id = 'eviction-30d'");
    cr_assert_eq (PQresultStatus (result), PGRES_COMMAND_OK);
    PQclear (result);
    PQfinish (conn);
    char later [40];
    s_eviction (suite, &s_anna, "2026-05-20", 0, later);
    s_drain (suite);
    cr_assert_str_eq (s_triage (suite, later), "preferent eviction-90d 2026-05-20");
    s_stop (&suite);
}

// ---- assignment --------------------------------------------------------------------------

//  "centre neighbourhood unplaced-reason" of the case an event opened
static const char *
s_placed (fs_test_suite_t *suite, const char *ref)
{
    return s_text (suite, "SELECT coalesce (c.centre_code, '-') || ' '"
                          " || coalesce (c.neighbourhood_code, '-') || ' '"
                          " || coalesce (u.reason, '-')"
                          " FROM intake.cases c LEFT JOIN intake.unplaced u ON u.case_id = c.id"
                          " WHERE c.event_ref = '%s'", ref);
}

Test (intake_process, assignment_and_unplaced)
{
    fs_test_suite_t *suite = s_start ("proc_place");
    s_who_t who = s_anna;
    char by_postcode [40], by_code [40], by_name [40], unknown_pc [40], unknown_hood [40];
    char no_centre [40], bad_name_good_pc [40];
    s_attention (suite, &who, by_postcode);
    who.hood = "02";
    s_attention (suite, &who, by_code);
    who.hood = "EL BARRI GOTIC";
    s_attention (suite, &who, by_name);
    who.hood = NULL;
    who.postcode = "08099";
    s_attention (suite, &who, unknown_pc);
    who.hood = "Atlantis";
    s_attention (suite, &who, unknown_hood);
    who.postcode = "08001";
    s_attention (suite, &who, bad_name_good_pc);
    who.hood = NULL;
    who.postcode = "08003";
    s_attention (suite, &who, no_centre);
    s_drain (suite);
    cr_assert_str_eq (s_placed (suite, by_postcode), "CSS01 01 -");
    cr_assert_str_eq (s_placed (suite, by_code), "CSS02 02 -");
    cr_assert_str_eq (s_placed (suite, by_name), "CSS02 02 -");
    cr_assert_str_eq (s_placed (suite, unknown_pc), "- - unknown_postcode");
    cr_assert_str_eq (s_placed (suite, unknown_hood), "- - unknown_neighbourhood");
    cr_assert_str_eq (s_placed (suite, bad_name_good_pc), "CSS01 01 -");
    cr_assert_str_eq (s_placed (suite, no_centre), "- 03 no_centre_for_neighbourhood");
    cr_assert_str_eq (s_text (suite, "SELECT postcode || ' ' || neighbourhood FROM intake.unplaced"
                                     " WHERE reason = 'unknown_neighbourhood'"), "08099 Atlantis");
    //  What reporting is told: the centre, or none
    cr_assert_eq (s_long (suite, "SELECT count(*) FROM intake.outbox"
                                 " WHERE type = 'intake.case_opened'"), 7);
    s_stop (&suite);
}

// ---- emitted once, processed once --------------------------------------------------------

Test (intake_process, emitted_once_per_event_and_never_again)
{
    fs_test_suite_t *suite = s_start ("proc_once");
    char health [40], eviction [40], emergency [40], attention [40];
    s_health (suite, &s_anna, "urgent", health);
    s_eviction (suite, &s_anna, "2026-05-20", 1, eviction);
    s_emergency (suite, &s_anna, 0, emergency);
    s_attention (suite, &s_anna, attention);
    s_drain (suite);
    const char *refs [4] = { health, eviction, emergency, attention };
    for (int i = 0; i < 4; i++) {
        cr_assert_eq (s_long (suite, "SELECT count(*) FROM intake.outbox WHERE correlation_id = '%s'"
                                     " AND type = 'intake.case_opened'", refs [i]), 1);
        cr_assert_eq (s_long (suite, "SELECT count(*) FROM intake.outbox WHERE correlation_id = '%s'"
                                     " AND type = 'intake.referral_requested'", refs [i]),
                      i < 3 ? 2 : 0, "referrals of event %d", i);
        cr_assert_eq (s_long (suite, "SELECT count(*) FROM intake.cases WHERE event_ref = '%s'",
                              refs [i]), 1);
    }
    long processed_before = s_long (suite, "SELECT count(*) FROM intake.events"
                                           " WHERE processed_at IS NOT NULL");
    cr_assert_eq (processed_before, 4);
    char stamp [64];
    snprintf (stamp, sizeof stamp, "%s", s_text (suite, "SELECT max(processed_at) FROM intake.events"));
    //  A restart finds nothing to do: nothing processed twice
    cr_assert_eq (fs_test_suite_stop (suite, "intake", SIGTERM, 5000), 0);
    fs_test_suite_start (suite, "intake");
    s_attention (suite, &s_anna, NULL);
    s_drain (suite);
    cr_assert_eq (s_long (suite, "SELECT count(*) FROM intake.cases"), 5);
    cr_assert_eq (s_long (suite, "SELECT count(*) FROM intake.outbox"
                                 " WHERE type = 'intake.referral_requested'"), 6);
    cr_assert_eq (s_long (suite, "SELECT count(*) FROM intake.events"
                                 " WHERE processed_at <= '%s'", stamp), 4);
    s_stop (&suite);
}

Test (intake_process, unappliable_event_marked_and_queue_moves_on)
{
    fs_test_suite_t *suite = s_start ("proc_poison");
    //  Bytes that are not an event at all (cannot come through ingest: written directly)
    PGconn *conn = PQconnectdb (suite->pg_url);
    PGresult *result = PQexec (conn,
        "INSERT INTO intake.events (ref, source, external_id, type, occurred_at, content_hash,"
        " event) VALUES ('00000000-0000-4000-8000-000000000001', 'x', 'bad-1',"
        " 'attention.requested', now (), 'h', '\\xdeadbeef')");
    cr_assert_eq (PQresultStatus (result), PGRES_COMMAND_OK, "%s", PQerrorMessage (conn));
    PQclear (result);
    PQfinish (conn);
    //  Valid for the contract, refused by PostgreSQL (year 0000): fails inside the batch
    s_who_t ancient = s_anna;
    ancient.doc_number = "87654321X";
    ancient.birth = "0000-01-01";
    char odd [40], fine [40];
    s_attention (suite, &ancient, odd);
    s_attention (suite, &s_anna, fine);
    s_drain (suite);
    cr_assert_str_neq (s_text (suite, "SELECT process_error FROM intake.events"
                                      " WHERE external_id = 'bad-1'"), "(null)");
    cr_assert_str_neq (s_text (suite, "SELECT process_error FROM intake.events WHERE ref = '%s'",
                               odd), "(null)");
    cr_assert_eq (s_long (suite, "SELECT count(*) FROM intake.cases WHERE event_ref = '%s'", odd),
                  0);
    cr_assert_eq (s_long (suite, "SELECT count(*) FROM intake.cases WHERE event_ref = '%s'", fine),
                  1);
    cr_assert_str_eq (s_text (suite, "SELECT process_error FROM intake.events WHERE ref = '%s'",
                              fine), "(null)");
    s_stop (&suite);
}

// ---- the consumers of what processing emits ----------------------------------------------

Test (intake_process, consent_and_application_reach_their_consumers)
{
    fs_test_suite_t *suite = s_start ("proc_chain");
    fs_test_suite_start (suite, "referral-router");
    fs_test_suite_start (suite, "benefits-office");
    fs_test_suite_start (suite, "reporting");
    char granted [FS_UUID_LEN + 1];
    s_grant (suite, &s_anna, "c-9", "2026-01-01T09:00:00Z", granted);
    fs_ev_benefits_application_submitted_t application = { 0 };
    const fs_type_t *t = &fs_ev_benefits_application_submitted_type;
    fs_proto_set_str (t, &application, "programme", "emergency_aid");
    fs_proto_set_str (t, &application, "application_ref", "app-9");
    fs_proto_set_str (t, &application, "submitted_at", S_AT);
    fs_proto_set_str (t, &application, "channel", "in_person");
    char applied [FS_UUID_LEN + 1];
    s_publish (suite, &s_anna, t, &application, applied);
    s_drain (suite);

    //  The router keeps its own copy of the consent, as intake has it
    cr_assert (fs_test_pg_wait (suite->pg_url, "SELECT count(*) FROM referral_router.consents"
                                " WHERE status = 'granted'"
                                " AND purpose = 'social_health_coordination'"
                                " AND recipients = '{social_services,primary_care}'"
                                " AND data_categories = '{identity,social_health}'", 1, 20000),
               "the router has no copy of the consent");
    cr_assert_str_eq (s_text (suite, "SELECT consent_id::text || person_id::text"
                                     " FROM referral_router.consents"),
                      s_text (suite, "SELECT id::text || person_id::text FROM intake.consents"));
    //  Withdrawn: the router's copy follows and keeps the lists of the grant
    s_revoke (suite, &s_anna, "c-9", "2026-02-01T09:00:00Z", NULL);
    cr_assert (fs_test_pg_wait (suite->pg_url, "SELECT count(*) FROM referral_router.consents"
                                " WHERE status = 'withdrawn'"
                                " AND recipients = '{social_services,primary_care}'", 1, 20000),
               "the withdrawal did not reach the router");

    //  Benefits office records the application once, with the case intake opened
    cr_assert (fs_test_pg_wait (suite->pg_url, "SELECT count(*) FROM benefits_office.applications a"
                                " JOIN intake.cases c ON c.id = a.case_id"
                                " AND c.event_ref::text = a.event_ref", 1, 20000),
               "benefits-office did not record the application");
    //  Reporting counts them; nobody dead-lettered anything
    cr_assert (fs_test_pg_wait (suite->pg_url, "SELECT count FROM reporting.event_counts"
                                " WHERE type = 'intake.consent_changed'", 2, 20000));
    cr_assert (fs_test_pg_wait (suite->pg_url, "SELECT count FROM reporting.event_counts"
                                " WHERE type = 'intake.benefit_application_received'", 1, 20000));
    cr_assert (fs_test_pg_wait (suite->pg_url, "SELECT count FROM reporting.event_counts"
                                " WHERE type = 'intake.case_opened'", 1, 20000));
    cr_assert_eq (s_long (suite, "SELECT (SELECT count(*) FROM referral_router.dead_letter)"
                                 " + (SELECT count(*) FROM benefits_office.dead_letter)"
                                 " + (SELECT count(*) FROM reporting.dead_letter)"), 0);
    const char *others [] = { "reporting", "benefits-office", "referral-router" };
    for (int i = 0; i < 3; i++)
        cr_assert_eq (fs_test_suite_stop (suite, others [i], SIGTERM, 5000), 0);
    s_stop (&suite);
}

// ---- several workers ---------------------------------------------------------------------

Test (intake_process, a_burst_about_few_people_gives_one_file_each)
{
    fs_test_suite_t *suite = fs_test_suite_new ("proc_burst");
    fs_test_suite_setenv (suite, "FINESTRA_INTAKE_PROCESS_WORKERS", "4");
    fs_test_suite_setenv (suite, "FINESTRA_INTAKE_PROCESS_BATCH", "3");
    fs_test_suite_setenv (suite, "FINESTRA_INTAKE_PROCESS", "off");
    fs_test_suite_start (suite, "intake");
    //  Stored first, then processed by four workers in batches of three: the same people
    //  in every batch, new at the start (no file, no document for Joan)
    s_who_t moved = s_joan;
    moved.street = "Carrer de Sants";
    for (int i = 0; i < 10; i++) {
        s_attention (suite, &s_anna, NULL);
        s_attention (suite, &s_joan, NULL);
    }
    fs_ev_address_changed_t change = { 0 };
    s_address (&change.new_address, moved.street, moved.number, moved.postcode, NULL);
    change.present |= 1ull << fs_ev_address_changed_F_new_address;
    fs_proto_set_str (&fs_ev_address_changed_type, &change, "effective_date", S_DAY);
    s_publish (suite, &s_joan, &fs_ev_address_changed_type, &change, NULL);
    for (int i = 0; i < 10; i++) {
        s_attention (suite, &moved, NULL);
        s_attention (suite, &s_anna, NULL);
    }
    cr_assert_eq (fs_test_suite_stop (suite, "intake", SIGTERM, 5000), 0);
    fs_test_suite_setenv (suite, "FINESTRA_INTAKE_PROCESS", "on");
    fs_test_suite_start (suite, "intake");
    s_drain (suite);
    cr_assert_eq (s_long (suite, "SELECT count(*) FROM intake.persons"), 2);
    cr_assert_eq (s_long (suite, "SELECT count(*) FROM intake.match_candidates"), 0);
    cr_assert_eq (s_long (suite, "SELECT count(*) FROM intake.cases"), 40);
    //  Joan moved once, in seq order: one closed membership (Verdi), the current one at Sants
    cr_assert_eq (s_long (suite, "SELECT count(*) FROM intake.household_members"), 3);
    cr_assert_str_eq (s_text (suite, "SELECT h.street FROM intake.household_members m"
                                     " JOIN intake.households h ON h.id = m.household_id"
                                     " JOIN intake.persons p ON p.id = m.person_id"
                                     " WHERE m.until IS NOT NULL AND p.given_name = 'Joan'"),
                      "Carrer de Verdi");
    cr_assert_eq (s_long (suite, "SELECT count(*) FROM intake.events WHERE process_error IS NOT NULL"),
                  0);
    s_stop (&suite);
}

//  Runs sql on conn, which must succeed
static void
s_exec (PGconn *conn, const char *sql)
{
    PGresult *result = PQexec (conn, sql);
    cr_assert (PQresultStatus (result) == PGRES_COMMAND_OK
            || PQresultStatus (result) == PGRES_TUPLES_OK, "%s: %s", sql, PQerrorMessage (conn));
    PQclear (result);
}

//  A batch that ends without processing what it claimed (rolled back, or its intake killed
//  while PostgreSQL still held its locks) must not let a later event of one of its people go
//  first: here a connection plays such a batch, holding Anna's consent grant and Anna
Test (intake_process, a_batch_ended_unprocessed_does_not_reorder_a_person, .timeout = 60)
{
    fs_test_suite_t *suite = s_start ("proc_order");
    s_attention (suite, &s_anna, NULL);         //  her file, so her lock's key is known
    s_drain (suite);
    PGconn *batch = PQconnectdb (suite->pg_url);
    cr_assert_eq (PQstatus (batch), CONNECTION_OK);
    //  The gate, as a worker takes it before claiming: intake's workers wait for it
    s_exec (batch, "SELECT pg_advisory_lock (hashtext ('finestra.intake.process'))");
    char grant [FS_UUID_LEN + 1], revoke [FS_UUID_LEN + 1];
    s_grant (suite, &s_anna, "c-order", "2026-01-01T09:00:00Z", grant);
    s_revoke (suite, &s_anna, "c-order", "2026-02-01T09:00:00Z", revoke);
    char sql [512];
    s_exec (batch, "BEGIN");
    snprintf (sql, sizeof sql, "SELECT 1 FROM intake.events WHERE ref = '%s' FOR UPDATE", grant);
    s_exec (batch, sql);
    //  Her person lock, as process_batch takes it (010_process_mark.sql), then the gate opened
    s_exec (batch, "SELECT pg_advisory_xact_lock (1179403647, hashtext (name_key || '|'"
                   " || birth_date::text)) FROM intake.persons");
    s_exec (batch, "SELECT pg_advisory_unlock (hashtext ('finestra.intake.process'))");
    //  A worker claims the revocation (the grant is locked) and waits for Anna
    cr_assert (fs_test_pg_wait (suite->pg_url, "SELECT count(*) FROM pg_locks"
                                " WHERE locktype = 'advisory' AND objsubid = 2 AND NOT granted", 1, 20000),
               "no worker waited for Anna (log in %s)", suite->log_dir);
    s_exec (batch, "ROLLBACK");                 //  the batch ends, its grant unprocessed
    PQfinish (batch);
    s_drain (suite);
    //  Granted, then withdrawn: each announced, the grant processed no later than the revocation
    cr_assert_eq (s_long (suite, "SELECT count(*) FROM intake.outbox WHERE type ="
                                 " 'intake.consent_changed' AND correlation_id = '%s'"
                                 " AND consumer = 'referral-router'", grant), 1);
    cr_assert_eq (s_long (suite, "SELECT count(*) FROM intake.outbox WHERE type ="
                                 " 'intake.consent_changed' AND correlation_id = '%s'"
                                 " AND consumer = 'referral-router'", revoke), 1,
                  "the revocation went first (log in %s)", suite->log_dir);
    cr_assert_eq (s_long (suite, "SELECT count(*) FROM intake.events g, intake.events r"
                                 " WHERE g.ref = '%s' AND r.ref = '%s'"
                                 " AND g.processed_at <= r.processed_at", grant, revoke), 1);
    cr_assert_eq (s_long (suite, "SELECT count(*) FROM intake.consents WHERE consent_ref ="
                                 " 'c-order' AND withdrawn_at IS NOT NULL"), 1);
    s_stop (&suite);
}
