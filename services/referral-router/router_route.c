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

static fs_counter_t *s_unmapped_counter;        //  codes that mapped to no need
static fs_counter_t *s_routed [5];              //  referrals by first outcome
static const char *s_outcomes [5] = {
    "requested", "on_hold", "orientation", "no_fitting_service", "released"
};

static int s_route_batch (fs_inbox_ctx_t **ctxs, size_t n);

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
    //  Requests waiting together on the bus are routed together (s_route_batch)
    return fs_inbox_batch_set ("intake.referral_requested", s_route_batch);
}

static void
s_count (int outcome)
{
    if (s_routed [outcome])
        fs_counter_add (s_routed [outcome], 1);
}

// ---- small helpers ---------------------------------------------------------------------

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

//  ,"key":["a","b"]
static void
s_json_list (zchunk_t *chunk, const char *key, const char *const *list, size_t n)
{
    zchunk_extend (chunk, ",", 1);
    router_json_str (chunk, key);
    zchunk_extend (chunk, ":[", 2);
    for (size_t i = 0; i < n; i++) {
        if (i)
            zchunk_extend (chunk, ",", 1);
        router_json_str (chunk, list [i]);
    }
    zchunk_extend (chunk, "]", 1);
}

//  Sets an owned string list from an array (n 0: left absent)
static void
s_list_copy (fs_strlist_t *list, uint64_t *present, int index, const char *const *items,
             size_t n)
{
    if (!n)
        return;
    list->items = (char **) zmalloc (n * sizeof (char *));
    for (size_t i = 0; i < n; i++)
        list->items [i] = strdup (items [i]);
    list->n = n;
    *present |= 1ull << index;
}

// ---- status: the row, its history, the sender told ------------------------------------

//  referral.status_changed as the router tells it (acting for the requester); from NULL:
//  no previous status
static void
s_changed_fill (fs_referral_status_changed_t *changed, const char *id, const char *event_ref,
                const char *from, const char *to, const char *reason_code,
                const char *reason_text)
{
    const fs_type_t *type = &fs_referral_status_changed_type;
    fs_proto_set_str (type, changed, "referral_id", id);
    fs_proto_set_str (type, changed, "event_ref", event_ref);
    fs_proto_set_str (type, changed, "status", to);
    fs_proto_set_str (type, changed, "previous", from);
    fs_proto_set_str (type, changed, "actor", "requester");
    fs_proto_set_str (type, changed, "reason_code", reason_code);
    fs_proto_set_str (type, changed, "reason", reason_text);
}

//  Moves a stored referral id from -> to as the router (acting for the requester): its row,
//  one history row and referral.status_changed to the sender. 0 or -1
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
    s_changed_fill (&changed, id, event_ref, from, to, reason_code,
                    reason_text ? text : NULL);
    //  The sender told: inside the suite on the bus, an external system on its feed
    int rc = s_emit (server, pg, type, &changed, cause)
          || router_feed_tell (pg, id, cause->hdr.correlation_id, ROUTER_FEED_SENDER, type,
                               &changed);
    fs_proto_clear (type, &changed);
    return rc;
}

// ---- consent ---------------------------------------------------------------------------

#define S_CONSENTS_MAX 8                //  consent ids recorded per referral

//  The consents of the persons in array (a uuid[] literal), rows locked FOR SHARE in one
//  order (a withdrawal waits for this transaction, one committed before is seen): person,
//  consent, status, recipients, expired, categories. NULL: database
static PGresult *
s_consents_read (fs_pg_t *pg, const char *persons)
{
    const char *values [2] = { persons, ROUTER_PURPOSE };
    return s_exec (pg, "router_consents",
        "SELECT person_id::text, consent_id::text, status,"
        " array_to_string (recipients, E'\\x1f'),"
        " expires_at IS NOT NULL AND expires_at <= now (),"
        " array_to_string (data_categories, E'\\x1f')"
        " FROM referral_router.consents WHERE person_id = ANY ($1::uuid[]) AND purpose = $2"
        " ORDER BY person_id, consent_id FOR SHARE", 2, values);
}

bool
router_list_has (const char *text, const char *item)
{
    size_t len = strlen (item);
    for (const char *p = text; p && *p; ) {
        const char *end = strchr (p, S_SEP [0]);
        size_t n = end ? (size_t) (end - p) : strlen (p);
        if (n == len && memcmp (p, item, n) == 0)
            return true;
        p = end ? end + 1 : NULL;
    }
    return false;
}

//  The categories person's consents (rows of s_consents_read) allow for recipient; the ids
//  of those that allow some into ids (up to S_CONSENTS_MAX, *nids). When none is valid,
//  *reason is consent_missing, consent_withdrawn or consent_expired
static uint32_t
s_consent_eval (PGresult *rows, const char *person, const char *recipient, const char **reason,
                char (*ids) [FS_UUID_LEN + 1], size_t *nids)
{
    uint32_t allowed = 0;
    bool expired = false, withdrawn = false;
    *nids = 0;
    for (int row = 0; person && row < PQntuples (rows); row++) {
        if (!streq (PQgetvalue (rows, row, 0), person)
        ||  !router_list_has (PQgetvalue (rows, row, 3), recipient))
            continue;               //  another person's, or not for this recipient
        if (streq (PQgetvalue (rows, row, 2), "withdrawn"))
            withdrawn = true;
        else
        if (*PQgetvalue (rows, row, 4) == 't')
            expired = true;
        else {
            uint32_t cats = 0;
            char *list = strdup (PQgetvalue (rows, row, 5));
            for (char *save = NULL, *c = strtok_r (list, S_SEP, &save); c;
                 c = strtok_r (NULL, S_SEP, &save))
                cats |= router_data_parse (c);
            free (list);
            if (cats && *nids < S_CONSENTS_MAX)
                snprintf (ids [(*nids)++], FS_UUID_LEN + 1, "%s", PQgetvalue (rows, row, 1));
            allowed |= cats;
        }
    }
    *reason = allowed ? NULL : withdrawn ? "consent_withdrawn" : expired ? "consent_expired"
            : "consent_missing";
    return allowed;
}

//  What a referral's consent lets go: the categories to send, or 0 with the reason code and
//  text for holding it (identity or nothing: the target cannot act without knowing who;
//  the other categories degrade to what the consent allows)
static uint32_t
s_consent_send (uint32_t allowed, const char *why, router_level_t level, const char *recipient,
                const char **reason_code, char *text, size_t size)
{
    uint32_t send = router_level_categories (level) & allowed;
    if (send & ROUTER_DATA_IDENTITY)
        return send;
    snprintf (text, size, "no valid consent for %s to %s covering identity (%s)",
              ROUTER_PURPOSE, recipient, why ? why : "consent_missing");
    *reason_code = allowed ? "consent_missing" : why;
    return 0;
}

// ---- the package: built in memory, kept, delivered ------------------------------------

//  What a package is made of: the referral as routed, the person as intake sent it
typedef struct {
    const char *id, *event_ref, *level, *target, *urgency, *referent, *motivation;
    const char *const *needs;
    size_t nneeds;
    const char *const *factors;         /* joint treatment's complexity factors */
    size_t nfactors;
    const char *conference_on, *requester_referent, *target_referent;
    const fs_referral_subject_t *subject;   /* NULL: intake sent none */
    const char *const *codes;           /* health codes */
    size_t ncodes;
    const char *note;
} s_package_src_t;

//  Fills package from src with only the categories given (0 for orientation) and basis;
//  returns the categories it carries
static uint32_t
s_package_fill (fs_referral_package_t *package, const s_package_src_t *src,
                uint32_t categories, const char *basis)
{
    const fs_type_t *t = &fs_referral_package_type;
    fs_proto_set_str (t, package, "referral_id", src->id);
    fs_proto_set_str (t, package, "event_ref", src->event_ref);
    fs_proto_set_str (t, package, "level", src->level);
    fs_proto_set_str (t, package, "target", src->target);
    fs_proto_set_str (t, package, "urgency", src->urgency);
    fs_proto_set_str (t, package, "referent", src->referent);
    s_list_copy (&package->needs, &package->present, fs_referral_package_F_needs, src->needs,
                 src->nneeds);
    s_list_copy (&package->complexity_factors, &package->present,
                 fs_referral_package_F_complexity_factors, src->factors, src->nfactors);
    fs_proto_set_str (t, package, "reason", src->motivation);
    fs_proto_set_str (t, package, "conference_on", src->conference_on);
    fs_proto_set_str (t, package, "requester_referent", src->requester_referent);
    fs_proto_set_str (t, package, "target_referent", src->target_referent);
    uint32_t sent = 0;
    if (!categories)
        return 0;
    //  The personal data: only the categories allowed, only what intake sent
    fs_proto_set_str (t, package, "legal_basis", basis);
    if (src->subject) {
        sent |= router_scope_fill (src->subject, categories, &package->subject);
        if (package->subject.present)
            package->present |= 1ull << fs_referral_package_F_subject;
    }
    if (categories & ROUTER_DATA_SOCIAL_HEALTH) {
        s_list_copy (&package->icd10_codes, &package->present,
                     fs_referral_package_F_icd10_codes, src->codes, src->ncodes);
        fs_proto_set_str (t, package, "note", src->note);
        sent |= ROUTER_DATA_SOCIAL_HEALTH;
    }
    const char *cats [ROUTER_DATA_COUNT];
    size_t ncats = s_bit_names (sent, router_data_name, cats, ROUTER_DATA_COUNT);
    s_list_copy (&package->data_categories, &package->present,
                 fs_referral_package_F_data_categories, cats, ncats);
    return sent;
}

//  Re-sends stored referral id's package (held, now released) with the categories given:
//  built from what is stored, kept, delivered (feed -> router_feed_append, internal -> the
//  bus). Records the categories, basis and consents (ids, an array literal) sent. 0 or -1
static int
s_dispatch (fs_server_t *server, fs_pg_t *pg, const char *id, uint32_t categories,
            const char *basis, const char *consents, const fs_envelope_t *cause)
{
    const char *key [1] = { id };
    PGresult *result = s_exec (pg, "router_dispatch",
        "SELECT r.event_ref, r.correlation_id, r.level, r.target, r.urgency, r.referent,"
        " array_to_string (r.needs, E'\\x1f'), array_to_string (r.complexity_factors, E'\\x1f'),"
        " r.motivation, s.subject, array_to_string (s.icd10_codes, E'\\x1f'),"
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
    //  The stored lists, split again
    fs_strlist_t lists [3] = { { 0 } };
    uint64_t ignored = 0;
    s_list_set (&lists [0], &ignored, 0, PQgetvalue (result, 0, 6));
    s_list_set (&lists [1], &ignored, 1, PQgetvalue (result, 0, 7));
    s_list_set (&lists [2], &ignored, 2, PQgetvalue (result, 0, 10));
    fs_referral_subject_t subject = { 0 };
    bool have_subject = false;
    const char *escaped = s_value (result, 0, 9);
    size_t nbytes = 0;
    unsigned char *bytes = escaped ? PQunescapeBytea ((const unsigned char *) escaped, &nbytes)
                                   : NULL;
    if (bytes && nbytes) {
        fs_proto_error_t err;
        have_subject = fs_proto_decode (&fs_referral_subject_type, (const char *) bytes,
                                        nbytes, &subject, &err) == 0;
    }
    PQfreemem (bytes);
    s_package_src_t src = {
        .id = id, .event_ref = PQgetvalue (result, 0, 0), .level = PQgetvalue (result, 0, 2),
        .target = PQgetvalue (result, 0, 3), .urgency = PQgetvalue (result, 0, 4),
        .referent = s_value (result, 0, 5), .motivation = PQgetvalue (result, 0, 8),
        .needs = (const char *const *) lists [0].items, .nneeds = lists [0].n,
        .factors = (const char *const *) lists [1].items, .nfactors = lists [1].n,
        .conference_on = s_value (result, 0, 14),
        .requester_referent = s_value (result, 0, 15),
        .target_referent = s_value (result, 0, 16),
        .subject = have_subject ? &subject : NULL,
        .codes = (const char *const *) lists [2].items, .ncodes = lists [2].n,
        .note = s_value (result, 0, 11)
    };
    const fs_type_t *t = &fs_referral_package_type;
    fs_referral_package_t package = { 0 };
    uint32_t sent = s_package_fill (&package, &src, categories, basis);
    fs_proto_clear (&fs_referral_subject_type, &subject);
    for (int k = 0; k < 3; k++) {
        for (size_t i = 0; i < lists [k].n; i++)
            free (lists [k].items [i]);
        free (lists [k].items);
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
    if (rc)
        fs_pg_set_error (pg, "cannot encode the package of %s: %s", id, err.message);
    if (rc == 0) {
        const char *cats [ROUTER_DATA_COUNT];
        zchunk_t *sent_list = zchunk_new (NULL, 64);
        fs_pg_array (sent_list, cats,
                     s_bit_names (sent, router_data_name, cats, ROUTER_DATA_COUNT));
        const char *values [8] = { id, package.target, feed ? "feed" : "internal", destination,
                                   data, (const char *) zchunk_data (sent_list),
                                   categories ? basis : NULL, consents ? consents : "{}" };
        int lengths [8] = { 0, 0, 0, 0, (int) len, 0, 0, 0 };
        int formats [8] = { 0, 0, 0, 0, 1, 0, 0, 0 };
        PGresult *stored = fs_pg_execp (pg, "router_package",
            "WITH kept AS (INSERT INTO referral_router.referral_packages (referral_id, target,"
            " delivery, destination, payload) VALUES ($1::uuid, $2, $3, $4, $5)"
            " ON CONFLICT (referral_id) DO UPDATE SET payload = EXCLUDED.payload,"
            "  sent_at = now () RETURNING 1)"
            " UPDATE referral_router.referrals SET data_categories = $6::text[],"
            " legal_basis = $7, consent_ids = $8::uuid[] WHERE id = $1::uuid",
            8, values, lengths, formats, 0);
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

//  Checks the consent of a held referral and sends what it allows: `requested`, or stays
//  `on-hold` with the consent reason brought up to date. kind: the target's, -1 to read
//  it. *released true when sent. 0 or -1
static int
s_consent_and_send (fs_server_t *server, fs_pg_t *pg, const char *id, const char *event_ref,
                    const char *person, const char *target, int kind, router_level_t level,
                    const fs_envelope_t *cause, bool *released)
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
    char persons [FS_UUID_LEN + 3];
    snprintf (persons, sizeof persons, "{%s}", person ? person : "");
    PGresult *rows = s_consents_read (pg, persons);
    if (!rows)
        return -1;
    const char *why = NULL;
    char ids [S_CONSENTS_MAX][FS_UUID_LEN + 1];
    size_t nids = 0;
    uint32_t allowed = s_consent_eval (rows, person, recipient, &why, ids, &nids);
    PQclear (rows);
    const char *reason = why;
    char text [256];
    uint32_t send = s_consent_send (allowed, why, level, recipient, &reason, text,
                                    sizeof text);
    if (!send) {
        const char *update [3] = { id, reason, text };
        return fs_pg_run (pg, "UPDATE referral_router.referrals SET reason_code = $2,"
                              " reason_text = $3 WHERE id = $1::uuid", 3, update);
    }
    *released = true;
    const char *list [S_CONSENTS_MAX];
    for (size_t i = 0; i < nids; i++)
        list [i] = ids [i];
    zchunk_t *consents = zchunk_new (NULL, 128);
    fs_pg_array (consents, list, nids);
    int rc = s_status (server, pg, id, event_ref, cause, "on-hold", "requested", NULL, NULL)
          || s_dispatch (server, pg, id, send, "consent", (const char *) zchunk_data (consents),
                         cause);
    zchunk_destroy (&consents);
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


// ---- routing a request: COMPUTE, in memory ---------------------------------------------

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

//  One candidate service evaluated, and why it was or was not chosen
typedef struct {
    const char *code, *outcome, *criterion;
    char reason [ROUTER_ERR_MAX + 64];
} s_decision_t;

//  A referral request of a batch: what COMPUTE decides, what WRITE writes
typedef struct {
    fs_inbox_ctx_t *ctx;
    const fs_referral_requested_t *req;
    char id [FS_UUID_LEN + 1];
    bool live;                      /* to be written: fresh, not rejected, not lost */
    const char *needs [ROUTER_LIST_MAX];
    size_t nneeds;
    const char *unmapped [16];      /* health codes mapped to no need, and why */
    const char *unmapped_why [16];
    size_t nunmapped;
    s_decision_t *decisions;        /* candidates, ranked */
    size_t ndecisions;
    const router_service_t *chosen; /* NULL: nothing fits */
    int minors;                     /* -1 unknown */
    const char *asked;              /* level requested */
    router_level_t level;
    const char *level_reason;
    const char *factors [ROUTER_FACTOR_COUNT];
    size_t nfactors;
    char motivation [1024];
    int days;                       /* joint treatment: to the case conference */
    char conference_on [16];
    char requester_referent [ROUTER_CODE_MAX + 64], target_referent [ROUTER_CODE_MAX + 64];
    char *subject;                  /* the snapshot kept, encoded; NULL none */
    size_t subject_len;
    const char *status;             /* where it ends: draft, completed, requested, on-hold */
    const char *reason_code;
    char reason_text [1001];        /* "" none */
    uint32_t sent;                  /* categories sent */
    const char *basis;
    char consents [S_CONSENTS_MAX][FS_UUID_LEN + 1];
    size_t nconsents;
    bool dispatched;                /* a package goes to the target */
    fs_referral_package_t package;
    char *payload;                  /* the package, encoded */
    size_t payload_len;
    fs_referral_status_changed_t changed;
    bool oriented;                  /* orientation_given told */
    fs_orientation_given_t given;
    int outcome;                    /* s_outcomes index */
} s_plan_t;

//  Ranks the candidates for the facts and records each with why; plan->chosen the first
//  that fits, NULL when none
static void
s_candidates (s_plan_t *plan, router_directory_t *dir, const router_facts_t *facts)
{
    plan->chosen = NULL;
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
    plan->decisions = (s_decision_t *) zmalloc ((n ? n : 1) * sizeof (s_decision_t));
    plan->ndecisions = n;
    for (size_t i = 0; i < n; i++) {
        s_cand_t *c = &cands [i];
        s_decision_t *d = &plan->decisions [i];
        if (c->cls == 0 && i == 0) {
            d->outcome = "chosen";
            plan->chosen = c->service;
            snprintf (d->reason, sizeof d->reason, "fits every criterion%s%s",
                      c->specific ? "; takes the need by name" : "; takes every need",
                      c->fit.waiting_list ? " (waiting list)" : "");
        }
        else
        if (c->cls == 0) {
            d->outcome = "fits_not_chosen";
            snprintf (d->reason, sizeof d->reason, "fits%s, ranked after %s (specific services"
                      " first, then more conditions, capacity before waiting list, needs"
                      " matched)", c->fit.waiting_list ? " (waiting list)" : "",
                      cands [0].service->code);
        }
        else {
            d->outcome = c->cls == 1 ? "unknown"
                       : c->fit.first == ROUTER_CRIT_CAPACITY ? "no_capacity" : "no_fit";
            snprintf (d->reason, sizeof d->reason, "%s", c->fit.reason);
        }
        d->code = c->service->code;
        d->criterion = c->fit.first ? router_criterion_name (c->fit.first) : NULL;
    }
    free (cands);
}

//  Adds need to needs (distinct, at most 16: a package carries at most 16)
static void
s_add_need (const char **needs, size_t *n, const char *need)
{
    for (size_t i = 0; i < *n; i++)
        if (streq (needs [i], need))
            return;
    if (*n < 16)
        needs [(*n)++] = need;
}

//  today + days, as YYYY-MM-DD (UTC)
static void
s_date_after (const char *today, int days, char *out, size_t size)
{
    struct tm tm = { 0 };
    if (sscanf (today, "%d-%d-%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday) != 3) {
        snprintf (out, size, "%s", today);
        return;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t at = timegm (&tm) + (time_t) days * 86400;
    gmtime_r (&at, &tm);
    strftime (out, size, "%Y-%m-%d", &tm);
}

//  Everything about a fresh request that needs no database: needs, candidates and decisions,
//  level, motivation, the plan, the snapshot to keep; where it ends when that does not
//  depend on consent. FS_HANDLER_OK, or FS_HANDLER_REJECT (ctx->reason says why)
static int
s_compute (s_plan_t *plan, router_directory_t *dir, const char *today)
{
    const fs_referral_requested_t *req = plan->req;
    //  Needs: intake's, and health's codes through the mapping; unmapped codes reported
    if (FS_PRESENT (req, fs_referral_requested_F_needs))
        for (size_t i = 0; i < req->needs.n; i++)
            s_add_need (plan->needs, &plan->nneeds, req->needs.items [i]);
    if (FS_PRESENT (req, fs_referral_requested_F_icd10_codes) && req->icd10_codes.n) {
        size_t ncodes = req->icd10_codes.n < 16 ? req->icd10_codes.n : 16;
        const char *zneeds [ROUTER_LIST_MAX];
        router_zcode_result_t results [16];
        size_t nz = router_directory_zcode_needs (dir, (const char *const *)
                                                  req->icd10_codes.items, ncodes, zneeds,
                                                  ROUTER_LIST_MAX, results);
        for (size_t i = 0; i < nz; i++)
            s_add_need (plan->needs, &plan->nneeds, zneeds [i]);
        for (size_t i = 0; i < ncodes; i++) {
            if (results [i] == ROUTER_ZCODE_MAPPED)
                continue;
            plan->unmapped [plan->nunmapped] = req->icd10_codes.items [i];
            plan->unmapped_why [plan->nunmapped++] = results [i] == ROUTER_ZCODE_UNMAPPED
                ? "unmapped" : results [i] == ROUTER_ZCODE_OUT_OF_RANGE ? "out_of_range"
                : "invalid";
        }
    }
    //  The person's facts
    const fs_referral_subject_t *subject = FS_PRESENT (req, fs_referral_requested_F_subject)
                                         ? &req->subject : NULL;
    router_facts_t facts = { .age = -1, .lives = ROUTER_LIVES_UNKNOWN };
    if (subject) {
        char tomorrow [16];             //  intake's slack for the city's time zone
        s_date_after (today, 1, tomorrow, sizeof tomorrow);
        if (subject->birth_date && strcmp (subject->birth_date, tomorrow) > 0) {
            //  No criterion on age can be judged on it: intake must send it again, right
            snprintf (plan->ctx->reason, sizeof plan->ctx->reason, "subject.birth_date %s is"
                      " after today (%s): the request cannot be routed", subject->birth_date,
                      today);
            return FS_HANDLER_REJECT;
        }
        facts.age = router_age_on (subject->birth_date, today);
        const char *residency = subject->residency ? subject->residency : "";
        facts.lives = streq (residency, "registered_in_city") ? ROUTER_LIVES_REGISTERED
                    : streq (residency, "lives_in_city") ? ROUTER_LIVES_IN_CITY
                    : streq (residency, "outside_city") ? ROUTER_LIVES_OUTSIDE
                    : ROUTER_LIVES_UNKNOWN;
        facts.neighbourhood = subject->address.neighbourhood;
        facts.district = subject->address.district;
        facts.sex = subject->sex;
        if (!facts.district && facts.neighbourhood)
            facts.district = router_directory_district_of (dir, facts.neighbourhood);
        //  The person's snapshot, kept here: the router decides what of it leaves
        fs_proto_error_t err;
        if (fs_proto_encode (&fs_referral_subject_type, subject, &plan->subject,
                             &plan->subject_len, &err)) {
            snprintf (plan->ctx->reason, sizeof plan->ctx->reason, "subject: %.200s",
                      err.message);
            return FS_HANDLER_REJECT;
        }
    }
    facts.needs = plan->needs;
    facts.nneeds = plan->nneeds;
    if (streq (req->event_type, "housing.eviction_scheduled"))
        facts.holds |= ROUTER_COND_EVICTION_IN_PROCESS;
    plan->minors = FS_PRESENT (req, fs_referral_requested_F_minors) ? (int) req->minors : -1;
    if (plan->minors > 0)
        facts.holds |= ROUTER_COND_MINORS_IN_HOUSEHOLD;
    else
    if (plan->minors == 0)
        facts.lacks |= ROUTER_COND_MINORS_IN_HOUSEHOLD;
    s_candidates (plan, dir, &facts);

    //  The level: health's suggestion; eviction and emergency default to complementation
    //  (the assigned centre stays the referent and asks the target for something specific)
    plan->asked = req->suggested_level ? req->suggested_level : "complementation";
    plan->level = (router_level_t) router_level_parse (plan->asked);
    uint32_t factors = router_complexity (plan->needs, plan->nneeds, plan->minors, facts.holds);
    if (plan->level == ROUTER_LEVEL_JOINT && !factors) {
        plan->level = ROUTER_LEVEL_COMPLEMENTATION;
        plan->level_reason = "joint_treatment_without_factor: no documented complexity"
                             " factor; sent as complementation";
    }
    if (plan->level == ROUTER_LEVEL_JOINT)
        plan->nfactors = s_bit_names (factors, router_factor_name, plan->factors,
                                      ROUTER_FACTOR_COUNT);
    //  The motivated request: what is asked and why (no personal data)
    char *motivation = plan->motivation;
    size_t room = sizeof plan->motivation;
    int used = snprintf (motivation, room, "%s from %s (%s, urgency %s): needs ",
                         router_level_name (plan->level), req->source, req->event_type,
                         req->urgency);
    for (size_t i = 0; i < plan->nneeds && used < (int) room; i++)
        used += snprintf (motivation + used, room - used, "%s%s", i ? ", " : "",
                          plan->needs [i]);
    if (!plan->nneeds && used < (int) room)
        snprintf (motivation + used, room - used, "none known");

    const router_service_t *chosen = plan->chosen;
    if (!chosen) {
        //  The sender is told; the referral stays a draft, sent nowhere
        plan->status = "draft";
        plan->reason_code = "no_fitting_service";
        snprintf (plan->reason_text, sizeof plan->reason_text, plan->nneeds
                  ? "no service fits (%s); see the routing decisions"
                  : "no need category known (%s); unmapped codes are reported, never guessed",
                  plan->motivation);
        plan->outcome = 3;
        return FS_HANDLER_OK;
    }
    if (plan->level == ROUTER_LEVEL_JOINT) {
        plan->days = router_conference_days (req->urgency);
        s_date_after (today, plan->days, plan->conference_on, sizeof plan->conference_on);
        snprintf (plan->requester_referent, sizeof plan->requester_referent,
                  "referent_professional@%s", req->centre ? req->centre : req->source);
        snprintf (plan->target_referent, sizeof plan->target_referent,
                  "referent_professional@%s", chosen->code);
    }
    if (plan->level == ROUTER_LEVEL_ORIENTATION) {
        //  Checked against the criteria already; recorded completed at once: nothing is
        //  asked of the target, the person is told where to go and why
        plan->status = "completed";
        plan->reason_code = "orientation_given";
        plan->dispatched = true;
        plan->oriented = true;
        plan->outcome = 2;
    }
    return FS_HANDLER_OK;       //  otherwise its consent decides (s_decide)
}

//  A fresh referral to a target past orientation: requested with what its consent allows,
//  or on-hold with the consent's reason
static void
s_decide (s_plan_t *plan, PGresult *consents)
{
    const char *recipient = router_recipient_of (plan->chosen->kind);
    const char *why = NULL;
    uint32_t allowed = s_consent_eval (consents, plan->req->person_id, recipient, &why,
                                       plan->consents, &plan->nconsents);
    const char *reason = why;
    plan->sent = s_consent_send (allowed, why, plan->level, recipient, &reason,
                                 plan->reason_text, sizeof plan->reason_text);
    if (plan->sent) {
        plan->status = "requested";
        plan->basis = "consent";
        plan->dispatched = true;
        plan->outcome = 0;
    }
    else {
        plan->status = "on-hold";
        plan->reason_code = reason;
        plan->nconsents = 0;
        plan->outcome = 1;
    }
}

//  The messages of a decided plan, encoded where they are kept: the package (what it
//  carries: plan->sent), the status change, the orientation. FS_HANDLER_OK or _REJECT
static int
s_messages (s_plan_t *plan)
{
    const fs_referral_requested_t *req = plan->req;
    const router_service_t *chosen = plan->chosen;
    s_changed_fill (&plan->changed, plan->id, req->event_ref,
                    streq (plan->status, "draft") ? NULL : "draft", plan->status,
                    plan->reason_code, plan->reason_text [0] ? plan->reason_text : NULL);
    if (plan->oriented) {
        const fs_type_t *type = &fs_orientation_given_type;
        fs_proto_set_str (type, &plan->given, "referral_id", plan->id);
        fs_proto_set_str (type, &plan->given, "event_ref", req->event_ref);
        fs_proto_set_str (type, &plan->given, "person_id", req->person_id);
        fs_proto_set_str (type, &plan->given, "target", chosen->code);
        fs_proto_set_str (type, &plan->given, "target_name", chosen->name);
        fs_proto_set_str (type, &plan->given, "why", chosen->criteria_text);
    }
    if (!plan->dispatched)
        return FS_HANDLER_OK;
    bool codes = FS_PRESENT (req, fs_referral_requested_F_icd10_codes);
    s_package_src_t src = {
        .id = plan->id, .event_ref = req->event_ref, .level = router_level_name (plan->level),
        .target = chosen->code, .urgency = req->urgency, .referent = req->centre,
        .motivation = plan->motivation, .needs = plan->needs, .nneeds = plan->nneeds,
        .factors = plan->factors, .nfactors = plan->nfactors,
        .conference_on = plan->days ? plan->conference_on : NULL,
        .requester_referent = plan->days ? plan->requester_referent : NULL,
        .target_referent = plan->days ? plan->target_referent : NULL,
        .subject = FS_PRESENT (req, fs_referral_requested_F_subject) ? &req->subject : NULL,
        .codes = codes ? (const char *const *) req->icd10_codes.items : NULL,
        .ncodes = codes ? req->icd10_codes.n : 0, .note = req->note
    };
    plan->sent = s_package_fill (&plan->package, &src, plan->sent, plan->basis);
    fs_proto_error_t err;
    if (fs_proto_encode (&fs_referral_package_type, &plan->package, &plan->payload,
                         &plan->payload_len, &err)) {
        snprintf (plan->ctx->reason, sizeof plan->ctx->reason,
                  "cannot encode the package: %.200s", err.message);
        return FS_HANDLER_REJECT;
    }
    return FS_HANDLER_OK;
}

static void
s_plan_clear (s_plan_t *plan)
{
    free (plan->decisions);
    free (plan->subject);
    free (plan->payload);
    fs_proto_clear (&fs_referral_package_type, &plan->package);
    fs_proto_clear (&fs_referral_status_changed_type, &plan->changed);
    fs_proto_clear (&fs_orientation_given_type, &plan->given);
}

// ---- routing a batch: WRITE, a few statements for all -----------------------------------

//  One plan as a JSON object for the writer
static void
s_plan_json (zchunk_t *json, const s_plan_t *plan)
{
    const fs_referral_requested_t *req = plan->req;
    const fs_envelope_t *env = plan->ctx->env;
    zchunk_extend (json, "{", 1);
    router_json_key (json, "id", plan->id, true);
    router_json_key (json, "event_ref", req->event_ref, false);
    router_json_key (json, "source", req->source, false);
    router_json_key (json, "event_type", req->event_type, false);
    router_json_key (json, "urgency", req->urgency, false);
    router_json_key (json, "status", plan->status, false);
    router_json_key (json, "correlation_id", env->hdr.correlation_id, false);
    router_json_key (json, "person_id", req->person_id, false);
    router_json_key (json, "case_id", req->case_id, false);
    router_json_key (json, "referent", req->centre, false);
    router_json_key (json, "consent_ref", req->consent_ref, false);
    router_json_key (json, "level_requested", plan->asked, false);
    router_json_key (json, "level", router_level_name (plan->level), false);
    router_json_key (json, "level_reason", plan->level_reason, false);
    router_json_key (json, "target", plan->chosen ? plan->chosen->code : NULL, false);
    s_json_list (json, "needs", plan->needs, plan->nneeds);
    s_json_list (json, "unmapped_codes", plan->unmapped, plan->nunmapped);
    s_json_list (json, "complexity_factors", plan->factors, plan->nfactors);
    router_json_key (json, "motivation", plan->motivation, false);
    router_json_key (json, "reason_code", plan->reason_code, false);
    router_json_key (json, "reason_text", plan->reason_text [0] ? plan->reason_text : NULL, false);
    const char *cats [ROUTER_DATA_COUNT];
    s_json_list (json, "data_categories", cats,
                 s_bit_names (plan->sent, router_data_name, cats, ROUTER_DATA_COUNT));
    router_json_key (json, "legal_basis", plan->sent ? plan->basis : NULL, false);
    const char *ids [S_CONSENTS_MAX];
    for (size_t i = 0; i < plan->nconsents; i++)
        ids [i] = plan->consents [i];
    s_json_list (json, "consent_ids", ids, plan->nconsents);
    //  Every candidate and why, the codes mapped to nothing
    zchunk_extend (json, ",\"decisions\":[", 14);
    for (size_t i = 0; i < plan->ndecisions; i++) {
        const s_decision_t *d = &plan->decisions [i];
        char rank [24];
        snprintf (rank, sizeof rank, "%zu", i + 1);
        zchunk_extend (json, i ? ",{" : "{", i ? 2 : 1);
        router_json_key (json, "rank", rank, true);
        router_json_key (json, "code", d->code, false);
        router_json_key (json, "outcome", d->outcome, false);
        router_json_key (json, "criterion", d->criterion, false);
        router_json_key (json, "reason", d->reason, false);
        zchunk_extend (json, "}", 1);
    }
    zchunk_extend (json, "],\"unmapped\":[", 14);
    for (size_t i = 0; i < plan->nunmapped; i++) {
        zchunk_extend (json, i ? ",{" : "{", i ? 2 : 1);
        router_json_key (json, "code", plan->unmapped [i], true);
        router_json_key (json, "result", plan->unmapped_why [i], false);
        zchunk_extend (json, "}", 1);
    }
    zchunk_extend (json, "]", 1);
    //  The snapshot and health data kept
    zchunk_extend (json, ",\"subject\":", 11);
    if (plan->subject)
        router_json_hex (json, plan->subject, plan->subject_len);
    else
        zchunk_extend (json, "null", 4);
    bool codes = FS_PRESENT (req, fs_referral_requested_F_icd10_codes);
    s_json_list (json, "icd10_codes", codes ? (const char *const *) req->icd10_codes.items
                                            : NULL, codes ? req->icd10_codes.n : 0);
    router_json_key (json, "note", req->note, false);
    char number [16];
    snprintf (number, sizeof number, "%d", plan->minors);
    router_json_key (json, "minors", plan->minors >= 0 ? number : NULL, false);
    //  Joint treatment: the shared plan
    if (plan->days) {
        snprintf (number, sizeof number, "%d", plan->days);
        zchunk_extend (json, ",\"plan\":{", 9);
        router_json_key (json, "requester_service", req->centre ? req->centre : req->source, true);
        router_json_key (json, "target_service", plan->chosen->code, false);
        router_json_key (json, "days", number, false);
        s_json_list (json, "factors", plan->factors, plan->nfactors);
        zchunk_extend (json, "}", 1);
    }
    //  The package as delivered
    if (plan->dispatched) {
        bool feed = plan->chosen->delivery == ROUTER_DELIVERY_FEED;
        zchunk_extend (json, ",\"package\":{", 12);
        router_json_key (json, "target", plan->chosen->code, true);
        router_json_key (json, "delivery", feed ? "feed" : "internal", false);
        router_json_key (json, "destination", plan->chosen->delivery_target, false);
        zchunk_extend (json, ",\"payload\":", 11);
        router_json_hex (json, plan->payload, plan->payload_len);
        zchunk_extend (json, "}", 1);
    }
    zchunk_extend (json, "}", 1);
}

//  Writes every live plan in one statement: referral (its final state; a concurrent
//  replica's insert of the same event_ref wins and nothing else is written for it),
//  decisions, unmapped codes, snapshot, shared plan, history, package. Plans another
//  transaction inserted first are no longer live. 0 or -1
static int
s_write (fs_pg_t *pg, s_plan_t *plans, size_t n)
{
    zchunk_t *json = zchunk_new ("[", 1);
    size_t nlive = 0;
    for (size_t i = 0; i < n; i++)
        if (plans [i].live) {
            if (nlive++)
                zchunk_extend (json, ",", 1);
            s_plan_json (json, &plans [i]);
        }
    zchunk_extend (json, "]", 2);
    const char *values [1] = { (const char *) zchunk_data (json) };
    PGresult *result = nlive == 0 ? NULL : s_exec (pg, "router_write",
        "WITH b AS (SELECT * FROM jsonb_to_recordset ($1::jsonb) AS b (id uuid, event_ref text,"
        "  source text, event_type text, urgency text, status text, correlation_id uuid,"
        "  person_id uuid, case_id uuid, referent text, consent_ref text, level_requested text,"
        "  level text, level_reason text, target text, needs text[], unmapped_codes text[],"
        "  complexity_factors text[], motivation text, reason_code text, reason_text text,"
        "  data_categories text[], legal_basis text, consent_ids uuid[], decisions jsonb,"
        "  unmapped jsonb, subject text, icd10_codes text[], note text, minors integer,"
        "  plan jsonb, package jsonb)),"
        " r AS (INSERT INTO referral_router.referrals (id, event_ref, source, event_type,"
        "  urgency, status, correlation_id, person_id, case_id, referent, consent_ref,"
        "  level_requested, level, level_reason, target, needs, unmapped_codes,"
        "  complexity_factors, motivation, reason_code, reason_text, data_categories,"
        "  legal_basis, consent_ids)"
        "  SELECT id, event_ref, source, event_type, urgency, status, correlation_id, person_id,"
        "  case_id, referent, consent_ref, level_requested, level, level_reason, target, needs,"
        "  unmapped_codes, complexity_factors, motivation, reason_code, reason_text,"
        "  data_categories, legal_basis, consent_ids FROM b"
        "  ON CONFLICT (event_ref) DO NOTHING RETURNING id),"
        " w AS (SELECT b.* FROM b JOIN r USING (id)),"
        " d AS (INSERT INTO referral_router.routing_decisions (referral_id, rank, service_code,"
        "  outcome, criterion, reason) SELECT w.id, x.rank, x.code, x.outcome, x.criterion,"
        "  x.reason FROM w, jsonb_to_recordset (w.decisions) AS x (rank integer, code text,"
        "  outcome text, criterion text, reason text)),"
        " u AS (INSERT INTO referral_router.unmapped_codes (referral_id, code, result)"
        "  SELECT w.id, x.code, x.result FROM w, jsonb_to_recordset (w.unmapped)"
        "  AS x (code text, result text) ON CONFLICT DO NOTHING),"
        " s AS (INSERT INTO referral_router.referral_subjects (referral_id, subject,"
        "  icd10_codes, note, minors) SELECT id, decode (subject, 'hex'), icd10_codes, note,"
        "  minors FROM w),"
        " p AS (INSERT INTO referral_router.shared_plans (referral_id, requester_role,"
        "  requester_service, target_role, target_service, factors, conference_on)"
        "  SELECT id, 'referent_professional', plan->>'requester_service',"
        "  'referent_professional', plan->>'target_service',"
        "  ARRAY (SELECT jsonb_array_elements_text (plan->'factors')),"
        "  (now () AT TIME ZONE 'UTC')::date + (plan->>'days')::integer"
        "  FROM w WHERE plan IS NOT NULL),"
        " t AS (INSERT INTO referral_router.referral_transitions (referral_id, from_status,"
        "  to_status, actor, reason_code, reason_text) SELECT id, 'draft', status, 'requester',"
        "  reason_code, reason_text FROM w WHERE status <> 'draft'),"
        " k AS (INSERT INTO referral_router.referral_packages (referral_id, target, delivery,"
        "  destination, payload) SELECT id, package->>'target', package->>'delivery',"
        "  package->>'destination', decode (package->>'payload', 'hex')"
        "  FROM w WHERE package IS NOT NULL)"
        " SELECT id::text FROM r", 1, values);
    zchunk_destroy (&json);
    if (nlive && !result)
        return -1;
    for (size_t i = 0; i < n; i++) {
        bool written = false;
        for (int row = 0; result && row < PQntuples (result) && !written; row++)
            written = streq (PQgetvalue (result, row, 0), plans [i].id);
        plans [i].live = plans [i].live && written;
    }
    PQclear (result);
    return 0;
}

//  What the written plans tell: on the bus in one statement (status changes, orientations,
//  packages to the suite's services), on feeds in one locked append (the sender's feeds,
//  the target's). sender: the batch's sources' feeds (source, feed rows). 0 or -1
static int
s_tell (fs_server_t *server, fs_pg_t *pg, s_plan_t *plans, size_t n, PGresult *sender)
{
    fs_outbox_item_t *events = (fs_outbox_item_t *) zmalloc (3 * n * sizeof (fs_outbox_item_t));
    size_t nevents = 0;
    size_t nsender = sender ? (size_t) PQntuples (sender) : 0;
    router_feed_item_t *items = (router_feed_item_t *)
        zmalloc ((n * (nsender + 1) + 1) * sizeof (router_feed_item_t));
    char **encoded = (char **) zmalloc ((n + 1) * sizeof (char *));
    size_t nitems = 0;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        s_plan_t *plan = &plans [i];
        if (!plan->live)
            continue;
        const fs_envelope_t *cause = plan->ctx->env;
        events [nevents++] = (fs_outbox_item_t) { &fs_referral_status_changed_type,
                                                  &plan->changed, cause };
        if (plan->oriented)
            events [nevents++] = (fs_outbox_item_t) { &fs_orientation_given_type,
                                                      &plan->given, cause };
        bool feed = plan->dispatched && plan->chosen->delivery == ROUTER_DELIVERY_FEED;
        if (plan->dispatched && !feed)
            events [nevents++] = (fs_outbox_item_t) { &fs_referral_package_type,
                                                      &plan->package, cause };
        //  The sender told on its feed(s) when it is outside the suite
        size_t len = 0;
        for (size_t f = 0; f < nsender; f++) {
            if (!streq (PQgetvalue (sender, (int) f, 0), plan->req->source))
                continue;
            if (!encoded [i]) {
                fs_proto_error_t err;
                if (fs_proto_encode (&fs_referral_status_changed_type, &plan->changed,
                                     &encoded [i], &len, &err)) {
                    fs_pg_set_error (pg, "feed item: %s", err.message);
                    rc = -1;
                    break;
                }
            }
            items [nitems++] = (router_feed_item_t) { PQgetvalue (sender, (int) f, 1),
                "referral.status_changed", plan->id, cause->hdr.correlation_id,
                encoded [i], len };
        }
        if (feed)
            items [nitems++] = (router_feed_item_t) { plan->chosen->delivery_target,
                "referral.requested", plan->id, cause->hdr.correlation_id, plan->payload,
                plan->payload_len };
    }
    fs_proto_error_t err;
    if (rc == 0 && nevents
    &&  fs_outbox_emit_many (pg, fs_server_schema (server), fs_server_name (server),
                             fs_server_routes (server), events, nevents, &err)) {
        if (err.code != FS_PROTO_OK)
            fs_pg_set_error (pg, "cannot emit: %s", err.message);
        rc = -1;
    }
    //  Appended last: a feed's appends are serialised until this transaction commits
    if (rc == 0 && nitems)
        rc = router_feed_append_many (pg, items, nitems);
    for (size_t i = 0; i < n + 1; i++)
        free (encoded [i]);
    free (encoded);
    free (items);
    free (events);
    return rc;
}

//  Routes n fresh requests in one go (the inbox's batch, or one): COMPUTE each in memory,
//  then a few statements for all. FS_HANDLER_OK (rejected ones marked), or _RETRY
static int
s_route_batch (fs_inbox_ctx_t **ctxs, size_t n)
{
    fs_pg_t *pg = ctxs [0]->pg;
    fs_server_t *server = ctxs [0]->server;
    router_directory_t *dir = s_directory (pg, ctxs [0]->batch);
    if (!dir)
        return FS_HANDLER_RETRY;
    s_plan_t *plans = (s_plan_t *) zmalloc (n * sizeof (s_plan_t));
    zchunk_t *refs = zchunk_new (NULL, 64 * n);
    zchunk_t *sources = zchunk_new (NULL, 16 * n);
    const char **list = (const char **) zmalloc (n * sizeof (char *));
    for (size_t i = 0; i < n; i++) {
        plans [i].ctx = ctxs [i];
        plans [i].req = (const fs_referral_requested_t *) ctxs [i]->env->payload;
        plans [i].live = true;
        fs_uuid (plans [i].id);
        //  The same request twice in the batch (another envelope id): one referral
        for (size_t j = 0; j < i && plans [i].live; j++)
            if (plans [j].live && streq (plans [j].req->event_ref, plans [i].req->event_ref))
                plans [i].live = false;
        list [i] = plans [i].req->event_ref;
    }
    fs_pg_array (refs, list, n);
    for (size_t i = 0; i < n; i++)
        list [i] = plans [i].req->source;
    fs_pg_array (sources, list, n);
    //  Which are referrals already (the same request under another envelope id)
    const char *values [1] = { (const char *) zchunk_data (refs) };
    PGresult *known = s_exec (pg, "router_known", "SELECT event_ref FROM"
                              " referral_router.referrals WHERE event_ref = ANY ($1::text[])",
                              1, values);
    int rc = known ? FS_HANDLER_OK : FS_HANDLER_RETRY;
    for (int row = 0; known && row < PQntuples (known); row++)
        for (size_t i = 0; i < n; i++)
            if (streq (plans [i].req->event_ref, PQgetvalue (known, row, 0)))
                plans [i].live = false;
    PQclear (known);
    //  COMPUTE: no database
    char today [11];
    s_today (today);
    size_t npersons = 0;
    for (size_t i = 0; i < n && rc == FS_HANDLER_OK; i++) {
        s_plan_t *plan = &plans [i];
        if (plan->live && s_compute (plan, dir, today) == FS_HANDLER_REJECT) {
            plan->ctx->result = FS_HANDLER_REJECT;
            plan->live = false;
        }
        if (plan->live && !plan->status && plan->req->person_id)
            list [npersons++] = plan->req->person_id;
    }
    //  The consents of the persons whose referral they decide, in one look
    PGresult *consents = NULL;
    if (rc == FS_HANDLER_OK) {
        zchunk_t *persons = zchunk_new (NULL, 40 * n + 2);
        fs_pg_array (persons, list, npersons);
        consents = s_consents_read (pg, (const char *) zchunk_data (persons));
        zchunk_destroy (&persons);
        if (!consents)
            rc = FS_HANDLER_RETRY;
    }
    for (size_t i = 0; i < n && rc == FS_HANDLER_OK; i++) {
        s_plan_t *plan = &plans [i];
        if (plan->live && !plan->status)
            s_decide (plan, consents);
        if (plan->live && s_messages (plan) == FS_HANDLER_REJECT) {
            plan->ctx->result = FS_HANDLER_REJECT;
            plan->live = false;
        }
    }
    PQclear (consents);
    //  WRITE: the rows, then what is told (the senders' feeds looked up once)
    PGresult *sender = NULL;
    if (rc == FS_HANDLER_OK && s_write (pg, plans, n))
        rc = FS_HANDLER_RETRY;
    if (rc == FS_HANDLER_OK) {
        values [0] = (const char *) zchunk_data (sources);
        sender = s_exec (pg, "router_senders", "SELECT source, feed FROM"
                         " referral_router.sender_feeds WHERE source = ANY ($1::text[])"
                         " ORDER BY feed", 1, values);
        if (!sender || s_tell (server, pg, plans, n, sender))
            rc = FS_HANDLER_RETRY;
    }
    PQclear (sender);
    if (rc != FS_HANDLER_OK)
        fs_log_write (FS_LOG_WARN, "cannot route", "requests", n > 1 ? "batch" : "one",
                      "error", fs_pg_error (pg), NULL);
    for (size_t i = 0; i < n; i++) {
        if (rc == FS_HANDLER_OK && plans [i].live) {
            s_count (plans [i].outcome);
            if (s_unmapped_counter && plans [i].nunmapped)
                fs_counter_add (s_unmapped_counter, plans [i].nunmapped);
        }
        s_plan_clear (&plans [i]);
    }
    zchunk_destroy (&refs);
    zchunk_destroy (&sources);
    free (list);
    free (plans);
    return rc;
}

//  intake.referral_requested one at a time (the inbox's fallback): a batch of one
int
router_on_referral_requested (fs_inbox_ctx_t *ctx)
{
    ctx->result = FS_HANDLER_OK;
    int rc = s_route_batch (&ctx, 1);
    if (rc == FS_HANDLER_OK && ctx->result == FS_HANDLER_REJECT)
        return FS_HANDLER_REJECT;
    return rc;
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
                                 (router_level_t) (level < 0 ? 1 : level), &chain,
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
        fs_pg_array (list, cats, s_bit_names (send, router_data_name, cats, ROUTER_DATA_COUNT));
        const char *values [5] = { id, basis, by, reason, (const char *) zchunk_data (list) };
        fs_envelope_t chain = { 0 };
        chain.hdr.correlation_id = correlation;
        char text [1001];
        snprintf (text, sizeof text, "consent override (%s) by %s: %s", basis, by, reason);
        rc = fs_pg_run (pg, "INSERT INTO referral_router.consent_overrides (referral_id,"
                            " basis, by_who, reason, categories)"
                            " VALUES ($1::uuid, $2, $3, $4, $5::text[])", 5, values)
          || s_status (server, pg, id, event_ref, &chain, "on-hold", "requested", NULL, text)
          || s_dispatch (server, pg, id, send, basis, NULL, &chain);
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
