/*  test_router_lifecycle - the referral transition table: every (from, to, actor, reason)
    combination checked against the table itself, so the two cannot drift, plus the rules the
    issue states, which the table must keep. */
#include "router_rules.h"
#include <criterion/criterion.h>

static const router_actor_t s_actors [] = { ROUTER_ACTOR_REQUESTER, ROUTER_ACTOR_TARGET };

//  The first reason that explains status and needs no text; NULL when none does
static const char *
s_reason_for (router_status_t status)
{
    for (size_t i = 0; i < router_nreasons; i++)
        if ((router_reasons [i].statuses & (1u << status)) && !router_reasons [i].needs_text)
            return router_reasons [i].code;
    return NULL;
}

static bool
s_takes_reason (router_status_t status)
{
    for (size_t i = 0; i < router_nreasons; i++)
        if (router_reasons [i].statuses & (1u << status))
            return true;
    return false;
}

//  The error's list after "for the <actor>: " holds exactly the table's allowed statuses
static void
s_assert_allowed_list (const char *err, router_status_t from, router_actor_t actor)
{
    char marker [64];
    snprintf (marker, sizeof marker, "for the %s: ", router_actor_name (actor));
    const char *list = strstr (err, marker);
    cr_assert (list, "no allowed list in \"%s\"", err);
    list += strlen (marker);
    for (int to = 0; to < ROUTER_ST_COUNT; to++) {
        const router_transition_t *row = router_transition_find (from, (router_status_t) to);
        bool allowed = row && (row->who & actor);
        char item [64];
        snprintf (item, sizeof item, "%s%s", router_status_name ((router_status_t) to),
                  allowed && row->reason_required ? " (reason)" : "");
        //  Find the item as a whole entry of the comma-separated list
        bool listed = false;
        for (const char *at = list; (at = strstr (at, item)) != NULL; at++) {
            bool starts = at == list || (at [-1] == ' ' && at [-2] == ',');
            char end = at [strlen (item)];
            bool ends = end == 0 || end == ',' || (end == ' ' && !allowed);
            if (starts && ends) { listed = true; break; }
        }
        cr_assert_eq (listed, allowed, "%s -> %s for the %s: listed %d, table %d in \"%s\"",
                      router_status_name (from), router_status_name ((router_status_t) to),
                      router_actor_name (actor), listed, allowed, err);
    }
}

Test (router_lifecycle, every_combination_follows_the_table)
{
    int checked = 0;
    char err [ROUTER_ERR_MAX];
    for (int f = 0; f < ROUTER_ST_COUNT; f++)
    for (int t = 0; t < ROUTER_ST_COUNT; t++)
    for (size_t a = 0; a < 2; a++) {
        router_status_t from = (router_status_t) f, to = (router_status_t) t;
        router_actor_t actor = s_actors [a];
        const router_transition_t *row = router_transition_find (from, to);
        const char *good = s_reason_for (to);
        router_tx_result_t none = router_transition_check (from, to, actor, NULL, NULL, err,
                                                           sizeof err);
        router_tx_result_t with = router_transition_check (from, to, actor, good ? good : "other",
                                                           good ? NULL : "why", err, sizeof err);
        router_tx_result_t bogus = router_transition_check (from, to, actor, "bogus", NULL,
                                                            err, sizeof err);
        checked += 3;
        if (!row) {
            cr_assert_eq (none, ROUTER_TX_ILLEGAL, "%d -> %d", f, t);
            cr_assert_eq (with, ROUTER_TX_ILLEGAL);
            cr_assert_eq (bogus, ROUTER_TX_ILLEGAL);
            router_transition_check (from, to, actor, NULL, NULL, err, sizeof err);
            cr_assert (strstr (err, "is not a transition"), "%s", err);
            s_assert_allowed_list (err, from, actor);
            continue;
        }
        if (!(row->who & actor)) {
            cr_assert_eq (none, ROUTER_TX_WRONG_ACTOR);
            cr_assert_eq (with, ROUTER_TX_WRONG_ACTOR);
            router_transition_check (from, to, actor, NULL, NULL, err, sizeof err);
            cr_assert (strstr (err, "is made by the"), "%s", err);
            s_assert_allowed_list (err, from, actor);
            continue;
        }
        //  Allowed for this actor: only the reason can refuse it
        if (row->reason_required) {
            cr_assert_eq (none, ROUTER_TX_REASON_MISSING, "%s -> %s without a reason",
                          router_status_name (from), router_status_name (to));
            router_transition_check (from, to, actor, NULL, NULL, err, sizeof err);
            cr_assert (strstr (err, "requires a reason"), "%s", err);
            cr_assert_eq (with, ROUTER_TX_OK, "%s -> %s with %s", router_status_name (from),
                          router_status_name (to), good);
        }
        else {
            cr_assert_eq (none, ROUTER_TX_OK, "%s -> %s", router_status_name (from),
                          router_status_name (to));
            //  A reason where the status takes none is refused, not ignored
            cr_assert_eq (with, s_takes_reason (to) ? ROUTER_TX_OK
                                                    : ROUTER_TX_REASON_NOT_FOR_STATUS);
        }
        cr_assert_eq (bogus, ROUTER_TX_REASON_UNKNOWN);
        //  "other" explains any reasoned stop, but only with a text
        if (row->reason_required) {
            cr_assert_eq (router_transition_check (from, to, actor, "other", NULL, err,
                                                   sizeof err), ROUTER_TX_REASON_TEXT_MISSING);
            cr_assert_eq (router_transition_check (from, to, actor, "other", "moved abroad",
                                                   err, sizeof err), ROUTER_TX_OK);
            checked += 2;
        }
    }
    cr_log_info ("%d checks over %zu table rows", checked, router_ntransitions);
    cr_assert_gt (checked, ROUTER_ST_COUNT * ROUTER_ST_COUNT * 2 * 3 - 1);
}

//  Every reason is checked against every status it may or may not explain
Test (router_lifecycle, reasons_only_explain_their_statuses)
{
    char err [ROUTER_ERR_MAX];
    for (size_t r = 0; r < router_nreasons; r++) {
        const router_reason_t *reason = &router_reasons [r];
        for (size_t i = 0; i < router_ntransitions; i++) {
            const router_transition_t *row = &router_transitions [i];
            router_actor_t actor = row->who & ROUTER_ACTOR_REQUESTER ? ROUTER_ACTOR_REQUESTER
                                                                     : ROUTER_ACTOR_TARGET;
            router_tx_result_t rc = router_transition_check (row->from, row->to, actor,
                                                             reason->code, "text", err,
                                                             sizeof err);
            bool explains = reason->statuses & (1u << row->to);
            cr_assert_eq (rc, explains ? ROUTER_TX_OK : ROUTER_TX_REASON_NOT_FOR_STATUS,
                          "%s on %s -> %s: %s", reason->code, router_status_name (row->from),
                          router_status_name (row->to), err);
        }
    }
}

//  What the issue states, independently of the table's contents
Test (router_lifecycle, the_table_keeps_the_issues_rules)
{
    const uint32_t reasoned = (1u << ROUTER_ST_REJECTED) | (1u << ROUTER_ST_CANCELLED)
                            | (1u << ROUTER_ST_ON_HOLD) | (1u << ROUTER_ST_FAILED);
    const uint32_t final = (1u << ROUTER_ST_REJECTED) | (1u << ROUTER_ST_COMPLETED)
                         | (1u << ROUTER_ST_FAILED) | (1u << ROUTER_ST_CANCELLED)
                         | (1u << ROUTER_ST_ENTERED_IN_ERROR);
    uint32_t reached = 0;
    for (size_t i = 0; i < router_ntransitions; i++) {
        const router_transition_t *row = &router_transitions [i];
        cr_assert_neq (row->from, row->to);
        cr_assert_eq (row->reason_required, (reasoned & (1u << row->to)) != 0,
                      "%s -> %s: a reason is required exactly for rejected, cancelled,"
                      " on-hold, failed", router_status_name (row->from),
                      router_status_name (row->to));
        cr_assert_eq (final & (1u << row->from), 0, "%s is final",
                      router_status_name (row->from));
        cr_assert (row->who >= ROUTER_ACTOR_REQUESTER && row->who <= ROUTER_ACTOR_BOTH);
        //  One row per pair
        cr_assert_eq (router_transition_find (row->from, row->to), row);
        reached |= 1u << row->to;
    }
    for (int s = 0; s < ROUTER_ST_COUNT; s++) {
        if (s != ROUTER_ST_DRAFT)
            cr_assert (reached & (1u << s), "%s is unreachable",
                       router_status_name ((router_status_t) s));
        if (reasoned & (1u << s))
            cr_assert (s_reason_for ((router_status_t) s), "no reason explains %s",
                       router_status_name ((router_status_t) s));
        cr_assert_eq (router_status_parse (router_status_name ((router_status_t) s)), s);
    }
    //  Only the target decides; only the requester withdraws
    cr_assert_eq (router_transition_find (ROUTER_ST_REQUESTED, ROUTER_ST_ACCEPTED)->who,
                  ROUTER_ACTOR_TARGET);
    cr_assert_eq (router_transition_find (ROUTER_ST_REQUESTED, ROUTER_ST_REJECTED)->who,
                  ROUTER_ACTOR_TARGET);
    cr_assert_eq (router_transition_find (ROUTER_ST_REQUESTED, ROUTER_ST_CANCELLED)->who,
                  ROUTER_ACTOR_REQUESTER);
    //  Inappropriate referrals are measured on rejections
    int inappropriate = 0;
    for (size_t r = 0; r < router_nreasons; r++) {
        cr_assert_eq (router_reason_find (router_reasons [r].code), &router_reasons [r]);
        if (router_reasons [r].inappropriate) {
            inappropriate++;
            cr_assert (router_reasons [r].statuses & (1u << ROUTER_ST_REJECTED));
        }
    }
    cr_assert_geq (inappropriate, 3);
    cr_assert (router_reason_find ("outside_criteria")->inappropriate);
    cr_assert_not (router_reason_find ("no_capacity")->inappropriate);
}

Test (router_lifecycle, errors_say_what_is_allowed)
{
    char err [ROUTER_ERR_MAX];
    cr_assert_eq (router_transition_check (ROUTER_ST_REQUESTED, ROUTER_ST_COMPLETED,
                  ROUTER_ACTOR_TARGET, NULL, NULL, err, sizeof err), ROUTER_TX_ILLEGAL);
    cr_assert_str_eq (err, "requested -> completed is not a transition; allowed from requested"
                      " for the target: accepted, rejected (reason), entered-in-error");
    cr_assert_eq (router_transition_check (ROUTER_ST_REQUESTED, ROUTER_ST_ACCEPTED,
                  ROUTER_ACTOR_REQUESTER, NULL, NULL, err, sizeof err), ROUTER_TX_WRONG_ACTOR);
    cr_assert_str_eq (err, "requested -> accepted is made by the target, not the requester;"
                      " allowed from requested for the requester: cancelled (reason),"
                      " entered-in-error");
    cr_assert_eq (router_transition_check (ROUTER_ST_COMPLETED, ROUTER_ST_IN_PROGRESS,
                  ROUTER_ACTOR_TARGET, NULL, NULL, err, sizeof err), ROUTER_TX_ILLEGAL);
    cr_assert (strstr (err, "none: completed is final"), "%s", err);
    cr_assert_eq (router_transition_check (ROUTER_ST_REQUESTED, ROUTER_ST_REJECTED,
                  ROUTER_ACTOR_TARGET, NULL, NULL, err, sizeof err), ROUTER_TX_REASON_MISSING);
    cr_assert (strstr (err, "outside_criteria"), "%s", err);
    cr_assert_eq (router_transition_check (ROUTER_ST_REQUESTED, ROUTER_ST_REJECTED,
                  ROUTER_ACTOR_TARGET, "need_resolved", NULL, err, sizeof err),
                  ROUTER_TX_REASON_NOT_FOR_STATUS);
    cr_assert_eq (router_transition_check (ROUTER_ST_COUNT, ROUTER_ST_REJECTED,
                  ROUTER_ACTOR_TARGET, NULL, NULL, err, sizeof err), ROUTER_TX_UNKNOWN_STATUS);
    cr_assert_eq (router_status_parse ("in_progress"), -1);
    cr_assert_eq (router_actor_parse ("target"), ROUTER_ACTOR_TARGET);
    cr_assert_eq (router_actor_parse ("both"), -1);
}

//  docs/ARCHITECTURE.md shows the table; it must say what the code does
Test (router_lifecycle, the_architecture_doc_shows_this_table)
{
    char expected [4096] = "  | from | to (who; **R** = reason required) |\n  |---|---|\n";
    char finals [256] = "";
    for (int f = 0; f < ROUTER_ST_COUNT; f++) {
        char line [512];
        size_t used = snprintf (line, sizeof line, "  | %s |",
                                router_status_name ((router_status_t) f));
        size_t start = used;
        for (size_t i = 0; i < router_ntransitions; i++) {
            const router_transition_t *t = &router_transitions [i];
            if ((int) t->from != f)
                continue;
            const char *who = t->who == ROUTER_ACTOR_BOTH ? "both"
                            : t->who == ROUTER_ACTOR_TARGET ? "target" : "requester";
            used += snprintf (line + used, sizeof line - used, "%s %s (%s%s)",
                              used > start ? "," : "", router_status_name (t->to), who,
                              t->reason_required ? ", R" : "");
        }
        if (used == start)
            snprintf (finals + strlen (finals), sizeof finals - strlen (finals), "%s%s",
                      *finals ? ", " : "", router_status_name ((router_status_t) f));
        else
            snprintf (expected + strlen (expected), sizeof expected - strlen (expected),
                      "%s |\n", line);
    }
    snprintf (expected + strlen (expected), sizeof expected - strlen (expected),
              "  | %s | none: final |\n", finals);
    char path [512];
    snprintf (path, sizeof path, "%s/docs/ARCHITECTURE.md", FS_TEST_SOURCE_DIR);
    FILE *file = fopen (path, "r");
    cr_assert (file, "%s", path);
    static char doc [200000];
    size_t n = fread (doc, 1, sizeof doc - 1, file);
    doc [n] = 0;
    fclose (file);
    cr_assert (strstr (doc, expected), "docs/ARCHITECTURE.md lacks the transition table as"
               " the code has it:\n%s", expected);
}
