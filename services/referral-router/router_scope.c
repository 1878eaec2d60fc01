/*  router_scope - what may leave with a referral: data categories -> fields, levels, consent
    recipient groups, override bases, complexity factors. Pure rules (router_scope.h). */
#include "router_scope.h"

static const char *s_data [ROUTER_DATA_COUNT] = {
    "identity", "contact", "social_health", "economic"
};
static const char *s_levels [ROUTER_LEVEL_COUNT] = {
    "orientation", "complementation", "joint_treatment"
};
static const char *s_factors [ROUTER_FACTOR_COUNT] = {
    "multiple_domains", "minors_at_risk", "eviction_with_minors", "gender_violence",
    "dependency", "homelessness"
};

//  The name of one bit of names; NULL when bit is not exactly one of them
static const char *
s_bit_name (const char **names, int count, uint32_t bit)
{
    for (int i = 0; i < count; i++)
        if (bit == 1u << i)
            return names [i];
    return NULL;
}

const char *
router_data_name (uint32_t bit)
{
    return s_bit_name (s_data, ROUTER_DATA_COUNT, bit);
}

uint32_t
router_data_parse (const char *name)
{
    for (int i = 0; name && i < ROUTER_DATA_COUNT; i++)
        if (streq (s_data [i], name))
            return 1u << i;
    return 0;
}

const char *
router_level_name (router_level_t level)
{
    return (int) level >= 0 && level < ROUTER_LEVEL_COUNT ? s_levels [level] : NULL;
}

int
router_level_parse (const char *name)
{
    for (int i = 0; name && i < ROUTER_LEVEL_COUNT; i++)
        if (streq (s_levels [i], name))
            return i;
    return -1;
}

uint32_t
router_level_categories (router_level_t level)
{
    //  Economic data is asked for too: a target deciding on help needs the household's
    //  size and what was applied for; consent still decides whether it goes
    return level == ROUTER_LEVEL_ORIENTATION ? 0
         : ROUTER_DATA_IDENTITY | ROUTER_DATA_CONTACT | ROUTER_DATA_SOCIAL_HEALTH
         | ROUTER_DATA_ECONOMIC;
}

const char *
router_recipient_of (router_kind_t kind)
{
    switch (kind) {
        case ROUTER_KIND_HOUSING:       return "housing";
        case ROUTER_KIND_PRIMARY_CARE:  return "primary_care";
        case ROUTER_KIND_EMPLOYMENT:    return "employment";
        default:                        return "social_services";
    }
}

uint32_t
router_basis_categories (const char *basis)
{
    if (!basis)
        return 0;
    //  A life at stake justifies the health data too; a legal duty or public interest task
    //  the identity and the means to reach the person
    if (streq (basis, "vital_interest"))
        return ROUTER_DATA_IDENTITY | ROUTER_DATA_CONTACT | ROUTER_DATA_SOCIAL_HEALTH;
    if (streq (basis, "legal_obligation") || streq (basis, "public_interest"))
        return ROUTER_DATA_IDENTITY | ROUTER_DATA_CONTACT;
    return 0;
}

//  Which category each field of fs_referral_subject belongs to (0: never sent)
static const struct {
    const char *field;
    uint32_t category;
} s_fields [] = {
    { "given_name",  ROUTER_DATA_IDENTITY },
    { "family_name", ROUTER_DATA_IDENTITY },
    { "doc_type",    ROUTER_DATA_IDENTITY },
    { "doc_number",  ROUTER_DATA_IDENTITY },
    { "birth_date",  ROUTER_DATA_IDENTITY },
    { "sex",         ROUTER_DATA_IDENTITY },
    { "phone",       ROUTER_DATA_CONTACT },
    { "email",       ROUTER_DATA_CONTACT },
    { "language",    ROUTER_DATA_CONTACT },
    { "residency",   0 },
};

//  The economic fields: the household's size and the benefit applications (copied whole)
static uint32_t
s_fill_economic (const fs_referral_subject_t *from, fs_referral_subject_t *to)
{
    uint32_t carried = 0;
    if (FS_PRESENT (from, fs_referral_subject_F_household_size)) {
        fs_proto_set_int (&fs_referral_subject_type, to, "household_size",
                          from->household_size);
        carried = ROUTER_DATA_ECONOMIC;
    }
    size_t n = from->benefits.n;
    if (FS_PRESENT (from, fs_referral_subject_F_benefits) && n) {
        const fs_referral_benefit_t *items = (const fs_referral_benefit_t *) from->benefits.items;
        fs_referral_benefit_t *copy = (fs_referral_benefit_t *) zmalloc (n * sizeof *copy);
        for (size_t i = 0; i < n; i++) {
            fs_proto_set_str (&fs_referral_benefit_type, &copy [i], "programme",
                              items [i].programme);
            fs_proto_set_str (&fs_referral_benefit_type, &copy [i], "submitted_on",
                              items [i].submitted_on);
        }
        to->benefits.items = copy;
        to->benefits.n = n;
        to->present |= 1ull << fs_referral_subject_F_benefits;
        carried = ROUTER_DATA_ECONOMIC;
    }
    return carried;
}

uint32_t
router_scope_fill (const fs_referral_subject_t *from, uint32_t categories,
                   fs_referral_subject_t *to)
{
    assert (from && to);
    memset (to, 0, sizeof *to);
    uint32_t carried = 0;
    const fs_type_t *t = &fs_referral_subject_type;
    for (size_t i = 0; i < sizeof s_fields / sizeof s_fields [0]; i++) {
        if (!(s_fields [i].category & categories))
            continue;
        int index = fs_proto_field_index (t, s_fields [i].field);
        assert (index >= 0);
        if (!FS_PRESENT (from, index))
            continue;
        const char *value = *(char *const *) ((const char *) from + t->fields [index].offset);
        fs_proto_set_str (t, to, s_fields [i].field, value);
        carried |= s_fields [i].category;
    }
    if (categories & ROUTER_DATA_ECONOMIC)
        carried |= s_fill_economic (from, to);
    if ((categories & ROUTER_DATA_CONTACT) && FS_PRESENT (from, fs_referral_subject_F_address)) {
        const fs_type_t *at = &fs_referral_address_type;
        const fs_referral_address_t *a = &from->address;
        fs_proto_set_str (at, &to->address, "street", a->street);
        fs_proto_set_str (at, &to->address, "number", a->number);
        fs_proto_set_str (at, &to->address, "postcode", a->postcode);
        fs_proto_set_str (at, &to->address, "neighbourhood", a->neighbourhood);
        fs_proto_set_str (at, &to->address, "district", a->district);
        to->address.present &= a->present;
        to->present |= 1ull << fs_referral_subject_F_address;
        carried |= ROUTER_DATA_CONTACT;
    }
    return carried;
}

const char *
router_factor_name (uint32_t bit)
{
    return s_bit_name (s_factors, ROUTER_FACTOR_COUNT, bit);
}

static bool
s_has (const char *const *needs, size_t nneeds, const char *need)
{
    for (size_t i = 0; i < nneeds; i++)
        if (needs [i] && streq (needs [i], need))
            return true;
    return false;
}

uint32_t
router_complexity (const char *const *needs, size_t nneeds, int minors, uint32_t holds)
{
    uint32_t factors = 0;
    size_t distinct = 0;
    for (size_t i = 0; i < nneeds; i++)
        if (needs [i] && !s_has (needs, i, needs [i]))
            distinct++;
    if (distinct >= 2)
        factors |= ROUTER_FACTOR_MULTIPLE_DOMAINS;
    if (s_has (needs, nneeds, "childhood_at_risk"))
        factors |= ROUTER_FACTOR_MINORS_AT_RISK;
    if ((holds & ROUTER_COND_EVICTION_IN_PROCESS) && minors > 0)
        factors |= ROUTER_FACTOR_EVICTION_WITH_MINORS;
    if (s_has (needs, nneeds, "gender_violence"))
        factors |= ROUTER_FACTOR_GENDER_VIOLENCE;
    if (s_has (needs, nneeds, "home_care") || s_has (needs, nneeds, "caregiver_support"))
        factors |= ROUTER_FACTOR_DEPENDENCY;
    if (s_has (needs, nneeds, "homelessness"))
        factors |= ROUTER_FACTOR_HOMELESSNESS;
    return factors;
}

int
router_conference_days (const char *urgency)
{
    if (urgency && streq (urgency, "urgent"))
        return 2;
    if (urgency && streq (urgency, "preferent"))
        return 7;
    return 14;
}

int
router_age_on (const char *birth_date, const char *today)
{
    int by, bm, bd, ty, tm, td;
    if (!birth_date || !today
    ||  sscanf (birth_date, "%4d-%2d-%2d", &by, &bm, &bd) != 3
    ||  sscanf (today, "%4d-%2d-%2d", &ty, &tm, &td) != 3)
        return -1;
    int age = ty - by - ((tm < bm || (tm == bm && td < bd)) ? 1 : 0);
    return age < 0 ? -1 : age;
}
