/*  router_lifecycle - the referral lifecycle: FHIR Task statuses, ONE table of the allowed
    transitions (who may make each, whether a reason is required), structured reasons. */
#include "router_rules.h"

#define S_REQ ROUTER_ACTOR_REQUESTER
#define S_TGT ROUTER_ACTOR_TARGET
#define S_BOTH ROUTER_ACTOR_BOTH

//  The requester drafts, sends, and withdraws; the target decides and does the work; a
//  record made by mistake may be struck out by either while it is not final.
const router_transition_t router_transitions [] = {
    { ROUTER_ST_DRAFT,       ROUTER_ST_REQUESTED,        S_REQ,  false },
    { ROUTER_ST_DRAFT,       ROUTER_ST_CANCELLED,        S_REQ,  true  },
    { ROUTER_ST_DRAFT,       ROUTER_ST_ENTERED_IN_ERROR, S_REQ,  false },
    { ROUTER_ST_REQUESTED,   ROUTER_ST_ACCEPTED,         S_TGT,  false },
    { ROUTER_ST_REQUESTED,   ROUTER_ST_REJECTED,         S_TGT,  true  },
    { ROUTER_ST_REQUESTED,   ROUTER_ST_CANCELLED,        S_REQ,  true  },
    { ROUTER_ST_REQUESTED,   ROUTER_ST_ENTERED_IN_ERROR, S_BOTH, false },
    { ROUTER_ST_ACCEPTED,    ROUTER_ST_IN_PROGRESS,      S_TGT,  false },
    { ROUTER_ST_ACCEPTED,    ROUTER_ST_ON_HOLD,          S_TGT,  true  },
    { ROUTER_ST_ACCEPTED,    ROUTER_ST_FAILED,           S_TGT,  true  },
    { ROUTER_ST_ACCEPTED,    ROUTER_ST_CANCELLED,        S_REQ,  true  },
    { ROUTER_ST_ACCEPTED,    ROUTER_ST_ENTERED_IN_ERROR, S_BOTH, false },
    { ROUTER_ST_IN_PROGRESS, ROUTER_ST_ON_HOLD,          S_TGT,  true  },
    { ROUTER_ST_IN_PROGRESS, ROUTER_ST_COMPLETED,        S_TGT,  false },
    { ROUTER_ST_IN_PROGRESS, ROUTER_ST_FAILED,           S_TGT,  true  },
    { ROUTER_ST_IN_PROGRESS, ROUTER_ST_CANCELLED,        S_REQ,  true  },
    { ROUTER_ST_IN_PROGRESS, ROUTER_ST_ENTERED_IN_ERROR, S_BOTH, false },
    { ROUTER_ST_ON_HOLD,     ROUTER_ST_IN_PROGRESS,      S_TGT,  false },
    { ROUTER_ST_ON_HOLD,     ROUTER_ST_FAILED,           S_TGT,  true  },
    { ROUTER_ST_ON_HOLD,     ROUTER_ST_CANCELLED,        S_REQ,  true  },
    { ROUTER_ST_ON_HOLD,     ROUTER_ST_ENTERED_IN_ERROR, S_BOTH, false },
};
const size_t router_ntransitions = sizeof router_transitions / sizeof router_transitions [0];

#define ST(s) (1u << ROUTER_ST_ ## s)

//  A target declines with one of the first six; the rest explain a stop on either side.
//  Inappropriate = the referral should not have been sent there (fed back to senders).
const router_reason_t router_reasons [] = {
    { "outside_criteria",        ST (REJECTED), true, false,
      "the person does not meet the service's access criteria" },
    { "not_our_territory",       ST (REJECTED), true, false,
      "the person lives outside the territory the service covers" },
    { "duplicate",               ST (REJECTED) | ST (CANCELLED), true, false,
      "the same need was already referred" },
    { "insufficient_information", ST (REJECTED) | ST (ON_HOLD), true, false,
      "the referral lacks what the service needs to assess it" },
    { "no_capacity",             ST (REJECTED) | ST (ON_HOLD), false, false,
      "the service cannot take anyone at present" },
    { "person_declined",         ST (REJECTED) | ST (CANCELLED) | ST (FAILED), false, false,
      "the person does not want the service" },
    { "person_unreachable",      ST (ON_HOLD) | ST (FAILED), false, false,
      "the person could not be contacted" },
    { "person_moved",            ST (CANCELLED) | ST (FAILED), false, false,
      "the person moved out of the service's reach" },
    { "need_resolved",           ST (CANCELLED), false, false,
      "the need was met before the service acted" },
    { "awaiting_person",         ST (ON_HOLD), false, false,
      "waiting for the person (documents, an appointment, a decision)" },
    { "other",                   ST (REJECTED) | ST (CANCELLED) | ST (ON_HOLD) | ST (FAILED),
      false, true, "anything else: the text says what" },
};
const size_t router_nreasons = sizeof router_reasons / sizeof router_reasons [0];

static const char *s_statuses [ROUTER_ST_COUNT] = {
    "draft", "requested", "accepted", "rejected", "in-progress", "on-hold", "completed",
    "failed", "cancelled", "entered-in-error"
};

const char *
router_status_name (router_status_t status)
{
    return (int) status >= 0 && status < ROUTER_ST_COUNT ? s_statuses [status] : NULL;
}

int
router_status_parse (const char *name)
{
    for (int i = 0; name && i < ROUTER_ST_COUNT; i++)
        if (streq (s_statuses [i], name))
            return i;
    return -1;
}

const char *
router_actor_name (router_actor_t actor)
{
    return actor == ROUTER_ACTOR_REQUESTER ? "requester"
         : actor == ROUTER_ACTOR_TARGET ? "target"
         : actor == ROUTER_ACTOR_BOTH ? "requester or target" : NULL;
}

int
router_actor_parse (const char *name)
{
    if (name && streq (name, "requester"))
        return ROUTER_ACTOR_REQUESTER;
    if (name && streq (name, "target"))
        return ROUTER_ACTOR_TARGET;
    return -1;
}

const router_reason_t *
router_reason_find (const char *code)
{
    for (size_t i = 0; code && i < router_nreasons; i++)
        if (streq (router_reasons [i].code, code))
            return &router_reasons [i];
    return NULL;
}

const router_transition_t *
router_transition_find (router_status_t from, router_status_t to)
{
    for (size_t i = 0; i < router_ntransitions; i++)
        if (router_transitions [i].from == from && router_transitions [i].to == to)
            return &router_transitions [i];
    return NULL;
}

void
router_transition_allowed (router_status_t from, router_actor_t actor, char *out,
                           size_t outlen)
{
    assert (out && outlen > 0);
    size_t used = 0;
    out [0] = 0;
    for (size_t i = 0; i < router_ntransitions && used < outlen; i++) {
        const router_transition_t *t = &router_transitions [i];
        if (t->from == from && (t->who & actor))
            used += snprintf (out + used, outlen - used, "%s%s%s", used ? ", " : "",
                              s_statuses [t->to], t->reason_required ? " (reason)" : "");
    }
    if (used == 0) {
        bool final = true;
        for (size_t i = 0; i < router_ntransitions; i++)
            if (router_transitions [i].from == from)
                final = false;
        snprintf (out, outlen, final ? "none: %s is final" : "none for the %s",
                  final ? router_status_name (from) : router_actor_name (actor));
    }
}

//  The reasons that may explain status, for an error message
static void
s_reasons_for (router_status_t status, char *out, size_t outlen)
{
    size_t used = 0;
    out [0] = 0;
    for (size_t i = 0; i < router_nreasons && used < outlen; i++)
        if (router_reasons [i].statuses & (1u << status))
            used += snprintf (out + used, outlen - used, "%s%s", used ? ", " : "",
                              router_reasons [i].code);
}

router_tx_result_t
router_transition_check (router_status_t from, router_status_t to, router_actor_t actor,
                         const char *reason_code, const char *reason_text, char *err,
                         size_t errlen)
{
    assert (err && errlen > 0);
    err [0] = 0;
    if (!router_status_name (from) || !router_status_name (to)) {
        snprintf (err, errlen, "unknown status");
        return ROUTER_TX_UNKNOWN_STATUS;
    }
    assert (actor == ROUTER_ACTOR_REQUESTER || actor == ROUTER_ACTOR_TARGET);
    char allowed [ROUTER_ERR_MAX / 2];
    const router_transition_t *row = router_transition_find (from, to);
    if (!row || !(row->who & actor)) {
        router_transition_allowed (from, actor, allowed, sizeof allowed);
        if (!row)
            snprintf (err, errlen, "%s -> %s is not a transition; allowed from %s for the %s:"
                      " %s", s_statuses [from], s_statuses [to], s_statuses [from],
                      router_actor_name (actor), allowed);
        else
            snprintf (err, errlen, "%s -> %s is made by the %s, not the %s; allowed from %s"
                      " for the %s: %s", s_statuses [from], s_statuses [to],
                      router_actor_name (row->who), router_actor_name (actor),
                      s_statuses [from], router_actor_name (actor), allowed);
        return row ? ROUTER_TX_WRONG_ACTOR : ROUTER_TX_ILLEGAL;
    }
    bool given = reason_code && *reason_code;
    char reasons [ROUTER_ERR_MAX / 2];
    s_reasons_for (to, reasons, sizeof reasons);
    if (!given) {
        if (!row->reason_required)
            return ROUTER_TX_OK;
        snprintf (err, errlen, "%s -> %s requires a reason (one of: %s)", s_statuses [from],
                  s_statuses [to], reasons);
        return ROUTER_TX_REASON_MISSING;
    }
    const router_reason_t *reason = router_reason_find (reason_code);
    if (!reason) {
        snprintf (err, errlen, "unknown reason \"%.64s\" for %s (one of: %s)", reason_code,
                  s_statuses [to], reasons);
        return ROUTER_TX_REASON_UNKNOWN;
    }
    if (!(reason->statuses & (1u << to))) {
        snprintf (err, errlen, "reason %s does not explain %s (one of: %s)", reason->code,
                  s_statuses [to], *reasons ? reasons : "none: it takes no reason");
        return ROUTER_TX_REASON_NOT_FOR_STATUS;
    }
    if (reason->needs_text && !(reason_text && *reason_text)) {
        snprintf (err, errlen, "reason %s needs a text saying what", reason->code);
        return ROUTER_TX_REASON_TEXT_MISSING;
    }
    return ROUTER_TX_OK;
}
