/*  test_intake_triage - triage rules as data: order, first match wins, default, unknown facts. */
#include "intake_rules.h"
#include <criterion/criterion.h>

//  The rules the migration seeds (003_processing.sql), in their order
static intake_triage_rule_t s_rules [] = {
    { "eviction-30d",     "housing.eviction_scheduled",  INTAKE_TRIAGE_EVICTION_WITHIN, 30, "", "urgent", 2 },
    { "eviction-minors",  "housing.eviction_scheduled",  INTAKE_TRIAGE_MINORS_AT_LEAST, 1, "", "urgent", 2 },
    { "emergency-minors", "emergency.intervention",      INTAKE_TRIAGE_MINORS_AT_LEAST, 1, "", "urgent", 1 },
    { "emergency",        "emergency.intervention",      INTAKE_TRIAGE_ALWAYS, 0, "", "urgent", 2 },
    { "health-urgent",    "health.social_risk_detected", INTAKE_TRIAGE_REPORTED_URGENCY, 0, "urgent", "urgent", 2 },
    { "health-preferent", "health.social_risk_detected", INTAKE_TRIAGE_REPORTED_URGENCY, 0, "preferent", "preferent", 10 },
    { "eviction-90d",     "housing.eviction_scheduled",  INTAKE_TRIAGE_EVICTION_WITHIN, 90, "", "preferent", 10 },
    { "eviction",         "housing.eviction_scheduled",  INTAKE_TRIAGE_ALWAYS, 0, "", "preferent", 15 },
};
#define S_NRULES (sizeof s_rules / sizeof s_rules [0])

static intake_triage_outcome_t
s_eval (intake_triage_facts_t facts)
{
    intake_triage_outcome_t out = { 0 };
    intake_triage_eval (s_rules, S_NRULES, &facts, &out);
    return out;
}

static intake_triage_facts_t
s_eviction (int64_t days, int64_t minors)
{
    return (intake_triage_facts_t) { "housing.eviction_scheduled", true, days, minors, NULL };
}

Test (intake_triage, eviction_thresholds)
{
    intake_triage_outcome_t out = s_eval (s_eviction (30, 0));
    cr_assert_str_eq (out.rule_id, "eviction-30d");
    cr_assert_str_eq (out.level, "urgent");
    cr_assert_eq (out.due_days, 2);
    //  One day past the threshold: no longer urgent (uncertain border)
    out = s_eval (s_eviction (31, 0));
    cr_assert_str_eq (out.rule_id, "eviction-90d");
    cr_assert_str_eq (out.level, "preferent");
    out = s_eval (s_eviction (200, 0));
    cr_assert_str_eq (out.rule_id, "eviction");
    cr_assert_eq (out.due_days, 15);
    //  A date already past when reported is as urgent as it gets
    out = s_eval (s_eviction (-3, 0));
    cr_assert_str_eq (out.rule_id, "eviction-30d");
}

Test (intake_triage, minors_make_eviction_urgent)
{
    intake_triage_outcome_t out = s_eval (s_eviction (200, 2));
    cr_assert_str_eq (out.rule_id, "eviction-minors");
    cr_assert_str_eq (out.level, "urgent");
    //  Both apply: the first in order decides, and is named
    out = s_eval (s_eviction (10, 2));
    cr_assert_str_eq (out.rule_id, "eviction-30d");
    //  Minors unknown never counts as minors present
    out = s_eval (s_eviction (200, -1));
    cr_assert_str_eq (out.rule_id, "eviction");
}

Test (intake_triage, emergency_and_health)
{
    intake_triage_facts_t facts = { "emergency.intervention", false, 0, 1, NULL };
    cr_assert_str_eq (s_eval (facts).rule_id, "emergency-minors");
    cr_assert_eq (s_eval (facts).due_days, 1);
    facts.minors = -1;
    cr_assert_str_eq (s_eval (facts).rule_id, "emergency");
    intake_triage_facts_t health = { "health.social_risk_detected", false, 0, -1, "urgent" };
    cr_assert_str_eq (s_eval (health).level, "urgent");
    health.reported_urgency = "preferent";
    cr_assert_str_eq (s_eval (health).rule_id, "health-preferent");
    health.reported_urgency = "ordinary";
    cr_assert_str_eq (s_eval (health).rule_id, "default");
    cr_assert_str_eq (s_eval (health).level, "ordinary");
    cr_assert_eq (s_eval (health).due_days, INTAKE_TRIAGE_DEFAULT_DAYS);
}

Test (intake_triage, rules_apply_only_to_their_type)
{
    //  An eviction fact on another type does not trigger the eviction rules
    intake_triage_facts_t facts = { "attention.requested", true, 5, 3, "urgent" };
    intake_triage_outcome_t out = s_eval (facts);
    cr_assert_str_eq (out.rule_id, "default");
    //  A '*' rule applies to every type; with no rules at all, the default
    intake_triage_rule_t any = { "any-minors", "*", INTAKE_TRIAGE_MINORS_AT_LEAST, 3, "", "preferent", 7 };
    intake_triage_eval (&any, 1, &facts, &out);
    cr_assert_str_eq (out.rule_id, "any-minors");
    intake_triage_eval (NULL, 0, &facts, &out);
    cr_assert_str_eq (out.rule_id, "default");
}

Test (intake_triage, names)
{
    cr_assert_eq (intake_triage_kind ("eviction_within_days"), INTAKE_TRIAGE_EVICTION_WITHIN);
    cr_assert_eq (intake_triage_kind ("always"), INTAKE_TRIAGE_ALWAYS);
    cr_assert_eq (intake_triage_kind ("sometimes"), -1);
    cr_assert_eq (intake_triage_kind (NULL), -1);
    cr_assert_str_eq (intake_triage_level ("preferent"), "preferent");
    cr_assert_null (intake_triage_level ("Urgent"));
}

Test (intake_triage, needs_the_router_can_route_on)
{
    const char *needs [INTAKE_NEEDS_MAX];
    cr_assert_eq (intake_needs ("housing.eviction_scheduled", NULL, NULL, needs, 8), 1);
    cr_assert_str_eq (needs [0], "housing");
    cr_assert_eq (intake_needs ("attention.requested", NULL, NULL, needs, 8), 0);
    //  An emergency: its kind, then what the team found, each once, unknown words dropped
    char *items [] = { "shelter", "food", "medical", "hugs", "gender_violence" };
    fs_strlist_t found = { 5, items };
    size_t n = intake_needs ("emergency.intervention", "gender_violence", &found, needs, 8);
    cr_assert_eq (n, 4);
    cr_assert_str_eq (needs [0], "gender_violence");
    cr_assert_str_eq (needs [1], "housing");
    cr_assert_str_eq (needs [2], "food");
    cr_assert_str_eq (needs [3], "health_care");
    cr_assert_eq (intake_needs ("emergency.intervention", "child_protection", NULL, needs, 8), 1);
    cr_assert_str_eq (needs [0], "childhood_at_risk");
    cr_assert_eq (intake_needs ("emergency.intervention", "other", NULL, needs, 8), 0);
    //  Never more than asked for
    cr_assert_eq (intake_needs ("emergency.intervention", "homelessness", &found, needs, 2), 2);
}
