/*  router_directory_rules - the directory's vocabularies and one services-CSV row, checked. */
#include "router_rules.h"

static const char *s_kinds [ROUTER_KIND_COUNT] = {
    "social_services_centre", "primary_care", "home_help", "childhood_at_risk",
    "immigrant_reception", "housing_office", "womens_service", "homelessness", "employment",
    "benefits_office"
};
static const char *s_scopes [ROUTER_SCOPE_COUNT] = { "city", "district", "neighbourhood" };
static const char *s_residencies [ROUTER_RESIDENCY_COUNT] = {
    "any", "lives_in_city", "registered_in_city"
};
static const char *s_capacities [ROUTER_CAPACITY_COUNT] = {
    "capacity", "no_capacity", "waiting_list"
};
static const char *s_deliveries [ROUTER_DELIVERY_COUNT] = { "internal", "feed" };
static const char *s_conditions [ROUTER_COND_COUNT] = {
    "woman", "minors_in_household", "reduced_autonomy", "dependency_recognised",
    "migrant_or_returnee", "eviction_in_process", "sleeping_rough", "job_seeker"
};

const char *const router_service_columns [] = {
    "code", "kind", "name", "territory_scope", "territory_codes", "age_min", "age_max",
    "residency", "needs", "conditions", "criteria_text", "capacity", "delivery",
    "delivery_target", "demo", NULL
};

static const char *
s_name (const char **names, int count, int value)
{
    return value >= 0 && value < count ? names [value] : NULL;
}

static int
s_parse (const char **names, int count, const char *name)
{
    for (int i = 0; name && i < count; i++)
        if (streq (names [i], name))
            return i;
    return -1;
}

const char *
router_kind_name (router_kind_t v)
{
    return s_name (s_kinds, ROUTER_KIND_COUNT, v);
}
const char *
router_scope_name (router_scope_t v)
{
    return s_name (s_scopes, ROUTER_SCOPE_COUNT, v);
}
const char *
router_residency_name (router_residency_t v)
{
    return s_name (s_residencies, ROUTER_RESIDENCY_COUNT, v);
}
const char *
router_capacity_name (router_capacity_t v)
{
    return s_name (s_capacities, ROUTER_CAPACITY_COUNT, v);
}
const char *
router_delivery_name (router_delivery_t v)
{
    return s_name (s_deliveries, ROUTER_DELIVERY_COUNT, v);
}
int router_kind_parse (const char *n) { return s_parse (s_kinds, ROUTER_KIND_COUNT, n); }
int router_scope_parse (const char *n) { return s_parse (s_scopes, ROUTER_SCOPE_COUNT, n); }
int
router_residency_parse (const char *n)
{
    return s_parse (s_residencies, ROUTER_RESIDENCY_COUNT, n);
}
int
router_capacity_parse (const char *n)
{
    return s_parse (s_capacities, ROUTER_CAPACITY_COUNT, n);
}
int
router_delivery_parse (const char *n)
{
    return s_parse (s_deliveries, ROUTER_DELIVERY_COUNT, n);
}

const char *
router_condition_name (uint32_t bit)
{
    for (int i = 0; i < ROUTER_COND_COUNT; i++)
        if (bit == (1u << i))
            return s_conditions [i];
    return NULL;
}

uint32_t
router_condition_parse (const char *name)
{
    int i = s_parse (s_conditions, ROUTER_COND_COUNT, name);
    return i < 0 ? 0 : 1u << i;
}

bool
router_code_valid (const char *text)
{
    size_t len = text ? strlen (text) : 0;
    if (len == 0 || len >= ROUTER_CODE_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = text [i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || c == '_' || c == '-' || c == '.'))
            return false;
    }
    return true;
}

//  Copies a bounded text; false when it does not fit
static bool
s_copy (char *dest, size_t size, const char *text)
{
    size_t len = strlen (text);
    if (len >= size)
        return false;
    memcpy (dest, text, len + 1);
    return true;
}

//  "" -> -1 (no bound); else a whole number 0..150. 0, or -1 when not one
static int
s_age (const char *text, int *age)
{
    if (*text == 0) {
        *age = -1;
        return 0;
    }
    int value = 0;
    for (const char *c = text; *c; c++) {
        if (*c < '0' || *c > '9' || value > 150)
            return -1;
        value = value * 10 + (*c - '0');
    }
    if (value > 150)
        return -1;
    *age = value;
    return 0;
}

//  Space-separated codes into list; 0, or -1 with err set (what names the column's content)
static int
s_codes (const char *text, char list [][ROUTER_CODE_MAX], size_t *count, const char *what,
         char *err, size_t errlen)
{
    *count = 0;
    const char *c = text;
    while (*c) {
        while (*c == ' ')
            c++;
        if (!*c)
            break;
        size_t len = strcspn (c, " ");
        char code [ROUTER_CODE_MAX];
        if (len >= sizeof code) {
            snprintf (err, errlen, "%s \"%.*s\" is longer than %d characters", what, (int) len,
                      c, ROUTER_CODE_MAX - 1);
            return -1;
        }
        memcpy (code, c, len);
        code [len] = 0;
        if (!router_code_valid (code)) {
            snprintf (err, errlen, "%s \"%s\" is not a code (letters, digits, _ - .)", what,
                      code);
            return -1;
        }
        for (size_t i = 0; i < *count; i++)
            if (streq (list [i], code)) {
                snprintf (err, errlen, "%s \"%s\" is listed twice", what, code);
                return -1;
            }
        if (*count == ROUTER_LIST_MAX) {
            snprintf (err, errlen, "more than %d %ss", ROUTER_LIST_MAX, what);
            return -1;
        }
        memcpy (list [(*count)++], code, len + 1);
        c += len;
    }
    return 0;
}

//  The "one of" list of a vocabulary, for error messages
static const char *
s_choices (const char **names, int count, char *out, size_t outlen)
{
    size_t used = 0;
    out [0] = 0;
    for (int i = 0; i < count && used < outlen; i++)
        used += snprintf (out + used, outlen - used, "%s%s", i ? ", " : "", names [i]);
    return out;
}

//  Column indices, in router_service_columns order
enum { C_CODE, C_KIND, C_NAME, C_SCOPE, C_TERRITORY, C_AGE_MIN, C_AGE_MAX, C_RESIDENCY,
       C_NEEDS, C_CONDITIONS, C_TEXT, C_CAPACITY, C_DELIVERY, C_TARGET, C_DEMO };

#define S_FAIL(col, ...) do { snprintf (err, errlen, __VA_ARGS__); return (col) + 1; } while (0)

int
router_service_parse (char **f, router_service_t *service, char *err, size_t errlen)
{
    assert (f && service && err);
    memset (service, 0, sizeof *service);
    char choices [256];
    int value;

    if (!router_code_valid (f [C_CODE]))
        S_FAIL (C_CODE, "\"%s\" is not a code (1-%d letters, digits, _ - .)", f [C_CODE],
                ROUTER_CODE_MAX - 1);
    strcpy (service->code, f [C_CODE]);

    if ((value = router_kind_parse (f [C_KIND])) < 0)
        S_FAIL (C_KIND, "unknown kind \"%s\" (one of: %s)", f [C_KIND],
                s_choices (s_kinds, ROUTER_KIND_COUNT, choices, sizeof choices));
    service->kind = (router_kind_t) value;

    if (*f [C_NAME] == 0 || !s_copy (service->name, sizeof service->name, f [C_NAME]))
        S_FAIL (C_NAME, "a name of 1-%d bytes is required", ROUTER_NAME_MAX - 1);

    if ((value = router_scope_parse (f [C_SCOPE])) < 0)
        S_FAIL (C_SCOPE, "unknown territory scope \"%s\" (one of: %s)", f [C_SCOPE],
                s_choices (s_scopes, ROUTER_SCOPE_COUNT, choices, sizeof choices));
    service->scope = (router_scope_t) value;
    const char *what = service->scope == ROUTER_SCOPE_DISTRICT ? "district" : "neighbourhood";
    if (s_codes (f [C_TERRITORY], service->territory, &service->nterritory, what, err, errlen))
        return C_TERRITORY + 1;
    if (service->scope == ROUTER_SCOPE_CITY && service->nterritory > 0)
        S_FAIL (C_TERRITORY, "a city-wide service lists no territory codes (found \"%s\")",
                f [C_TERRITORY]);
    if (service->scope != ROUTER_SCOPE_CITY && service->nterritory == 0)
        S_FAIL (C_TERRITORY, "a %s-scoped service lists the %s codes it serves", what, what);

    if (s_age (f [C_AGE_MIN], &service->age_min))
        S_FAIL (C_AGE_MIN, "\"%s\" is not an age (empty, or a whole number 0-150)",
                f [C_AGE_MIN]);
    if (s_age (f [C_AGE_MAX], &service->age_max))
        S_FAIL (C_AGE_MAX, "\"%s\" is not an age (empty, or a whole number 0-150)",
                f [C_AGE_MAX]);
    if (service->age_min >= 0 && service->age_max >= 0 && service->age_min > service->age_max)
        S_FAIL (C_AGE_MAX, "age_max %d is below age_min %d", service->age_max,
                service->age_min);

    if ((value = router_residency_parse (f [C_RESIDENCY])) < 0)
        S_FAIL (C_RESIDENCY, "unknown residency \"%s\" (one of: %s)", f [C_RESIDENCY],
                s_choices (s_residencies, ROUTER_RESIDENCY_COUNT, choices, sizeof choices));
    service->residency = (router_residency_t) value;

    if (streq (f [C_NEEDS], "*"))
        service->any_need = true;
    else {
        if (s_codes (f [C_NEEDS], service->needs, &service->nneeds, "need", err, errlen))
            return C_NEEDS + 1;
        if (service->nneeds == 0)
            S_FAIL (C_NEEDS, "list the need categories it takes, or * for every need");
    }

    char conditions [ROUTER_LIST_MAX][ROUTER_CODE_MAX];
    size_t nconditions;
    if (s_codes (f [C_CONDITIONS], conditions, &nconditions, "condition", err, errlen))
        return C_CONDITIONS + 1;
    for (size_t i = 0; i < nconditions; i++) {
        uint32_t bit = router_condition_parse (conditions [i]);
        if (!bit)
            S_FAIL (C_CONDITIONS, "unknown condition \"%s\" (one of: %s)", conditions [i],
                    s_choices (s_conditions, ROUTER_COND_COUNT, choices, sizeof choices));
        service->conditions |= bit;
    }

    if (*f [C_TEXT] == 0 || !s_copy (service->criteria_text, sizeof service->criteria_text,
                                     f [C_TEXT]))
        S_FAIL (C_TEXT, "the criteria in words (1-%d bytes) are required", ROUTER_TEXT_MAX - 1);

    if ((value = router_capacity_parse (f [C_CAPACITY])) < 0)
        S_FAIL (C_CAPACITY, "unknown capacity state \"%s\" (one of: %s)", f [C_CAPACITY],
                s_choices (s_capacities, ROUTER_CAPACITY_COUNT, choices, sizeof choices));
    service->capacity = (router_capacity_t) value;

    if ((value = router_delivery_parse (f [C_DELIVERY])) < 0)
        S_FAIL (C_DELIVERY, "unknown delivery \"%s\" (one of: %s)", f [C_DELIVERY],
                s_choices (s_deliveries, ROUTER_DELIVERY_COUNT, choices, sizeof choices));
    service->delivery = (router_delivery_t) value;
    if (!router_code_valid (f [C_TARGET]))
        S_FAIL (C_TARGET, "\"%s\" is not a %s name", f [C_TARGET],
                service->delivery == ROUTER_DELIVERY_INTERNAL ? "service" : "feed");
    if (service->delivery == ROUTER_DELIVERY_INTERNAL && !fs_service_info (f [C_TARGET]))
        S_FAIL (C_TARGET, "\"%s\" is not a service of the suite", f [C_TARGET]);
    strcpy (service->delivery_target, f [C_TARGET]);

    if (streq (f [C_DEMO], "true") || streq (f [C_DEMO], "demo"))
        service->demo = true;
    else
    if (!streq (f [C_DEMO], "false") && *f [C_DEMO])
        S_FAIL (C_DEMO, "\"%s\" is not true, false or empty", f [C_DEMO]);
    return 0;
}
