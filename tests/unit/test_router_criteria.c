/*  test_router_criteria - a directory row checked column by column, and access criteria:
    each criterion, inclusive age bounds, unknown facts, city-wide vs district vs
    neighbourhood, capacity, and which criterion is named. */
#include "router_rules.h"
#include <criterion/criterion.h>

//  A row as the CSV gives it: fields in router_service_columns order
typedef struct {
    char text [ROUTER_SERVICE_NCOLUMNS][200];
    char *fields [ROUTER_SERVICE_NCOLUMNS];
} s_row_t;

static void
s_row (s_row_t *row, const char *const values [ROUTER_SERVICE_NCOLUMNS])
{
    for (int i = 0; i < ROUTER_SERVICE_NCOLUMNS; i++) {
        snprintf (row->text [i], sizeof row->text [i], "%s", values [i]);
        row->fields [i] = row->text [i];
    }
}

static const char *const s_eaia [ROUTER_SERVICE_NCOLUMNS] = {
    "EAIA-B", "childhood_at_risk", "EAIA Sants-Montjuïc and Les Corts (demo)", "district",
    "03 04", "0", "17", "any", "childhood_at_risk", "", "Children 0-17 at risk", "capacity",
    "feed", "eaia", "true"
};

static router_service_t
s_service (const char *const values [ROUTER_SERVICE_NCOLUMNS])
{
    s_row_t row;
    s_row (&row, values);
    router_service_t service;
    char err [ROUTER_ERR_MAX];
    int column = router_service_parse (row.fields, &service, err, sizeof err);
    cr_assert_eq (column, 0, "column %d: %s", column, err);
    return service;
}

//  Changing one column of a good row to value fails at that column with words in err
static void
s_bad (int column, const char *value, const char *words)
{
    s_row_t row;
    s_row (&row, s_eaia);
    snprintf (row.text [column - 1], sizeof row.text [0], "%s", value);
    router_service_t service;
    char err [ROUTER_ERR_MAX] = "";
    int got = router_service_parse (row.fields, &service, err, sizeof err);
    cr_assert_eq (got, column, "\"%s\" in %s: column %d (%s)", value,
                  router_service_columns [column - 1], got, err);
    cr_assert (strstr (err, words), "\"%s\" lacks \"%s\"", err, words);
}

Test (router_directory, a_good_row)
{
    router_service_t s = s_service (s_eaia);
    cr_assert_str_eq (s.code, "EAIA-B");
    cr_assert_eq (s.kind, ROUTER_KIND_CHILDHOOD_AT_RISK);
    cr_assert_eq (s.scope, ROUTER_SCOPE_DISTRICT);
    cr_assert_eq (s.nterritory, 2);
    cr_assert_str_eq (s.territory [1], "04");
    cr_assert_eq (s.age_min, 0);
    cr_assert_eq (s.age_max, 17);
    cr_assert_not (s.any_need);
    cr_assert_eq (s.nneeds, 1);
    cr_assert_eq (s.delivery, ROUTER_DELIVERY_FEED);
    cr_assert (s.demo);
    const char *const css [ROUTER_SERVICE_NCOLUMNS] = {
        "CSS14", "social_services_centre", "CSS Sants - Badal (demo)", "neighbourhood", "17",
        "", "", "lives_in_city", "*", "woman  minors_in_household", "Anyone", "waiting_list",
        "internal", "notification", ""
    };
    s = s_service (css);
    cr_assert (s.any_need);
    cr_assert_eq (s.age_min, -1);
    cr_assert_eq (s.age_max, -1);
    cr_assert_eq (s.conditions, ROUTER_COND_WOMAN | ROUTER_COND_MINORS_IN_HOUSEHOLD);
    cr_assert_not (s.demo);
}

Test (router_directory, every_bad_column_is_named)
{
    s_bad (1, "", "not a code");
    s_bad (1, "CSS 14", "not a code");
    s_bad (2, "school", "unknown kind");
    s_bad (3, "", "name");
    s_bad (4, "region", "unknown territory scope");
    s_bad (5, "", "lists the district codes");
    s_bad (5, "03 03", "listed twice");
    s_bad (5, "03;04", "not a code");
    s_bad (6, "-1", "not an age");
    s_bad (6, "12.5", "not an age");
    s_bad (7, "151", "not an age");
    s_bad (7, "99999999999999", "not an age");
    s_bad (8, "registered", "unknown residency");
    s_bad (9, "", "list the need categories");
    s_bad (9, "Housing!", "not a code");
    s_bad (10, "adult", "unknown condition \"adult\"");
    s_bad (11, "", "criteria in words");
    s_bad (12, "full", "unknown capacity state");
    s_bad (13, "email", "unknown delivery");
    s_bad (14, "", "not a feed name");
    s_bad (15, "yes", "not true, false or empty");
    //  Cross-column: bounds in order; a city-wide service lists no codes
    s_row_t row;
    s_row (&row, s_eaia);
    strcpy (row.text [5], "18");
    router_service_t service;
    char err [ROUTER_ERR_MAX];
    cr_assert_eq (router_service_parse (row.fields, &service, err, sizeof err), 7);
    cr_assert (strstr (err, "below age_min"), "%s", err);
    s_row (&row, s_eaia);
    strcpy (row.text [12], "internal");
    strcpy (row.text [13], "billing");
    cr_assert_eq (router_service_parse (row.fields, &service, err, sizeof err), 14);
    cr_assert (strstr (err, "\"billing\" is not a service of the suite"), "%s", err);
    strcpy (row.text [13], "benefits-office");
    cr_assert_eq (router_service_parse (row.fields, &service, err, sizeof err), 0, "%s", err);
    s_row (&row, s_eaia);
    strcpy (row.text [3], "city");
    cr_assert_eq (router_service_parse (row.fields, &service, err, sizeof err), 5);
    cr_assert (strstr (err, "city-wide"), "%s", err);
}

Test (router_directory, csv_split)
{
    char line [] = "a,\"b, with \"\"quotes\"\"\",,d";
    char *f [8];
    int column;
    cr_assert_eq (router_csv_split (line, f, 8, &column), 4);
    cr_assert_str_eq (f [1], "b, with \"quotes\"");
    cr_assert_str_eq (f [2], "");
    char open [] = "a,\"never closed";
    cr_assert_eq (router_csv_split (open, f, 8, &column), -1);
    cr_assert_eq (column, 2);
    char after [] = "a,b,\"c\"x";
    cr_assert_eq (router_csv_split (after, f, 8, &column), -1);
    cr_assert_eq (column, 3);
    char many [] = "a,b,c";
    cr_assert_eq (router_csv_split (many, f, 2, &column), -1);
    cr_assert_eq (column, 3);
}

//  ---- criteria ----------------------------------------------------------------------

static const char *s_child_needs [] = { "childhood_at_risk" };
static const char *s_other_needs [] = { "employment", "housing" };

//  A 10-year-old at risk, registered, in district 03: fits the EAIA
static router_facts_t
s_child (void)
{
    return (router_facts_t) { .age = 10, .lives = ROUTER_LIVES_REGISTERED, .district = "03",
                              .neighbourhood = "17", .needs = s_child_needs, .nneeds = 1 };
}

static router_fit_t
s_eval (const router_service_t *service, router_facts_t facts)
{
    router_fit_t fit;
    router_criteria_eval (service, &facts, &fit);
    return fit;
}

Test (router_criteria, fits_when_every_criterion_holds)
{
    router_service_t eaia = s_service (s_eaia);
    router_fit_t fit = s_eval (&eaia, s_child ());
    cr_assert_eq (fit.verdict, ROUTER_FIT);
    cr_assert_eq (fit.failed, 0);
    cr_assert_eq (fit.unknown, 0);
    cr_assert_str_eq (fit.reason, "");
    cr_assert_not (fit.waiting_list);
}

Test (router_criteria, age_bounds_are_inclusive)
{
    router_service_t eaia = s_service (s_eaia);
    router_facts_t facts = s_child ();
    facts.age = 0;
    cr_assert_eq (s_eval (&eaia, facts).verdict, ROUTER_FIT);
    facts.age = 17;
    cr_assert_eq (s_eval (&eaia, facts).verdict, ROUTER_FIT);
    facts.age = 18;
    router_fit_t fit = s_eval (&eaia, facts);
    cr_assert_eq (fit.verdict, ROUTER_NO_FIT);
    cr_assert_eq (fit.failed, ROUTER_CRIT_AGE_MAX);
    cr_assert_eq (fit.first, ROUTER_CRIT_AGE_MAX);
    cr_assert_str_eq (fit.reason, "age_max: up to age 17; the person is 18");
    //  A lower bound, likewise
    const char *const adults [ROUTER_SERVICE_NCOLUMNS] = {
        "OH-03", "housing_office", "Oficina d'Habitatge (demo)", "district", "03", "18", "",
        "registered_in_city", "housing", "", "Adults registered", "capacity", "feed",
        "housing-consortium", "true"
    };
    router_service_t office = s_service (adults);
    router_facts_t adult = { .age = 18, .lives = ROUTER_LIVES_REGISTERED, .district = "03",
                             .needs = s_other_needs, .nneeds = 2 };
    cr_assert_eq (s_eval (&office, adult).verdict, ROUTER_FIT);
    adult.age = 17;
    fit = s_eval (&office, adult);
    cr_assert_eq (fit.failed, ROUTER_CRIT_AGE_MIN);
    cr_assert_str_eq (fit.reason, "age_min: from age 18; the person is 17");
}

Test (router_criteria, territory_district_neighbourhood_city)
{
    router_service_t eaia = s_service (s_eaia);
    router_facts_t facts = s_child ();
    facts.district = "04";
    cr_assert_eq (s_eval (&eaia, facts).verdict, ROUTER_FIT);
    facts.district = "05";
    router_fit_t fit = s_eval (&eaia, facts);
    cr_assert_eq (fit.failed, ROUTER_CRIT_TERRITORY);
    cr_assert_str_eq (fit.reason, "territory: serves district 03, 04 only; the person lives"
                      " in district 05");
    //  A district service does not look at the neighbourhood
    facts = s_child ();
    facts.neighbourhood = NULL;
    cr_assert_eq (s_eval (&eaia, facts).verdict, ROUTER_FIT);
    //  A neighbourhood service looks only at the neighbourhood
    const char *const css [ROUTER_SERVICE_NCOLUMNS] = {
        "CSS13", "social_services_centre", "CSS (demo)", "neighbourhood", "14 15 16", "", "",
        "lives_in_city", "*", "", "Anyone", "capacity", "internal", "notification", "true"
    };
    router_service_t centre = s_service (css);
    facts = s_child ();
    facts.neighbourhood = "16";
    cr_assert_eq (s_eval (&centre, facts).verdict, ROUTER_FIT);
    facts.neighbourhood = "17";
    fit = s_eval (&centre, facts);
    cr_assert_eq (fit.failed, ROUTER_CRIT_TERRITORY);
    cr_assert (strstr (fit.reason, "neighbourhood 14, 15, 16 only"), "%s", fit.reason);
    //  City-wide: any district or none known
    const char *const citywide [ROUTER_SERVICE_NCOLUMNS] = {
        "SAIER", "immigrant_reception", "SAIER (demo)", "city", "", "", "", "any",
        "migration legal", "", "Migrants", "capacity", "feed", "saier", "true"
    };
    router_service_t saier = s_service (citywide);
    static const char *migration [] = { "migration" };
    router_facts_t stranger = { .age = -1, .needs = migration, .nneeds = 1 };
    cr_assert_eq (s_eval (&saier, stranger).verdict, ROUTER_FIT);
}

Test (router_criteria, unknown_facts_never_pass)
{
    router_service_t eaia = s_service (s_eaia);
    router_facts_t facts = s_child ();
    facts.age = -1;
    router_fit_t fit = s_eval (&eaia, facts);
    cr_assert_eq (fit.verdict, ROUTER_FIT_UNKNOWN);
    cr_assert_eq (fit.failed, 0);
    cr_assert_eq (fit.unknown, ROUTER_CRIT_AGE_MIN | ROUTER_CRIT_AGE_MAX);
    cr_assert_eq (fit.first, ROUTER_CRIT_AGE_MIN);
    cr_assert (strstr (fit.reason, "age is not known"), "%s", fit.reason);
    facts = s_child ();
    facts.district = NULL;
    fit = s_eval (&eaia, facts);
    cr_assert_eq (fit.verdict, ROUTER_FIT_UNKNOWN);
    cr_assert_eq (fit.unknown, ROUTER_CRIT_TERRITORY);
    facts = s_child ();
    facts.nneeds = 0;
    fit = s_eval (&eaia, facts);
    cr_assert_eq (fit.unknown, ROUTER_CRIT_NEEDS);
    //  A failure outranks an unknown: the verdict is no, and the failure is named
    facts = s_child ();
    facts.age = 30;
    facts.district = NULL;
    fit = s_eval (&eaia, facts);
    cr_assert_eq (fit.verdict, ROUTER_NO_FIT);
    cr_assert_eq (fit.failed, ROUTER_CRIT_AGE_MAX);
    cr_assert_eq (fit.unknown, ROUTER_CRIT_TERRITORY);
    cr_assert_eq (fit.first, ROUTER_CRIT_AGE_MAX);
}

Test (router_criteria, residency)
{
    const char *const registered [ROUTER_SERVICE_NCOLUMNS] = {
        "OAP", "benefits_office", "OAP (demo)", "city", "", "", "", "registered_in_city",
        "income", "", "Registered", "capacity", "internal", "benefits-office", "true"
    };
    router_service_t oap = s_service (registered);
    static const char *income [] = { "income" };
    router_facts_t facts = { .age = 40, .lives = ROUTER_LIVES_REGISTERED, .needs = income,
                             .nneeds = 1 };
    cr_assert_eq (s_eval (&oap, facts).verdict, ROUTER_FIT);
    facts.lives = ROUTER_LIVES_UNREGISTERED;
    router_fit_t fit = s_eval (&oap, facts);
    cr_assert_eq (fit.failed, ROUTER_CRIT_RESIDENCY);
    cr_assert (strstr (fit.reason, "not registered"), "%s", fit.reason);
    facts.lives = ROUTER_LIVES_OUTSIDE;
    cr_assert_eq (s_eval (&oap, facts).failed, ROUTER_CRIT_RESIDENCY);
    facts.lives = ROUTER_LIVES_UNKNOWN;
    cr_assert_eq (s_eval (&oap, facts).unknown, ROUTER_CRIT_RESIDENCY);
    //  lives_in_city takes the unregistered; any takes everyone
    const char *const lives [ROUTER_SERVICE_NCOLUMNS] = {
        "UCER", "housing_office", "UCER (demo)", "city", "", "", "", "lives_in_city",
        "income", "", "Living here", "capacity", "feed", "housing-consortium", "true"
    };
    router_service_t ucer = s_service (lives);
    facts.lives = ROUTER_LIVES_UNREGISTERED;
    cr_assert_eq (s_eval (&ucer, facts).verdict, ROUTER_FIT);
    facts.lives = ROUTER_LIVES_OUTSIDE;
    cr_assert_eq (s_eval (&ucer, facts).failed, ROUTER_CRIT_RESIDENCY);
    router_service_t eaia = s_service (s_eaia);
    router_facts_t child = s_child ();
    child.lives = ROUTER_LIVES_OUTSIDE;
    cr_assert_eq (s_eval (&eaia, child).verdict, ROUTER_FIT);
    child.lives = ROUTER_LIVES_UNKNOWN;
    cr_assert_eq (s_eval (&eaia, child).verdict, ROUTER_FIT);
}

Test (router_criteria, needs)
{
    router_service_t eaia = s_service (s_eaia);
    router_facts_t facts = s_child ();
    facts.needs = s_other_needs;
    facts.nneeds = 2;
    router_fit_t fit = s_eval (&eaia, facts);
    cr_assert_eq (fit.failed, ROUTER_CRIT_NEEDS);
    cr_assert_str_eq (fit.reason, "needs: takes childhood_at_risk; the person's needs are"
                      " employment, housing");
    //  One need in common is enough
    static const char *both [] = { "housing", "childhood_at_risk" };
    facts.needs = both;
    cr_assert_eq (s_eval (&eaia, facts).verdict, ROUTER_FIT);
    //  "*" takes every need, and unknown needs too
    const char *const css [ROUTER_SERVICE_NCOLUMNS] = {
        "CSS15", "social_services_centre", "CSS Sants (demo)", "neighbourhood", "18", "", "",
        "lives_in_city", "*", "", "Anyone", "capacity", "internal", "notification", "true"
    };
    router_service_t centre = s_service (css);
    router_facts_t person = { .age = 50, .lives = ROUTER_LIVES_UNREGISTERED,
                              .neighbourhood = "18" };
    cr_assert_eq (s_eval (&centre, person).verdict, ROUTER_FIT);
}

Test (router_criteria, conditions)
{
    const char *const piad [ROUTER_SERVICE_NCOLUMNS] = {
        "PIAD-03", "womens_service", "PIAD (demo)", "district", "03", "16", "", "any",
        "gender_violence family_support", "woman", "Women", "capacity", "internal",
        "notification", "true"
    };
    router_service_t service = s_service (piad);
    static const char *needs [] = { "gender_violence" };
    router_facts_t facts = { .age = 30, .district = "03", .needs = needs, .nneeds = 1,
                             .holds = ROUTER_COND_WOMAN };
    cr_assert_eq (s_eval (&service, facts).verdict, ROUTER_FIT);
    facts.holds = 0;
    router_fit_t fit = s_eval (&service, facts);
    cr_assert_eq (fit.verdict, ROUTER_FIT_UNKNOWN);
    cr_assert_eq (fit.unknown, ROUTER_CRIT_CONDITIONS);
    cr_assert (strstr (fit.reason, "requires woman; not known"), "%s", fit.reason);
    facts.lacks = ROUTER_COND_WOMAN;
    fit = s_eval (&service, facts);
    cr_assert_eq (fit.verdict, ROUTER_NO_FIT);
    cr_assert_eq (fit.failed, ROUTER_CRIT_CONDITIONS);
    cr_assert (strstr (fit.reason, "requires woman; it does not hold"), "%s", fit.reason);
    //  Other flags held do not matter; every required one must hold
    facts = (router_facts_t) { .age = 30, .district = "03", .needs = needs, .nneeds = 1,
                               .holds = ROUTER_COND_WOMAN | ROUTER_COND_JOB_SEEKER };
    cr_assert_eq (s_eval (&service, facts).verdict, ROUTER_FIT);
    cr_assert_str_eq (router_condition_name (ROUTER_COND_JOB_SEEKER), "job_seeker");
    cr_assert_eq (router_condition_parse ("sleeping_rough"), ROUTER_COND_SLEEPING_ROUGH);
    cr_assert_eq (router_condition_parse ("nobody"), 0);
    cr_assert_null (router_condition_name (ROUTER_COND_WOMAN | ROUTER_COND_JOB_SEEKER));
}

//  `woman` from the sex on the person's file: female holds, male and non_binary fail in
//  words, none stays unknown; what the caller decided (holds/lacks) is not overridden
Test (router_criteria, woman_from_the_recorded_sex)
{
    const char *const piad [ROUTER_SERVICE_NCOLUMNS] = {
        "PIAD-03", "womens_service", "PIAD (demo)", "district", "03", "16", "", "any",
        "gender_violence family_support", "woman", "Women", "capacity", "internal",
        "notification", "true"
    };
    router_service_t service = s_service (piad);
    static const char *needs [] = { "gender_violence" };
    router_facts_t facts = { .age = 30, .district = "03", .needs = needs, .nneeds = 1,
                             .sex = "female" };
    router_fit_t fit = s_eval (&service, facts);
    cr_assert_eq (fit.verdict, ROUTER_FIT, "%s", fit.reason);
    facts.sex = "male";
    fit = s_eval (&service, facts);
    cr_assert_eq (fit.verdict, ROUTER_NO_FIT);
    cr_assert_eq (fit.failed, ROUTER_CRIT_CONDITIONS);
    cr_assert_eq (fit.first, ROUTER_CRIT_CONDITIONS);
    cr_assert_str_eq (fit.reason, "conditions: requires woman; the person's sex is recorded"
                      " as male");
    facts.sex = "non_binary";
    fit = s_eval (&service, facts);
    cr_assert_eq (fit.failed, ROUTER_CRIT_CONDITIONS);
    cr_assert_str_eq (fit.reason, "conditions: requires woman; the person's sex is recorded"
                      " as non-binary");
    facts.sex = NULL;
    fit = s_eval (&service, facts);
    cr_assert_eq (fit.verdict, ROUTER_FIT_UNKNOWN);
    cr_assert (strstr (fit.reason, "requires woman; not known"), "%s", fit.reason);
    facts.sex = "F";
    fit = s_eval (&service, facts);
    cr_assert_eq (fit.verdict, ROUTER_FIT_UNKNOWN);
    cr_assert_eq (fit.unknown, ROUTER_CRIT_CONDITIONS);
    cr_assert (strstr (fit.reason, "'F' is not one of"), "%s", fit.reason);
    //  Another failure first (age) still reports it first; the sex's failure is in the mask
    facts.sex = "male";
    facts.age = 12;
    fit = s_eval (&service, facts);
    cr_assert_eq (fit.failed, ROUTER_CRIT_AGE_MIN | ROUTER_CRIT_CONDITIONS);
    cr_assert_eq (fit.first, ROUTER_CRIT_AGE_MIN);
    //  The caller's decision stands over the file's sex
    facts.age = 30;
    facts.holds = ROUTER_COND_WOMAN;
    cr_assert_eq (s_eval (&service, facts).verdict, ROUTER_FIT);
    facts.holds = 0;
    facts.lacks = ROUTER_COND_WOMAN;
    facts.sex = "female";
    cr_assert_eq (s_eval (&service, facts).failed, ROUTER_CRIT_CONDITIONS);
    //  A service without the condition does not look at the sex
    const char *const css [ROUTER_SERVICE_NCOLUMNS] = {
        "CSS03", "social_services_centre", "CSS (demo)", "city", "", "", "", "any", "*", "",
        "Anyone", "capacity", "internal", "notification", "true"
    };
    router_service_t centre = s_service (css);
    router_facts_t man = { .age = 30, .needs = needs, .nneeds = 1, .sex = "male" };
    cr_assert_eq (s_eval (&centre, man).verdict, ROUTER_FIT);
}

Test (router_criteria, capacity_and_every_failure_reported)
{
    const char *const shelter [ROUTER_SERVICE_NCOLUMNS] = {
        "ALBERG", "homelessness", "Shelters (demo)", "city", "", "18", "", "any",
        "homelessness", "", "Adults without a home", "no_capacity", "feed",
        "homelessness-network", "true"
    };
    router_service_t service = s_service (shelter);
    static const char *needs [] = { "homelessness" };
    router_facts_t facts = { .age = 40, .needs = needs, .nneeds = 1 };
    router_fit_t fit = s_eval (&service, facts);
    cr_assert_eq (fit.verdict, ROUTER_NO_FIT);
    cr_assert_eq (fit.failed, ROUTER_CRIT_CAPACITY);
    cr_assert (strstr (fit.reason, "no capacity"), "%s", fit.reason);
    //  Several failures: all in the mask, the first in the reason
    facts.age = 12;
    facts.needs = s_other_needs;
    facts.nneeds = 2;
    fit = s_eval (&service, facts);
    cr_assert_eq (fit.failed, ROUTER_CRIT_AGE_MIN | ROUTER_CRIT_NEEDS | ROUTER_CRIT_CAPACITY);
    cr_assert_eq (fit.first, ROUTER_CRIT_AGE_MIN);
    cr_assert_str_eq (router_criterion_name (fit.first), "age_min");
    //  A waiting list fits, flagged
    strcpy (service.code, "W");
    service.capacity = ROUTER_CAPACITY_WAITING;
    facts = (router_facts_t) { .age = 40, .needs = needs, .nneeds = 1 };
    fit = s_eval (&service, facts);
    cr_assert_eq (fit.verdict, ROUTER_FIT);
    cr_assert (fit.waiting_list);
}
