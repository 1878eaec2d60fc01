/*  intake_admin - the registry tools an operator runs: candidates, merge, unmerge, dismiss,
    unplaced, place. Each change is one transaction, audited (who, when, why), and either
    happens whole with its event in the outbox, or is refused with a reason and changes
    nothing. Exit codes: 0 done, 2 wrong arguments or refused, 1 database failure. */
#include "intake.h"

#define S_BY_MAX     128            //  bytes of --by
#define S_REASON_MAX 1000           //  bytes of --reason

static const char *s_usage_text =
    "usage: finestra-intake candidates [--status pending|merged|dismissed|all] [--json]\n"
    "       finestra-intake merge KEEP_ID MERGED_ID --by WHO --reason TEXT [--candidate ID]\n"
    "       finestra-intake unmerge MERGE_ID --by WHO --reason TEXT\n"
    "       finestra-intake dismiss CANDIDATE_ID --by WHO --reason TEXT\n"
    "       finestra-intake unplaced [--all] [--json]\n"
    "       finestra-intake place CASE_ID CENTRE_CODE --by WHO [--neighbourhood CODE]\n";

//  One command-line option: its name, whether it takes a value, and what was given
typedef struct {
    const char *name;               //  "--by"
    bool takes_value;               //  false: a flag
    const char *value;              //  out: the value (flags: "")
} s_opt_t;

static int
s_usage (const char *cmd, const char *format, ...) __attribute__ ((format (printf, 2, 3)));

//  Names what is wrong with the arguments, then the usage: exit code 2
static int
s_usage (const char *cmd, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    fprintf (stderr, "finestra-intake %s: ", cmd);
    vfprintf (stderr, format, args);
    fprintf (stderr, "\n%s", s_usage_text);
    va_end (args);
    return 2;
}

//  Splits argv (argv[0] is the command) into exactly npos positional arguments and the
//  options in opts. 0, 1 for --help (usage printed), or 2 after naming what is wrong
static int
s_parse (int argc, char **argv, s_opt_t *opts, const char **pos, int npos, const char *names)
{
    const char *cmd = argv [0];
    int given = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv [i];
        if (streq (arg, "--help") || streq (arg, "-h")) {
            printf ("%s", s_usage_text);
            return 1;
        }
        if (strncmp (arg, "--", 2) == 0) {
            s_opt_t *opt = opts;
            while (opt && opt->name && !streq (opt->name, arg))
                opt++;
            if (!opt || !opt->name)
                return s_usage (cmd, "unknown option %s", arg);
            if (opt->value)
                return s_usage (cmd, "%s given twice", arg);
            if (!opt->takes_value)
                opt->value = "";
            else
            if (i + 1 >= argc)
                return s_usage (cmd, "%s needs a value", arg);
            else
                opt->value = argv [++i];
            continue;
        }
        if (given == npos)
            return s_usage (cmd, "unexpected argument '%s'", arg);
        pos [given++] = arg;
    }
    if (given < npos)
        return s_usage (cmd, "missing %s", names);
    return 0;
}

static const char *
s_opt (s_opt_t *opts, const char *name)
{
    for (s_opt_t *opt = opts; opt->name; opt++)
        if (streq (opt->name, name))
            return opt->value;
    return NULL;
}

static bool
s_is_uuid (const char *text)
{
    if (strlen (text) != FS_UUID_LEN)
        return false;
    for (int i = 0; i < FS_UUID_LEN; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? text [i] != '-' : !isxdigit ((unsigned char) text [i]))
            return false;
    }
    return true;
}

//  A positive bigserial id: 1 to 18 digits, no sign, no leading zero
static bool
s_is_id (const char *text)
{
    size_t len = strlen (text);
    if (len == 0 || len > 18 || text [0] == '0')
        return false;
    return strspn (text, "0123456789") == len;
}

//  Free text given by a person (--by, --reason): not blank, no control characters, bounded
static bool
s_is_text (const char *text, size_t max)
{
    size_t len = strlen (text);
    if (len == 0 || len > max || strspn (text, " \t") == len)
        return false;
    for (const char *c = text; *c; c++)
        if ((unsigned char) *c < 0x20 || *c == 0x7f)
            return false;
    return true;
}

//  Checks --by and --reason (when wanted): 0, or 2 after saying which is wrong
static int
s_check_audit (const char *cmd, s_opt_t *opts, bool reason_wanted)
{
    const char *by = s_opt (opts, "--by");
    const char *reason = s_opt (opts, "--reason");
    if (!by)
        return s_usage (cmd, "--by WHO is required (who decides, for the audit)");
    if (!s_is_text (by, S_BY_MAX))
        return s_usage (cmd, "--by must be 1 to %d printable bytes, not blank", S_BY_MAX);
    if (reason_wanted && !reason)
        return s_usage (cmd, "--reason TEXT is required (why, for the audit)");
    if (reason_wanted && !s_is_text (reason, S_REASON_MAX))
        return s_usage (cmd, "--reason must be 1 to %d printable bytes, not blank",
                        S_REASON_MAX);
    return 0;
}

//  A database failure: rolls back, says so; exit code 1
static int
s_failed (fs_pg_t *pg, const char *cmd)
{
    fprintf (stderr, "finestra-intake %s: database error: %s; nothing changed\n", cmd,
             fs_pg_error (pg));
    fs_pg_rollback (pg);
    return 1;
}

static int
s_refuse (fs_pg_t *pg, const char *cmd, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

//  A refusal: rolls back, says why; exit code 2
static int
s_refuse (fs_pg_t *pg, const char *cmd, const char *format, ...)
{
    fs_pg_rollback (pg);
    va_list args;
    va_start (args, format);
    fprintf (stderr, "finestra-intake %s: refused: ", cmd);
    vfprintf (stderr, format, args);
    fprintf (stderr, "; nothing changed\n");
    va_end (args);
    return 2;
}

//  Emits one of the registry's events inside the open transaction. cause_ref, when given,
//  is the stored external event that began the chain (its correlation id). 0 or -1
static int
s_emit (fs_server_t *server, const fs_type_t *type, void *payload, const char *cause_ref)
{
    fs_envelope_t cause = { 0 };
    cause.hdr.id = (char *) cause_ref;
    cause.hdr.correlation_id = (char *) cause_ref;
    fs_proto_error_t err;
    int rc = fs_outbox_emit (fs_server_pg (server), "intake", "intake", fs_server_routes (server),
                             type, payload, cause_ref ? &cause : NULL, NULL, &err);
    if (rc && err.message [0])
        fs_pg_set_error (fs_server_pg (server), "event %s not emitted: %s %s", type->wire,
                         err.field, err.message);
    return rc;
}

//  ----------------------------------------------------------------------------------------
//  candidates [--status pending|merged|dismissed|all] [--json]

//  Where a file lives now: its current household's address
#define S_ADDRESS(p) \
    "(SELECT h.street || ' ' || h.number || ', ' || h.postcode" \
    " FROM intake.household_members m JOIN intake.households h ON h.id = m.household_id" \
    " WHERE m.person_id = " p ".id AND m.until IS NULL)"

//  One file's side of a candidate, as 7 columns (id, given, family, birth, documents,
//  merged_into, address)
#define S_FILE_COLUMNS(p) \
    " " p ".id::text, " p ".given_name, " p ".family_name, " p ".birth_date::text," \
    " coalesce ((SELECT string_agg (d.doc_type || ':' || d.doc_number, ' '" \
    "            ORDER BY d.doc_type, d.doc_number) FROM intake.person_documents d" \
    "            WHERE d.person_id = " p ".id), '')," \
    " coalesce (" p ".merged_into::text, '')," \
    " coalesce (" S_ADDRESS (p) ", '')"

#define S_FILE_JSON(p) \
    "json_build_object ('id', " p ".id, 'given_name', " p ".given_name," \
    " 'family_name', " p ".family_name, 'birth_date', " p ".birth_date," \
    " 'documents', ARRAY (SELECT d.doc_type || ':' || d.doc_number" \
    "   FROM intake.person_documents d WHERE d.person_id = " p ".id" \
    "   ORDER BY d.doc_type, d.doc_number), 'merged_into', " p ".merged_into," \
    " 'address', " S_ADDRESS (p) ")"

static const char s_candidates_sql [] =
    "SELECT c.id::text, c.status, c.reason, to_char (c.created_at, 'YYYY-MM-DD HH24:MI'),"
    S_FILE_COLUMNS ("p") "," S_FILE_COLUMNS ("q") ","
    " coalesce (c.decided_by, ''), coalesce (to_char (c.decided_at, 'YYYY-MM-DD HH24:MI'), ''),"
    " coalesce (c.decision_reason, ''), coalesce (c.merge_id::text, ''),"
    " json_build_object ('id', c.id, 'status', c.status, 'reason', c.reason,"
    "   'created_at', c.created_at, 'person', " S_FILE_JSON ("p") ","
    "   'candidate', " S_FILE_JSON ("q") ", 'decided_by', c.decided_by,"
    "   'decided_at', c.decided_at, 'decision_reason', c.decision_reason,"
    "   'merge_id', c.merge_id)::text"
    " FROM intake.match_candidates c"
    " JOIN intake.persons p ON p.id = c.person_id"
    " JOIN intake.persons q ON q.id = c.candidate_id"
    " WHERE $1 = 'all' OR c.status = $1"
    " ORDER BY c.id";

static void
s_print_file (PGresult *result, int row, int col, const char *label)
{
    const char *merged = PQgetvalue (result, row, col + 5);
    const char *documents = PQgetvalue (result, row, col + 4);
    const char *address = PQgetvalue (result, row, col + 6);
    printf ("  %-9s %s  %s, %s  born %s  %s  %s%s%s\n", label, PQgetvalue (result, row, col),
            PQgetvalue (result, row, col + 2), PQgetvalue (result, row, col + 1),
            PQgetvalue (result, row, col + 3), *documents ? documents : "(no document)",
            *address ? address : "(no household)", *merged ? "  MERGED INTO " : "", merged);
}

static int
s_candidates (fs_server_t *server, int argc, char **argv)
{
    s_opt_t opts [] = { { "--status", true, NULL }, { "--json", false, NULL }, { NULL } };
    int rc = s_parse (argc, argv, opts, NULL, 0, "");
    if (rc)
        return rc == 1 ? 0 : rc;
    const char *status = s_opt (opts, "--status") ? s_opt (opts, "--status") : "pending";
    if (!streq (status, "pending") && !streq (status, "merged") && !streq (status, "dismissed")
    &&  !streq (status, "all"))
        return s_usage (argv [0], "--status must be pending, merged, dismissed or all, not '%s'",
                        status);
    fs_pg_t *pg = fs_server_pg (server);
    const char *values [1] = { status };
    PGresult *result = fs_pg_exec (pg, s_candidates_sql, 1, values);
    if (!result)
        return s_failed (pg, argv [0]);
    int rows = PQntuples (result);
    for (int row = 0; row < rows; row++) {
        if (s_opt (opts, "--json")) {
            printf ("%s\n", PQgetvalue (result, row, 22));
            continue;
        }
        printf ("candidate %s  %s  since %s  reason: %s\n", PQgetvalue (result, row, 0),
                PQgetvalue (result, row, 1), PQgetvalue (result, row, 3),
                PQgetvalue (result, row, 2));
        s_print_file (result, row, 4, "new");
        s_print_file (result, row, 11, "existing");
        if (*PQgetvalue (result, row, 18))
            printf ("  decided   by %s at %s%s%s: %s\n", PQgetvalue (result, row, 18),
                    PQgetvalue (result, row, 19),
                    *PQgetvalue (result, row, 21) ? " in merge " : "",
                    PQgetvalue (result, row, 21), PQgetvalue (result, row, 20));
    }
    if (!s_opt (opts, "--json"))
        printf ("%d %s%scandidate%s\n", rows, streq (status, "all") ? "" : status,
                streq (status, "all") ? "" : " ", rows == 1 ? "" : "s");
    PQclear (result);
    return 0;
}

//  ----------------------------------------------------------------------------------------
//  merge KEEP_ID MERGED_ID --by WHO --reason TEXT [--candidate ID]

//  Locks both files; for each: id, merged_into, the live merge that merged it
static const char s_lock_persons_sql [] =
    "SELECT p.id::text, coalesce (p.merged_into::text, ''),"
    " coalesce ((SELECT max (m.id) FROM intake.merges m"
    "            WHERE m.merged_id = p.id AND m.undone_at IS NULL)::text, '?')"
    " FROM intake.persons p WHERE p.id IN ($1::uuid, $2::uuid) ORDER BY p.id FOR UPDATE OF p";

//  Everything of $2 moves to $1 in one statement (all parts see the same snapshot, so the
//  membership decision reads the state before it); the merge row records what moved
static const char s_merge_sql [] =
    "WITH d AS (UPDATE intake.person_documents SET person_id = $1 WHERE person_id = $2"
    "           RETURNING doc_type || ':' || doc_number AS k),"
    " c AS (UPDATE intake.cases SET person_id = $1 WHERE person_id = $2 RETURNING id),"
    " s AS (UPDATE intake.consents SET person_id = $1 WHERE person_id = $2 RETURNING id),"
    " b AS (UPDATE intake.benefit_applications SET person_id = $1 WHERE person_id = $2"
    "       RETURNING event_ref),"
    " keep_home AS (SELECT count(*) > 0 AS has FROM intake.household_members"
    "               WHERE person_id = $1 AND until IS NULL),"
    " mv AS (UPDATE intake.household_members SET person_id = $1"
    "        WHERE person_id = $2 AND until IS NULL AND NOT (SELECT has FROM keep_home)"
    "        RETURNING id),"
    " cl AS (UPDATE intake.household_members SET until = now ()"
    "        WHERE person_id = $2 AND until IS NULL AND (SELECT has FROM keep_home)"
    "        RETURNING id)"
    " INSERT INTO intake.merges (keep_id, merged_id, merged_by, reason, moved_documents,"
    "   moved_cases, moved_consents, moved_memberships, closed_memberships, moved_benefits)"
    " SELECT $1, $2, $3, $4, ARRAY (SELECT k FROM d ORDER BY k),"
    "   ARRAY (SELECT id FROM c ORDER BY id),"
    "   ARRAY (SELECT id FROM s ORDER BY id), ARRAY (SELECT id FROM mv ORDER BY id),"
    "   ARRAY (SELECT id FROM cl ORDER BY id), ARRAY (SELECT event_ref FROM b ORDER BY event_ref)"
    " RETURNING id::text, cardinality (moved_documents), cardinality (moved_cases),"
    "   cardinality (moved_consents), cardinality (moved_memberships),"
    "   cardinality (closed_memberships), cardinality (moved_benefits)";

//  The person facts routing reads (sex, padró registration): the kept file's own win; what
//  it lacks it takes from the merged file, and the merge ($3) records what it took. Both
//  files are locked (s_lock_persons_sql), so the two reads and the write agree
static const char s_merge_facts_sql [] =
    "WITH f AS (SELECT k.sex IS NULL AND m.sex IS NOT NULL AS take_sex, m.sex,"
    "   k.registered_by IS NULL AND m.registered_by IS NOT NULL AS take_reg, m.registered_key,"
    "   m.registered_hood, m.registered_on, m.registered_by"
    "   FROM intake.persons k, intake.persons m WHERE k.id = $1 AND m.id = $2),"
    " u AS (UPDATE intake.persons k"
    "   SET sex = CASE WHEN f.take_sex THEN f.sex ELSE k.sex END,"
    "   registered_key = CASE WHEN f.take_reg THEN f.registered_key ELSE k.registered_key END,"
    "   registered_hood = CASE WHEN f.take_reg THEN f.registered_hood ELSE k.registered_hood END,"
    "   registered_on = CASE WHEN f.take_reg THEN f.registered_on ELSE k.registered_on END,"
    "   registered_by = CASE WHEN f.take_reg THEN f.registered_by ELSE k.registered_by END,"
    "   updated_at = now ()"
    "   FROM f WHERE k.id = $1 AND (f.take_sex OR f.take_reg))"
    " UPDATE intake.merges SET taken_sex = CASE WHEN f.take_sex THEN f.sex END,"
    "   taken_registration = CASE WHEN f.take_reg THEN f.registered_by END"
    " FROM f WHERE id = $3::bigint"
    " RETURNING coalesce (taken_sex, ''), coalesce (taken_registration::text, '')";

//  The named candidate, or any pending one of the pair, is decided by this merge
static const char s_merge_candidates_sql [] =
    "WITH c AS (UPDATE intake.match_candidates SET status = 'merged', decided_by = $3,"
    "   decided_at = now (), decision_reason = $4, merge_id = $5::bigint"
    "   WHERE status = 'pending' AND ((person_id = $1 AND candidate_id = $2)"
    "                              OR (person_id = $2 AND candidate_id = $1))"
    "   RETURNING id)"
    " UPDATE intake.merges SET candidates = ARRAY (SELECT id FROM c ORDER BY id)"
    " WHERE id = $5::bigint"
    " RETURNING coalesce (array_to_string (candidates, ', '), '')";

static int
s_merge (fs_server_t *server, int argc, char **argv)
{
    const char *cmd = argv [0];
    s_opt_t opts [] = { { "--by", true, NULL }, { "--reason", true, NULL },
                        { "--candidate", true, NULL }, { NULL } };
    const char *pos [2];
    int rc = s_parse (argc, argv, opts, pos, 2, "KEEP_ID and MERGED_ID");
    if (rc)
        return rc == 1 ? 0 : rc;
    const char *keep = pos [0], *merged = pos [1];
    const char *candidate = s_opt (opts, "--candidate");
    if (!s_is_uuid (keep))
        return s_usage (cmd, "KEEP_ID '%s' is not a file id (a UUID)", keep);
    if (!s_is_uuid (merged))
        return s_usage (cmd, "MERGED_ID '%s' is not a file id (a UUID)", merged);
    if (candidate && !s_is_id (candidate))
        return s_usage (cmd, "--candidate '%s' is not a candidate number", candidate);
    if ((rc = s_check_audit (cmd, opts, true)))
        return rc;
    const char *by = s_opt (opts, "--by"), *reason = s_opt (opts, "--reason");
    fs_pg_t *pg = fs_server_pg (server);
    if (strcasecmp (keep, merged) == 0)
        return s_refuse (pg, cmd, "KEEP_ID and MERGED_ID are the same file");
    if (fs_pg_begin (pg))
        return s_failed (pg, cmd);
    const char *pair [2] = { keep, merged };
    PGresult *result = fs_pg_exec (pg, s_lock_persons_sql, 2, pair);
    if (!result)
        return s_failed (pg, cmd);
    int keep_row = -1, merged_row = -1;
    for (int row = 0; row < PQntuples (result); row++) {
        if (strcasecmp (PQgetvalue (result, row, 0), keep) == 0)
            keep_row = row;
        else
            merged_row = row;
    }
    char why [300] = "";
    if (keep_row < 0)
        snprintf (why, sizeof why, "no person file %s (KEEP_ID)", keep);
    else
    if (merged_row < 0)
        snprintf (why, sizeof why, "no person file %s (MERGED_ID)", merged);
    else
    if (*PQgetvalue (result, keep_row, 1))
        snprintf (why, sizeof why, "KEEP_ID %s is itself merged into %s (merge %s): merge into"
                  " that file instead", keep, PQgetvalue (result, keep_row, 1),
                  PQgetvalue (result, keep_row, 2));
    else
    if (*PQgetvalue (result, merged_row, 1))
        snprintf (why, sizeof why, "MERGED_ID %s is already merged into %s (merge %s)", merged,
                  PQgetvalue (result, merged_row, 1), PQgetvalue (result, merged_row, 2));
    PQclear (result);
    if (*why)
        return s_refuse (pg, cmd, "%s", why);

    if (candidate) {
        const char *values [3] = { candidate, keep, merged };
        result = fs_pg_exec (pg,
            "SELECT status, ((person_id = $2 AND candidate_id = $3)"
            "             OR (person_id = $3 AND candidate_id = $2))::text,"
            " person_id::text, candidate_id::text"
            " FROM intake.match_candidates WHERE id = $1::bigint FOR UPDATE", 3, values);
        if (!result)
            return s_failed (pg, cmd);
        if (PQntuples (result) == 0)
            snprintf (why, sizeof why, "no candidate %s", candidate);
        else
        if (!streq (PQgetvalue (result, 0, 1), "true"))
            snprintf (why, sizeof why, "candidate %s is about files %s and %s, not these two",
                      candidate, PQgetvalue (result, 0, 2), PQgetvalue (result, 0, 3));
        else
        if (!streq (PQgetvalue (result, 0, 0), "pending"))
            snprintf (why, sizeof why, "candidate %s is already %s", candidate,
                      PQgetvalue (result, 0, 0));
        PQclear (result);
        if (*why)
            return s_refuse (pg, cmd, "%s", why);
    }

    const char *values [5] = { keep, merged, by, reason, NULL };
    result = fs_pg_exec (pg, s_merge_sql, 4, values);
    if (!result)
        return s_failed (pg, cmd);
    char merge_id [24], summary [200];
    snprintf (merge_id, sizeof merge_id, "%s", PQgetvalue (result, 0, 0));
    snprintf (summary, sizeof summary, "%s document(s), %s case(s), %s consent(s), %s household"
              " membership(s) moved, %s closed (the kept file's household stands), %s benefit"
              " application(s) moved", PQgetvalue (result, 0, 1), PQgetvalue (result, 0, 2),
              PQgetvalue (result, 0, 3), PQgetvalue (result, 0, 4), PQgetvalue (result, 0, 5),
              PQgetvalue (result, 0, 6));
    PQclear (result);
    values [4] = merge_id;
    const char *set [2] = { keep, merged };
    char candidates [200] = "", facts [200];
    result = fs_pg_exec (pg, s_merge_facts_sql, 3, (const char *[]) { keep, merged, merge_id });
    if (!result)
        return s_failed (pg, cmd);
    const char *taken_sex = PQgetvalue (result, 0, 0), *taken_reg = PQgetvalue (result, 0, 1);
    snprintf (facts, sizeof facts, "sex: %s%s; padró registration: %s%s",
              *taken_sex ? "taken from the merged file, " : "the kept file's own (or none)",
              taken_sex, *taken_reg ? "taken from the merged file, event " : "the kept file's"
              " own (or none)", taken_reg);
    PQclear (result);
    if (fs_pg_run (pg, "UPDATE intake.persons SET merged_into = $1, updated_at = now ()"
                       " WHERE id = $2", 2, set))
        return s_failed (pg, cmd);
    result = fs_pg_exec (pg, s_merge_candidates_sql, 5, values);
    if (!result)
        return s_failed (pg, cmd);
    snprintf (candidates, sizeof candidates, "%s", PQgetvalue (result, 0, 0));
    PQclear (result);

    fs_person_merged_t event = { 0 };
    fs_proto_set_int (&fs_person_merged_type, &event, "merge_id", atoll (merge_id));
    fs_proto_set_str (&fs_person_merged_type, &event, "keep_id", keep);
    fs_proto_set_str (&fs_person_merged_type, &event, "merged_id", merged);
    rc = s_emit (server, &fs_person_merged_type, &event, NULL);
    fs_proto_clear (&fs_person_merged_type, &event);
    if (rc || fs_pg_commit (pg))
        return s_failed (pg, cmd);
    printf ("merge %s: %s merged into %s by %s\n  %s\n  %s\n  candidates marked merged: %s\n"
            "  undo with: finestra-intake unmerge %s --by WHO --reason TEXT\n", merge_id, merged,
            keep, by, summary, facts, *candidates ? candidates : "none", merge_id);
    return 0;
}

//  ----------------------------------------------------------------------------------------
//  unmerge MERGE_ID --by WHO --reason TEXT

//  Puts back exactly what the merge moved, and counts it, so that a difference refuses
static const char s_unmerge_sql [] =
    "WITH m AS (SELECT * FROM intake.merges WHERE id = $1::bigint),"
    " d AS (UPDATE intake.person_documents p SET person_id = m.merged_id FROM m"
    "       WHERE p.person_id = m.keep_id"
    "       AND p.doc_type || ':' || p.doc_number = ANY (m.moved_documents) RETURNING 1),"
    " c AS (UPDATE intake.cases x SET person_id = m.merged_id FROM m"
    "       WHERE x.person_id = m.keep_id AND x.id = ANY (m.moved_cases) RETURNING 1),"
    " s AS (UPDATE intake.consents x SET person_id = m.merged_id FROM m"
    "       WHERE x.person_id = m.keep_id AND x.id = ANY (m.moved_consents) RETURNING 1),"
    " mv AS (UPDATE intake.household_members x SET person_id = m.merged_id FROM m"
    "        WHERE x.person_id = m.keep_id AND x.id = ANY (m.moved_memberships) RETURNING 1),"
    " cl AS (UPDATE intake.household_members x SET until = NULL FROM m"
    "        WHERE x.person_id = m.merged_id AND x.until IS NOT NULL"
    "        AND x.id = ANY (m.closed_memberships) RETURNING 1),"
    " b AS (UPDATE intake.benefit_applications x SET person_id = m.merged_id FROM m"
    "       WHERE x.person_id = m.keep_id AND x.event_ref = ANY (m.moved_benefits) RETURNING 1)"
    " SELECT (SELECT count(*) FROM d) = cardinality (m.moved_documents),"
    "        (SELECT count(*) FROM c) = cardinality (m.moved_cases),"
    "        (SELECT count(*) FROM s) = cardinality (m.moved_consents),"
    "        (SELECT count(*) FROM mv) = cardinality (m.moved_memberships),"
    "        (SELECT count(*) FROM cl) = cardinality (m.closed_memberships),"
    "        (SELECT count(*) FROM b) = cardinality (m.moved_benefits),"
    "        cardinality (m.moved_documents), cardinality (m.moved_cases),"
    "        cardinality (m.moved_consents), cardinality (m.moved_memberships),"
    "        cardinality (m.closed_memberships), cardinality (m.moved_benefits)"
    " FROM m";

//  The facts the kept file took from the merged one go back to none, unless a later event
//  gave the kept file its own since (then that stands, and the operator is told). Returns
//  what the merge took, and whether each was put back
static const char s_unmerge_facts_sql [] =
    "WITH m AS (SELECT * FROM intake.merges WHERE id = $1::bigint),"
    " k AS (SELECT p.* FROM intake.persons p, m WHERE p.id = m.keep_id),"
    " f AS (SELECT m.taken_sex IS NOT NULL AND k.sex IS NOT DISTINCT FROM m.taken_sex AS put_sex,"
    "   m.taken_registration IS NOT NULL"
    "   AND k.registered_by IS NOT DISTINCT FROM m.taken_registration AS put_reg"
    "   FROM m, k),"
    " u AS (UPDATE intake.persons p"
    "   SET sex = CASE WHEN f.put_sex THEN NULL ELSE p.sex END,"
    "   registered_key = CASE WHEN f.put_reg THEN NULL ELSE p.registered_key END,"
    "   registered_hood = CASE WHEN f.put_reg THEN NULL ELSE p.registered_hood END,"
    "   registered_on = CASE WHEN f.put_reg THEN NULL ELSE p.registered_on END,"
    "   registered_by = CASE WHEN f.put_reg THEN NULL ELSE p.registered_by END,"
    "   updated_at = now ()"
    "   FROM f, m WHERE p.id = m.keep_id AND (f.put_sex OR f.put_reg))"
    " SELECT coalesce (m.taken_sex, ''), f.put_sex, coalesce (m.taken_registration::text, ''),"
    "   f.put_reg FROM m, f";

static int
s_unmerge (fs_server_t *server, int argc, char **argv)
{
    const char *cmd = argv [0];
    s_opt_t opts [] = { { "--by", true, NULL }, { "--reason", true, NULL }, { NULL } };
    const char *pos [1];
    int rc = s_parse (argc, argv, opts, pos, 1, "MERGE_ID");
    if (rc)
        return rc == 1 ? 0 : rc;
    const char *merge_id = pos [0];
    if (!s_is_id (merge_id))
        return s_usage (cmd, "MERGE_ID '%s' is not a merge number", merge_id);
    if ((rc = s_check_audit (cmd, opts, true)))
        return rc;
    const char *by = s_opt (opts, "--by"), *reason = s_opt (opts, "--reason");

    fs_pg_t *pg = fs_server_pg (server);
    if (fs_pg_begin (pg))
        return s_failed (pg, cmd);
    const char *id [1] = { merge_id };
    PGresult *result = fs_pg_exec (pg,
        "SELECT m.keep_id::text, m.merged_id::text, coalesce (m.undone_by, ''),"
        " coalesce (to_char (m.undone_at, 'YYYY-MM-DD HH24:MI'), ''), m.undone_at IS NOT NULL"
        " FROM intake.merges m WHERE m.id = $1::bigint FOR UPDATE", 1, id);
    if (!result)
        return s_failed (pg, cmd);
    char why [300] = "", keep [FS_UUID_LEN + 1] = "", merged [FS_UUID_LEN + 1] = "";
    if (PQntuples (result) == 0)
        snprintf (why, sizeof why, "no merge %s", merge_id);
    else {
        snprintf (keep, sizeof keep, "%s", PQgetvalue (result, 0, 0));
        snprintf (merged, sizeof merged, "%s", PQgetvalue (result, 0, 1));
        if (streq (PQgetvalue (result, 0, 4), "t"))
            snprintf (why, sizeof why, "merge %s was already undone at %s by %s", merge_id,
                      PQgetvalue (result, 0, 3), PQgetvalue (result, 0, 2));
    }
    PQclear (result);
    if (*why)
        return s_refuse (pg, cmd, "%s", why);

    //  A later merge depends on this one when it took the kept file (and so what moved
    //  into it) elsewhere: that one must be undone first
    const char *pair [2] = { keep, merged };
    result = fs_pg_exec (pg, s_lock_persons_sql, 2, pair);
    if (!result)
        return s_failed (pg, cmd);
    for (int row = 0; row < PQntuples (result) && !*why; row++) {
        const char *into = PQgetvalue (result, row, 1);
        if (streq (PQgetvalue (result, row, 0), keep) && *into)
            snprintf (why, sizeof why, "the kept file %s has been merged into %s since (merge %s):"
                      " undo merge %s first", keep, into, PQgetvalue (result, row, 2),
                      PQgetvalue (result, row, 2));
        else
        if (streq (PQgetvalue (result, row, 0), merged) && !streq (into, keep))
            snprintf (why, sizeof why, "the merged file %s is not merged into %s any more",
                      merged, keep);
    }
    PQclear (result);
    if (*why)
        return s_refuse (pg, cmd, "%s", why);

    result = fs_pg_exec (pg, s_unmerge_sql, 1, id);
    if (!result)
        return s_failed (pg, cmd);
    const char *what [6] = { "documents", "cases", "consents", "moved household memberships",
                             "closed household memberships", "benefit applications" };
    for (int col = 0; col < 6 && !*why; col++)
        if (!streq (PQgetvalue (result, 0, col), "t"))
            snprintf (why, sizeof why, "not all of the %s %s moved by merge %s are where it put"
                      " them any more: it cannot be put back exactly",
                      PQgetvalue (result, 0, col + 6), what [col], merge_id);
    char summary [300];
    snprintf (summary, sizeof summary, "%s document(s), %s case(s), %s consent(s), %s household"
              " membership(s) put back, %s reopened, %s benefit application(s) put back",
              PQgetvalue (result, 0, 6), PQgetvalue (result, 0, 7), PQgetvalue (result, 0, 8),
              PQgetvalue (result, 0, 9), PQgetvalue (result, 0, 10), PQgetvalue (result, 0, 11));
    PQclear (result);
    if (*why)
        return s_refuse (pg, cmd, "%s", why);

    result = fs_pg_exec (pg, s_unmerge_facts_sql, 1, id);
    if (!result)
        return s_failed (pg, cmd);
    char facts [300] = "";
    if (*PQgetvalue (result, 0, 0))
        snprintf (facts, sizeof facts, "%s", streq (PQgetvalue (result, 0, 1), "t")
                  ? "; the sex it took is taken back"
                  : "; the sex it took was since given by a later event: it stays");
    if (*PQgetvalue (result, 0, 2))
        snprintf (facts + strlen (facts), sizeof facts - strlen (facts), "%s",
                  streq (PQgetvalue (result, 0, 3), "t")
                  ? "; the padró registration it took is taken back"
                  : "; the padró registration it took was since replaced: the new one stays");
    PQclear (result);
    snprintf (summary + strlen (summary), sizeof summary - strlen (summary), "%s", facts);

    const char *undo [3] = { merge_id, by, reason };
    if (fs_pg_run (pg, "UPDATE intake.persons SET merged_into = NULL, updated_at = now ()"
                       " WHERE id = $1", 1, (const char *[]) { merged })
    ||  fs_pg_run (pg, "UPDATE intake.merges SET undone_at = now (), undone_by = $2,"
                       " undo_reason = $3 WHERE id = $1::bigint", 3, undo)
    ||  fs_pg_run (pg, "UPDATE intake.match_candidates c SET status = 'pending',"
                       " decided_by = NULL, decided_at = NULL, decision_reason = NULL,"
                       " merge_id = NULL FROM intake.merges m WHERE m.id = $1::bigint"
                       " AND c.id = ANY (m.candidates) AND c.merge_id = m.id", 1, id))
        return s_failed (pg, cmd);

    //  What reached the kept file while merged (later events, their cases) stays with it: no
    //  record says which file it belonged to, so the operator is told to look
    result = fs_pg_exec (pg, "SELECT coalesce (string_agg (c.id::text, ' ' ORDER BY c.opened_at),"
                             " '') FROM intake.cases c JOIN intake.merges m ON m.id = $1::bigint"
                             " WHERE c.person_id = m.keep_id AND c.opened_at > m.merged_at", 1, id);
    if (!result)
        return s_failed (pg, cmd);
    char *later = strdup (PQgetvalue (result, 0, 0));
    PQclear (result);
    assert (later);

    fs_person_unmerged_t event = { 0 };
    fs_proto_set_int (&fs_person_unmerged_type, &event, "merge_id", atoll (merge_id));
    fs_proto_set_str (&fs_person_unmerged_type, &event, "keep_id", keep);
    fs_proto_set_str (&fs_person_unmerged_type, &event, "merged_id", merged);
    rc = s_emit (server, &fs_person_unmerged_type, &event, NULL);
    fs_proto_clear (&fs_person_unmerged_type, &event);
    if (rc || fs_pg_commit (pg)) {
        free (later);
        return s_failed (pg, cmd);
    }
    printf ("merge %s undone by %s: %s is a file of its own again\n  %s\n", merge_id, by, merged,
            summary);
    if (*later)
        printf ("  cases opened on %s while merged stay with it; check whose they are: %s\n",
                keep, later);
    free (later);
    return 0;
}

//  ----------------------------------------------------------------------------------------
//  dismiss CANDIDATE_ID --by WHO --reason TEXT

static int
s_dismiss (fs_server_t *server, int argc, char **argv)
{
    const char *cmd = argv [0];
    s_opt_t opts [] = { { "--by", true, NULL }, { "--reason", true, NULL }, { NULL } };
    const char *pos [1];
    int rc = s_parse (argc, argv, opts, pos, 1, "CANDIDATE_ID");
    if (rc)
        return rc == 1 ? 0 : rc;
    if (!s_is_id (pos [0]))
        return s_usage (cmd, "CANDIDATE_ID '%s' is not a candidate number", pos [0]);
    if ((rc = s_check_audit (cmd, opts, true)))
        return rc;
    fs_pg_t *pg = fs_server_pg (server);
    if (fs_pg_begin (pg))
        return s_failed (pg, cmd);
    PGresult *result = fs_pg_exec (pg,
        "SELECT status, coalesce (decided_by, ''),"
        " coalesce (to_char (decided_at, 'YYYY-MM-DD HH24:MI'), '')"
        " FROM intake.match_candidates WHERE id = $1::bigint FOR UPDATE", 1, pos);
    if (!result)
        return s_failed (pg, cmd);
    char why [300] = "";
    if (PQntuples (result) == 0)
        snprintf (why, sizeof why, "no candidate %s", pos [0]);
    else
    if (!streq (PQgetvalue (result, 0, 0), "pending"))
        snprintf (why, sizeof why, "candidate %s is already %s (by %s at %s)", pos [0],
                  PQgetvalue (result, 0, 0), PQgetvalue (result, 0, 1),
                  PQgetvalue (result, 0, 2));
    PQclear (result);
    if (*why)
        return s_refuse (pg, cmd, "%s", why);
    const char *values [3] = { pos [0], s_opt (opts, "--by"), s_opt (opts, "--reason") };
    if (fs_pg_run (pg, "UPDATE intake.match_candidates SET status = 'dismissed',"
                       " decided_by = $2, decided_at = now (), decision_reason = $3"
                       " WHERE id = $1::bigint", 3, values)
    ||  fs_pg_commit (pg))
        return s_failed (pg, cmd);
    printf ("candidate %s dismissed by %s: the two files stay separate\n", pos [0], values [1]);
    return 0;
}

//  ----------------------------------------------------------------------------------------
//  unplaced [--all] [--json]

static const char s_unplaced_sql [] =
    "SELECT u.case_id::text, u.reason, coalesce (u.postcode, ''), coalesce (u.neighbourhood, ''),"
    " extract (epoch FROM now () - u.created_at)::bigint, c.triage_level, c.due_date::text,"
    " coalesce (u.resolved_centre, ''), coalesce (u.resolved_by, ''),"
    " coalesce (to_char (u.resolved_at, 'YYYY-MM-DD HH24:MI'), ''),"
    " json_build_object ('case_id', u.case_id, 'reason', u.reason, 'postcode', u.postcode,"
    "   'neighbourhood', u.neighbourhood, 'created_at', u.created_at,"
    "   'age_seconds', extract (epoch FROM now () - u.created_at)::bigint,"
    "   'event_type', c.event_type, 'triage_level', c.triage_level, 'due_date', c.due_date,"
    "   'resolved_at', u.resolved_at, 'resolved_by', u.resolved_by,"
    "   'centre', u.resolved_centre)::text"
    " FROM intake.unplaced u JOIN intake.cases c ON c.id = u.case_id"
    " WHERE $1 OR u.resolved_at IS NULL"
    " ORDER BY u.resolved_at IS NOT NULL, c.due_date, u.created_at";

static void
s_age (long seconds, char *out, size_t size)
{
    if (seconds < 0)
        seconds = 0;
    if (seconds < 3600)
        snprintf (out, size, "%ldm", seconds / 60);
    else
    if (seconds < 2 * 86400)
        snprintf (out, size, "%ldh%02ldm", seconds / 3600, seconds % 3600 / 60);
    else
        snprintf (out, size, "%ldd%02ldh", seconds / 86400, seconds % 86400 / 3600);
}

static int
s_unplaced (fs_server_t *server, int argc, char **argv)
{
    s_opt_t opts [] = { { "--all", false, NULL }, { "--json", false, NULL }, { NULL } };
    int rc = s_parse (argc, argv, opts, NULL, 0, "");
    if (rc)
        return rc == 1 ? 0 : rc;
    bool json = s_opt (opts, "--json") != NULL;
    fs_pg_t *pg = fs_server_pg (server);
    const char *values [1] = { s_opt (opts, "--all") ? "true" : "false" };
    PGresult *result = fs_pg_exec (pg, s_unplaced_sql, 1, values);
    if (!result)
        return s_failed (pg, argv [0]);
    int rows = PQntuples (result), open = 0;
    if (!json && rows > 0)
        printf ("%-36s  %-9s  %-10s  %-7s  %-8s  %-13s  %s\n", "CASE", "TRIAGE", "DUE", "AGE",
                "POSTCODE", "NEIGHBOURHOOD", "REASON");
    for (int row = 0; row < rows; row++) {
        if (json) {
            printf ("%s\n", PQgetvalue (result, row, 10));
            continue;
        }
        char age [32];
        s_age (atol (PQgetvalue (result, row, 4)), age, sizeof age);
        const char *centre = PQgetvalue (result, row, 7);
        const char *neighbourhood = PQgetvalue (result, row, 3);
        printf ("%-36s  %-9s  %-10s  %-7s  %-8s  %-13s  %s", PQgetvalue (result, row, 0),
                PQgetvalue (result, row, 5), PQgetvalue (result, row, 6), age,
                *PQgetvalue (result, row, 2) ? PQgetvalue (result, row, 2) : "-",
                *neighbourhood ? neighbourhood : "-", PQgetvalue (result, row, 1));
        if (*PQgetvalue (result, row, 9))
            printf ("  [placed at %s by %s, %s]", *centre ? centre : "?",
                    PQgetvalue (result, row, 8), PQgetvalue (result, row, 9));
        else
            open++;
        printf ("\n");
    }
    if (!json)
        printf ("%d unplaced case%s waiting\n", open, open == 1 ? "" : "s");
    PQclear (result);
    return 0;
}

//  ----------------------------------------------------------------------------------------
//  place CASE_ID CENTRE_CODE --by WHO [--neighbourhood CODE]

static int
s_place (fs_server_t *server, int argc, char **argv)
{
    const char *cmd = argv [0];
    s_opt_t opts [] = { { "--by", true, NULL }, { "--neighbourhood", true, NULL }, { NULL } };
    const char *pos [2];
    int rc = s_parse (argc, argv, opts, pos, 2, "CASE_ID and CENTRE_CODE");
    if (rc)
        return rc == 1 ? 0 : rc;
    const char *case_id = pos [0], *centre = pos [1];
    const char *hood = s_opt (opts, "--neighbourhood");
    if (!s_is_uuid (case_id))
        return s_usage (cmd, "CASE_ID '%s' is not a case id (a UUID)", case_id);
    if (!s_is_text (centre, 32))
        return s_usage (cmd, "CENTRE_CODE must be 1 to 32 printable bytes");
    if (hood && !s_is_text (hood, 32))
        return s_usage (cmd, "--neighbourhood must be 1 to 32 printable bytes");
    if ((rc = s_check_audit (cmd, opts, false)))
        return rc;
    const char *by = s_opt (opts, "--by");

    fs_pg_t *pg = fs_server_pg (server);
    if (fs_pg_begin (pg))
        return s_failed (pg, cmd);
    PGresult *result = fs_pg_exec (pg,
        "SELECT c.event_ref::text, coalesce (c.neighbourhood_code, ''), u.case_id IS NOT NULL,"
        " u.resolved_at IS NOT NULL, coalesce (u.resolved_centre, c.centre_code, ''),"
        " coalesce (u.resolved_by, ''),"
        " coalesce (to_char (u.resolved_at, 'YYYY-MM-DD HH24:MI'), '')"
        " FROM intake.cases c LEFT JOIN intake.unplaced u ON u.case_id = c.id"
        " WHERE c.id = $1::uuid FOR UPDATE OF c", 1, (const char *[]) { case_id });
    if (!result)
        return s_failed (pg, cmd);
    char why [300] = "", event_ref [FS_UUID_LEN + 1] = "", neighbourhood [40] = "";
    if (PQntuples (result) == 0)
        snprintf (why, sizeof why, "no case %s", case_id);
    else
    if (!streq (PQgetvalue (result, 0, 2), "t"))
        snprintf (why, sizeof why, "case %s is not in the unplaced queue (its centre is %s)",
                  case_id, *PQgetvalue (result, 0, 4) ? PQgetvalue (result, 0, 4) : "none");
    else
    if (streq (PQgetvalue (result, 0, 3), "t"))
        snprintf (why, sizeof why, "case %s was already placed at %s by %s at %s", case_id,
                  PQgetvalue (result, 0, 4), PQgetvalue (result, 0, 5), PQgetvalue (result, 0, 6));
    else {
        snprintf (event_ref, sizeof event_ref, "%s", PQgetvalue (result, 0, 0));
        snprintf (neighbourhood, sizeof neighbourhood, "%s", PQgetvalue (result, 0, 1));
    }
    PQclear (result);
    if (*why)
        return s_refuse (pg, cmd, "%s", why);

    const char *codes [2] = { centre, hood };
    result = fs_pg_exec (pg, "SELECT EXISTS (SELECT 1 FROM intake.centres WHERE code = $1),"
                             " $2::text IS NULL OR EXISTS (SELECT 1 FROM intake.neighbourhoods"
                             "                             WHERE code = $2)", 2, codes);
    if (!result)
        return s_failed (pg, cmd);
    if (!streq (PQgetvalue (result, 0, 0), "t"))
        snprintf (why, sizeof why, "no centre %s (the territory's centres: load-territory)",
                  centre);
    else
    if (!streq (PQgetvalue (result, 0, 1), "t"))
        snprintf (why, sizeof why, "no neighbourhood %s", hood);
    PQclear (result);
    if (*why)
        return s_refuse (pg, cmd, "%s", why);
    if (hood)
        snprintf (neighbourhood, sizeof neighbourhood, "%s", hood);

    //  The queue row first, still open: an UPDATE re-reads a row another transaction changed
    //  meanwhile (the join above may not), so two operators cannot both place one case
    result = fs_pg_exec (pg, "UPDATE intake.unplaced SET resolved_at = now (), resolved_by = $3,"
                             " resolved_centre = $2 WHERE case_id = $1::uuid"
                             " AND resolved_at IS NULL RETURNING 1", 3,
                         (const char *[]) { case_id, centre, by });
    if (!result)
        return s_failed (pg, cmd);
    bool resolved = PQntuples (result) == 1;
    PQclear (result);
    if (!resolved)
        return s_refuse (pg, cmd, "case %s was placed by someone else meanwhile", case_id);
    const char *values [3] = { case_id, centre, hood };
    if (fs_pg_run (pg, "UPDATE intake.cases SET centre_code = $2,"
                       " neighbourhood_code = coalesce ($3, neighbourhood_code)"
                       " WHERE id = $1::uuid", 3, values))
        return s_failed (pg, cmd);

    fs_case_placed_t event = { 0 };
    fs_proto_set_str (&fs_case_placed_type, &event, "case_id", case_id);
    fs_proto_set_str (&fs_case_placed_type, &event, "centre", centre);
    if (*neighbourhood)
        fs_proto_set_str (&fs_case_placed_type, &event, "neighbourhood", neighbourhood);
    rc = s_emit (server, &fs_case_placed_type, &event, event_ref);
    fs_proto_clear (&fs_case_placed_type, &event);
    if (rc || fs_pg_commit (pg))
        return s_failed (pg, cmd);
    printf ("case %s placed at centre %s by %s\n", case_id, centre, by);
    return 0;
}

//  ----------------------------------------------------------------------------------------

int
intake_admin_command (fs_server_t *server, int argc, char **argv)
{
    const char *cmd = argv [0];
    if (streq (cmd, "candidates"))
        return s_candidates (server, argc, argv);
    if (streq (cmd, "merge"))
        return s_merge (server, argc, argv);
    if (streq (cmd, "unmerge"))
        return s_unmerge (server, argc, argv);
    if (streq (cmd, "dismiss"))
        return s_dismiss (server, argc, argv);
    if (streq (cmd, "unplaced"))
        return s_unplaced (server, argc, argv);
    if (streq (cmd, "place"))
        return s_place (server, argc, argv);
    return -1;
}
