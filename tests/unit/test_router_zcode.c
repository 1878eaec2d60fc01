/*  test_router_zcode - ICD-10 Z55-Z65 codes to need categories: spelling, subcode -> block
    fallback, deliberately unmapped codes, out of range and malformed codes. */
#include "router_rules.h"
#include <criterion/criterion.h>

static const char *s_housing_income [] = { "housing", "income" };
static const char *s_homelessness [] = { "homelessness", "housing" };
static const char *s_income [] = { "income" };
static const char *s_family [] = { "family_support" };
static const char *s_home [] = { "home_care", "caregiver_support" };

//  A slice of services/referral-router/data/zcodes.csv, rows in no particular order
static const router_zmap_t s_map [] = {
    { "Z63.6", "Dependent relative needing care at home", s_home, 2 },
    { "Z59", "Problems related to housing and economic circumstances", s_housing_income, 2 },
    { "Z59.0", "Homelessness", s_homelessness, 2 },
    { "Z59.3", "Problems related to living in residential institution", NULL, 0 },
    { "Z59.6", "Low income", s_income, 1 },
    { "Z63", "Other problems related to primary support group", s_family, 1 },
    { "Z57", "Occupational exposure to risk factors", NULL, 0 },
};
#define S_NMAP (sizeof s_map / sizeof s_map [0])

static router_zcode_result_t
s_lookup (const char *code, const router_zmap_t **row, char *normalized)
{
    return router_zcode_lookup (s_map, S_NMAP, code, row, normalized);
}

Test (router_zcode, normalize)
{
    char out [ROUTER_ZCODE_MAX];
    cr_assert_eq (router_zcode_normalize ("Z59.0", out), ROUTER_ZCODE_MAPPED);
    cr_assert_str_eq (out, "Z59.0");
    cr_assert_eq (router_zcode_normalize ("z590", out), ROUTER_ZCODE_MAPPED);
    cr_assert_str_eq (out, "Z59.0");
    cr_assert_eq (router_zcode_normalize ("  Z63 ", out), ROUTER_ZCODE_MAPPED);
    cr_assert_str_eq (out, "Z63");
    cr_assert_eq (router_zcode_normalize ("Z5901", out), ROUTER_ZCODE_MAPPED);
    cr_assert_str_eq (out, "Z59.01");
    //  The range is inclusive at both ends
    cr_assert_eq (router_zcode_normalize ("Z55", out), ROUTER_ZCODE_MAPPED);
    cr_assert_eq (router_zcode_normalize ("Z65.9", out), ROUTER_ZCODE_MAPPED);
    cr_assert_eq (router_zcode_normalize ("Z54.9", out), ROUTER_ZCODE_OUT_OF_RANGE);
    cr_assert_str_eq (out, "Z54.9");
    cr_assert_eq (router_zcode_normalize ("Z66", out), ROUTER_ZCODE_OUT_OF_RANGE);
    cr_assert_eq (router_zcode_normalize ("E11.9", out), ROUTER_ZCODE_OUT_OF_RANGE);
    const char *bad [] = { "", "Z5", "Z5X", "59.0", "Z59.", "Z59.012", "Z59-0", "Z59 0",
                           "Z59..0", NULL };
    for (int i = 0; bad [i]; i++) {
        cr_assert_eq (router_zcode_normalize (bad [i], out), ROUTER_ZCODE_INVALID, "%s",
                      bad [i]);
        cr_assert_str_eq (out, "");
    }
    cr_assert_eq (router_zcode_normalize (NULL, out), ROUTER_ZCODE_INVALID);
}

Test (router_zcode, exact_and_fallback)
{
    const router_zmap_t *row;
    char code [ROUTER_ZCODE_MAX];
    cr_assert_eq (s_lookup ("Z59.0", &row, code), ROUTER_ZCODE_MAPPED);
    cr_assert_str_eq (row->code, "Z59.0");
    cr_assert_str_eq (row->needs [0], "homelessness");
    //  Without the dot, lower case
    cr_assert_eq (s_lookup ("z590", &row, code), ROUTER_ZCODE_MAPPED);
    cr_assert_str_eq (row->code, "Z59.0");
    cr_assert_str_eq (code, "Z59.0");
    //  A subcode the table does not list falls back to its block
    cr_assert_eq (s_lookup ("Z59.8", &row, code), ROUTER_ZCODE_MAPPED);
    cr_assert_str_eq (row->code, "Z59");
    cr_assert_eq (row->nneeds, 2);
    //  A longer national subcode falls back to the WHO subcode first, then the block
    cr_assert_eq (s_lookup ("Z59.01", &row, code), ROUTER_ZCODE_MAPPED);
    cr_assert_str_eq (row->code, "Z59.0");
    cr_assert_str_eq (code, "Z59.01");
    cr_assert_eq (s_lookup ("Z6361", &row, code), ROUTER_ZCODE_MAPPED);
    cr_assert_str_eq (row->code, "Z63.6");
    cr_assert_str_eq (row->needs [1], "caregiver_support");
    cr_assert_eq (s_lookup ("Z63", &row, code), ROUTER_ZCODE_MAPPED);
    cr_assert_str_eq (row->needs [0], "family_support");
}

Test (router_zcode, unmapped_is_reported_not_guessed)
{
    const router_zmap_t *row;
    char code [ROUTER_ZCODE_MAX];
    //  Listed without needs: unmapped, and its block's needs are NOT used
    cr_assert_eq (s_lookup ("Z59.3", &row, code), ROUTER_ZCODE_UNMAPPED);
    cr_assert_not_null (row);
    cr_assert_str_eq (row->code, "Z59.3");
    //  A block listed without needs: its subcodes are unmapped too
    cr_assert_eq (s_lookup ("Z57.1", &row, code), ROUTER_ZCODE_UNMAPPED);
    cr_assert_str_eq (row->code, "Z57");
    //  In range but absent from the table altogether
    cr_assert_eq (s_lookup ("Z60.2", &row, code), ROUTER_ZCODE_UNMAPPED);
    cr_assert_null (row);
    cr_assert_str_eq (code, "Z60.2");
    //  Outside Z55-Z65 or malformed: never looked up
    cr_assert_eq (s_lookup ("I10", &row, code), ROUTER_ZCODE_OUT_OF_RANGE);
    cr_assert_null (row);
    cr_assert_eq (s_lookup ("homeless", &row, code), ROUTER_ZCODE_INVALID);
    cr_assert_null (row);
    //  An empty table maps nothing
    cr_assert_eq (router_zcode_lookup (NULL, 0, "Z59.0", &row, NULL), ROUTER_ZCODE_UNMAPPED);
}

Test (router_zcode, needs_of_several_codes)
{
    const char *codes [] = { "Z59.0", "z5961", "Z59.3", "I10", "Z63.6", "Z59.0", "junk" };
    const char *needs [8];
    router_zcode_result_t results [7];
    size_t n = router_zcode_needs (s_map, S_NMAP, codes, 7, needs, 8, results);
    //  Union in first-seen order: Z59.0's two, Z59.6's income, Z63.6's two; no repeats
    cr_assert_eq (n, 5);
    cr_assert_str_eq (needs [0], "homelessness");
    cr_assert_str_eq (needs [1], "housing");
    cr_assert_str_eq (needs [2], "income");
    cr_assert_str_eq (needs [3], "home_care");
    cr_assert_str_eq (needs [4], "caregiver_support");
    router_zcode_result_t expected [] = {
        ROUTER_ZCODE_MAPPED, ROUTER_ZCODE_MAPPED, ROUTER_ZCODE_UNMAPPED,
        ROUTER_ZCODE_OUT_OF_RANGE, ROUTER_ZCODE_MAPPED, ROUTER_ZCODE_MAPPED,
        ROUTER_ZCODE_INVALID
    };
    for (int i = 0; i < 7; i++)
        cr_assert_eq (results [i], expected [i], "%s", codes [i]);
    //  Bounded by max; no codes, no needs
    cr_assert_eq (router_zcode_needs (s_map, S_NMAP, codes, 7, needs, 2, NULL), 2);
    cr_assert_eq (router_zcode_needs (s_map, S_NMAP, codes, 0, needs, 8, NULL), 0);
    const char *unmapped [] = { "Z57.3", "Z59.3" };
    cr_assert_eq (router_zcode_needs (s_map, S_NMAP, unmapped, 2, needs, 8, NULL), 0);
}
