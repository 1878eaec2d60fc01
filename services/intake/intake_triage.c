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
