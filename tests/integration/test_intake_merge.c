/*  test_intake_merge - intake's registry tools through the real binary, as an operator runs
    them (finestra-intake candidates | merge | unmerge | dismiss | unplaced | place), on a
    fresh database whose rows the tests insert themselves: what moves, what is recorded,
    what is put back, what is refused (and that a refusal changes nothing), the events. */
#include "fs_test.h"

//  The files of the fixture: A, B, C, D; B is the duplicate in most tests
#define A "aaaaaaaa-0000-4000-8000-00000000000a"
#define B "aaaaaaaa-0000-4000-8000-00000000000b"
#define C "aaaaaaaa-0000-4000-8000-00000000000c"
#define D "aaaaaaaa-0000-4000-8000-00000000000d"
#define NOBODY "aaaaaaaa-0000-4000-8000-0000000000ff"
#define CASE_B  "cccccccc-0000-4000-8000-00000000000b"
#define CASE_A  "cccccccc-0000-4000-8000-00000000000a"
#define CASE_C  "cccccccc-0000-4000-8000-00000000000c"    //  unplaced
#define EV_C    "eeeeeeee-0000-4000-8000-00000000000c"

static const char s_fixture [] =
    "INSERT INTO intake.districts VALUES ('01', 'Ciutat Vella');"
    "INSERT INTO intake.neighbourhoods VALUES ('01', '01', 'el Raval'), ('02', '01', 'el Gotic');"
    "INSERT INTO intake.centres VALUES ('CSS-01', 'CSS Raval', '01', true);"
    "INSERT INTO intake.centre_neighbourhoods VALUES ('01', 'CSS-01');"
    //  Processed already: a running intake's processor leaves them alone
    "INSERT INTO intake.events (ref, source, external_id, type, occurred_at, content_hash, event,"
    "   processed_at)"
    " SELECT ('eeeeeeee-0000-4000-8000-00000000000' || x)::uuid, 'test', x, 'attention.requested',"
    "        now (), x, '\\x00', now () FROM unnest (ARRAY['a','b','c']) x;"
    "INSERT INTO intake.persons (id, given_name, family_name, name_key, birth_date, created_by)"
    " SELECT ('aaaaaaaa-0000-4000-8000-00000000000' || x)::uuid, 'Maria', 'Garcia ' || x,"
    "        'garcia maria', '1980-01-02', 'eeeeeeee-0000-4000-8000-00000000000a'"
    " FROM unnest (ARRAY['a','b','c','d']) x;"
    "INSERT INTO intake.person_documents VALUES"
    " ('DNI', '12345678Z', '" A "', true, '" A "'),"
    " ('NIE', 'X1234567L', '" B "', true, '" A "'),"
    " ('PASSPORT', 'P1', '" B "', true, '" A "'),"
    " ('DNI', '87654321X', '" C "', true, '" A "');"
    "INSERT INTO intake.cases (id, person_id, event_ref, event_type, centre_code,"
    "   neighbourhood_code, triage_level, triage_rule, due_date) VALUES"
    " ('" CASE_A "', '" A "', 'eeeeeeee-0000-4000-8000-00000000000a', 'attention.requested',"
    "  'CSS-01', '01', 'ordinary', 'default', '2026-12-30'),"
    " ('" CASE_B "', '" B "', 'eeeeeeee-0000-4000-8000-00000000000b', 'attention.requested',"
    "  'CSS-01', '01', 'urgent', 'eviction-30d', '2026-12-02'),"
    " ('" CASE_C "', '" C "', '" EV_C "', 'attention.requested',"
    "  NULL, NULL, 'preferent', 'default', '2026-12-10');"
    "INSERT INTO intake.unplaced (case_id, reason, postcode, neighbourhood) VALUES"
    " ('" CASE_C "', 'unknown_postcode', '08999', 'Atlantis');"
    "INSERT INTO intake.consents (id, person_id, purpose, given_at, source, event_ref) VALUES"
    " ('dddddddd-0000-4000-8000-00000000000b', '" B "', 'coordination', now (), 'test', '" A "'),"
    " ('dddddddd-0000-4000-8000-0000000000bb', '" B "', 'benefits', now (), 'test', '" A "');"
    "INSERT INTO intake.households (id, address_key, street, number, postcode, created_by) VALUES"
    " ('bbbbbbbb-0000-4000-8000-000000000001', 'k1', 'Carrer 1', '1', '08001', '" A "'),"
    " ('bbbbbbbb-0000-4000-8000-000000000002', 'k2', 'Carrer 2', '2', '08001', '" A "');"
    //  A lives at 1; B lived at 1, now at 2; C lives at 2; D has no household
    "INSERT INTO intake.household_members (id, household_id, person_id, until, opened_by) VALUES"
    " (1, 'bbbbbbbb-0000-4000-8000-000000000001', '" A "', NULL, '" A "'),"
    " (2, 'bbbbbbbb-0000-4000-8000-000000000001', '" B "', now (), '" A "'),"
    " (3, 'bbbbbbbb-0000-4000-8000-000000000002', '" B "', NULL, '" A "'),"
    " (4, 'bbbbbbbb-0000-4000-8000-000000000002', '" C "', NULL, '" A "');"
    "INSERT INTO intake.match_candidates (id, person_id, candidate_id, reason, event_ref) VALUES"
    " (1, '" B "', '" A "', 'same name and birth date; document differs', '" A "'),"
    " (2, '" C "', '" A "', 'same name and birth date; address differs', '" A "'),"
    " (3, '" D "', '" B "', 'same name and birth date; no document on either', '" A "');";

//  Who owns what, the registry as a person sees it (no timestamps): equal before a merge and
//  after its undo
static const char s_registry_sql [] =
    "SELECT concat_ws (E'\\n',"
    " (SELECT string_agg (id || '>' || coalesce (merged_into::text, '-'), ',' ORDER BY id)"
    "  FROM intake.persons),"
    " (SELECT string_agg (doc_type || doc_number || '>' || person_id, ','"
    "  ORDER BY doc_type, doc_number)"
    "  FROM intake.person_documents),"
    " (SELECT string_agg (id || '>' || person_id || '@' || coalesce (centre_code, '-'), ','"
    "  ORDER BY id) FROM intake.cases),"
    " (SELECT string_agg (id || '>' || person_id, ',' ORDER BY id) FROM intake.consents),"
    " (SELECT string_agg (id || '>' || person_id || '@' || household_id || ':'"
    "  || (until IS NULL)::text, ',' ORDER BY id) FROM intake.household_members),"
    " (SELECT string_agg (id || ':' || status || ':' || coalesce (decided_by, '-')"
    "  || coalesce (merge_id::text, '-'), ',' ORDER BY id) FROM intake.match_candidates),"
    " (SELECT string_agg (case_id || ':' || coalesce (resolved_by, '-'), ',')"
    "  FROM intake.unplaced))";

//  Everything, audit and outbox included: equal before and after a refusal
static const char s_everything_sql [] =
    "SELECT concat_ws (E'\\n', ("
    " SELECT concat_ws (E'\\n',"
    " (SELECT string_agg (id || '>' || coalesce (merged_into::text, '-'), ',' ORDER BY id)"
    "  FROM intake.persons),"
    " (SELECT string_agg (doc_type || doc_number || '>' || person_id, ','"
    "  ORDER BY doc_type, doc_number)"
    "  FROM intake.person_documents),"
    " (SELECT string_agg (id || '>' || person_id || '@' || coalesce (centre_code, '-'), ','"
    "  ORDER BY id) FROM intake.cases),"
    " (SELECT string_agg (id || '>' || person_id, ',' ORDER BY id) FROM intake.consents),"
    " (SELECT string_agg (id || '>' || person_id || '@' || household_id || ':'"
    "  || coalesce (until::text, '-'), ',' ORDER BY id) FROM intake.household_members),"
    " (SELECT string_agg (id || ':' || status || ':' || coalesce (decided_by, '-')"
    "  || coalesce (decided_at::text, '-'), ',' ORDER BY id) FROM intake.match_candidates),"
    " (SELECT string_agg (case_id || ':' || coalesce (resolved_by, '-'), ',')"
    "  FROM intake.unplaced))),"
    " (SELECT string_agg (m::text, ',' ORDER BY m.id) FROM intake.merges m),"
    " (SELECT count(*) FROM intake.outbox)::text)";

static char *s_url;

//  The output of the last run
static char s_out [16384], s_err [16384];

//  `finestra-intake ARGS...` on the test database (s_url), as an operator would; its stdout
//  and stderr land in s_out and s_err
static fs_test_command_t s_intake = {
    .service = "intake", .redis_prefix = "test:intake_merge:",
    .settings = (const char *const []) { "FINESTRA_PG_CONNECT_TIMEOUT_MS=10000", NULL },
    .capture = true, .out = s_out, .out_size = sizeof s_out, .err = s_err,
    .err_size = sizeof s_err
};
#define s_runv(args) fs_test_command_run (&s_intake, args)

//  Collects the NULL-terminated arguments after `first` into args[16]
#define S_ARGS(args, first) \
    const char *args [16] = { first }; \
    do { \
        va_list ap; \
        va_start (ap, first); \
        for (int n = 1; args [n - 1] && n < 15; n++) \
            args [n] = va_arg (ap, const char *); \
        va_end (ap); \
    } while (0)

#define s_run(...) fs_test_command_runl (&s_intake, __VA_ARGS__)

static PGconn *
s_connect (void)
{
    PGconn *conn = PQconnectdb (s_url);
    cr_assert (PQstatus (conn) == CONNECTION_OK, "%s", PQerrorMessage (conn));
    return conn;
}

static void
s_sql (const char *sql)
{
    PGconn *conn = s_connect ();
    PGresult *result = PQexec (conn, sql);
    cr_assert (PQresultStatus (result) == PGRES_COMMAND_OK
            || PQresultStatus (result) == PGRES_TUPLES_OK, "%s: %s", sql, PQerrorMessage (conn));
    PQclear (result);
    PQfinish (conn);
}

//  First column of the only row, as text ("" for NULL); malloc'd
#define s_text(sql) fs_test_pg_one (s_url, sql)
#define s_expect_text(sql, expected) fs_test_pg_expect_one (s_url, sql, expected)

//  The n-th (from 0, in emission order) outbox event for reporting, decoded
static void
s_outbox_event (int n, fs_envelope_t *env)
{
    PGconn *conn = s_connect ();
    char offset [16];
    snprintf (offset, sizeof offset, "%d", n);
    const char *values [1] = { offset };
    PGresult *result = PQexecParams (conn, "SELECT envelope FROM intake.outbox"
                                           " WHERE consumer = 'reporting' ORDER BY seq OFFSET $1",
                                     1, NULL, values, NULL, NULL, 1);
    cr_assert (PQresultStatus (result) == PGRES_TUPLES_OK, "%s", PQerrorMessage (conn));
    cr_assert (PQntuples (result) >= 1, "no outbox event %d", n);
    fs_proto_error_t err;
    cr_assert_eq (fs_envelope_decode (PQgetvalue (result, 0, 0),
                                      (size_t) PQgetlength (result, 0, 0), 1 << 20, env, &err),
                  0, "%s", err.message);
    PQclear (result);
    PQfinish (conn);
}

static void
s_setup (void)
{
    s_url = fs_test_db_create ("merge");
    s_intake.pg_url = s_url;
    //  The first command applies the migrations; the fixture goes in after
    cr_assert_eq (s_run ("candidates", NULL), 0, "%s", s_err);
    cr_assert (strstr (s_out, "0 pending candidates"), "%s", s_out);
    s_sql (s_fixture);
}

static void
s_teardown (void)
{
    fs_test_db_drop (s_url);
    free (s_url);
    s_url = NULL;
}

TestSuite (intake_merge, .init = s_setup, .fini = s_teardown, .timeout = 120);

Test (intake_merge, candidates_list_both_files)
{
    cr_assert_eq (s_run ("candidates", NULL), 0, "%s", s_err);
    cr_expect (strstr (s_out, "candidate 1  pending"), "%s", s_out);
    cr_expect (strstr (s_out, "new       " B "  Garcia b, Maria  born 1980-01-02"
                              "  NIE:X1234567L PASSPORT:P1  Carrer 2 2, 08001\n"), "%s", s_out);
    cr_expect (strstr (s_out, "existing  " A "  Garcia a, Maria  born 1980-01-02  DNI:12345678Z"
                              "  Carrer 1 1, 08001\n"), "%s", s_out);
    //  D has no document and no household
    cr_expect (strstr (s_out, "(no document)  (no household)"), "%s", s_out);
    cr_expect (strstr (s_out, "3 pending candidates"), "%s", s_out);
    cr_assert_eq (s_run ("candidates", "--json", "--status", "all", NULL), 0, "%s", s_err);
    //  One JSON object per line
    int lines = 0;
    for (char *c = s_out; *c; c++)
        lines += *c == '\n';
    cr_expect_eq (lines, 3, "%s", s_out);
    cr_expect (strstr (s_out, "\"documents\" : [\"NIE:X1234567L\",\"PASSPORT:P1\"]"), "%s", s_out);
    cr_expect (strstr (s_out, "\"status\" : \"pending\""), "%s", s_out);
    cr_expect (strstr (s_out, "\"address\" : \"Carrer 2 2, 08001\""), "%s", s_out);
    cr_assert_eq (s_run ("candidates", "--status", "all", NULL), 0, "%s", s_err);
    cr_expect (strstr (s_out, "\n3 candidates\n"), "%s", s_out);
    cr_assert_eq (s_run ("candidates", "--status", "merged", NULL), 0, "%s", s_err);
    cr_expect (strstr (s_out, "0 merged candidates"), "%s", s_out);
    cr_expect_eq (s_run ("candidates", "--status", "maybe", NULL), 2);
    cr_expect (strstr (s_err, "--status must be pending, merged, dismissed or all"), "%s", s_err);
}

Test (intake_merge, merge_moves_everything_and_records_it)
{
    cr_assert_eq (s_run ("merge", A, B, "--by", "ana.puig", "--reason", "same person, NIE and"
                         " passport", NULL), 0, "%s", s_err);
    cr_expect (strstr (s_out, "merge 1: " B " merged into " A " by ana.puig"), "%s", s_out);
    //  Everything of B is A's now; B points at A
    s_expect_text ("SELECT merged_into::text FROM intake.persons WHERE id = '" B "'", A);
    s_expect_text ("SELECT string_agg (doc_number, ',' ORDER BY doc_number)"
                   " FROM intake.person_documents WHERE person_id = '" A "'",
                   "12345678Z,P1,X1234567L");
    s_expect_text ("SELECT count(*) FROM intake.person_documents WHERE person_id = '" B "'", "0");
    s_expect_text ("SELECT person_id::text FROM intake.cases WHERE id = '" CASE_B "'", A);
    s_expect_text ("SELECT count(*) FROM intake.consents WHERE person_id = '" A "'", "2");
    //  A has a household of her own: B's current membership is closed, the past one kept
    s_expect_text ("SELECT string_agg (id || ':' || person_id || ':' || (until IS NULL),"
                   " ',' ORDER BY id) FROM intake.household_members",
                   "1:" A ":true,2:" B ":false,3:" B ":false,4:" C ":true");
    //  The merge row says exactly what moved, who, why
    s_expect_text ("SELECT concat_ws ('|', keep_id, merged_id, merged_by, reason, moved_documents,"
                   " moved_cases, moved_consents, moved_memberships, closed_memberships,"
                   " candidates, undone_at IS NULL) FROM intake.merges",
                   A "|" B "|ana.puig|same person, NIE and passport|{NIE:X1234567L,PASSPORT:P1}|"
                   "{" CASE_B "}|{dddddddd-0000-4000-8000-00000000000b,"
                   "dddddddd-0000-4000-8000-0000000000bb}|{}|{3}|{1}|t");
    //  The pair's candidate is merged, by whom and in which merge; the others wait
    s_expect_text ("SELECT string_agg (id || ':' || status || ':' || coalesce (decided_by, '-')"
                   " || ':' || coalesce (merge_id::text, '-') || ':' || (decided_at IS NOT NULL),"
                   " ',' ORDER BY id) FROM intake.match_candidates",
                   "1:merged:ana.puig:1:true,2:pending:-:-:false,3:pending:-:-:false");
    //  One event, to reporting, saying which merge
    s_expect_text ("SELECT string_agg (type || '>' || consumer, ',') FROM intake.outbox",
                   "intake.person_merged>reporting");
    fs_envelope_t env = { 0 };
    s_outbox_event (0, &env);
    cr_expect_str_eq (env.hdr.type, "intake.person_merged");
    fs_person_merged_t *merged = (fs_person_merged_t *) env.payload;
    cr_expect_eq (merged->merge_id, 1);
    cr_expect_str_eq (merged->keep_id, A);
    cr_expect_str_eq (merged->merged_id, B);
    fs_envelope_clear (&env);
    //  The lists show it
    cr_assert_eq (s_run ("candidates", "--status", "merged", NULL), 0);
    cr_expect (strstr (s_out, "MERGED INTO " A), "%s", s_out);
    cr_expect (strstr (s_out, "decided   by ana.puig at "), "%s", s_out);
    cr_expect (strstr (s_out, " in merge 1: same person"), "%s", s_out);
}

Test (intake_merge, merge_moves_membership_when_keep_has_none)
{
    //  D has no household: B's current membership becomes D's, and comes back on undo
    char *before = s_text (s_registry_sql);
    cr_assert_eq (s_run ("merge", D, B, "--by", "ana", "--reason", "same", "--candidate", "3",
                         NULL), 0, "%s", s_err);
    s_expect_text ("SELECT person_id::text || ':' || (until IS NULL)"
                   " FROM intake.household_members WHERE id = 3", D ":true");
    s_expect_text ("SELECT person_id::text FROM intake.household_members WHERE id = 2", B);
    s_expect_text ("SELECT moved_memberships::text || closed_memberships::text"
                   " || candidates::text FROM intake.merges", "{3}{}{3}");
    s_expect_text ("SELECT status FROM intake.match_candidates WHERE id = 1", "pending");
    cr_assert_eq (s_run ("unmerge", "1", "--by", "ana", "--reason", "not the same", NULL), 0,
                  "%s", s_err);
    char *after = s_text (s_registry_sql);
    cr_expect_str_eq (after, before);
    free (before);
    free (after);
}

Test (intake_merge, unmerge_restores_exactly)
{
    char *before = s_text (s_registry_sql);
    cr_assert_eq (s_run ("merge", A, B, "--by", "ana", "--reason", "same", NULL), 0, "%s", s_err);
    char *merged = s_text (s_registry_sql);
    cr_assert_str_neq (merged, before);
    cr_assert_eq (s_run ("unmerge", "1", "--by", "joan.roca", "--reason", "different mothers",
                         NULL), 0, "%s", s_err);
    cr_expect (strstr (s_out, "merge 1 undone by joan.roca: " B " is a file of its own again"),
               "%s", s_out);
    cr_expect (strstr (s_out, "2 document(s), 1 case(s), 2 consent(s), 0 household membership(s)"
                              " put back, 1 reopened"), "%s", s_out);
    cr_expect (!strstr (s_out, "while merged"), "%s", s_out);
    //  Documents, cases, consents, memberships, merged_into and the candidate as they were
    char *after = s_text (s_registry_sql);
    cr_expect_str_eq (after, before);
    //  The merge stays in the audit, undone: who, when, why
    s_expect_text ("SELECT concat_ws ('|', merged_by, undone_by, undo_reason,"
                   " undone_at IS NOT NULL) FROM intake.merges",
                   "ana|joan.roca|different mothers|t");
    s_expect_text ("SELECT string_agg (type, ',' ORDER BY seq) FROM intake.outbox",
                   "intake.person_merged,intake.person_unmerged");
    fs_envelope_t env = { 0 };
    s_outbox_event (1, &env);
    cr_expect_str_eq (env.hdr.type, "intake.person_unmerged");
    fs_person_unmerged_t *unmerged = (fs_person_unmerged_t *) env.payload;
    cr_expect_eq (unmerged->merge_id, 1);
    cr_expect_str_eq (unmerged->keep_id, A);
    cr_expect_str_eq (unmerged->merged_id, B);
    fs_envelope_clear (&env);
    //  Separate again, they may be merged again (a new merge)
    cr_expect_eq (s_run ("merge", A, B, "--by", "ana", "--reason", "after all", NULL), 0,
                  "%s", s_err);
    cr_expect (strstr (s_out, "merge 2:"), "%s", s_out);
    free (before);
    free (merged);
    free (after);
}

//  Runs a command that must be refused: exit 2, the message, and nothing changed
static void
s_refused (const char *why, const char *arg, ...) __attribute__ ((sentinel));

static void
s_refused (const char *why, const char *arg, ...)
{
    S_ARGS (args, arg);
    char *before = s_text (s_everything_sql);
    int rc = s_runv (args);
    cr_expect_eq (rc, 2, "%s %s %s: exit %d, %s", args [0], args [1], args [2], rc, s_err);
    cr_expect (strstr (s_err, why), "%s %s %s: expected '%s' in: %s", args [0], args [1],
               args [2], why, s_err);
    char *after = s_text (s_everything_sql);
    cr_expect_str_eq (after, before, "%s %s %s changed something", args [0], args [1], args [2]);
    free (before);
    free (after);
}

#define S_AUDIT "--by", "ana", "--reason", "test"

Test (intake_merge, refusals_change_nothing)
{
    //  Arguments
    s_refused ("missing KEEP_ID and MERGED_ID", "merge", A, S_AUDIT, NULL, NULL, NULL);
    s_refused ("KEEP_ID 'nope' is not a file id", "merge", "nope", B, S_AUDIT, NULL, NULL);
    s_refused ("--by WHO is required", "merge", A, B, "--reason", "x", NULL, NULL, NULL);
    s_refused ("--reason TEXT is required", "merge", A, B, "--by", "ana", NULL, NULL, NULL);
    s_refused ("--by must be 1 to 128 printable bytes", "merge", A, B, "--by", " ", "--reason",
               "x", NULL);
    s_refused ("unknown option --force", "merge", A, B, S_AUDIT, "--force", NULL);
    s_refused ("unexpected argument", "merge", A, B, C, S_AUDIT, NULL);
    s_refused ("--candidate 'x' is not a candidate number", "merge", A, B, S_AUDIT,
               "--candidate", "x", NULL);
    //  Files
    s_refused ("no person file " NOBODY " (KEEP_ID)", "merge", NOBODY, B, S_AUDIT, NULL, NULL);
    s_refused ("no person file " NOBODY " (MERGED_ID)", "merge", A, NOBODY, S_AUDIT, NULL, NULL);
    s_refused ("KEEP_ID and MERGED_ID are the same file", "merge", A,
               "AAAAAAAA-0000-4000-8000-00000000000A", S_AUDIT, NULL, NULL);
    //  Candidates that do not fit
    s_refused ("no candidate 9", "merge", A, B, S_AUDIT, "--candidate", "9", NULL);
    s_refused ("candidate 2 is about files " C " and " A ", not these two", "merge", A, B,
               S_AUDIT, "--candidate", "2", NULL);
    cr_assert_eq (s_run ("dismiss", "1", S_AUDIT, NULL), 0, "%s", s_err);
    s_refused ("candidate 1 is already dismissed", "merge", A, B, S_AUDIT, "--candidate", "1",
               NULL);

    //  Already merged, KEEP merged
    cr_assert_eq (s_run ("merge", A, B, S_AUDIT, NULL), 0, "%s", s_err);
    s_refused ("MERGED_ID " B " is already merged into " A " (merge 1)", "merge", C, B, S_AUDIT,
               NULL, NULL);
    s_refused ("KEEP_ID " B " is itself merged into " A " (merge 1)", "merge", B, C, S_AUDIT,
               NULL, NULL);
    //  Unmerge: unknown, bad, twice
    s_refused ("no merge 7", "unmerge", "7", S_AUDIT, NULL, NULL, NULL);
    s_refused ("MERGE_ID '0' is not a merge number", "unmerge", "0", S_AUDIT, NULL, NULL, NULL);
    s_refused ("--reason TEXT is required", "unmerge", "1", "--by", "ana", NULL, NULL, NULL,
               NULL);
    cr_assert_eq (s_run ("unmerge", "1", S_AUDIT, NULL), 0, "%s", s_err);
    s_refused ("merge 1 was already undone at ", "unmerge", "1", S_AUDIT, NULL, NULL, NULL);
}

Test (intake_merge, chained_merge_must_be_undone_first)
{
    char *before = s_text (s_registry_sql);
    cr_assert_eq (s_run ("merge", A, B, S_AUDIT, NULL), 0, "%s", s_err);      //  1: B into A
    cr_assert_eq (s_run ("merge", C, A, S_AUDIT, NULL), 0, "%s", s_err);      //  2: A into C
    //  B's documents went to A, then on to C
    s_expect_text ("SELECT count(*) FROM intake.person_documents WHERE person_id = '" C "'", "4");
    s_refused ("the kept file " A " has been merged into " C " since (merge 2): undo merge 2 first",
               "unmerge", "1", S_AUDIT, NULL, NULL, NULL);
    cr_assert_eq (s_run ("unmerge", "2", S_AUDIT, NULL), 0, "%s", s_err);
    cr_assert_eq (s_run ("unmerge", "1", S_AUDIT, NULL), 0, "%s", s_err);
    char *after = s_text (s_registry_sql);
    cr_expect_str_eq (after, before);
    s_expect_text ("SELECT string_agg (type, ',' ORDER BY seq) FROM intake.outbox",
                   "intake.person_merged,intake.person_merged,intake.person_unmerged,"
                   "intake.person_unmerged");
    free (before);
    free (after);
}

Test (intake_merge, unmerge_names_cases_opened_while_merged)
{
    //  A case the processor opened on the kept file after the merge cannot be told apart:
    //  it stays, and unmerge names it for the operator to check
    cr_assert_eq (s_run ("merge", A, B, S_AUDIT, NULL), 0, "%s", s_err);
    s_sql ("INSERT INTO intake.events (ref, source, external_id, type, occurred_at, content_hash,"
           " event, processed_at) VALUES ('eeeeeeee-0000-4000-8000-00000000000d', 'test', 'd',"
           " 'attention.requested', now (), 'd', '\\x00', now ());"
           "INSERT INTO intake.cases (id, person_id, event_ref, event_type, centre_code,"
           " neighbourhood_code, triage_level, triage_rule, due_date, opened_at) VALUES"
           " ('cccccccc-0000-4000-8000-00000000000d', '" A "',"
           " 'eeeeeeee-0000-4000-8000-00000000000d', 'attention.requested', 'CSS-01', '01',"
           " 'ordinary', 'default', '2026-12-30', now ())");
    cr_assert_eq (s_run ("unmerge", "1", S_AUDIT, NULL), 0, "%s", s_err);
    cr_expect (strstr (s_out, "cases opened on " A " while merged stay with it; check whose they"
                              " are: cccccccc-0000-4000-8000-00000000000d\n"), "%s", s_out);
    s_expect_text ("SELECT person_id::text FROM intake.cases"
                   " WHERE id = 'cccccccc-0000-4000-8000-00000000000d'", A);
}

Test (intake_merge, moved_item_gone_refuses_unmerge)
{
    //  Something the merge moved is no longer where it put it (here: by hand): unmerge
    //  cannot put it back exactly, and says so instead of half-undoing
    cr_assert_eq (s_run ("merge", A, B, S_AUDIT, NULL), 0, "%s", s_err);
    s_sql ("UPDATE intake.cases SET person_id = '" D "' WHERE id = '" CASE_B "'");
    s_refused ("not all of the 1 cases moved by merge 1 are where it put them any more",
               "unmerge", "1", S_AUDIT, NULL, NULL, NULL);
    s_expect_text ("SELECT merged_into::text FROM intake.persons WHERE id = '" B "'", A);
}

Test (intake_merge, dismiss_candidates)
{
    cr_assert_eq (s_run ("dismiss", "2", "--by", "ana", "--reason", "different people", NULL), 0,
                  "%s", s_err);
    cr_expect (strstr (s_out, "candidate 2 dismissed by ana"), "%s", s_out);
    s_expect_text ("SELECT concat_ws ('|', status, decided_by, decision_reason,"
                   " decided_at IS NOT NULL) FROM intake.match_candidates WHERE id = 2",
                   "dismissed|ana|different people|t");
    s_refused ("candidate 2 is already dismissed (by ana at ", "dismiss", "2", S_AUDIT, NULL,
               NULL, NULL);
    s_refused ("no candidate 99", "dismiss", "99", S_AUDIT, NULL, NULL, NULL);
    s_refused ("CANDIDATE_ID '-1' is not a candidate number", "dismiss", "-1", S_AUDIT, NULL,
               NULL, NULL);
    cr_assert_eq (s_run ("merge", A, B, S_AUDIT, NULL), 0, "%s", s_err);
    s_refused ("candidate 1 is already merged", "dismiss", "1", S_AUDIT, NULL, NULL, NULL);
    //  Pending ones only, by default
    cr_assert_eq (s_run ("candidates", NULL), 0, "%s", s_err);
    cr_expect (strstr (s_out, "candidate 3  pending"), "%s", s_out);
    cr_expect (!strstr (s_out, "candidate 1 "), "%s", s_out);
    cr_expect (!strstr (s_out, "candidate 2 "), "%s", s_out);
    cr_expect (strstr (s_out, "1 pending candidate\n"), "%s", s_out);
    cr_assert_eq (s_run ("candidates", "--status", "dismissed", NULL), 0, "%s", s_err);
    cr_expect (strstr (s_out, "candidate 2  dismissed"), "%s", s_out);
    cr_expect (strstr (s_out, "decided   by ana at "), "%s", s_out);
    //  Dismissing changes no file and emits nothing
    s_expect_text ("SELECT string_agg (type, ',') FROM intake.outbox", "intake.person_merged");
}

Test (intake_merge, unplaced_and_place)
{
    cr_assert_eq (s_run ("unplaced", NULL), 0, "%s", s_err);
    cr_expect (strstr (s_out, CASE_C "  preferent  2026-12-10  0m       08999     Atlantis"
                              "       unknown_postcode"), "%s", s_out);
    cr_expect (strstr (s_out, "1 unplaced case waiting"), "%s", s_out);
    cr_assert_eq (s_run ("unplaced", "--json", NULL), 0, "%s", s_err);
    cr_expect (strstr (s_out, "\"reason\" : \"unknown_postcode\""), "%s", s_out);

    s_refused ("no centre CSS-99", "place", CASE_C, "CSS-99", "--by", "ana", NULL, NULL, NULL);
    s_refused ("no neighbourhood 77", "place", CASE_C, "CSS-01", "--by", "ana",
               "--neighbourhood", "77", NULL);
    s_refused ("no case " NOBODY, "place", NOBODY, "CSS-01", "--by", "ana", NULL, NULL, NULL);
    s_refused ("case " CASE_B " is not in the unplaced queue (its centre is CSS-01)", "place",
               CASE_B, "CSS-01", "--by", "ana", NULL, NULL, NULL);
    s_refused ("--by WHO is required", "place", CASE_C, "CSS-01", NULL, NULL, NULL, NULL, NULL);
    s_refused ("unknown option --reason", "place", CASE_C, "CSS-01", "--by", "ana", "--reason",
               "x", NULL);

    cr_assert_eq (s_run ("place", CASE_C, "CSS-01", "--by", "ana", "--neighbourhood", "02", NULL),
                  0, "%s", s_err);
    cr_expect (strstr (s_out, "case " CASE_C " placed at centre CSS-01 by ana"), "%s", s_out);
    s_expect_text ("SELECT centre_code || ':' || neighbourhood_code FROM intake.cases"
                   " WHERE id = '" CASE_C "'", "CSS-01:02");
    s_expect_text ("SELECT concat_ws ('|', resolved_by, resolved_centre, resolved_at IS NOT NULL)"
                   " FROM intake.unplaced", "ana|CSS-01|t");
    //  The event, in the chain of the event that opened the case
    s_expect_text ("SELECT type || ':' || correlation_id FROM intake.outbox",
                   "intake.case_placed:" EV_C);
    fs_envelope_t env = { 0 };
    s_outbox_event (0, &env);
    fs_case_placed_t *placed = (fs_case_placed_t *) env.payload;
    cr_expect_str_eq (env.hdr.type, "intake.case_placed");
    cr_expect_str_eq (placed->case_id, CASE_C);
    cr_expect_str_eq (placed->centre, "CSS-01");
    cr_expect_str_eq (placed->neighbourhood, "02");
    fs_envelope_clear (&env);

    s_refused ("case " CASE_C " was already placed at CSS-01 by ana at ", "place", CASE_C,
               "CSS-01", "--by", "ana", NULL, NULL, NULL);
    cr_assert_eq (s_run ("unplaced", NULL), 0, "%s", s_err);
    cr_expect (strstr (s_out, "0 unplaced cases waiting"), "%s", s_out);
    cr_expect (!strstr (s_out, CASE_C), "%s", s_out);
    cr_assert_eq (s_run ("unplaced", "--all", NULL), 0, "%s", s_err);
    cr_expect (strstr (s_out, "[placed at CSS-01 by ana, "), "%s", s_out);
}

Test (intake_merge, help_and_unknown_command)
{
    cr_expect_eq (s_run ("merge", "--help", NULL), 0);
    cr_expect (strstr (s_out, "usage: finestra-intake candidates"), "%s", s_out);
    cr_expect_eq (s_run ("unmerge", NULL), 2);
    cr_expect (strstr (s_err, "finestra-intake unmerge: missing MERGE_ID"), "%s", s_err);
    cr_expect_eq (s_run ("merj", NULL), 2);
    cr_expect (strstr (s_err, "unknown command 'merj'"), "%s", s_err);
}

//  The events reach their consumer: a running intake's relay delivers them to reporting, which
//  counts them (routes.conf and reporting's handlers agree), nothing dead-lettered
Test (intake_merge_delivery, events_reach_reporting, .timeout = 120)
{
    fs_test_suite_t *suite = fs_test_suite_new ("mergebus");
    fs_test_suite_start (suite, "reporting");
    fs_test_suite_start (suite, "intake");
    s_url = suite->pg_url;
    s_intake.pg_url = s_url;
    s_sql (s_fixture);
    cr_assert_eq (s_run ("merge", A, B, S_AUDIT, NULL), 0, "%s", s_err);
    cr_assert_eq (s_run ("unmerge", "1", S_AUDIT, NULL), 0, "%s", s_err);
    cr_assert_eq (s_run ("place", CASE_C, "CSS-01", "--by", "ana", NULL), 0, "%s", s_err);
    const char *types [3] = { "intake.person_merged", "intake.person_unmerged",
                              "intake.case_placed" };
    for (int i = 0; i < 3; i++) {
        char sql [256];
        snprintf (sql, sizeof sql, "SELECT count FROM reporting.event_counts WHERE type = '%s'",
                  types [i]);
        cr_expect (fs_test_pg_wait (s_url, sql, 1, 20000), "%s not counted by reporting; see %s",
                   types [i], suite->log_dir);
    }
    cr_expect_eq (fs_test_pg_long (s_url, "SELECT count(*) FROM reporting.dead_letter"), 0);
    cr_expect (fs_test_pg_wait (s_url, "SELECT count(*) FROM intake.outbox"
                                       " WHERE outcome IS DISTINCT FROM 'applied'", 0, 20000));
    s_url = NULL;
    fs_test_suite_destroy (&suite);
}

//  A statement on a connection of the test's own (a second operator), which must succeed
static void
s_exec (PGconn *conn, const char *sql)
{
    PGresult *result = PQexec (conn, sql);
    cr_assert (PQresultStatus (result) == PGRES_COMMAND_OK
            || PQresultStatus (result) == PGRES_TUPLES_OK, "%s: %s", sql, PQerrorMessage (conn));
    PQclear (result);
}

//  Another transaction decides first and commits while the command waits for its locks: the
//  command sees the decision and refuses instead of deciding twice
Test (intake_merge, concurrent_decisions_serialise)
{
    static const char waiting [] = "SELECT count(*) FROM pg_stat_activity"
                                   " WHERE wait_event_type = 'Lock'"
                                   " AND datname = current_database ()";
    PGconn *other = s_connect ();
    s_exec (other, "BEGIN");
    s_exec (other, "UPDATE intake.persons SET merged_into = '" C "' WHERE id = '" B "'");
    const char *merge [] = { "merge", A, B, S_AUDIT, NULL };
    pid_t pid = fs_test_command_spawn (&s_intake, merge);
    cr_assert (fs_test_pg_wait (s_url, waiting, 1, 20000), "merge did not wait for the lock");
    s_exec (other, "COMMIT");
    cr_expect_eq (fs_test_command_wait (&s_intake, pid), 2, "%s%s", s_out, s_err);
    cr_expect (strstr (s_err, "MERGED_ID " B " is already merged into " C), "%s", s_err);
    s_expect_text ("SELECT count(*) FROM intake.merges", "0");

    s_exec (other, "BEGIN");
    s_exec (other, "UPDATE intake.unplaced SET resolved_at = now (), resolved_by = 'joan',"
                   " resolved_centre = 'CSS-01' WHERE case_id = '" CASE_C "'");
    const char *place [] = { "place", CASE_C, "CSS-01", "--by", "ana", NULL };
    pid = fs_test_command_spawn (&s_intake, place);
    cr_assert (fs_test_pg_wait (s_url, waiting, 1, 20000), "place did not wait for the lock");
    s_exec (other, "COMMIT");
    cr_expect_eq (fs_test_command_wait (&s_intake, pid), 2, "%s%s", s_out, s_err);
    cr_expect (strstr (s_err, "case " CASE_C " was placed by someone else meanwhile"), "%s", s_err);
    s_expect_text ("SELECT resolved_by FROM intake.unplaced", "joan");
    s_expect_text ("SELECT count(*) FROM intake.outbox", "0");
    PQfinish (other);
}

//  ----------------------------------------------------------------------------------------
//  The person facts routing reads (migration 011): B is a woman registered on the padró with
//  two benefit applications; C has a sex and a registration of her own; A has one application

#define EV_REG_B "eeeeeeee-0000-4000-8000-0000000000b1"
#define EV_REG_C "eeeeeeee-0000-4000-8000-0000000000c1"
#define EV_REG_A "eeeeeeee-0000-4000-8000-0000000000a1"

static const char s_facts_fixture [] =
    "UPDATE intake.persons SET sex = 'female', registered_key = 'k2', registered_hood = '01',"
    " registered_on = '2019-05-06', registered_by = '" EV_REG_B "' WHERE id = '" B "';"
    "UPDATE intake.persons SET sex = 'non_binary', registered_key = 'k2',"
    " registered_hood = '02', registered_on = '2021-01-01', registered_by = '" EV_REG_C "'"
    " WHERE id = '" C "';"
    "INSERT INTO intake.benefit_applications VALUES"
    " ('ffffffff-0000-4000-8000-0000000000b1', '" B "', 'ingreso_minimo_vital',"
    "  '2026-03-01', 'benefits', 'IMV-1'),"
    " ('ffffffff-0000-4000-8000-0000000000b2', '" B "', 'housing_aid', '2026-05-01',"
    "  'benefits', 'HA-2'),"
    " ('ffffffff-0000-4000-8000-0000000000a1', '" A "', 'food_aid', '2026-04-01',"
    "  'benefits', 'FA-1');";

//  Every file's facts and whose each benefit application is
static const char s_facts_sql [] =
    "SELECT concat_ws (E'\\n',"
    " (SELECT string_agg (id || ':' || coalesce (sex, '-') || ':'"
    "  || coalesce (registered_key, '-') || ':' || coalesce (registered_hood, '-') || ':'"
    "  || coalesce (registered_on::text, '-') || ':' || coalesce (registered_by::text, '-'),"
    "  ',' ORDER BY id) FROM intake.persons),"
    " (SELECT string_agg (application_ref || '>' || person_id, ',' ORDER BY application_ref)"
    "  FROM intake.benefit_applications))";

Test (intake_merge, merge_carries_person_facts)
{
    s_sql (s_facts_fixture);
    char *before = s_text (s_facts_sql);
    char *registry = s_text (s_registry_sql);
    //  A has no sex or registration of her own: she takes B's; B's applications follow her
    cr_assert_eq (s_run ("merge", A, B, S_AUDIT, NULL), 0, "%s", s_err);
    cr_expect (strstr (s_out, "(the kept file's household stands), 2 benefit application(s)"
                              " moved\n"), "%s", s_out);
    cr_expect (strstr (s_out, "  sex: taken from the merged file, female; padró registration:"
                              " taken from the merged file, event " EV_REG_B "\n"), "%s", s_out);
    s_expect_text ("SELECT concat_ws (':', sex, registered_key, registered_hood, registered_on,"
                   " registered_by) FROM intake.persons WHERE id = '" A "'",
                   "female:k2:01:2019-05-06:" EV_REG_B);
    //  B's own stay on B (for its unmerge); the applications are A's
    s_expect_text ("SELECT concat_ws (':', sex, registered_by) FROM intake.persons"
                   " WHERE id = '" B "'", "female:" EV_REG_B);
    s_expect_text ("SELECT string_agg (application_ref, ',' ORDER BY application_ref)"
                   " FROM intake.benefit_applications WHERE person_id = '" A "'",
                   "FA-1,HA-2,IMV-1");
    s_expect_text ("SELECT concat_ws ('|', moved_benefits, taken_sex, taken_registration)"
                   " FROM intake.merges",
                   "{ffffffff-0000-4000-8000-0000000000b1,ffffffff-0000-4000-8000-0000000000b2}"
                   "|female|" EV_REG_B);

    //  Unmerge puts back what the merge moved and took
    cr_assert_eq (s_run ("unmerge", "1", S_AUDIT, NULL), 0, "%s", s_err);
    cr_expect (strstr (s_out, "1 reopened, 2 benefit application(s) put back; the sex it took is"
                              " taken back; the padró registration it took is taken back\n"),
               "%s", s_out);
    char *after = s_text (s_facts_sql);
    cr_expect_str_eq (after, before);
    free (after);
    after = s_text (s_registry_sql);
    cr_expect_str_eq (after, registry);
    free (after);
    free (before);
    free (registry);
}

Test (intake_merge, kept_file_facts_win)
{
    //  C has her own sex and registration: they stand; B's applications still move
    s_sql (s_facts_fixture);
    char *before = s_text (s_facts_sql);
    cr_assert_eq (s_run ("merge", C, B, S_AUDIT, NULL), 0, "%s", s_err);
    cr_expect (strstr (s_out, "  sex: the kept file's own (or none); padró registration: the"
                              " kept file's own (or none)\n"), "%s", s_out);
    s_expect_text ("SELECT concat_ws (':', sex, registered_hood, registered_by)"
                   " FROM intake.persons WHERE id = '" C "'", "non_binary:02:" EV_REG_C);
    s_expect_text ("SELECT count(*) FROM intake.benefit_applications"
                   " WHERE person_id = '" C "'", "2");
    s_expect_text ("SELECT concat_ws ('|', cardinality (moved_benefits), taken_sex IS NULL,"
                   " taken_registration IS NULL) FROM intake.merges", "2|t|t");
    cr_assert_eq (s_run ("unmerge", "1", S_AUDIT, NULL), 0, "%s", s_err);
    cr_expect (!strstr (s_out, "it took"), "%s", s_out);
    char *after = s_text (s_facts_sql);
    cr_expect_str_eq (after, before);
    free (before);
    free (after);
}

Test (intake_merge, unmerge_keeps_facts_given_while_merged)
{
    //  While merged, events gave A a sex and registration of her own (the processor writes
    //  the surviving file): unmerge leaves them, says so, and still puts the applications back
    s_sql (s_facts_fixture);
    cr_assert_eq (s_run ("merge", A, B, S_AUDIT, NULL), 0, "%s", s_err);
    s_sql ("UPDATE intake.persons SET sex = 'male', registered_key = 'k1', registered_hood = '01',"
           " registered_on = '2026-11-01', registered_by = '" EV_REG_A "' WHERE id = '" A "'");
    cr_assert_eq (s_run ("unmerge", "1", S_AUDIT, NULL), 0, "%s", s_err);
    cr_expect (strstr (s_out, "; the sex it took was since given by a later event: it stays;"
                              " the padró registration it took was since replaced: the new one"
                              " stays\n"), "%s", s_out);
    s_expect_text ("SELECT concat_ws (':', sex, registered_key, registered_by)"
                   " FROM intake.persons WHERE id = '" A "'", "male:k1:" EV_REG_A);
    s_expect_text ("SELECT string_agg (application_ref || '>' || person_id, ','"
                   " ORDER BY application_ref) FROM intake.benefit_applications",
                   "FA-1>" A ",HA-2>" B ",IMV-1>" B);
}

Test (intake_merge, moved_benefit_gone_refuses_unmerge)
{
    s_sql (s_facts_fixture);
    cr_assert_eq (s_run ("merge", A, B, S_AUDIT, NULL), 0, "%s", s_err);
    s_sql ("UPDATE intake.benefit_applications SET person_id = '" D "'"
           " WHERE application_ref = 'HA-2'");
    s_refused ("not all of the 2 benefit applications moved by merge 1 are where it put them",
               "unmerge", "1", S_AUDIT, NULL, NULL, NULL);
    //  Nothing was half put back: A still has her taken sex, B is still merged
    s_expect_text ("SELECT string_agg (concat_ws (':', sex, merged_into), ',' ORDER BY id)"
                   " FROM intake.persons WHERE id IN ('" A "', '" B "')",
                   "female,female:" A);
}
