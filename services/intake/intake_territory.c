/*  intake_territory - loads districts, neighbourhoods, centres and postcodes from CSV files. */
#include "intake.h"

#define S_MAX_FIELDS 8

//  Splits one CSV line (RFC 4180 quoting) in place; returns the field count or -1
static int
s_csv_split (char *line, char **fields, int max)
{
    int n = 0;
    char *in = line, *out = line;
    while (n < max) {
        fields [n++] = out;
        if (*in == '"') {
            in++;
            while (*in) {
                if (*in == '"' && in [1] == '"') { *out++ = '"'; in += 2; }
                else if (*in == '"') { in++; break; }
                else *out++ = *in++;
            }
        }
        else
            while (*in && *in != ',')
                *out++ = *in++;
        if (*in == ',') { in++; *out++ = 0; continue; }
        if (*in == 0) { *out = 0; return n; }
        return -1;          //  text after a closing quote
    }
    return -1;
}

typedef int (s_row_fn) (fs_pg_t *pg, char **fields, int n, const char *where);

//  Calls fn for every data row (comments and the header skipped). 0, or -1 after logging
static int
s_load_csv (fs_pg_t *pg, const char *path, int nfields, s_row_fn *fn)
{
    FILE *file = fopen (path, "r");
    if (!file) {
        fprintf (stderr, "cannot read %s: %s\n", path, strerror (errno));
        return -1;
    }
    char line [2048];
    int lineno = 0, rows = 0, rc = 0;
    bool header = true;
    while (rc == 0 && fgets (line, sizeof line, file)) {
        lineno++;
        line [strcspn (line, "\r\n")] = 0;
        if (line [0] == '#' || line [0] == 0)
            continue;
        if (header) {
            header = false;
            continue;
        }
        char *fields [S_MAX_FIELDS];
        char where [300];
        snprintf (where, sizeof where, "%s:%d", path, lineno);
        if (s_csv_split (line, fields, S_MAX_FIELDS) != nfields) {
            fprintf (stderr, "%s: expected %d fields\n", where, nfields);
            rc = -1;
        }
        else
        if (fn (pg, fields, nfields, where))
            rc = -1;
        else
            rows++;
    }
    fclose (file);
    if (rc == 0)
        fprintf (stdout, "%s: %d rows\n", path, rows);
    return rc;
}

static int
s_exec (fs_pg_t *pg, const char *where, const char *sql, int n, const char *const *values)
{
    if (fs_pg_run (pg, sql, n, values) == 0)
        return 0;
    fprintf (stderr, "%s: %s\n", where, fs_pg_error (pg));
    return -1;
}

//  district_code,district,neighbourhood_code,neighbourhood
static int
s_territory_row (fs_pg_t *pg, char **f, int n, const char *where)
{
    const char *district [2] = { f [0], f [1] };
    const char *hood [3] = { f [2], f [0], f [3] };
    return s_exec (pg, where, "INSERT INTO intake.districts (code, name) VALUES ($1, $2)"
                              " ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name", 2, district)
        || s_exec (pg, where, "INSERT INTO intake.neighbourhoods (code, district_code, name)"
                              " VALUES ($1, $2, $3) ON CONFLICT (code) DO UPDATE"
                              " SET district_code = EXCLUDED.district_code, name = EXCLUDED.name",
                   3, hood);
}

//  centre_code,centre_name,district_code,neighbourhood_codes (space-separated)
static int
s_centre_row (fs_pg_t *pg, char **f, int n, const char *where)
{
    const char *centre [3] = { f [0], f [1], f [2] };
    if (s_exec (pg, where, "INSERT INTO intake.centres (code, name, district_code, demo)"
                           " VALUES ($1, $2, $3, true) ON CONFLICT (code) DO UPDATE"
                           " SET name = EXCLUDED.name, district_code = EXCLUDED.district_code",
                3, centre))
        return -1;
    char *save = NULL;
    for (char *hood = strtok_r (f [3], " ", &save); hood; hood = strtok_r (NULL, " ", &save)) {
        const char *serve [2] = { hood, f [0] };
        if (s_exec (pg, where, "INSERT INTO intake.centre_neighbourhoods"
                               " (neighbourhood_code, centre_code) VALUES ($1, $2)"
                               " ON CONFLICT (neighbourhood_code)"
                               " DO UPDATE SET centre_code = EXCLUDED.centre_code", 2, serve))
            return -1;
    }
    return 0;
}

//  postcode,neighbourhood_code
static int
s_postcode_row (fs_pg_t *pg, char **f, int n, const char *where)
{
    const char *values [2] = { f [0], f [1] };
    return s_exec (pg, where, "INSERT INTO intake.postcodes (postcode, neighbourhood_code, demo)"
                              " VALUES ($1, $2, true) ON CONFLICT (postcode)"
                              " DO UPDATE SET neighbourhood_code = EXCLUDED.neighbourhood_code",
                   2, values);
}

int
intake_territory_load (fs_server_t *server, int argc, char **argv)
{
    if (argc < 3 || argc > 4) {
        fprintf (stderr, "usage: finestra-intake load-territory TERRITORY_CSV CENTRES_CSV"
                         " [POSTCODES_CSV]\n");
        return 2;
    }
    fs_pg_t *pg = fs_server_pg (server);
    //  All or nothing: a bad row leaves the territory as it was
    if (fs_pg_begin (pg)
    ||  s_load_csv (pg, argv [1], 4, s_territory_row)
    ||  s_load_csv (pg, argv [2], 4, s_centre_row)
    ||  (argc == 4 && s_load_csv (pg, argv [3], 2, s_postcode_row))
    ||  fs_pg_commit (pg)) {
        fs_pg_rollback (pg);
        fprintf (stderr, "territory not loaded: nothing changed\n");
        return 1;
    }
    PGresult *result = fs_pg_exec (pg,
        "SELECT (SELECT count(*) FROM intake.districts), (SELECT count(*) FROM intake.neighbourhoods),"
        " (SELECT count(*) FROM intake.centres), (SELECT count(*) FROM intake.neighbourhoods n"
        "  WHERE NOT EXISTS (SELECT 1 FROM intake.centre_neighbourhoods c"
        "                    WHERE c.neighbourhood_code = n.code))", 0, NULL);
    if (result) {
        printf ("territory: %s districts, %s neighbourhoods, %s centres (demo),"
                " %s neighbourhoods without a centre\n", PQgetvalue (result, 0, 0),
                PQgetvalue (result, 0, 1), PQgetvalue (result, 0, 2), PQgetvalue (result, 0, 3));
        PQclear (result);
    }
    return 0;
}
