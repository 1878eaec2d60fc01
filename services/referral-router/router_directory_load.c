/*  router_directory_load - the directory's operator commands: load-directory (the need
    vocabulary, the Z-code mapping and the services from CSV files, in one transaction: all
    or nothing), map-zcode and find-services (answers from what was loaded). */
#include "router.h"

#define S_MAX_FIELDS 32

//  In the order they are loaded: each uses what the ones before it hold
typedef enum {
    S_FILE_TERRITORY, S_FILE_NEEDS, S_FILE_ZCODES, S_FILE_SERVICES, S_FILE_UNKNOWN
} s_kind_t;

static const char *s_territory_header [] = {
    "district_code", "district", "neighbourhood_code", "neighbourhood", NULL
};
static const char *s_needs_header [] = { "need", "label", "description", NULL };
static const char *s_zcodes_header [] = { "zcode", "label", "needs", NULL };

//  One CSV file being read: comments (#) and blank lines skipped, the header first
typedef struct {
    const char *path;           /* as given */
    FILE *file;                 /* open for reading */
    int lineno;                 /* of the line in hand */
    char *line;                 /* getline's buffer */
    size_t size;                /* its size */
    char *fields [S_MAX_FIELDS];/* the line's fields, pointing into line */
    int nfields;                /* how many */
} s_csv_t;

//  The next data line split into fields: 1, 0 at the end, -1 after printing the error
static int
s_csv_next (s_csv_t *csv)
{
    ssize_t len;
    while ((len = getline (&csv->line, &csv->size, csv->file)) >= 0) {
        csv->lineno++;
        csv->line [strcspn (csv->line, "\r\n")] = 0;
        if (csv->line [0] == '#' || csv->line [0] == 0)
            continue;
        int column;
        csv->nfields = router_csv_split (csv->line, csv->fields, S_MAX_FIELDS, &column);
        if (csv->nfields < 0) {
            fprintf (stderr, "%s:%d: column %d: %s\n", csv->path, csv->lineno, column,
                     column > S_MAX_FIELDS ? "too many fields"
                                           : "unclosed quote, or text after a closing quote");
            return -1;
        }
        return 1;
    }
    if (ferror (csv->file)) {
        fprintf (stderr, "%s: read error: %s\n", csv->path, strerror (errno));
        return -1;
    }
    return 0;
}

static void
s_csv_close (s_csv_t *csv)
{
    if (csv->file)
        fclose (csv->file);
    free (csv->line);
    memset (csv, 0, sizeof *csv);
}

static bool
s_header_is (s_csv_t *csv, const char *const *names)
{
    int i = 0;
    for (; names [i]; i++)
        if (i >= csv->nfields || !streq (csv->fields [i], names [i]))
            return false;
    return i == csv->nfields;
}

//  Opens path and reads its header; S_FILE_UNKNOWN after printing why
static s_kind_t
s_csv_open (s_csv_t *csv, const char *path)
{
    memset (csv, 0, sizeof *csv);
    csv->path = path;
    csv->file = fopen (path, "r");
    if (!csv->file) {
        fprintf (stderr, "%s: cannot read: %s\n", path, strerror (errno));
        return S_FILE_UNKNOWN;
    }
    int rc = s_csv_next (csv);
    if (rc == 0)
        fprintf (stderr, "%s: no header line\n", path);
    if (rc <= 0)
        return S_FILE_UNKNOWN;
    if (s_header_is (csv, s_territory_header))
        return S_FILE_TERRITORY;
    if (s_header_is (csv, s_needs_header))
        return S_FILE_NEEDS;
    if (s_header_is (csv, s_zcodes_header))
        return S_FILE_ZCODES;
    if (s_header_is (csv, router_service_columns))
        return S_FILE_SERVICES;
    fprintf (stderr, "%s:%d: unknown header: expected need,label,description (need"
             " categories), zcode,label,needs (Z-code mapping), district_code,district,"
             "neighbourhood_code,neighbourhood (territory) or the services' columns"
             " (code,kind,name,...)\n", path, csv->lineno);
    return S_FILE_UNKNOWN;
}

//  Errors name the file, line and column
static int
s_row_error (s_csv_t *csv, int column, const char *name, const char *message)
{
    fprintf (stderr, "%s:%d: column %d (%s): %s\n", csv->path, csv->lineno, column, name,
             message);
    return -1;
}

static bool
s_count_ok (s_csv_t *csv, int expected)
{
    if (csv->nfields == expected)
        return true;
    fprintf (stderr, "%s:%d: %d fields, expected %d\n", csv->path, csv->lineno, csv->nfields,
             expected);
    return false;
}

static int
s_exec (fs_pg_t *pg, s_csv_t *csv, const char *sql, int n, const char *const *values)
{
    if (fs_pg_run (pg, sql, n, values) == 0)
        return 0;
    fprintf (stderr, "%s:%d: %s\n", csv->path, csv->lineno, fs_pg_error (pg));
    return -1;
}

//  What the territory file and the database say exists, to check services' codes
typedef struct {
    zhash_t *districts;         /* district codes */
    zhash_t *neighbourhoods;    /* neighbourhood codes */
} s_territory_t;

//  district_code,district,neighbourhood_code,neighbourhood: upserted, none deleted
static int
s_load_territory (fs_pg_t *pg, s_csv_t *csv, s_territory_t *territory)
{
    int rc, rows = 0;
    while ((rc = s_csv_next (csv)) == 1) {
        if (!s_count_ok (csv, 4))
            return -1;
        char **f = csv->fields;
        for (int c = 0; c < 4; c += 2)
            if (!router_code_valid (f [c]))
                return s_row_error (csv, c + 1, s_territory_header [c], "not a code (letters,"
                                    " digits, _ - .)");
        for (int c = 1; c < 4; c += 2)
            if (*f [c] == 0)
                return s_row_error (csv, c + 1, s_territory_header [c], "a name is required");
        const char *district [2] = { f [0], f [1] };
        const char *hood [3] = { f [2], f [0], f [3] };
        if (s_exec (pg, csv, "INSERT INTO referral_router.districts (code, name) VALUES ($1, $2)"
                             " ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name",
                    2, district)
        ||  s_exec (pg, csv, "INSERT INTO referral_router.neighbourhoods (code, district_code,"
                             " name) VALUES ($1, $2, $3) ON CONFLICT (code) DO UPDATE"
                             " SET district_code = EXCLUDED.district_code,"
                             " name = EXCLUDED.name", 3, hood))
            return -1;
        zhash_update (territory->districts, f [0], (void *) 1);
        zhash_update (territory->neighbourhoods, f [2], (void *) 1);
        rows++;
    }
    if (rc == 0)
        printf ("%s: %d neighbourhoods\n", csv->path, rows);
    return rc;
}

//  A service's territory codes exist, when the territory is loaded; 0 or -1 after the error
static int
s_check_territory (s_csv_t *csv, const router_service_t *service, s_territory_t *territory,
                   bool *unchecked)
{
    if (service->scope == ROUTER_SCOPE_CITY)
        return 0;
    bool district = service->scope == ROUTER_SCOPE_DISTRICT;
    zhash_t *known = district ? territory->districts : territory->neighbourhoods;
    if (zhash_size (known) == 0) {
        *unchecked = true;          //  no territory loaded yet: codes checked for form only
        return 0;
    }
    for (size_t i = 0; i < service->nterritory; i++)
        if (!zhash_lookup (known, service->territory [i])) {
            char message [ROUTER_ERR_MAX];
            snprintf (message, sizeof message, "unknown %s code \"%s\" (not in the territory"
                      " loaded)", district ? "district" : "neighbourhood",
                      service->territory [i]);
            return s_row_error (csv, 5, "territory_codes", message);
        }
    return 0;
}

//  need,label,description: upserted (a need in use cannot disappear, so none is deleted)
static int
s_load_needs (fs_pg_t *pg, s_csv_t *csv, zhash_t *needs)
{
    int rc, rows = 0;
    while ((rc = s_csv_next (csv)) == 1) {
        if (!s_count_ok (csv, 3))
            return -1;
        const char *code = csv->fields [0];
        bool valid = *code >= 'a' && *code <= 'z' && strlen (code) < ROUTER_CODE_MAX;
        for (const char *c = code; valid && *c; c++)
            valid = (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_';
        if (!valid)
            return s_row_error (csv, 1, "need", "a need code is a lower-case letter, then"
                                " letters, digits or _ (at most 31)");
        if (zhash_lookup (needs, code) && zhash_lookup (needs, code) != (void *) 1)
            return s_row_error (csv, 1, "need", "listed twice in this file");
        if (*csv->fields [1] == 0)
            return s_row_error (csv, 2, "label", "a label is required");
        const char *values [3] = { code, csv->fields [1], csv->fields [2] };
        if (s_exec (pg, csv, "INSERT INTO referral_router.need_categories"
                             " (code, label, description) VALUES ($1, $2, $3)"
                             " ON CONFLICT (code) DO UPDATE SET label = EXCLUDED.label,"
                             " description = EXCLUDED.description", 3, values))
            return -1;
        zhash_update (needs, code, (void *) 2);     //  2: from this file, 1: from before
        rows++;
    }
    if (rc == 0)
        printf ("%s: %d need categories\n", csv->path, rows);
    return rc;
}

//  Checks a space-separated list of needs against the vocabulary; 0 or -1 after the error
static int
s_check_needs (s_csv_t *csv, int column, const char *name, const char *list, zhash_t *needs)
{
    char copy [ROUTER_ERR_MAX];
    snprintf (copy, sizeof copy, "%s", list);
    char *save = NULL;
    for (char *need = strtok_r (copy, " ", &save); need; need = strtok_r (NULL, " ", &save))
        if (!zhash_lookup (needs, need)) {
            char message [ROUTER_ERR_MAX];
            snprintf (message, sizeof message, "unknown need category \"%.64s\" (not in the"
                      " need vocabulary loaded)", need);
            return s_row_error (csv, column, name, message);
        }
    return 0;
}

//  zcode,label,needs: the file is the whole mapping, so it replaces the one loaded before
static int
s_load_zcodes (fs_pg_t *pg, s_csv_t *csv, zhash_t *needs)
{
    if (fs_pg_run (pg, "DELETE FROM referral_router.zcodes", 0, NULL)) {
        fprintf (stderr, "%s: %s\n", csv->path, fs_pg_error (pg));
        return -1;
    }
    zhash_t *seen = zhash_new ();
    int rc, rows = 0, mapped = 0;
    while ((rc = s_csv_next (csv)) == 1) {
        char code [ROUTER_ZCODE_MAX];
        if (!s_count_ok (csv, 3)) { rc = -1; break; }
        router_zcode_result_t result = router_zcode_normalize (csv->fields [0], code);
        if (result != ROUTER_ZCODE_MAPPED) {
            rc = s_row_error (csv, 1, "zcode", result == ROUTER_ZCODE_INVALID
                 ? "not an ICD-10 code (e.g. Z59 or Z59.0)" : "outside Z55-Z65");
            break;
        }
        if (zhash_lookup (seen, code)) {
            rc = s_row_error (csv, 1, "zcode", "listed twice in this file (after"
                              " normalizing: upper case, with the dot)");
            break;
        }
        zhash_insert (seen, code, (void *) 1);
        if (*csv->fields [1] == 0) {
            rc = s_row_error (csv, 2, "label", "a label is required");
            break;
        }
        if (s_check_needs (csv, 3, "needs", csv->fields [2], needs)) { rc = -1; break; }
        const char *values [3] = { code, csv->fields [1], csv->fields [2] };
        if (s_exec (pg, csv, "INSERT INTO referral_router.zcodes (code, label) VALUES ($1, $2)",
                    2, values)
        ||  s_exec (pg, csv, "INSERT INTO referral_router.zcode_needs (code, need)"
                             " SELECT $1, n FROM unnest (string_to_array ($2, ' ')) n"
                             " WHERE n <> '' ON CONFLICT DO NOTHING",
                    2, (const char *[]) { code, csv->fields [2] })) {
            rc = -1;
            break;
        }
        rows++;
        mapped += strspn (csv->fields [2], " ") < strlen (csv->fields [2]);
    }
    zhash_destroy (&seen);
    if (rc == 0)
        printf ("%s: %d codes, %d mapped to needs, %d deliberately unmapped\n", csv->path,
                rows, mapped, rows - mapped);
    return rc;
}

//  The services: upserted; those absent from the file stay (referrals point at them) but
//  become inactive
static int
s_load_services (fs_pg_t *pg, s_csv_t *csv, zhash_t *needs, s_territory_t *territory)
{
    bool unchecked = false;
    router_service_t *service = (router_service_t *) malloc (sizeof *service);
    zhash_t *seen = zhash_new ();
    assert (service && seen);
    int rc, rows = 0;
    while ((rc = s_csv_next (csv)) == 1) {
        if (!s_count_ok (csv, ROUTER_SERVICE_NCOLUMNS)) { rc = -1; break; }
        char err [ROUTER_ERR_MAX];
        int column = router_service_parse (csv->fields, service, err, sizeof err);
        if (column) {
            rc = s_row_error (csv, column, router_service_columns [column - 1], err);
            break;
        }
        if (zhash_lookup (seen, service->code)) {
            rc = s_row_error (csv, 1, "code", "listed twice in this file");
            break;
        }
        zhash_insert (seen, service->code, (void *) 1);
        if ((!service->any_need && s_check_needs (csv, 9, "needs", csv->fields [8], needs))
        ||  s_check_territory (csv, service, territory, &unchecked)) {
            rc = -1;
            break;
        }
        char age_min [16], age_max [16];
        snprintf (age_min, sizeof age_min, "%d", service->age_min);
        snprintf (age_max, sizeof age_max, "%d", service->age_max);
        char conditions [ROUTER_ERR_MAX] = "";
        for (int i = 0; i < ROUTER_COND_COUNT; i++)
            if (service->conditions & (1u << i))
                snprintf (conditions + strlen (conditions), sizeof conditions - strlen (conditions),
                          "%s%s", *conditions ? " " : "", router_condition_name (1u << i));
        const char *values [15] = {
            service->code, router_kind_name (service->kind), service->name,
            router_scope_name (service->scope), csv->fields [4],
            service->age_min < 0 ? NULL : age_min, service->age_max < 0 ? NULL : age_max,
            router_residency_name (service->residency), service->any_need ? "true" : "false",
            conditions, service->criteria_text, router_capacity_name (service->capacity),
            router_delivery_name (service->delivery), service->delivery_target,
            service->demo ? "true" : "false"
        };
        if (s_exec (pg, csv,
                "INSERT INTO referral_router.services (code, kind, name, territory_scope,"
                " territory_codes, age_min, age_max, residency, any_need, conditions,"
                " criteria_text, capacity, delivery, delivery_target, demo, active, loaded_at)"
                " VALUES ($1, $2, $3, $4, array_remove (string_to_array ($5, ' '), ''),"
                "  $6::int, $7::int, $8, $9::boolean,"
                "  array_remove (string_to_array ($10, ' '), ''),"
                "  $11, $12, $13, $14, $15::boolean, true, now ())"
                " ON CONFLICT (code) DO UPDATE SET kind = EXCLUDED.kind, name = EXCLUDED.name,"
                " territory_scope = EXCLUDED.territory_scope,"
                " territory_codes = EXCLUDED.territory_codes, age_min = EXCLUDED.age_min,"
                " age_max = EXCLUDED.age_max, residency = EXCLUDED.residency,"
                " any_need = EXCLUDED.any_need, conditions = EXCLUDED.conditions,"
                " criteria_text = EXCLUDED.criteria_text, capacity = EXCLUDED.capacity,"
                " delivery = EXCLUDED.delivery, delivery_target = EXCLUDED.delivery_target,"
                " demo = EXCLUDED.demo, active = true, loaded_at = now ()", 15, values)
        ||  s_exec (pg, csv, "DELETE FROM referral_router.service_needs WHERE service_code = $1",
                    1, values)
        ||  s_exec (pg, csv, "INSERT INTO referral_router.service_needs (service_code, need)"
                             " SELECT $1, n FROM unnest (string_to_array ($2, ' ')) n"
                             " WHERE n <> '' AND NOT $3::boolean",
                    3, (const char *[]) { service->code, csv->fields [8], values [8] })) {
            rc = -1;
            break;
        }
        rows++;
    }
    free (service);
    zhash_destroy (&seen);
    if (rc)
        return rc;
    PGresult *result = fs_pg_exec (pg, "UPDATE referral_router.services SET active = false"
                                       " WHERE active AND loaded_at <> now () RETURNING code",
                                   0, NULL);
    if (!result) {
        fprintf (stderr, "%s: %s\n", csv->path, fs_pg_error (pg));
        return -1;
    }
    printf ("%s: %d services", csv->path, rows);
    if (PQntuples (result) > 0) {
        printf ("; no longer listed, now inactive:");
        for (int i = 0; i < PQntuples (result); i++)
            printf (" %s", PQgetvalue (result, i, 0));
    }
    printf ("\n");
    if (unchecked)
        printf ("%s: territory codes checked for form only: no territory loaded (give the"
                " territory CSV too)\n", csv->path);
    PQclear (result);
    return 0;
}

int
router_directory_load (fs_server_t *server, int argc, char **argv)
{
    if (argc < 2) {
        fprintf (stderr, "usage: finestra-referral-router load-directory SERVICES_CSV"
                         " [NEEDS_CSV | ZCODES_CSV | TERRITORY_CSV ...]\n"
                         "  each file is recognised by its header; see"
                         " services/referral-router/data/README.md\n");
        return 2;
    }
    int nfiles = argc - 1;
    s_csv_t *files = (s_csv_t *) calloc ((size_t) nfiles, sizeof *files);
    s_kind_t *kinds = (s_kind_t *) calloc ((size_t) nfiles, sizeof *kinds);
    zhash_t *needs = zhash_new ();
    s_territory_t territory = { zhash_new (), zhash_new () };
    assert (files && kinds && needs && territory.districts && territory.neighbourhoods);
    fs_pg_t *pg = fs_server_pg (server);
    int rc = 0;
    for (int i = 0; i < nfiles && rc == 0; i++) {
        kinds [i] = s_csv_open (&files [i], argv [i + 1]);
        if (kinds [i] == S_FILE_UNKNOWN)
            rc = -1;
    }
    //  The vocabulary first, then the mapping and services that use it; one transaction
    if (rc == 0 && fs_pg_begin (pg)) {
        fprintf (stderr, "cannot begin: %s\n", fs_pg_error (pg));
        rc = -1;
    }
    if (rc == 0) {
        PGresult *result = fs_pg_exec (pg, "SELECT code FROM referral_router.need_categories",
                                       0, NULL);
        if (!result) {
            fprintf (stderr, "cannot read the need categories: %s\n", fs_pg_error (pg));
            rc = -1;
        }
        for (int i = 0; result && i < PQntuples (result); i++)
            zhash_insert (needs, PQgetvalue (result, i, 0), (void *) 1);
        PQclear (result);
    }
    if (rc == 0) {
        PGresult *result = fs_pg_exec (pg, "SELECT code, district_code"
                                           " FROM referral_router.neighbourhoods", 0, NULL);
        if (!result) {
            fprintf (stderr, "cannot read the territory: %s\n", fs_pg_error (pg));
            rc = -1;
        }
        for (int i = 0; result && i < PQntuples (result); i++) {
            zhash_update (territory.neighbourhoods, PQgetvalue (result, i, 0), (void *) 1);
            zhash_update (territory.districts, PQgetvalue (result, i, 1), (void *) 1);
        }
        PQclear (result);
    }
    for (s_kind_t kind = S_FILE_TERRITORY; kind <= S_FILE_SERVICES && rc == 0; kind++)
        for (int i = 0; i < nfiles && rc == 0; i++) {
            if (kinds [i] != kind)
                continue;
            rc = kind == S_FILE_TERRITORY ? s_load_territory (pg, &files [i], &territory)
               : kind == S_FILE_NEEDS ? s_load_needs (pg, &files [i], needs)
               : kind == S_FILE_ZCODES ? s_load_zcodes (pg, &files [i], needs)
               : s_load_services (pg, &files [i], needs, &territory);
        }
    if (rc == 0 && fs_pg_commit (pg)) {
        fprintf (stderr, "cannot commit: %s\n", fs_pg_error (pg));
        rc = -1;
    }
    if (rc)
        fs_pg_rollback (pg);
    for (int i = 0; i < nfiles; i++)
        s_csv_close (&files [i]);
    free (files);
    free (kinds);
    zhash_destroy (&needs);
    zhash_destroy (&territory.districts);
    zhash_destroy (&territory.neighbourhoods);
    if (rc) {
        fprintf (stderr, "directory not loaded: nothing changed\n");
        return 1;
    }
    PGresult *result = fs_pg_exec (pg,
        "SELECT (SELECT count(*) FROM referral_router.services WHERE active),"
        " (SELECT count(*) FROM referral_router.need_categories),"
        " (SELECT count(*) FROM referral_router.zcodes),"
        " (SELECT count(*) FROM referral_router.services WHERE active AND demo),"
        " (SELECT count(*) FROM referral_router.neighbourhoods)", 0, NULL);
    if (result) {
        printf ("directory: %s active services (%s demo), %s need categories, %s Z-codes,"
                " %s neighbourhoods\n", PQgetvalue (result, 0, 0), PQgetvalue (result, 0, 3),
                PQgetvalue (result, 0, 1), PQgetvalue (result, 0, 2), PQgetvalue (result, 0, 4));
        PQclear (result);
    }
    return 0;
}

int
router_directory_map_zcodes (fs_server_t *server, int argc, char **argv)
{
    if (argc < 2) {
        fprintf (stderr, "usage: finestra-referral-router map-zcode CODE...\n");
        return 2;
    }
    char err [ROUTER_ERR_MAX];
    router_directory_t *directory = router_directory_new (fs_server_pg (server), err,
                                                          sizeof err);
    if (!directory) {
        fprintf (stderr, "%s\n", err);
        return 1;
    }
    int rc = 0;
    for (int a = 1; a < argc; a++) {
        const router_zmap_t *row;
        char code [ROUTER_ZCODE_MAX];
        router_zcode_result_t found = router_directory_zcode (directory, argv [a], &row, code);
        if (found == ROUTER_ZCODE_MAPPED) {
            printf ("%s: ", code);
            for (size_t n = 0; n < row->nneeds; n++)
                printf ("%s%s", n ? " " : "", row->needs [n]);
            printf ("  (%s %s%s)\n", row->code, row->label,
                    streq (row->code, code) ? "" : ", its parent");
            continue;
        }
        rc = 1;
        if (found == ROUTER_ZCODE_INVALID)
            printf ("%.40s: not an ICD-10 code\n", argv [a]);
        else
        if (found == ROUTER_ZCODE_OUT_OF_RANGE)
            printf ("%s: outside Z55-Z65, not mapped\n", code);
        else
        if (row)
            printf ("%s: unmapped (%s %s: no need category)\n", code, row->code, row->label);
        else
            printf ("%s: unmapped (not in the mapping)\n", code);
    }
    router_directory_destroy (&directory);
    return rc;
}

#define S_MAX_NEEDS 64

//  What find-services was told about the person
typedef struct {
    router_facts_t facts;                           /* as the criteria read them */
    char needs [S_MAX_NEEDS][ROUTER_CODE_MAX];      /* their storage */
    const char *pointers [S_MAX_NEEDS];             /* facts.needs points here */
} s_person_t;

static int
s_add_need (s_person_t *person, const char *need)
{
    for (size_t i = 0; i < person->facts.nneeds; i++)
        if (streq (person->needs [i], need))
            return 0;
    if (person->facts.nneeds == S_MAX_NEEDS || strlen (need) >= ROUTER_CODE_MAX) {
        fprintf (stderr, "find-services: too many needs, or \"%.40s\" is too long\n", need);
        return -1;
    }
    size_t i = person->facts.nneeds++;
    strcpy (person->needs [i], need);
    person->pointers [i] = person->needs [i];
    return 0;
}

//  Space-separated condition names into a mask; 0 or -1 after the error
static int
s_conditions (const char *text, uint32_t *mask)
{
    char copy [ROUTER_ERR_MAX];
    snprintf (copy, sizeof copy, "%s", text);
    char *save = NULL;
    for (char *name = strtok_r (copy, " ,", &save); name; name = strtok_r (NULL, " ,", &save)) {
        uint32_t bit = router_condition_parse (name);
        if (!bit) {
            fprintf (stderr, "find-services: unknown condition \"%.40s\"\n", name);
            return -1;
        }
        *mask |= bit;
    }
    return 0;
}

//  Reads the options into person; the Z-codes' needs need the directory. 0, or 2 (usage)
static int
s_person (router_directory_t *directory, fs_pg_t *pg, int argc, char **argv,
          s_person_t *person)
{
    memset (person, 0, sizeof *person);
    router_facts_t *facts = &person->facts;
    facts->age = -1;
    facts->needs = person->pointers;
    for (int a = 1; a < argc; a += 2) {
        const char *option = argv [a], *value = a + 1 < argc ? argv [a + 1] : NULL;
        if (!value) {
            fprintf (stderr, "find-services: %s needs a value\n", option);
            return 2;
        }
        if (streq (option, "--age")) {
            char *end;
            long age = strtol (value, &end, 10);
            if (*value == 0 || *end || age < 0 || age > 150) {
                fprintf (stderr, "find-services: --age takes 0-150\n");
                return 2;
            }
            facts->age = (int) age;
        }
        else
        if (streq (option, "--lives")) {
            if (streq (value, "registered"))
                facts->lives = ROUTER_LIVES_REGISTERED;
            else
            if (streq (value, "unregistered"))
                facts->lives = ROUTER_LIVES_UNREGISTERED;
            else
            if (streq (value, "outside"))
                facts->lives = ROUTER_LIVES_OUTSIDE;
            else {
                fprintf (stderr, "find-services: --lives takes registered, unregistered or"
                         " outside\n");
                return 2;
            }
        }
        else
        if (streq (option, "--sex")) {
            //  As intake records it; decides `woman` unless --holds/--lacks name it
            if (!streq (value, "female") && !streq (value, "male")
            &&  !streq (value, "non_binary")) {
                fprintf (stderr, "find-services: --sex takes female, male or non_binary, not"
                         " \"%.40s\"\n", value);
                return 2;
            }
            facts->sex = value;
        }
        else
        if (streq (option, "--district"))
            facts->district = value;
        else
        if (streq (option, "--neighbourhood"))
            facts->neighbourhood = value;
        else
        if (streq (option, "--holds") || streq (option, "--lacks")) {
            if (s_conditions (value, streq (option, "--holds") ? &facts->holds : &facts->lacks))
                return 2;
        }
        else
        if (streq (option, "--needs") || streq (option, "--zcodes")) {
            bool zcodes = streq (option, "--zcodes");
            char copy [ROUTER_ERR_MAX];
            snprintf (copy, sizeof copy, "%s", value);
            char *save = NULL;
            for (char *item = strtok_r (copy, " ,", &save); item;
                 item = strtok_r (NULL, " ,", &save)) {
                if (!zcodes) {
                    const char *values [1] = { item };
                    PGresult *known = fs_pg_exec (pg, "SELECT 1 FROM"
                        " referral_router.need_categories WHERE code = $1", 1, values);
                    bool found = known && PQntuples (known) == 1;
                    PQclear (known);
                    if (!found) {
                        fprintf (stderr, "find-services: unknown need category \"%.40s\"\n",
                                 item);
                        return 2;
                    }
                    if (s_add_need (person, item))
                        return 2;
                    continue;
                }
                const router_zmap_t *row;
                char code [ROUTER_ZCODE_MAX];
                if (router_directory_zcode (directory, item, &row, code) != ROUTER_ZCODE_MAPPED) {
                    printf ("%s: no need category from this code (see map-zcode)\n",
                            *code ? code : item);
                    continue;
                }
                for (size_t n = 0; n < row->nneeds; n++)
                    if (s_add_need (person, row->needs [n]))
                        return 2;
            }
        }
        else {
            fprintf (stderr, "find-services: unknown option %s\n", option);
            return 2;
        }
    }
    return 0;
}

int
router_directory_find_services (fs_server_t *server, int argc, char **argv)
{
    if (argc > 1 && (streq (argv [1], "--help") || streq (argv [1], "-h"))) {
        printf ("usage: finestra-referral-router find-services [--age N]"
                " [--lives registered|unregistered|outside]\n"
                "         [--sex female|male|non_binary] [--district CODE]"
                " [--neighbourhood CODE]\n"
                "         [--needs \"NEED ...\"] [--zcodes \"Z59.0 ...\"]"
                " [--holds \"CONDITION ...\"] [--lacks \"CONDITION ...\"]\n"
                "  Every active service of the directory against those facts; a fact not"
                " given is unknown\n  (the district follows from the neighbourhood when the"
                " territory is loaded). --sex decides\n  the condition woman as the sex on the"
                " person's file does, unless --holds or --lacks names it.\n");
        return 0;
    }
    char err [ROUTER_ERR_MAX];
    router_directory_t *directory = router_directory_new (fs_server_pg (server), err,
                                                          sizeof err);
    if (!directory) {
        fprintf (stderr, "%s\n", err);
        return 1;
    }
    s_person_t *person = (s_person_t *) malloc (sizeof *person);
    assert (person);
    int rc = s_person (directory, fs_server_pg (server), argc, argv, person);
    //  The neighbourhood tells the district (when the territory is loaded)
    router_facts_t *facts = &person->facts;
    const char *district = router_directory_district_of (directory, facts->neighbourhood);
    if (rc == 0 && district && facts->district && !streq (district, facts->district)) {
        fprintf (stderr, "find-services: neighbourhood %s is in district %s, not %s\n",
                 facts->neighbourhood, district, facts->district);
        rc = 2;
    }
    if (rc == 0 && district && !facts->district)
        facts->district = district;
    if (rc == 0) {
        size_t count [3] = { 0, 0, 0 };
        static const char *headings [3] = {
            "fits", "cannot tell (a fact is not known)", "does not fit"
        };
        //  One pass per verdict, so the answer reads fits first
        int order [3] = { ROUTER_FIT, ROUTER_FIT_UNKNOWN, ROUTER_NO_FIT };
        for (int o = 0; o < 3; o++) {
            bool heading = false;
            for (size_t i = 0; i < router_directory_size (directory); i++) {
                const router_service_t *service = router_directory_service (directory, i);
                router_fit_t fit;
                router_criteria_eval (service, &person->facts, &fit);
                if ((int) fit.verdict != order [o])
                    continue;
                if (!heading) {
                    printf ("%s:\n", headings [o]);
                    heading = true;
                }
                count [o]++;
                if (fit.verdict == ROUTER_FIT)
                    printf ("  %-11s %s [%s %s]%s\n", service->code, service->name,
                            router_delivery_name (service->delivery),
                            service->delivery_target,
                            fit.waiting_list ? " (waiting list)" : "");
                else
                    printf ("  %-11s %s\n", service->code, fit.reason);
            }
        }
        printf ("%zu fit, %zu cannot tell, %zu do not fit\n", count [0], count [1], count [2]);
    }
    free (person);
    router_directory_destroy (&directory);
    return rc;
}
