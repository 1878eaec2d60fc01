/*  router_criteria - does a directory service fit a person? Which criterion fails, in words,
    so an orientation never raises false expectations. Unknown facts never pass a criterion. */
#include "router_rules.h"

static const char *s_criteria [ROUTER_CRIT_COUNT] = {
    "territory", "age_min", "age_max", "residency", "needs", "conditions", "capacity"
};

const char *
router_criterion_name (uint32_t bit)
{
    for (int i = 0; i < ROUTER_CRIT_COUNT; i++)
        if (bit == (1u << i))
            return s_criteria [i];
    return NULL;
}

//  Collects the outcome of one criterion; the reason of the first failure wins, else the
//  first unknown's
typedef struct {
    router_fit_t *out;
    char unknown_reason [ROUTER_ERR_MAX];   /* first unknown's words */
    router_criterion_t first_unknown;
} s_eval_t;

static void
s_fail (s_eval_t *eval, router_criterion_t crit, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));
static void
s_fail (s_eval_t *eval, router_criterion_t crit, const char *format, ...)
{
    if (!eval->out->failed) {
        eval->out->first = crit;
        va_list args;
        va_start (args, format);
        vsnprintf (eval->out->reason, sizeof eval->out->reason, format, args);
        va_end (args);
    }
    eval->out->failed |= crit;
}

static void
s_unknown (s_eval_t *eval, router_criterion_t crit, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));
static void
s_unknown (s_eval_t *eval, router_criterion_t crit, const char *format, ...)
{
    if (!eval->out->unknown) {
        eval->first_unknown = crit;
        va_list args;
        va_start (args, format);
        vsnprintf (eval->unknown_reason, sizeof eval->unknown_reason, format, args);
        va_end (args);
    }
    eval->out->unknown |= crit;
}

//  "03, 04" into out
static void
s_join (const char list [][ROUTER_CODE_MAX], size_t count, char *out, size_t outlen)
{
    size_t used = 0;
    out [0] = 0;
    for (size_t i = 0; i < count && used < outlen; i++)
        used += snprintf (out + used, outlen - used, "%s%s", i ? ", " : "", list [i]);
}

static bool
s_listed (const char list [][ROUTER_CODE_MAX], size_t count, const char *code)
{
    for (size_t i = 0; i < count; i++)
        if (streq (list [i], code))
            return true;
    return false;
}

static void
s_territory (s_eval_t *eval, const router_service_t *service, const router_facts_t *facts)
{
    if (service->scope == ROUTER_SCOPE_CITY)
        return;                 //  whether the person lives in the city is residency's part
    bool district = service->scope == ROUTER_SCOPE_DISTRICT;
    const char *where = district ? facts->district : facts->neighbourhood;
    const char *what = district ? "district" : "neighbourhood";
    char served [ROUTER_LIST_MAX * (ROUTER_CODE_MAX + 2)];
    s_join (service->territory, service->nterritory, served, sizeof served);
    if (!where || !*where)
        s_unknown (eval, ROUTER_CRIT_TERRITORY, "territory: serves %s %s only; the person's %s"
                   " is not known", what, served, what);
    else
    if (!s_listed (service->territory, service->nterritory, where))
        s_fail (eval, ROUTER_CRIT_TERRITORY, "territory: serves %s %s only; the person lives"
                " in %s %s", what, served, what, where);
}

static void
s_age (s_eval_t *eval, const router_service_t *service, const router_facts_t *facts)
{
    if (service->age_min >= 0) {
        if (facts->age < 0)
            s_unknown (eval, ROUTER_CRIT_AGE_MIN, "age_min: from age %d; the person's age is"
                       " not known", service->age_min);
        else
        if (facts->age < service->age_min)
            s_fail (eval, ROUTER_CRIT_AGE_MIN, "age_min: from age %d; the person is %d",
                    service->age_min, facts->age);
    }
    if (service->age_max >= 0) {
        if (facts->age < 0)
            s_unknown (eval, ROUTER_CRIT_AGE_MAX, "age_max: up to age %d; the person's age is"
                       " not known", service->age_max);
        else
        if (facts->age > service->age_max)
            s_fail (eval, ROUTER_CRIT_AGE_MAX, "age_max: up to age %d; the person is %d",
                    service->age_max, facts->age);
    }
}

static void
s_residency (s_eval_t *eval, const router_service_t *service, const router_facts_t *facts)
{
    if (service->residency == ROUTER_RESIDENCY_ANY)
        return;
    const char *needed = service->residency == ROUTER_RESIDENCY_REGISTERED
                       ? "registered in the city" : "living in the city";
    switch (facts->lives) {
        case ROUTER_LIVES_UNKNOWN:
            s_unknown (eval, ROUTER_CRIT_RESIDENCY, "residency: for people %s; the person's"
                       " residency is not known", needed);
            break;
        case ROUTER_LIVES_OUTSIDE:
            s_fail (eval, ROUTER_CRIT_RESIDENCY, "residency: for people %s; the person does"
                    " not live in the city", needed);
            break;
        case ROUTER_LIVES_UNREGISTERED:
            if (service->residency == ROUTER_RESIDENCY_REGISTERED)
                s_fail (eval, ROUTER_CRIT_RESIDENCY, "residency: for people %s; the person"
                        " lives in the city but is not registered", needed);
            break;
        case ROUTER_LIVES_REGISTERED:
            break;
        case ROUTER_LIVES_IN_CITY:
            if (service->residency == ROUTER_RESIDENCY_REGISTERED)
                s_unknown (eval, ROUTER_CRIT_RESIDENCY, "residency: for people %s; the person"
                           " lives in the city, whether registered is not known", needed);
            break;
    }
}

static void
s_needs (s_eval_t *eval, const router_service_t *service, const router_facts_t *facts)
{
    if (service->any_need)
        return;
    char takes [ROUTER_LIST_MAX * (ROUTER_CODE_MAX + 2)];
    s_join (service->needs, service->nneeds, takes, sizeof takes);
    if (facts->nneeds == 0) {
        s_unknown (eval, ROUTER_CRIT_NEEDS, "needs: takes %s; the person's needs are not"
                   " known", takes);
        return;
    }
    for (size_t i = 0; i < facts->nneeds; i++)
        if (facts->needs [i] && s_listed (service->needs, service->nneeds, facts->needs [i]))
            return;
    char has [ROUTER_ERR_MAX / 2];
    size_t used = 0;
    has [0] = 0;
    for (size_t i = 0; i < facts->nneeds && used < sizeof has; i++)
        used += snprintf (has + used, sizeof has - used, "%s%s", i ? ", " : "",
                          facts->needs [i] ? facts->needs [i] : "?");
    s_fail (eval, ROUTER_CRIT_NEEDS, "needs: takes %s; the person's needs are %s", takes, has);
}

//  `woman` from the sex on the person's file, when the caller did not decide it: female
//  holds, male and non_binary do not (said in words), anything else stays unknown
static bool
s_woman_by_sex (s_eval_t *eval, const router_facts_t *facts)
{
    if (!facts->sex || ((facts->holds | facts->lacks) & ROUTER_COND_WOMAN))
        return false;
    if (streq (facts->sex, "female"))
        return true;
    if (streq (facts->sex, "male") || streq (facts->sex, "non_binary"))
        s_fail (eval, ROUTER_CRIT_CONDITIONS, "conditions: requires woman; the person's sex"
                " is recorded as %s", streq (facts->sex, "male") ? "male" : "non-binary");
    else
        s_unknown (eval, ROUTER_CRIT_CONDITIONS, "conditions: requires woman; the person's"
                   " recorded sex '%.32s' is not one of female, male, non_binary", facts->sex);
    return true;
}

static void
s_conditions (s_eval_t *eval, const router_service_t *service, const router_facts_t *facts)
{
    for (int i = 0; i < ROUTER_COND_COUNT; i++) {
        uint32_t bit = 1u << i;
        if (!(service->conditions & bit))
            continue;
        if (bit == ROUTER_COND_WOMAN && s_woman_by_sex (eval, facts))
            continue;
        if (facts->lacks & bit)
            s_fail (eval, ROUTER_CRIT_CONDITIONS, "conditions: requires %s; it does not hold"
                    " for the person", router_condition_name (bit));
        else
        if (!(facts->holds & bit))
            s_unknown (eval, ROUTER_CRIT_CONDITIONS, "conditions: requires %s; not known for"
                       " the person", router_condition_name (bit));
    }
}

void
router_criteria_eval (const router_service_t *service, const router_facts_t *facts,
                      router_fit_t *out)
{
    assert (service && facts && out);
    memset (out, 0, sizeof *out);
    s_eval_t eval = { .out = out };
    s_territory (&eval, service, facts);
    s_age (&eval, service, facts);
    s_residency (&eval, service, facts);
    s_needs (&eval, service, facts);
    s_conditions (&eval, service, facts);
    if (service->capacity == ROUTER_CAPACITY_NONE)
        s_fail (&eval, ROUTER_CRIT_CAPACITY, "capacity: %s takes nobody at present (no"
                " capacity)", service->code);
    if (out->failed)
        out->verdict = ROUTER_NO_FIT;
    else
    if (out->unknown) {
        out->verdict = ROUTER_FIT_UNKNOWN;
        out->first = eval.first_unknown;
        memcpy (out->reason, eval.unknown_reason, sizeof out->reason);
    }
    else {
        out->verdict = ROUTER_FIT;
        out->waiting_list = service->capacity == ROUTER_CAPACITY_WAITING;
    }
}
