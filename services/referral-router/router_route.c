/*  router_route - routes a referral request: needs (given, and health's Z-codes mapped) ->
    candidate services -> access criteria -> capacity -> the target; the level and its data
    scope; the person's consent checked inside the transaction; the package delivered
    (outbound feed or the suite's bus). Every candidate is recorded with why it was or was
    not chosen. Held referrals are checked again when a consent changes; an operator may
    release one with an audited legal basis (override-consent). */
#include "router.h"
#include "router_scope.h"
#include "router_feed.h"

#define S_SEP "\x1f"                //  list separator in text results (codes hold no 0x1f)

static bool s_invalid;                          //  the request cannot make a valid package
static fs_counter_t *s_unmapped_counter;        //  codes that mapped to no need
static fs_counter_t *s_routed [5];              //  referrals by first outcome
static const char *s_outcomes [5] = {
    "requested", "on_hold", "orientation", "no_fitting_service", "released"
};

int
router_route_init (fs_server_t *server)
{
    fs_metrics_t *metrics = fs_server_metrics (server);
    s_unmapped_counter = fs_metrics_counter (metrics, "finestra_router_unmapped_codes_total",
        "Health codes of referral requests that map to no need category (reported)", NULL);
    for (int i = 0; i < 5; i++) {
        char labels [64];
        snprintf (labels, sizeof labels, "outcome=\"%s\"", s_outcomes [i]);
        s_routed [i] = fs_metrics_counter (metrics, "finestra_router_routed_total",
            "Referral requests routed, by outcome", labels);
    }
    return 0;
}

static void
s_count (int outcome)
{
    if (s_routed [outcome])
        fs_counter_add (s_routed [outcome], 1);
}

// ---- small helpers ---------------------------------------------------------------------

//  A PostgreSQL array literal of list (n strings) in chunk, NUL-terminated: {"a","b"}
static void
s_array (zchunk_t *chunk, const char *const *list, size_t n)
{
    zchunk_extend (chunk, "{", 1);
    for (size_t i = 0; i < n; i++) {
        zchunk_extend (chunk, i ? ",\"" : "\"", i ? 2 : 1);
        for (const char *p = list [i]; *p; p++) {
            if (*p == '"' || *p == '\\')
                zchunk_extend (chunk, "\\", 1);
            zchunk_extend (chunk, p, 1);
        }
        zchunk_extend (chunk, "\"", 1);
    }
    zchunk_extend (chunk, "}", 2);
}

//  Sets an owned string list from text separated by S_SEP ("" or NULL: left absent)
static void
s_list_set (fs_strlist_t *list, uint64_t *present, int index, const char *text)
{
    if (!text || !*text)
        return;
    size_t n = 1;
    for (const char *p = text; *p; p++)
        n += *p == S_SEP [0];
    list->items = (char **) zmalloc (n * sizeof (char *));
    list->n = 0;
    const char *start = text;
    while (true) {
        const char *end = strchr (start, S_SEP [0]);
        size_t len = end ? (size_t) (end - start) : strlen (start);
        list->items [list->n] = (char *) zmalloc (len + 1);
        memcpy (list->items [list->n++], start, len);
        if (!end)
            break;
        start = end + 1;
    }
    *present |= 1ull << index;
}

//  The names of the bits of mask, by namer, into list (at most max)
static size_t
s_bit_names (uint32_t mask, const char *(*namer) (uint32_t), const char **list, size_t max)
{
    size_t n = 0;
    for (int i = 0; i < 32 && n < max; i++)
        if ((mask & (1u << i)) && namer (1u << i))
            list [n++] = namer (1u << i);
    return n;
}

static const char *
s_value (PGresult *result, int row, int column)
{
    return PQgetisnull (result, row, column) ? NULL : PQgetvalue (result, row, column);
}

//  The statements run for every referral: prepared once per session (fs_pg_execp), not
//  parsed and planned on every call
static PGresult *
s_exec (fs_pg_t *pg, const char *name, const char *sql, int n, const char *const *values)
{
    return fs_pg_execp (pg, name, sql, n, values, NULL, NULL, 0);
}

static int
s_run (fs_pg_t *pg, const char *name, const char *sql, int n, const char *const *values)
{
    PGresult *result = s_exec (pg, name, sql, n, values);
    PQclear (result);
    return result ? 0 : -1;
}

static void
s_today (char *out)
{
    time_t now = time (NULL);
    struct tm tm;
    gmtime_r (&now, &tm);
    strftime (out, 11, "%Y-%m-%d", &tm);
}

static int
s_emit (fs_server_t *server, fs_pg_t *pg, const fs_type_t *type, const void *payload,
        const fs_envelope_t *cause)
{
    fs_proto_error_t err;
    int rc = fs_outbox_emit (pg, fs_server_schema (server), fs_server_name (server),
                             fs_server_routes (server), type, payload, cause, NULL, &err);
    if (rc && err.code != FS_PROTO_OK)
        fs_pg_set_error (pg, "cannot emit %s: %s", type->wire, err.message);
    return rc;
}

// ---- status: the row, its history, the sender told ------------------------------------

//  Moves referral id from -> to as the router (acting for the requester): its row, one
//  history row and referral.status_changed to the sender. 0 or -1
static int
s_status (fs_server_t *server, fs_pg_t *pg, const char *id, const char *event_ref,
          const fs_envelope_t *cause, const char *from, const char *to,
          const char *reason_code, const char *reason_text)
{
    char text [1001];
    snprintf (text, sizeof text, "%s", reason_text ? reason_text : "");
    const char *values [5] = { id, from, to, reason_code, reason_text ? text : NULL };
    //  One statement (one round trip): a data-modifying WITH runs whether or not it is read
    if (s_run (pg, "router_status",
                   "WITH u AS (UPDATE referral_router.referrals SET status = $3,"
                       " reason_code = $4, reason_text = $5, updated_at = now ()"
                       " WHERE id = $1::uuid AND status = $2)"
                       " INSERT INTO referral_router.referral_transitions (referral_id,"
                       " from_status, to_status, actor, reason_code, reason_text)"
                       " VALUES ($1::uuid, $2, $3, 'requester', $4, $5)", 5, values))
        return -1;
    fs_referral_status_changed_t changed = { 0 };
    const fs_type_t *type = &fs_referral_status_changed_type;
    fs_proto_set_str (type, &changed, "referral_id", id);
    fs_proto_set_str (type, &changed, "event_ref", event_ref);
    fs_proto_set_str (type, &changed, "status", to);
    fs_proto_set_str (type, &changed, "previous", from);
    fs_proto_set_str (type, &changed, "actor", "requester");
    fs_proto_set_str (type, &changed, "reason_code", reason_code);
    fs_proto_set_str (type, &changed, "reason", reason_text ? text : NULL);
    //  The sender told: inside the suite on the bus, an external system on its feed
    int rc = s_emit (server, pg, type, &changed, cause)
          || router_feed_tell (pg, id, cause->hdr.correlation_id, ROUTER_FEED_SENDER, type,
                               &changed);
    fs_proto_clear (type, &changed);
    return rc;
}

// ---- consent ---------------------------------------------------------------------------

//  The categories the person's consents allow for recipient now (rows locked FOR SHARE: a
//  withdrawal waits for this transaction, and one committed before is seen). When none is
//  valid, *reason is consent_missing, consent_withdrawn or consent_expired. -1: database
static int
s_consent (fs_pg_t *pg, const char *person, const char *recipient, uint32_t *allowed,
           const char **reason)
{
    *allowed = 0;
    *reason = "consent_missing";
    if (!person)
        return 0;
    const char *values [3] = { person, ROUTER_PURPOSE, recipient };
    PGresult *result = s_exec (pg, "router_consent",
        "SELECT status, $3 = ANY (recipients), expires_at IS NOT NULL AND expires_at <= now (),"
        " array_to_string (data_categories, E'\\x1f')"
        " FROM referral_router.consents WHERE person_id = $1::uuid AND purpose = $2"
        " ORDER BY consent_id FOR SHARE", 3, values);
    if (!result)
        return -1;
    bool expired = false, withdrawn = false;
    for (int row = 0; row < PQntuples (result); row++) {
        if (*PQgetvalue (result, row, 1) != 't')
            continue;               //  not for this recipient
        if (streq (PQgetvalue (result, row, 0), "withdrawn"))
            withdrawn = true;
        else
        if (*PQgetvalue (result, row, 2) == 't')
            expired = true;
        else {
            char *cats = strdup (PQgetvalue (result, row, 3));
            for (char *save = NULL, *c = strtok_r (cats, S_SEP, &save); c;
                 c = strtok_r (NULL, S_SEP, &save))
                *allowed |= router_data_parse (c);
            free (cats);
        }
    }
    PQclear (result);
    if (!*allowed)
        *reason = withdrawn ? "consent_withdrawn" : expired ? "consent_expired"
                : "consent_missing";
    return 0;
}

// ---- dispatch: the package, to its target ----------------------------------------------

//  Builds referral id's package with the categories given (0 for orientation) from what is
//  stored, keeps it, and delivers it: feed -> router_feed_append, internal -> the bus
//  (referral.requested). Records the categories and basis sent. 0 or -1
static int
s_dispatch (fs_server_t *server, fs_pg_t *pg, const char *id, uint32_t categories,
            const char *basis, const fs_envelope_t *cause)
{
    const char *key [1] = { id };
    PGresult *result = s_exec (pg, "router_dispatch",
        "SELECT r.event_ref, r.correlation_id, r.level, r.target, r.urgency, r.referent,"
        " array_to_string (r.needs, E'\\x1f'), array_to_string (r.complexity_factors, E'\\x1f'),"
        " r.motivation, encode (s.subject, 'hex'), array_to_string (s.icd10_codes, E'\\x1f'),"
        " s.note, d.delivery, d.delivery_target, p.conference_on,"
        " p.requester_role || '@' || p.requester_service, p.target_role || '@' || p.target_service"
        " FROM referral_router.referrals r"
        " JOIN referral_router.services d ON d.code = r.target"
        " LEFT JOIN referral_router.referral_subjects s ON s.referral_id = r.id"
        " LEFT JOIN referral_router.shared_plans p ON p.referral_id = r.id"
        " WHERE r.id = $1::uuid", 1, key);
    if (!result)
        return -1;
    if (PQntuples (result) != 1) {
        PQclear (result);
        fs_pg_set_error (pg, "referral %s has no target to dispatch to", id);
        return -1;
    }
    const fs_type_t *t = &fs_referral_package_type;
    fs_referral_package_t package = { 0 };
    fs_proto_set_str (t, &package, "referral_id", id);
    fs_proto_set_str (t, &package, "event_ref", PQgetvalue (result, 0, 0));
    fs_proto_set_str (t, &package, "level", PQgetvalue (result, 0, 2));
    fs_proto_set_str (t, &package, "target", PQgetvalue (result, 0, 3));
    fs_proto_set_str (t, &package, "urgency", PQgetvalue (result, 0, 4));
    fs_proto_set_str (t, &package, "referent", s_value (result, 0, 5));
    s_list_set (&package.needs, &package.present, fs_referral_package_F_needs,
                PQgetvalue (result, 0, 6));
    s_list_set (&package.complexity_factors, &package.present,
                fs_referral_package_F_complexity_factors, PQgetvalue (result, 0, 7));
    fs_proto_set_str (t, &package, "reason", PQgetvalue (result, 0, 8));
    fs_proto_set_str (t, &package, "conference_on", s_value (result, 0, 14));
    fs_proto_set_str (t, &package, "requester_referent", s_value (result, 0, 15));
    fs_proto_set_str (t, &package, "target_referent", s_value (result, 0, 16));
    //  The personal data: only the categories allowed, only what intake sent
    const char *cats [ROUTER_DATA_COUNT];
    uint32_t sent = 0;
    if (categories) {
        fs_proto_set_str (t, &package, "legal_basis", basis);
        const char *hex = s_value (result, 0, 9);
        fs_referral_subject_t subject = { 0 };
        if (hex && *hex) {
            size_t len = strlen (hex) / 2;
            char *bytes = (char *) zmalloc (len + 1);
            for (size_t i = 0; i < len; i++)
                sscanf (hex + 2 * i, "%2hhx", (unsigned char *) &bytes [i]);
            fs_proto_error_t err;
            if (fs_proto_decode (&fs_referral_subject_type, bytes, len, &subject, &err) == 0) {
                router_scope_fill (&subject, categories, &package.subject);
                if (package.subject.present)
                    package.present |= 1ull << fs_referral_package_F_subject;
                sent |= categories & (ROUTER_DATA_IDENTITY | ROUTER_DATA_CONTACT);
            }
            fs_proto_clear (&fs_referral_subject_type, &subject);
            free (bytes);
        }
        if (categories & ROUTER_DATA_SOCIAL_HEALTH) {
            s_list_set (&package.icd10_codes, &package.present,
                        fs_referral_package_F_icd10_codes, PQgetvalue (result, 0, 10));
            fs_proto_set_str (t, &package, "note", s_value (result, 0, 11));
            sent |= ROUTER_DATA_SOCIAL_HEALTH;
        }
        size_t ncats = s_bit_names (sent, router_data_name, cats, ROUTER_DATA_COUNT);
        if (ncats) {
            package.data_categories.items = (char **) zmalloc (ncats * sizeof (char *));
            for (size_t i = 0; i < ncats; i++)
                package.data_categories.items [i] = strdup (cats [i]);
            package.data_categories.n = ncats;
            package.present |= 1ull << fs_referral_package_F_data_categories;
        }
    }
    bool feed = streq (PQgetvalue (result, 0, 12), "feed");
    char destination [ROUTER_CODE_MAX];
    char correlation [FS_UUID_LEN + 1];
    snprintf (destination, sizeof destination, "%s", PQgetvalue (result, 0, 13));
    snprintf (correlation, sizeof correlation, "%s", PQgetvalue (result, 0, 1));
    PQclear (result);

    char *data = NULL;
    size_t len = 0;
    fs_proto_error_t err;
    int rc = fs_proto_encode (t, &package, &data, &len, &err);
    if (rc) {
        fs_pg_set_error (pg, "cannot encode the package of %s: %s", id, err.message);
        s_invalid = true;           //  the same again would fail again: dead-lettered
    }
    if (rc == 0) {
        zchunk_t *sent_list = zchunk_new (NULL, 64);
        s_array (sent_list, cats, s_bit_names (sent, router_data_name, cats, ROUTER_DATA_COUNT));
        const char *values [7] = { id, package.target, feed ? "feed" : "internal", destination,
                                   data, (const char *) zchunk_data (sent_list),
                                   categories ? basis : NULL };
        int lengths [7] = { 0, 0, 0, 0, (int) len, 0, 0 };
        int formats [7] = { 0, 0, 0, 0, 1, 0, 0 };
        PGresult *stored = fs_pg_execp (pg, "router_package",
            "WITH kept AS (INSERT INTO referral_router.referral_packages (referral_id, target,"
            " delivery, destination, payload) VALUES ($1::uuid, $2, $3, $4, $5)"
            " ON CONFLICT (referral_id) DO UPDATE SET payload = EXCLUDED.payload,"
            "  sent_at = now () RETURNING 1)"
            " UPDATE referral_router.referrals SET data_categories = $6::text[],"
            " legal_basis = $7 WHERE id = $1::uuid", 7, values, lengths, formats, 0);
        zchunk_destroy (&sent_list);
        rc = stored ? 0 : -1;
        if (stored)
            PQclear (stored);
    }
    //  Appended last: a feed's appends are serialised until this transaction commits
    if (rc == 0) {
        if (feed)
            rc = router_feed_append (pg, destination, "referral.requested", id, correlation,
                                     data, len);
        else {
            fs_envelope_t chain = { 0 };
            chain.hdr.correlation_id = correlation;
            chain.hdr.id = cause ? cause->hdr.id : NULL;
            rc = s_emit (server, pg, t, &package, &chain);
        }
    }
    free (data);
    fs_proto_clear (t, &package);
    return rc;
}

//  Checks the consent of a held or fresh referral and sends what it allows: `requested`,
//  or `on-hold` with the consent reason. kind: the target's, when the caller has it from
//  the directory; -1 to read it. *released true when sent. 0 or -1
static int
s_consent_and_send (fs_server_t *server, fs_pg_t *pg, const char *id, const char *event_ref,
                    const char *person, const char *target, int kind, router_level_t level,
                    const char *from, const fs_envelope_t *cause, bool *released)
{
    *released = false;
    if (kind < 0) {
        const char *values [1] = { target };
        PGresult *result = fs_pg_exec (pg, "SELECT kind FROM referral_router.services"
                                           " WHERE code = $1", 1, values);
        if (!result)
            return -1;
        kind = PQntuples (result) ? router_kind_parse (PQgetvalue (result, 0, 0)) : -1;
        PQclear (result);
    }
    const char *recipient = router_recipient_of ((router_kind_t) (kind < 0 ? 0 : kind));
    uint32_t allowed = 0;
    const char *reason = NULL;
    if (s_consent (pg, person, recipient, &allowed, &reason))
        return -1;
    uint32_t send = router_level_categories (level) & allowed;
    //  The target cannot act without knowing who: identity or nothing. The other
    //  categories degrade to what the consent allows (recorded on the referral)
    if (!(send & ROUTER_DATA_IDENTITY)) {
        char text [256];
        snprintf (text, sizeof text, "no valid consent for %s to %s covering identity (%s)",
                  ROUTER_PURPOSE, recipient, reason);
        if (allowed)
            reason = "consent_missing";
        if (streq (from, "on-hold")) {
            const char *update [3] = { id, reason, text };
            return fs_pg_run (pg, "UPDATE referral_router.referrals SET reason_code = $2,"
                                  " reason_text = $3 WHERE id = $1::uuid", 3, update);
        }
        return s_status (server, pg, id, event_ref, cause, from, "on-hold", reason, text);
    }
    *released = true;
    return s_status (server, pg, id, event_ref, cause, from, "requested", NULL, NULL)
        || s_dispatch (server, pg, id, send, "consent", cause);
}

// ---- routing a request ------------------------------------------------------------------

typedef struct {
    const router_service_t *service;
    router_fit_t fit;
    int cls;                        /* 0 fits, 1 unknown, 2 does not fit */
    bool specific;                  /* takes one of the needs by name (not "*") */
    size_t matched;                 /* needs of the request it takes by name */
} s_cand_t;

static int
s_cand_cmp (const void *a, const void *b)
{
    const s_cand_t *x = a, *y = b;
    if (x->cls != y->cls)
        return x->cls - y->cls;
    if (x->specific != y->specific)
        return x->specific ? -1 : 1;
    //  A service whose own conditions hold for the person is the more specific answer
    int xc = __builtin_popcount (x->service->conditions);
    int yc = __builtin_popcount (y->service->conditions);
    if (xc != yc)
        return yc - xc;
    if (x->fit.waiting_list != y->fit.waiting_list)
        return x->fit.waiting_list ? 1 : -1;
    if (x->matched != y->matched)
        return x->matched > y->matched ? -1 : 1;
    return strcmp (x->service->code, y->service->code);
}

static bool
s_takes (const router_service_t *service, const char *need)
{
    for (size_t i = 0; i < service->nneeds; i++)
        if (streq (service->needs [i], need))
            return true;
    return false;
}

//  Records each candidate and why; *chosen the first that fits, NULL when none. 0 or -1
static int
s_candidates (fs_pg_t *pg, router_directory_t *dir, const char *id,
              const router_facts_t *facts, const router_service_t **chosen)
{
    *chosen = NULL;
    size_t size = router_directory_size (dir);
    s_cand_t *cands = (s_cand_t *) zmalloc ((size ? size : 1) * sizeof (s_cand_t));
    size_t n = 0;
    for (size_t i = 0; i < size && facts->nneeds; i++) {
        const router_service_t *service = router_directory_service (dir, i);
        size_t matched = 0;
        for (size_t k = 0; k < facts->nneeds; k++)
            matched += s_takes (service, facts->needs [k]);
        if (!matched && !service->any_need)
            continue;               //  takes none of the needs: not a candidate
        s_cand_t *c = &cands [n++];
        c->service = service;
        c->matched = matched;
        c->specific = matched > 0;
        router_criteria_eval (service, facts, &c->fit);
        if (c->fit.failed & ROUTER_CRIT_TERRITORY) {
            n--;                    //  does not serve where the person lives: not a candidate
            continue;
        }
        c->cls = c->fit.verdict == ROUTER_FIT ? 0 : c->fit.verdict == ROUTER_FIT_UNKNOWN ? 1 : 2;
    }
    qsort (cands, n, sizeof cands [0], s_cand_cmp);
    //  All decisions in one statement: parallel arrays, unnested
    zchunk_t *lists [4];
    for (int k = 0; k < 4; k++)
        lists [k] = zchunk_new (NULL, 256);
    const char **codes = (const char **) zmalloc ((n ? n : 1) * sizeof (char *));
    const char **outcomes = (const char **) zmalloc ((n ? n : 1) * sizeof (char *));
    const char **criteria = (const char **) zmalloc ((n ? n : 1) * sizeof (char *));
    char (*reasons) [ROUTER_ERR_MAX + 64] = zmalloc ((n ? n : 1) * (ROUTER_ERR_MAX + 64));
    const char **reason_list = (const char **) zmalloc ((n ? n : 1) * sizeof (char *));
    for (size_t i = 0; i < n; i++) {
        s_cand_t *c = &cands [i];
        char *reason = reasons [i];
        size_t room = sizeof reasons [i];
        if (c->cls == 0 && i == 0) {
            outcomes [i] = "chosen";
            *chosen = c->service;
            snprintf (reason, room, "fits every criterion%s%s",
                      c->specific ? "; takes the need by name" : "; takes every need",
                      c->fit.waiting_list ? " (waiting list)" : "");
        }
        else
        if (c->cls == 0) {
            outcomes [i] = "fits_not_chosen";
            snprintf (reason, room, "fits%s, ranked after %s (specific services"
                      " first, then more conditions, capacity before waiting list, needs"
                      " matched)", c->fit.waiting_list ? " (waiting list)" : "",
                      cands [0].service->code);
        }
        else {
            outcomes [i] = c->cls == 1 ? "unknown"
                         : c->fit.first == ROUTER_CRIT_CAPACITY ? "no_capacity" : "no_fit";
            snprintf (reason, room, "%s", c->fit.reason);
        }
        codes [i] = c->service->code;
        criteria [i] = c->fit.first ? router_criterion_name (c->fit.first) : "";
        reason_list [i] = reason;
    }
    s_array (lists [0], codes, n);
    s_array (lists [1], outcomes, n);
    s_array (lists [2], criteria, n);
    s_array (lists [3], reason_list, n);
    const char *values [5] = { id, (const char *) zchunk_data (lists [0]),
                               (const char *) zchunk_data (lists [1]),
                               (const char *) zchunk_data (lists [2]),
                               (const char *) zchunk_data (lists [3]) };
    int rc = n == 0 ? 0 : s_run (pg, "router_decisions",
        "INSERT INTO referral_router.routing_decisions (referral_id, rank, service_code,"
        " outcome, criterion, reason)"
        " SELECT $1::uuid, d.rank, d.code, d.outcome, nullif (d.criterion, ''), d.reason"
        " FROM unnest ($2::text[], $3::text[], $4::text[], $5::text[]) WITH ORDINALITY"
        "  AS d (code, outcome, criterion, reason, rank)", 5, values);
    for (int k = 0; k < 4; k++)
        zchunk_destroy (&lists [k]);
    free (codes);
    free (outcomes);
    free (criteria);
    free (reasons);
    free (reason_list);
    free (cands);
    return rc;
}

//  Adds need to needs (distinct, at most ROUTER_LIST_MAX)
static void
s_add_need (const char **needs, size_t *n, const char *need)
{
    for (size_t i = 0; i < *n; i++)
        if (streq (needs [i], need))
            return;
    if (*n < 16)                    //  a package carries at most 16
        needs [(*n)++] = need;
}

static int
s_route (fs_inbox_ctx_t *ctx, router_directory_t *dir, const fs_referral_requested_t *req,
         const char *id)
{
    fs_server_t *server = ctx->server;
    fs_pg_t *pg = ctx->pg;
    const fs_envelope_t *cause = ctx->env;
    //  Needs: intake's, and health's codes through the mapping; unmapped codes reported
    const char *needs [ROUTER_LIST_MAX];
    size_t nneeds = 0;
    if (FS_PRESENT (req, fs_referral_requested_F_needs))
        for (size_t i = 0; i < req->needs.n; i++)
            s_add_need (needs, &nneeds, req->needs.items [i]);
    const char *unmapped [16];
    size_t nunmapped = 0;
    if (FS_PRESENT (req, fs_referral_requested_F_icd10_codes) && req->icd10_codes.n) {
        size_t ncodes = req->icd10_codes.n < 16 ? req->icd10_codes.n : 16;
        const char *zneeds [ROUTER_LIST_MAX];
        router_zcode_result_t results [16];
        size_t nz = router_directory_zcode_needs (dir, (const char *const *)
                                                  req->icd10_codes.items, ncodes, zneeds,
                                                  ROUTER_LIST_MAX, results);
        for (size_t i = 0; i < nz; i++)
            s_add_need (needs, &nneeds, zneeds [i]);
        for (size_t i = 0; i < ncodes; i++) {
            if (results [i] == ROUTER_ZCODE_MAPPED)
                continue;
            const char *code = req->icd10_codes.items [i];
            unmapped [nunmapped++] = code;
            const char *values [3] = { id, code, results [i] == ROUTER_ZCODE_UNMAPPED
                                       ? "unmapped" : results [i] == ROUTER_ZCODE_OUT_OF_RANGE
                                       ? "out_of_range" : "invalid" };
            if (fs_pg_run (pg, "INSERT INTO referral_router.unmapped_codes (referral_id, code,"
                               " result) VALUES ($1::uuid, $2, $3) ON CONFLICT DO NOTHING",
                               3, values))
                return -1;
            if (s_unmapped_counter)
                fs_counter_add (s_unmapped_counter, 1);
        }
    }
    //  The person's facts
    const fs_referral_subject_t *subject = FS_PRESENT (req, fs_referral_requested_F_subject)
                                         ? &req->subject : NULL;
    char today [11];
    s_today (today);
    router_facts_t facts = { .age = -1, .lives = ROUTER_LIVES_UNKNOWN };
    if (subject) {
        facts.age = router_age_on (subject->birth_date, today);
        const char *residency = subject->residency ? subject->residency : "";
        facts.lives = streq (residency, "registered_in_city") ? ROUTER_LIVES_REGISTERED
                    : streq (residency, "lives_in_city") ? ROUTER_LIVES_IN_CITY
                    : streq (residency, "outside_city") ? ROUTER_LIVES_OUTSIDE
                    : ROUTER_LIVES_UNKNOWN;
        facts.neighbourhood = subject->address.neighbourhood;
        facts.district = subject->address.district;
        if (!facts.district && facts.neighbourhood)
            facts.district = router_directory_district_of (dir, facts.neighbourhood);
    }
    facts.needs = needs;
    facts.nneeds = nneeds;
    if (streq (req->event_type, "housing.eviction_scheduled"))
        facts.holds |= ROUTER_COND_EVICTION_IN_PROCESS;
    int minors = FS_PRESENT (req, fs_referral_requested_F_minors) ? (int) req->minors : -1;
    if (minors > 0)
        facts.holds |= ROUTER_COND_MINORS_IN_HOUSEHOLD;
    else
    if (minors == 0)
        facts.lacks |= ROUTER_COND_MINORS_IN_HOUSEHOLD;

    const router_service_t *chosen = NULL;
    if (s_candidates (pg, dir, id, &facts, &chosen))
        return -1;

    //  The level: health's suggestion; eviction and emergency default to complementation
    //  (the assigned centre stays the referent and asks the target for something specific)
    const char *asked = req->suggested_level ? req->suggested_level : "complementation";
    router_level_t level = (router_level_t) router_level_parse (asked);
    uint32_t factors = router_complexity (needs, nneeds, minors, facts.holds);
    const char *level_reason = NULL;
    if (level == ROUTER_LEVEL_JOINT && !factors) {
        level = ROUTER_LEVEL_COMPLEMENTATION;
        level_reason = "joint_treatment_without_factor: no documented complexity factor;"
                       " sent as complementation";
    }
    const char *factor_names [ROUTER_FACTOR_COUNT];
    size_t nfactors = level == ROUTER_LEVEL_JOINT
                    ? s_bit_names (factors, router_factor_name, factor_names, ROUTER_FACTOR_COUNT)
                    : 0;
    //  The motivated request: what is asked and why (no personal data)
    char motivation [1024];
    int used = snprintf (motivation, sizeof motivation, "%s from %s (%s, urgency %s): needs ",
                         router_level_name (level), req->source, req->event_type, req->urgency);
    for (size_t i = 0; i < nneeds && used < (int) sizeof motivation; i++)
        used += snprintf (motivation + used, sizeof motivation - used, "%s%s", i ? ", " : "",
                          needs [i]);
    if (!nneeds && used < (int) sizeof motivation)
        snprintf (motivation + used, sizeof motivation - used, "none known");

    zchunk_t *lists [3] = { zchunk_new (NULL, 128), zchunk_new (NULL, 64), zchunk_new (NULL, 64) };
    s_array (lists [0], needs, nneeds);
    s_array (lists [1], unmapped, nunmapped);
    s_array (lists [2], factor_names, nfactors);
    const char *values [11] = {
        id, asked, router_level_name (level), level_reason, chosen ? chosen->code : NULL,
        (const char *) zchunk_data (lists [0]), (const char *) zchunk_data (lists [1]),
        (const char *) zchunk_data (lists [2]), motivation, NULL, NULL
    };
    int rc = s_run (pg, "router_routed",
                            "UPDATE referral_router.referrals SET level_requested = $2,"
                            " level = $3, level_reason = $4, target = $5, needs = $6::text[],"
                            " unmapped_codes = $7::text[], complexity_factors = $8::text[],"
                            " motivation = $9 WHERE id = $1::uuid", 9, values);
    for (int i = 0; i < 3; i++)
        zchunk_destroy (&lists [i]);
    if (rc)
        return -1;
    //  The person's snapshot, kept here: the router decides what of it leaves
    char *bytes = NULL;
    size_t len = 0;
    fs_proto_error_t err;
    if (subject && fs_proto_encode (&fs_referral_subject_type, subject, &bytes, &len, &err)) {
        fs_pg_set_error (pg, "subject: %s", err.message);
        s_invalid = true;
        return -1;
    }
    zchunk_t *codes = zchunk_new (NULL, 64);
    s_array (codes, FS_PRESENT (req, fs_referral_requested_F_icd10_codes)
                    ? (const char *const *) req->icd10_codes.items : NULL,
             FS_PRESENT (req, fs_referral_requested_F_icd10_codes) ? req->icd10_codes.n : 0);
    char minors_text [16];
    snprintf (minors_text, sizeof minors_text, "%d", minors);
    const char *row [5] = { id, bytes, (const char *) zchunk_data (codes), req->note,
                            minors >= 0 ? minors_text : NULL };
    int lengths [5] = { 0, (int) len, 0, 0, 0 };
    int formats [5] = { 0, 1, 0, 0, 0 };
    PGresult *result = fs_pg_execp (pg, "router_subject",
        "INSERT INTO referral_router.referral_subjects"
        " (referral_id, subject, icd10_codes, note, minors)"
        " VALUES ($1::uuid, $2, $3::text[], $4, $5::integer)", 5, row, lengths, formats, 0);
    zchunk_destroy (&codes);
    free (bytes);
    if (!result)
        return -1;
    PQclear (result);

    if (!chosen) {
        char text [1001];
        snprintf (text, sizeof text, nneeds ? "no service fits (%s); see the routing decisions"
                                            : "no need category known (%s); unmapped codes are"
                                              " reported, never guessed", motivation);
        s_count (3);
        const char *update [3] = { id, "no_fitting_service", text };
        if (fs_pg_run (pg, "UPDATE referral_router.referrals SET reason_code = $2,"
                           " reason_text = $3 WHERE id = $1::uuid", 3, update))
            return -1;
        //  The sender is told; the referral stays a draft, sent nowhere
        fs_referral_status_changed_t changed = { 0 };
        const fs_type_t *type = &fs_referral_status_changed_type;
        fs_proto_set_str (type, &changed, "referral_id", id);
        fs_proto_set_str (type, &changed, "event_ref", req->event_ref);
        fs_proto_set_str (type, &changed, "status", "draft");
        fs_proto_set_str (type, &changed, "actor", "requester");
        fs_proto_set_str (type, &changed, "reason_code", "no_fitting_service");
        fs_proto_set_str (type, &changed, "reason", text);
        rc = s_emit (server, pg, type, &changed, cause)
          || router_feed_tell (pg, id, cause->hdr.correlation_id, ROUTER_FEED_SENDER, type,
                               &changed);
        fs_proto_clear (type, &changed);
        return rc;
    }
    if (level == ROUTER_LEVEL_JOINT) {
        char days [16];
        snprintf (days, sizeof days, "%d", router_conference_days (req->urgency));
        zchunk_t *list = zchunk_new (NULL, 64);
        s_array (list, factor_names, nfactors);
        const char *plan [5] = { id, req->centre ? req->centre : req->source, chosen->code,
                                 (const char *) zchunk_data (list), days };
        rc = fs_pg_run (pg, "INSERT INTO referral_router.shared_plans (referral_id,"
                            " requester_role, requester_service, target_role, target_service,"
                            " factors, conference_on) VALUES ($1::uuid, 'referent_professional',"
                            " $2, 'referent_professional', $3, $4::text[],"
                            " (now () AT TIME ZONE 'UTC')::date + $5::integer)", 5, plan);
        zchunk_destroy (&list);
        if (rc)
            return -1;
    }
    if (level == ROUTER_LEVEL_ORIENTATION) {
        //  Checked against the criteria already; recorded completed at once: nothing is
        //  asked of the target, the person is told where to go and why
        s_count (2);
        fs_orientation_given_t given = { 0 };
        const fs_type_t *type = &fs_orientation_given_type;
        fs_proto_set_str (type, &given, "referral_id", id);
        fs_proto_set_str (type, &given, "event_ref", req->event_ref);
        fs_proto_set_str (type, &given, "person_id", req->person_id);
        fs_proto_set_str (type, &given, "target", chosen->code);
        fs_proto_set_str (type, &given, "target_name", chosen->name);
        fs_proto_set_str (type, &given, "why", chosen->criteria_text);
        rc = s_status (server, pg, id, req->event_ref, cause, "draft", "completed",
                       "orientation_given", NULL)
          || s_emit (server, pg, type, &given, cause)
          || s_dispatch (server, pg, id, 0, NULL, cause);
        fs_proto_clear (type, &given);
        return rc;
    }
    bool released = false;
    rc = s_consent_and_send (server, pg, id, req->event_ref, req->person_id, chosen->code,
                             (int) chosen->kind, level, "draft", cause, &released);
    s_count (released ? 0 : 1);
    return rc;
}

//  The directory as loaded last: read again when a load-directory committed since (every
//  load stamps all its services' loaded_at). Only the inbox's thread routes. The stamp is
//  looked at once per inbox batch (one transaction), not once per referral: a load that
//  commits during a batch is seen by the next one
static router_directory_t *s_dir;
static char s_dir_stamp [64];
static uint64_t s_dir_batch;                    //  the batch that looked last, 0 none

static router_directory_t *
s_directory (fs_pg_t *pg, uint64_t batch)
{
    if (s_dir && batch && batch == s_dir_batch)
        return s_dir;
    PGresult *result = fs_pg_exec (pg, "SELECT coalesce (max (loaded_at)::text, '')"
                                       " FROM referral_router.services", 0, NULL);
    if (!result)
        return NULL;
    char stamp [64];
    snprintf (stamp, sizeof stamp, "%s", PQgetvalue (result, 0, 0));
    PQclear (result);
    if (s_dir && streq (stamp, s_dir_stamp)) {
        s_dir_batch = batch;
        return s_dir;
    }
    char err [ROUTER_ERR_MAX];
    router_directory_t *dir = router_directory_read (pg, err, sizeof err);
    if (!dir) {
        fs_log_write (FS_LOG_WARN, "cannot read the directory", "error", err, NULL);
        return NULL;
    }
    router_directory_destroy (&s_dir);
    s_dir = dir;
    snprintf (s_dir_stamp, sizeof s_dir_stamp, "%s", stamp);
    s_dir_batch = batch;
    return s_dir;
}

int
router_on_referral_requested (fs_inbox_ctx_t *ctx)
{
    const fs_referral_requested_t *req = (const fs_referral_requested_t *) ctx->env->payload;
    char id [FS_UUID_LEN + 1];
    fs_uuid (id);
    const char *values [9] = { id, req->event_ref, req->source, req->event_type, req->urgency,
                               ctx->env->hdr.correlation_id, req->person_id, req->case_id,
                               req->centre };
    PGresult *result = s_exec (ctx->pg, "router_referral",
        "INSERT INTO referral_router.referrals (id, event_ref, source, event_type, urgency,"
        " status, correlation_id, person_id, case_id, referent)"
        " VALUES ($1, $2, $3, $4, $5, 'draft', $6, $7::uuid, $8::uuid, $9)"
        " ON CONFLICT (event_ref) DO NOTHING", 9, values);
    if (!result)
        return FS_HANDLER_RETRY;
    bool fresh = atoi (PQcmdTuples (result)) == 1;
    PQclear (result);
    if (!fresh)
        return FS_HANDLER_OK;       //  the same request again under another id: one referral
    router_directory_t *dir = s_directory (ctx->pg, ctx->batch);
    if (!dir)
        return FS_HANDLER_RETRY;
    s_invalid = false;
    int rc = s_route (ctx, dir, req, id);
    if (rc)
        fs_log_write (FS_LOG_WARN, "cannot route", "event_ref", req->event_ref,
                      "error", fs_pg_error (ctx->pg), NULL);
    if (rc && s_invalid) {
        snprintf (ctx->reason, sizeof ctx->reason, "%s", fs_pg_error (ctx->pg));
        return FS_HANDLER_REJECT;
    }
    return rc ? FS_HANDLER_RETRY : FS_HANDLER_OK;
}

// ---- held referrals: a consent changed, an override ------------------------------------

int
router_route_recheck (fs_server_t *server, fs_pg_t *pg, const char *person,
                      const fs_envelope_t *cause)
{
    const char *values [1] = { person };
    PGresult *result = fs_pg_exec (pg, "SELECT id, event_ref, target, level, correlation_id"
        " FROM referral_router.referrals WHERE person_id = $1::uuid AND status = 'on-hold'"
        " AND reason_code LIKE 'consent\\_%' AND target IS NOT NULL ORDER BY created_at, id"
        " FOR UPDATE", 1, values);
    if (!result)
        return -1;
    int rc = 0;
    for (int row = 0; row < PQntuples (result) && rc == 0; row++) {
        int level = router_level_parse (PQgetvalue (result, row, 3));
        bool released = false;
        //  The referral's own chain, caused by the consent change
        fs_envelope_t chain = { 0 };
        chain.hdr.correlation_id = PQgetvalue (result, row, 4);
        chain.hdr.id = cause ? cause->hdr.id : NULL;
        rc = s_consent_and_send (server, pg, PQgetvalue (result, row, 0),
                                 PQgetvalue (result, row, 1), person,
                                 PQgetvalue (result, row, 2), -1,
                                 (router_level_t) (level < 0 ? 1 : level), "on-hold", &chain,
                                 &released);
        if (released)
            s_count (4);
    }
    PQclear (result);
    return rc;
}

static void
s_override_usage (void)
{
    fprintf (stderr, "usage: finestra-referral-router override-consent REFERRAL_ID"
                     " --basis vital_interest|legal_obligation|public_interest --by WHO"
                     " --reason TEXT\n");
}

int
router_override_command (fs_server_t *server, int argc, char **argv)
{
    const char *id = argc > 1 ? argv [1] : NULL, *basis = NULL, *by = NULL, *reason = NULL;
    for (int a = 2; a < argc; a += 2) {
        const char *value = a + 1 < argc ? argv [a + 1] : NULL;
        if (!value) {
            s_override_usage ();
            return 2;
        }
        if (streq (argv [a], "--basis"))
            basis = value;
        else
        if (streq (argv [a], "--by"))
            by = value;
        else
        if (streq (argv [a], "--reason"))
            reason = value;
        else {
            s_override_usage ();
            return 2;
        }
    }
    uint32_t categories = router_basis_categories (basis);
    if (!id || strlen (id) != FS_UUID_LEN || !categories || !by || !*by || !reason
    ||  !*reason || strlen (by) > 200 || strlen (reason) > 1000) {
        fprintf (stderr, "override-consent: %s\n",
                 !id || strlen (id) != FS_UUID_LEN ? "REFERRAL_ID is a UUID"
                 : !categories ? "--basis takes vital_interest, legal_obligation or"
                                 " public_interest"
                 : !by || !*by || strlen (by) > 200 ? "--by names who decides (1-200 bytes)"
                 : "--reason says why (1-1000 bytes)");
        s_override_usage ();
        return 2;
    }
    fs_pg_t *pg = fs_server_pg (server);
    if (fs_pg_begin (pg)) {
        fprintf (stderr, "override-consent: %s\n", fs_pg_error (pg));
        return 1;
    }
    const char *key [1] = { id };
    PGresult *result = fs_pg_exec (pg, "SELECT status, coalesce (reason_code, ''), level,"
                                       " event_ref, correlation_id FROM"
                                       " referral_router.referrals WHERE id = $1::uuid"
                                       " FOR UPDATE", 1, key);
    char refusal [256] = "";
    int rc = result ? 0 : -1;
    char event_ref [128] = "", correlation [FS_UUID_LEN + 1] = "";
    int level = -1;
    if (result) {
        if (PQntuples (result) == 0)
            snprintf (refusal, sizeof refusal, "no referral %s", id);
        else
        if (!streq (PQgetvalue (result, 0, 0), "on-hold")
        ||  strncmp (PQgetvalue (result, 0, 1), "consent_", 8))
            snprintf (refusal, sizeof refusal, "referral %s is %s (%s), not held for consent:"
                      " nothing to release", id, PQgetvalue (result, 0, 0),
                      *PQgetvalue (result, 0, 1) ? PQgetvalue (result, 0, 1) : "no reason");
        else {
            level = router_level_parse (PQgetvalue (result, 0, 2));
            snprintf (event_ref, sizeof event_ref, "%s", PQgetvalue (result, 0, 3));
            snprintf (correlation, sizeof correlation, "%s", PQgetvalue (result, 0, 4));
        }
        PQclear (result);
    }
    uint32_t send = categories & router_level_categories ((router_level_t) (level < 0 ? 1
                                                                                      : level));
    if (rc == 0 && !*refusal) {
        const char *cats [ROUTER_DATA_COUNT];
        zchunk_t *list = zchunk_new (NULL, 64);
        s_array (list, cats, s_bit_names (send, router_data_name, cats, ROUTER_DATA_COUNT));
        const char *values [5] = { id, basis, by, reason, (const char *) zchunk_data (list) };
        fs_envelope_t chain = { 0 };
        chain.hdr.correlation_id = correlation;
        char text [1001];
        snprintf (text, sizeof text, "consent override (%s) by %s: %s", basis, by, reason);
        rc = fs_pg_run (pg, "INSERT INTO referral_router.consent_overrides (referral_id,"
                            " basis, by_who, reason, categories)"
                            " VALUES ($1::uuid, $2, $3, $4, $5::text[])", 5, values)
          || s_status (server, pg, id, event_ref, &chain, "on-hold", "requested", NULL, text)
          || s_dispatch (server, pg, id, send, basis, &chain);
        zchunk_destroy (&list);
    }
    if (rc == 0 && !*refusal && fs_pg_commit (pg))
        rc = -1;
    if (rc || *refusal) {
        fprintf (stderr, "override-consent: %s\n", *refusal ? refusal : fs_pg_error (pg));
        fs_pg_rollback (pg);
        return 1;
    }
    printf ("%s: released on %s by %s\n", id, basis, by);
    return 0;
}
