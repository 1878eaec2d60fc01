/*  test_router_directory - `finestra-referral-router load-directory` and `map-zcode` through
    the real binary on a fresh database, as an operator runs them: the demo directory loads
    whole; bad data is named by file, line and column and changes nothing; a reload
    deactivates services left out; Z-codes map, or are reported unmapped; find-services
    evaluates the loaded criteria. */
#include "fs_test.h"

extern const char *fs_test_source_dir;

static char *s_url;                 //  the suite's database
static char s_out [65536];          //  the last command's stdout
static char s_err [65536];          //  and stderr
static char s_data [512];           //  services/referral-router/data

//  `finestra-referral-router ARGS...` on the suite's database (s_url); stdout and stderr
//  land in s_out and s_err
static fs_test_command_t s_router = {
    .service = "referral-router", .redis_prefix = "test:router_directory:",
    .settings = (const char *const []) { "FINESTRA_PG_CONNECT_TIMEOUT_MS=10000", NULL },
    .capture = true, .out = s_out, .out_size = sizeof s_out, .err = s_err,
    .err_size = sizeof s_err
};
#define s_run(...) fs_test_command_runl (&s_router, __VA_ARGS__)

//  The first column of the only row, as text (malloc'd)
#define s_text(sql) fs_test_pg_one (s_url, sql)
#define s_expect(sql, expected) fs_test_pg_expect_one (s_url, sql, expected)

//  A digest of everything load-directory writes, to show a refusal changed nothing
static char *
s_digest (void)
{
    return s_text ("SELECT md5 (concat_ws ('|',"
        " (SELECT string_agg ((to_jsonb (s) - 'loaded_at')::text, ';' ORDER BY code)"
        "  FROM referral_router.services s),"
        " (SELECT string_agg (n::text, ';' ORDER BY service_code, need)"
        "  FROM referral_router.service_needs n),"
        " (SELECT string_agg (z::text, ';' ORDER BY code) FROM referral_router.zcodes z),"
        " (SELECT string_agg (z::text, ';' ORDER BY code, need)"
        "  FROM referral_router.zcode_needs z),"
        " (SELECT string_agg (c::text, ';' ORDER BY code)"
        "  FROM referral_router.need_categories c)))");
}

static const char *
s_file (const char *name)
{
    static char paths [4][600];
    static int next;
    char *path = paths [next++ % 4];
    snprintf (path, sizeof paths [0], "%s/%s", s_data, name);
    return path;
}

static int
s_load_demo (void)
{
    return s_run ("load-directory", s_file ("services.csv"), s_file ("needs.csv"),
                  s_file ("zcodes.csv"), NULL);
}

//  Copies the demo file name into /tmp, replacing the first line starting with prefix by
//  line (or, when line is NULL, keeping only the header and the lines starting with prefix)
static const char *
s_variant (const char *name, const char *prefix, const char *line)
{
    static char path [128];
    snprintf (path, sizeof path, "/tmp/test_router_directory.%d.%s", getpid (), name);
    FILE *in = fopen (s_file (name), "r");
    FILE *out = fopen (path, "w");
    cr_assert (in && out);
    char buffer [4096];
    bool header = true, replaced = false;
    while (fgets (buffer, sizeof buffer, in)) {
        bool match = strncmp (buffer, prefix, strlen (prefix)) == 0;
        if (buffer [0] == '#')
            fputs (buffer, out);
        else
        if (header) {
            fputs (buffer, out);
            header = false;
        }
        else
        if (!line) {
            if (match)
                fputs (buffer, out);
        }
        else
        if (match && !replaced) {
            fprintf (out, "%s\n", line);
            replaced = true;
        }
        else
            fputs (buffer, out);
    }
    fclose (in);
    fclose (out);
    cr_assert (replaced || !line, "no line of %s starts with %s", name, prefix);
    return path;
}

Test (router_directory, loads_the_demo_directory)
{
    cr_assert_eq (s_load_demo (), 0, "%s", s_err);
    cr_assert (strstr (s_out, "directory: 83 active services (83 demo), 15 need categories,"
                              " 106 Z-codes"), "%s", s_out);
    //  The social services centres are intake's demo centres, same codes and neighbourhoods
    s_expect ("SELECT count(*) FROM referral_router.services"
              " WHERE kind = 'social_services_centre' AND code ~ '^CSS[0-9]{2}$'", "40");
    s_expect ("SELECT territory_scope || ':' || array_to_string (territory_codes, ' ')"
              " FROM referral_router.services WHERE code = 'CSS36'", "neighbourhood:60 61 62 63");
    //  ... every one of them: deploy/demo/centres.csv's neighbourhoods, code by code
    char path [600];
    snprintf (path, sizeof path, "%s/deploy/demo/centres.csv", fs_test_source_dir);
    FILE *centres = fopen (path, "r");
    cr_assert (centres, "%s", path);
    char line [512];
    int checked = 0;
    while (fgets (line, sizeof line, centres)) {
        line [strcspn (line, "\r\n")] = 0;
        if (line [0] == '#' || strncmp (line, "CSS", 3) != 0)
            continue;
        char *code = line, *hoods = strrchr (line, ',');
        *strchr (line, ',') = 0;
        char sql [256];
        snprintf (sql, sizeof sql, "SELECT array_to_string (territory_codes, ' ') FROM"
                  " referral_router.services WHERE code = '%.16s' AND territory_scope ="
                  " 'neighbourhood'", code);
        s_expect (sql, hoods + 1);
        checked++;
    }
    fclose (centres);
    cr_assert_eq (checked, 40);
    //  Criteria as data
    s_expect ("SELECT concat_ws ('|', age_min, age_max, residency, any_need,"
              " array_to_string (territory_codes, ' '), capacity, delivery, delivery_target)"
              " FROM referral_router.services WHERE code = 'EAIA-B'",
              "0|17|any|f|03 04|capacity|feed|eaia");
    s_expect ("SELECT string_agg (need, ' ' ORDER BY need) FROM referral_router.service_needs"
              " WHERE service_code = 'SAD-DEP'", "caregiver_support home_care");
    s_expect ("SELECT array_to_string (conditions, ' ') FROM referral_router.services"
              " WHERE code = 'PIAD-05'", "woman");
    s_expect ("SELECT count(*) FROM referral_router.service_needs s JOIN referral_router.services"
              " v ON v.code = s.service_code WHERE v.any_need", "0");
    //  Every kind the issue names is there
    s_expect ("SELECT count(DISTINCT kind) FROM referral_router.services", "10");
    s_expect ("SELECT string_agg (need, ' ' ORDER BY need) FROM referral_router.zcode_needs"
              " WHERE code = 'Z59.0'", "homelessness housing");
    //  Loading again changes nothing
    char *before = s_digest ();
    cr_assert_eq (s_load_demo (), 0, "%s", s_err);
    char *after = s_digest ();
    cr_assert_str_eq (before, after);
    free (before);
    free (after);
}

Test (router_directory, bad_data_is_named_and_changes_nothing)
{
    cr_assert_eq (s_load_demo (), 0, "%s", s_err);
    char *before = s_digest ();
    struct { const char *file, *prefix, *line, *error; } bad [] = {
        //  One bad row in an otherwise good file: file:line: column, and nothing kept
        { "services.csv", "SIS,", "SIS,homelessness,SIS (demo),city,,1x8,,any,homelessness,,"
          "Adults,capacity,feed,homelessness-network,true",
          ":84: column 6 (age_min): \"1x8\" is not an age" },
        { "services.csv", "OAP,", "OAP,benefits_office,OAP (demo),city,,18,,registered_in_city,"
          "income fod,,Adults,capacity,internal,benefits-office,true",
          ":87: column 9 (needs): unknown need category \"fod\"" },
        { "services.csv", "CSS02,", "CSS02,social_services_centre,CSS (demo),neighbourhood,02,,,"
          "lives_in_city,*,,Anyone,full,internal,notification,true",
          ":6: column 12 (capacity): unknown capacity state \"full\"" },
        { "services.csv", "CSS03,", "CSS03,social_services_centre,\"CSS (demo),neighbourhood",
          ":7: column 3: unclosed quote" },
        { "services.csv", "CSS04,", "CSS04,social_services_centre,CSS (demo)",
          ":8: 3 fields, expected 15" },
        { "services.csv", "CSS05,", "CSS01,social_services_centre,CSS (demo),neighbourhood,05,,,"
          "lives_in_city,*,,Anyone,capacity,internal,notification,true",
          ":9: column 1 (code): listed twice in this file" },
        { "zcodes.csv", "Z59.4,", "Z59.4,Lack of adequate food,fodo",
          ":52: column 3 (needs): unknown need category \"fodo\"" },
        { "zcodes.csv", "Z59.5,", "Z66.5,Out of range,income",
          ":53: column 1 (zcode): outside Z55-Z65" },
        { "zcodes.csv", "Z59.6,", "z590,Homelessness again,housing",
          ":54: column 1 (zcode): listed twice" },
        { "needs.csv", "food,", "Food,Food,Lack of food", ":7: column 1 (need): a need code" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        const char *variant = s_variant (bad [i].file, bad [i].prefix, bad [i].line);
        const char *files [3];
        const char *names [3] = { "services.csv", "needs.csv", "zcodes.csv" };
        for (int f = 0; f < 3; f++)
            files [f] = streq (bad [i].file, names [f]) ? variant : s_file (names [f]);
        int rc = s_run ("load-directory", files [0], files [1], files [2], NULL);
        cr_assert_eq (rc, 1, "case %zu: rc %d, %s", i, rc, s_out);
        char expected [256];
        snprintf (expected, sizeof expected, "%s%s", variant, bad [i].error);
        cr_assert (strstr (s_err, expected), "case %zu: expected \"%s\" in:\n%s", i, expected,
                   s_err);
        cr_assert (strstr (s_err, "directory not loaded: nothing changed"), "%s", s_err);
        char *after = s_digest ();
        cr_assert_str_eq (before, after, "case %zu changed the directory", i);
        free (after);
        unlink (variant);
    }
    //  A good row changed before a bad one is not kept
    const char *variant = s_variant ("services.csv", "CSS01,", "CSS01,social_services_centre,"
        "CSS Renamed (demo),neighbourhood,01,,,lives_in_city,*,,Anyone,capacity,internal,"
        "notification,true");
    FILE *file = fopen (variant, "a");
    fputs ("BAD,school,x,city,,,,any,*,,x,capacity,internal,notification,true\n", file);
    fclose (file);
    cr_assert_eq (s_run ("load-directory", variant, NULL), 1);
    cr_assert (strstr (s_err, "column 2 (kind): unknown kind \"school\""), "%s", s_err);
    s_expect ("SELECT name FROM referral_router.services WHERE code = 'CSS01'",
              "CSS Raval Nord (demo)");
    unlink (variant);
    //  Files that are not the directory's, or missing
    cr_assert_eq (s_run ("load-directory", "/nonexistent.csv", NULL), 1);
    cr_assert (strstr (s_err, "/nonexistent.csv: cannot read"), "%s", s_err);
    char unknown [128];
    snprintf (unknown, sizeof unknown, "/tmp/test_router_directory.%d.csv", getpid ());
    file = fopen (unknown, "w");
    fputs ("# a comment\ncentre_code,centre_name\n", file);
    fclose (file);
    cr_assert_eq (s_run ("load-directory", unknown, NULL), 1);
    cr_assert (strstr (s_err, ":2: unknown header"), "%s", s_err);
    unlink (unknown);
    cr_assert_eq (s_run ("load-directory", NULL), 2);
    char *after = s_digest ();
    cr_assert_str_eq (before, after);
    free (after);
    free (before);
}

Test (router_directory, services_left_out_become_inactive)
{
    cr_assert_eq (s_load_demo (), 0, "%s", s_err);
    const char *variant = s_variant ("services.csv", "CSS1", NULL);
    cr_assert_eq (s_run ("load-directory", variant, NULL), 0, "%s", s_err);
    unlink (variant);
    cr_assert (strstr (s_out, ": 10 services; no longer listed, now inactive: CSS01"),
               "%s", s_out);
    s_expect ("SELECT count(*) FILTER (WHERE active) || '/' || count(*)"
              " FROM referral_router.services", "10/83");
    s_expect ("SELECT string_agg (code, ' ' ORDER BY code) FROM referral_router.services"
              " WHERE active AND code < 'CSS20'", "CSS10 CSS11 CSS12 CSS13 CSS14 CSS15 CSS16"
              " CSS17 CSS18 CSS19");
    //  The whole file again brings them back
    cr_assert_eq (s_load_demo (), 0, "%s", s_err);
    s_expect ("SELECT count(*) FILTER (WHERE active) || '/' || count(*)"
              " FROM referral_router.services", "83/83");
}

Test (router_directory, map_zcode)
{
    cr_assert_eq (s_load_demo (), 0, "%s", s_err);
    cr_assert_eq (s_run ("map-zcode", "z590", "Z6361", "Z63.6", NULL), 0, "%s", s_out);
    cr_assert (strstr (s_out, "Z59.0: homelessness housing  (Z59.0 Homelessness)\n"), "%s",
               s_out);
    cr_assert (strstr (s_out, "Z63.61: caregiver_support home_care  (Z63.6 Dependent relative"
                              " needing care at home, its parent)\n"), "%s", s_out);
    cr_assert_eq (s_run ("map-zcode", "Z59.3", "Z57.1", "Z64.9", "E11", "hello", NULL), 1);
    cr_assert (strstr (s_out, "Z59.3: unmapped (Z59.3 Problems related to living in"
                              " residential institution: no need category)"), "%s", s_out);
    cr_assert (strstr (s_out, "Z57.1: unmapped (Z57.1 "), "%s", s_out);
    cr_assert (strstr (s_out, "Z64.9: unmapped (Z64 "), "%s", s_out);
    cr_assert (strstr (s_out, "E11: outside Z55-Z65, not mapped"), "%s", s_out);
    cr_assert (strstr (s_out, "hello: not an ICD-10 code"), "%s", s_out);
    //  Every code of every block Z55-Z65 is in the mapping, mapped or deliberately not
    s_expect ("SELECT count(*) FROM generate_series (55, 65) b WHERE NOT EXISTS"
              " (SELECT 1 FROM referral_router.zcodes WHERE code = 'Z' || b)", "0");
}

Test (router_directory, find_services_against_the_loaded_directory)
{
    cr_assert_eq (s_load_demo (), 0, "%s", s_err);
    //  A child at risk in Sants - Badal: its centre (waiting list) and its district's EAIA
    cr_assert_eq (s_run ("find-services", "--age", "10", "--lives", "registered", "--district",
                         "03", "--neighbourhood", "17", "--zcodes", "Z62.4 Z57.1", NULL), 0,
                  "%s", s_err);
    cr_assert (strstr (s_out, "Z57.1: no need category from this code"), "%s", s_out);
    cr_assert (strstr (s_out, "fits:\n  CSS14       CSS Sants - Badal (demo) [internal"
                              " notification] (waiting list)\n  EAIA-B      EAIA"), "%s", s_out);
    cr_assert (strstr (s_out, "  EAIA-A      territory: serves district 01, 02 only; the"
                              " person lives in district 03\n"), "%s", s_out);
    cr_assert (strstr (s_out, "  SIS         age_min: from age 18; the person is 10\n"), "%s",
               s_out);
    cr_assert (strstr (s_out, "2 fit, 0 cannot tell, 81 do not fit\n"), "%s", s_out);
    //  An unknown fact is never a fit: without the age, the EAIA cannot tell
    cr_assert_eq (s_run ("find-services", "--district", "03", "--neighbourhood", "17",
                         "--needs", "childhood_at_risk", NULL), 0, "%s", s_err);
    cr_assert (strstr (s_out, "cannot tell (a fact is not known):\n"), "%s", s_out);
    cr_assert (strstr (s_out, "  EAIA-B      age_min: from age 0; the person's age is not"
                              " known\n"), "%s", s_out);
    //  A woman's service needs the condition known to hold
    cr_assert_eq (s_run ("find-services", "--age", "35", "--district", "05", "--needs",
                         "gender_violence", "--holds", "woman", NULL), 0, "%s", s_err);
    cr_assert (strstr (s_out, "  PIAD-05     PIAD Sarri"), "%s", s_out);
    cr_assert_eq (s_run ("find-services", "--age", "35", "--district", "05", "--needs",
                         "gender_violence", "--lacks", "woman", NULL), 0, "%s", s_err);
    cr_assert (strstr (s_out, "  PIAD-05     conditions: requires woman; it does not hold"),
               "%s", s_out);
    //  Bad options are refused, naming what is wrong
    cr_assert_eq (s_run ("find-services", "--needs", "shelter", NULL), 2);
    cr_assert (strstr (s_err, "unknown need category \"shelter\""), "%s", s_err);
    cr_assert_eq (s_run ("find-services", "--age", "old", NULL), 2);
    cr_assert_eq (s_run ("find-services", "--holds", "rich", NULL), 2);
    cr_assert (strstr (s_err, "unknown condition \"rich\""), "%s", s_err);
    cr_assert_eq (s_run ("find-services", "--age", NULL), 2);
}

//  Writes text into a fresh file of this process; returns its path (static)
static const char *
s_write (const char *name, const char *text)
{
    static char paths [4][128];
    static int next;
    char *path = paths [next++ % 4];
    snprintf (path, sizeof paths [0], "/tmp/test_router_directory.%d.%s", getpid (), name);
    FILE *file = fopen (path, "w");
    cr_assert (file);
    fputs (text, file);
    fclose (file);
    return path;
}

Test (router_directory, territory_checks_codes_and_gives_districts)
{
    //  A database of its own: the territory it loads must not reach the other tests
    char *shared = s_url;
    s_url = fs_test_db_create ("router_territory");
    s_router.pg_url = s_url;
    const char *territory = s_write ("territory.csv",
        "district_code,district,neighbourhood_code,neighbourhood\n"
        "03,Sants-Montjuïc,17,Sants - Badal\n03,Sants-Montjuïc,18,Sants\n"
        "04,Les Corts,19,les Corts\n");
    const char *header = "code,kind,name,territory_scope,territory_codes,age_min,age_max,"
                         "residency,needs,conditions,criteria_text,capacity,delivery,"
                         "delivery_target,demo\n";
    char text [2048];
    snprintf (text, sizeof text, "%s"
        "CSS14,social_services_centre,CSS Sants - Badal (demo),neighbourhood,17,,,any,*,,"
        "Anyone,capacity,internal,notification,true\n"
        "EAIA-B,childhood_at_risk,EAIA (demo),district,03 04,0,17,any,childhood_at_risk,,"
        "Children,capacity,feed,eaia,true\n", header);
    const char *good = s_write ("good.csv", text);
    snprintf (text, sizeof text, "%s"
        "CSS14,social_services_centre,CSS Sants - Badal (demo),neighbourhood,17 20,,,any,*,,"
        "Anyone,capacity,internal,notification,true\n", header);
    const char *unknown_hood = s_write ("hood.csv", text);
    snprintf (text, sizeof text, "%s"
        "EAIA-B,childhood_at_risk,EAIA (demo),district,3,0,17,any,childhood_at_risk,,"
        "Children,capacity,feed,eaia,true\n", header);
    const char *unknown_district = s_write ("district.csv", text);
    //  Without a territory, codes are checked for form only, and it says so
    cr_assert_eq (s_run ("load-directory", unknown_district, s_file ("needs.csv"), NULL), 0,
                  "%s", s_err);
    cr_assert (strstr (s_out, "territory codes checked for form only"), "%s", s_out);
    //  With it (given in the same run, in any order), an unknown code is refused
    cr_assert_eq (s_run ("load-directory", unknown_district, territory, NULL), 1);
    cr_assert (strstr (s_err, "district.csv:2: column 5 (territory_codes): unknown district"
                              " code \"3\""), "%s", s_err);
    s_expect ("SELECT count(*) FROM referral_router.neighbourhoods", "0");
    cr_assert_eq (s_run ("load-directory", good, territory, NULL), 0, "%s", s_err);
    cr_assert (strstr (s_out, "territory.csv: 3 neighbourhoods"), "%s", s_out);
    cr_assert_null (strstr (s_out, "form only"), "%s", s_out);
    //  Loaded before: checked on the next load too
    cr_assert_eq (s_run ("load-directory", unknown_hood, NULL), 1);
    cr_assert (strstr (s_err, "hood.csv:2: column 5 (territory_codes): unknown neighbourhood"
                              " code \"20\""), "%s", s_err);
    //  find-services learns the district from the neighbourhood
    cr_assert_eq (s_run ("find-services", "--age", "9", "--neighbourhood", "18", "--needs",
                         "childhood_at_risk", NULL), 0, "%s", s_err);
    cr_assert (strstr (s_out, "fits:\n  EAIA-B "), "%s", s_out);
    cr_assert (strstr (s_out, "  CSS14       territory: serves neighbourhood 17 only; the"
                              " person lives in neighbourhood 18"), "%s", s_out);
    cr_assert_eq (s_run ("find-services", "--neighbourhood", "18", "--district", "04", NULL),
                  2);
    cr_assert (strstr (s_err, "neighbourhood 18 is in district 03, not 04"), "%s", s_err);
    for (int i = 0; i < 4; i++)
        unlink (i == 0 ? territory : i == 1 ? good : i == 2 ? unknown_hood : unknown_district);
    //  The city's territory (beside the repository, as deploy/run finds it) accepts every
    //  code of the demo directory
    char city [600];
    snprintf (city, sizeof city, "%s/../shared/data/barcelona-territory.csv",
              fs_test_source_dir);
    if (access (city, R_OK) == 0) {
        cr_assert_eq (s_run ("load-directory", s_file ("services.csv"), s_file ("needs.csv"),
                             s_file ("zcodes.csv"), city, NULL), 0, "%s", s_err);
        cr_assert (strstr (s_out, "83 active services (83 demo), 15 need categories, 106"
                                  " Z-codes, 73 neighbourhoods"), "%s", s_out);
    }
    else
        cr_log_warn ("%s not found: the demo directory's codes were not checked", city);
    fs_test_db_drop (s_url);
    free (s_url);
    s_url = shared;
    s_router.pg_url = s_url;
}

static void
s_setup (void)
{
    snprintf (s_data, sizeof s_data, "%s/services/referral-router/data", fs_test_source_dir);
    s_url = fs_test_db_create ("router_directory");
    s_router.pg_url = s_url;
}

static void
s_teardown (void)
{
    fs_test_db_drop (s_url);
    free (s_url);
    s_url = NULL;
}

TestSuite (router_directory, .init = s_setup, .fini = s_teardown, .timeout = 120);
