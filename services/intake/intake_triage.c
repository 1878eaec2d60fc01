/*  intake_triage - urgent / preferent / ordinary from rules kept as data (intake.triage_rules). */
#include "intake_rules.h"

static const char *s_kinds [INTAKE_TRIAGE_KIND_COUNT] = {
    "always", "eviction_within_days", "minors_at_least", "reported_urgency"
};

int
intake_triage_kind (const char *name)
{
    for (int i = 0; name && i < INTAKE_TRIAGE_KIND_COUNT; i++)
        if (streq (s_kinds [i], name))
            return i;
    return -1;
}

const char *
intake_triage_level (const char *name)
{
    static const char *levels [] = { "urgent", "preferent", "ordinary", NULL };
    for (size_t i = 0; name && levels [i]; i++)
        if (streq (levels [i], name))
            return levels [i];
    return NULL;
}

//  Whether one rule's condition holds; an unknown fact never makes a condition true
static bool
s_matches (const intake_triage_rule_t *rule, const intake_triage_facts_t *facts)
{
    if (!streq (rule->event_type, "*") && !(facts->event_type && streq (rule->event_type, facts->event_type)))
        return false;
    switch (rule->kind) {
        case INTAKE_TRIAGE_ALWAYS:
            return true;
        case INTAKE_TRIAGE_EVICTION_WITHIN:
            //  An eviction date already past when reported still counts as imminent
            return facts->has_eviction && facts->days_to_eviction <= rule->param;
        case INTAKE_TRIAGE_MINORS_AT_LEAST:
            return facts->minors >= 0 && facts->minors >= rule->param;
        case INTAKE_TRIAGE_REPORTED_URGENCY:
            return facts->reported_urgency && streq (facts->reported_urgency, rule->param_text);
        default:
            return false;
    }
}

void
intake_triage_eval (const intake_triage_rule_t *rules, size_t nrules,
                    const intake_triage_facts_t *facts, intake_triage_outcome_t *out)
{
    assert (facts && out);
    for (size_t i = 0; i < nrules; i++)
        if (s_matches (&rules [i], facts)) {
            out->rule_id = rules [i].id;
            out->level = rules [i].level;
            out->due_days = rules [i].due_days;
            return;
        }
    out->rule_id = "default";
    out->level = "ordinary";
    out->due_days = INTAKE_TRIAGE_DEFAULT_DAYS;
}

//  The router's need categories (services/referral-router/data/needs.csv)
static const char *s_needs [] = {
    "housing", "homelessness", "income", "food", "employment", "education", "family_support",
    "childhood_at_risk", "home_care", "caregiver_support", "social_isolation", "migration",
    "gender_violence", "legal", "health_care", NULL
};

//  What a publisher's word means as a category: itself when it is one, else a synonym
static const char *
s_need_of (const char *word)
{
    static const char *synonyms [][2] = {
        { "shelter", "housing" }, { "accommodation", "housing" }, { "eviction", "housing" },
        { "disaster", "housing" }, { "emergency_accommodation", "housing" },
        { "medical", "health_care" }, { "child_protection", "childhood_at_risk" },
        { "elder_at_risk", "home_care" }, { NULL, NULL }
    };
    for (size_t i = 0; word && s_needs [i]; i++)
        if (streq (s_needs [i], word))
            return s_needs [i];
    for (size_t i = 0; word && synonyms [i][0]; i++)
        if (streq (synonyms [i][0], word))
            return synonyms [i][1];
    return NULL;
}

static void
s_add (const char *need, const char **needs, size_t *n, size_t max)
{
    if (!need || *n >= max)
        return;
    for (size_t i = 0; i < *n; i++)
        if (streq (needs [i], need))
            return;
    needs [(*n)++] = need;
}

size_t
intake_needs (const char *event_type, const char *emergency_kind, const fs_strlist_t *found,
              const char **needs, size_t max)
{
    size_t n = 0;
    if (event_type && streq (event_type, "housing.eviction_scheduled"))
        s_add ("housing", needs, &n, max);
    s_add (s_need_of (emergency_kind), needs, &n, max);
    for (size_t i = 0; found && i < found->n; i++)
        s_add (s_need_of (found->items [i]), needs, &n, max);
    return n;
}
