/*  test_router_scope - what may leave with a referral: each data category's fields and no
    other, the level's minimum data set, override bases, recipient groups, complexity factors,
    the conference's date, the age. */
#include "fs_test.h"
#include "router_scope.h"

static void
s_subject (fs_referral_subject_t *subject)
{
    const fs_type_t *t = &fs_referral_subject_type;
    memset (subject, 0, sizeof *subject);
    fs_proto_set_str (t, subject, "given_name", "Laia");
    fs_proto_set_str (t, subject, "family_name", "Puig");
    fs_proto_set_str (t, subject, "doc_type", "DNI");
    fs_proto_set_str (t, subject, "doc_number", "12345678Z");
    fs_proto_set_str (t, subject, "birth_date", "1985-03-02");
    fs_proto_set_str (t, subject, "phone", "+34600000000");
    fs_proto_set_str (t, subject, "email", "laia@example.org");
    fs_proto_set_str (t, subject, "language", "ca");
    fs_proto_set_str (t, subject, "residency", "lives_in_city");
    fs_proto_set_str (&fs_referral_address_type, &subject->address, "street", "Nou");
    fs_proto_set_str (&fs_referral_address_type, &subject->address, "neighbourhood", "01");
    subject->present |= 1ull << fs_referral_subject_F_address;
}

Test (router_scope, each_category_carries_its_fields_and_no_other)
{
    fs_referral_subject_t from, to;
    s_subject (&from);
    router_scope_fill (&from, ROUTER_DATA_IDENTITY, &to);
    cr_assert_str_eq (to.given_name, "Laia");
    cr_assert_str_eq (to.doc_number, "12345678Z");
    cr_assert_str_eq (to.birth_date, "1985-03-02");
    cr_assert_not (FS_PRESENT (&to, fs_referral_subject_F_phone));
    cr_assert_not (FS_PRESENT (&to, fs_referral_subject_F_address));
    cr_assert_not (FS_PRESENT (&to, fs_referral_subject_F_residency));
    fs_proto_clear (&fs_referral_subject_type, &to);

    router_scope_fill (&from, ROUTER_DATA_CONTACT, &to);
    cr_assert_not (FS_PRESENT (&to, fs_referral_subject_F_given_name));
    cr_assert_not (FS_PRESENT (&to, fs_referral_subject_F_birth_date));
    cr_assert_str_eq (to.phone, "+34600000000");
    cr_assert_str_eq (to.email, "laia@example.org");
    cr_assert_str_eq (to.address.street, "Nou");
    cr_assert_str_eq (to.address.neighbourhood, "01");
    cr_assert_not (FS_PRESENT (&to.address, fs_referral_address_F_postcode));
    cr_assert_not (FS_PRESENT (&to, fs_referral_subject_F_residency));
    fs_proto_clear (&fs_referral_subject_type, &to);

    //  Nothing, and the health/economic categories: no subject field at all
    router_scope_fill (&from, 0, &to);
    cr_assert_eq (to.present, 0);
    router_scope_fill (&from, ROUTER_DATA_SOCIAL_HEALTH | ROUTER_DATA_ECONOMIC, &to);
    cr_assert_eq (to.present, 0);
    //  Everything encodes (a valid fs_referral_subject)
    router_scope_fill (&from, ROUTER_DATA_IDENTITY | ROUTER_DATA_CONTACT, &to);
    char *data = NULL;
    size_t len = 0;
    fs_proto_error_t err;
    cr_assert_eq (fs_proto_encode (&fs_referral_subject_type, &to, &data, &len, &err), 0,
                  "%s", err.message);
    free (data);
    fs_proto_clear (&fs_referral_subject_type, &to);
    fs_proto_clear (&fs_referral_subject_type, &from);
}

//  The person's sex, household size and benefit applications beside the other fields
static void
s_subject_facts (fs_referral_subject_t *subject)
{
    s_subject (subject);
    const fs_type_t *t = &fs_referral_subject_type;
    fs_proto_set_str (t, subject, "sex", "female");
    fs_proto_set_int (t, subject, "household_size", 3);
    fs_referral_benefit_t *benefits = (fs_referral_benefit_t *) zmalloc (2 * sizeof *benefits);
    fs_proto_set_str (&fs_referral_benefit_type, &benefits [0], "programme", "emergency_aid");
    fs_proto_set_str (&fs_referral_benefit_type, &benefits [0], "submitted_on", "2026-03-01");
    fs_proto_set_str (&fs_referral_benefit_type, &benefits [1], "programme", "child_fund_0_17");
    fs_proto_set_str (&fs_referral_benefit_type, &benefits [1], "submitted_on", "2025-10-12");
    subject->benefits.items = benefits;
    subject->benefits.n = 2;
    subject->present |= 1ull << fs_referral_subject_F_benefits;
}

Test (router_scope, sex_is_identity_and_economic_goes_only_with_economic)
{
    fs_referral_subject_t from, to;
    s_subject_facts (&from);
    //  Identity carries the sex; no economic field without the economic category
    uint32_t carried = router_scope_fill (&from, ROUTER_DATA_IDENTITY | ROUTER_DATA_CONTACT
                                                 | ROUTER_DATA_SOCIAL_HEALTH, &to);
    cr_assert_eq (carried, ROUTER_DATA_IDENTITY | ROUTER_DATA_CONTACT);
    cr_assert_str_eq (to.sex, "female");
    cr_assert_not (FS_PRESENT (&to, fs_referral_subject_F_household_size));
    cr_assert_not (FS_PRESENT (&to, fs_referral_subject_F_benefits));
    cr_assert_eq (to.benefits.n, 0);
    fs_proto_clear (&fs_referral_subject_type, &to);
    router_scope_fill (&from, ROUTER_DATA_CONTACT, &to);
    cr_assert_not (FS_PRESENT (&to, fs_referral_subject_F_sex));
    fs_proto_clear (&fs_referral_subject_type, &to);

    //  Economic alone: household size and every application, nothing else
    carried = router_scope_fill (&from, ROUTER_DATA_ECONOMIC, &to);
    cr_assert_eq (carried, ROUTER_DATA_ECONOMIC);
    uint64_t expected = (1ull << fs_referral_subject_F_household_size)
                      | (1ull << fs_referral_subject_F_benefits);
    cr_assert_eq (to.present, expected);
    cr_assert_eq (to.household_size, 3);
    cr_assert_eq (to.benefits.n, 2);
    const fs_referral_benefit_t *b = (const fs_referral_benefit_t *) to.benefits.items;
    cr_assert_str_eq (b [0].programme, "emergency_aid");
    cr_assert_str_eq (b [0].submitted_on, "2026-03-01");
    cr_assert_str_eq (b [1].programme, "child_fund_0_17");
    cr_assert_neq ((void *) b, from.benefits.items);     //  a copy: both are cleared
    //  The whole package subject encodes and decodes back equal
    fs_proto_clear (&fs_referral_subject_type, &to);
    carried = router_scope_fill (&from, ROUTER_DATA_IDENTITY | ROUTER_DATA_CONTACT
                                        | ROUTER_DATA_ECONOMIC, &to);
    cr_assert_eq (carried, ROUTER_DATA_IDENTITY | ROUTER_DATA_CONTACT | ROUTER_DATA_ECONOMIC);
    cr_assert_not (FS_PRESENT (&to, fs_referral_subject_F_residency));
    char *data = NULL;
    size_t len = 0;
    fs_proto_error_t err;
    cr_assert_eq (fs_proto_encode (&fs_referral_subject_type, &to, &data, &len, &err), 0,
                  "%s", err.message);
    fs_referral_subject_t back = { 0 };
    cr_assert_eq (fs_proto_decode (&fs_referral_subject_type, data, len, &back, &err), 0,
                  "%s", err.message);
    cr_assert_eq (back.benefits.n, 2);
    cr_assert_eq (back.household_size, 3);
    cr_assert_str_eq (back.sex, "female");
    free (data);
    fs_proto_clear (&fs_referral_subject_type, &back);
    fs_proto_clear (&fs_referral_subject_type, &to);

    //  A subject without economic facts carries none, even when allowed
    fs_referral_subject_t bare;
    s_subject (&bare);
    carried = router_scope_fill (&bare, ROUTER_DATA_ECONOMIC, &to);
    cr_assert_eq (carried, 0);
    cr_assert_eq (to.present, 0);
    fs_proto_clear (&fs_referral_subject_type, &bare);
    fs_proto_clear (&fs_referral_subject_type, &from);
}

Test (router_scope, levels_bases_and_recipients)
{
    cr_assert_eq (router_level_categories (ROUTER_LEVEL_ORIENTATION), 0);
    cr_assert_eq (router_level_categories (ROUTER_LEVEL_COMPLEMENTATION),
                  ROUTER_DATA_IDENTITY | ROUTER_DATA_CONTACT | ROUTER_DATA_SOCIAL_HEALTH
                  | ROUTER_DATA_ECONOMIC);
    cr_assert_eq (router_level_categories (ROUTER_LEVEL_JOINT),
                  router_level_categories (ROUTER_LEVEL_COMPLEMENTATION));
    cr_assert_eq (router_level_parse ("joint_treatment"), ROUTER_LEVEL_JOINT);
    cr_assert_eq (router_level_parse ("joint"), -1);
    cr_assert_eq (router_basis_categories ("vital_interest"),
                  ROUTER_DATA_IDENTITY | ROUTER_DATA_CONTACT | ROUTER_DATA_SOCIAL_HEALTH);
    cr_assert_eq (router_basis_categories ("legal_obligation"),
                  ROUTER_DATA_IDENTITY | ROUTER_DATA_CONTACT);
    cr_assert_eq (router_basis_categories ("consent"), 0);
    cr_assert_eq (router_basis_categories (NULL), 0);
    cr_assert_str_eq (router_recipient_of (ROUTER_KIND_HOUSING), "housing");
    cr_assert_str_eq (router_recipient_of (ROUTER_KIND_PRIMARY_CARE), "primary_care");
    cr_assert_str_eq (router_recipient_of (ROUTER_KIND_CHILDHOOD_AT_RISK), "social_services");
    cr_assert_eq (router_data_parse ("contact"), ROUTER_DATA_CONTACT);
    cr_assert_eq (router_data_parse ("health"), 0);
    cr_assert_str_eq (router_data_name (ROUTER_DATA_SOCIAL_HEALTH), "social_health");
    cr_assert_null (router_data_name (ROUTER_DATA_IDENTITY | ROUTER_DATA_CONTACT));
}

Test (router_scope, complexity_factors)
{
    const char *one [] = { "housing" };
    cr_assert_eq (router_complexity (one, 1, 0, 0), 0);
    cr_assert_eq (router_complexity (one, 1, -1, 0), 0);
    const char *same [] = { "housing", "housing" };
    cr_assert_eq (router_complexity (same, 2, 0, 0), 0);
    const char *two [] = { "housing", "income" };
    cr_assert_eq (router_complexity (two, 2, 0, 0), ROUTER_FACTOR_MULTIPLE_DOMAINS);
    cr_assert_eq (router_complexity (one, 1, 2, ROUTER_COND_EVICTION_IN_PROCESS),
                  ROUTER_FACTOR_EVICTION_WITH_MINORS);
    cr_assert_eq (router_complexity (one, 1, 0, ROUTER_COND_EVICTION_IN_PROCESS), 0);
    const char *child [] = { "childhood_at_risk" };
    cr_assert_eq (router_complexity (child, 1, -1, 0), ROUTER_FACTOR_MINORS_AT_RISK);
    const char *care [] = { "caregiver_support" };
    cr_assert_eq (router_complexity (care, 1, -1, 0), ROUTER_FACTOR_DEPENDENCY);
    cr_assert_str_eq (router_factor_name (ROUTER_FACTOR_EVICTION_WITH_MINORS),
                      "eviction_with_minors");
    cr_assert_eq (router_conference_days ("urgent"), 2);
    cr_assert_eq (router_conference_days ("preferent"), 7);
    cr_assert_eq (router_conference_days ("ordinary"), 14);
}

Test (router_scope, age_on_a_day)
{
    cr_assert_eq (router_age_on ("2000-06-15", "2026-06-14"), 25);
    cr_assert_eq (router_age_on ("2000-06-15", "2026-06-15"), 26);
    cr_assert_eq (router_age_on ("2000-02-29", "2026-02-28"), 25);
    cr_assert_eq (router_age_on ("2027-01-01", "2026-06-15"), -1);
    cr_assert_eq (router_age_on ("junk", "2026-06-15"), -1);
    cr_assert_eq (router_age_on (NULL, "2026-06-15"), -1);
}
