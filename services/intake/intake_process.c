/*  intake_process - what intake does with an accepted event, after the receipt: an actor with
    its own PostgreSQL connection claims stored events in seq order, applies each (registry,
    households, consent, triage, assignment, cases) and emits the internal events, all in ONE
    transaction per batch: an event is processed exactly once, with everything it caused.

    The pure rules (keys, triage) run here in C; the database work of a whole batch is one call
    of intake.process_batch (sql/004_process.sql) with the batch as JSON. */
#include "intake.h"
#include "intake_rules.h"
#include <dlfcn.h>
#include <stdatomic.h>
#include <sys/eventfd.h>

#define S_MAX_RULES      128
#define S_MAX_HOODS      512
#define S_BACKOFF_MIN_MS 100
#define S_BACKOFF_MAX_MS 5000
#define S_LOCK_KEY       "finestra.intake.process"
#define S_FULL_SCAN_MS   1000

//  A neighbourhood of the territory, for an explicit `neighbourhood` given by code or name
typedef struct {
    char code [32];                 /* neighbourhoods.code */
    char folded [128];              /* its name, folded (intake_fold) */
} s_hood_t;

//  One claimed event
typedef struct {
    char ref [FS_UUID_LEN + 1];     /* intake.events.ref */
    fs_ingest_event_t event;        /* decoded envelope of the stored event */
    const fs_type_t *dtype;         /* its data's definition */
    void *data;                     /* decoded data (owned), NULL when unreadable */
    char err [300];                 /* why it cannot be applied, "" when it can */
    intake_triage_outcome_t triage; /* when it opens a case */
    bool opens_case;                /* one of the five case-opening types */
    char due [11];                  /* due date, YYYY-MM-DD */
} s_event_t;

//  A growing JSON text (the batch handed to intake.process_batch)
typedef struct {
    char *buf;                      /* the text, NUL-terminated */
    size_t len;                     /* bytes used */
    size_t cap;                     /* bytes allocated */
    bool failed;                    /* out of memory: the text is unusable */
} s_json_t;

typedef struct {
    intake_process_args_t *args;    /* settings, routes, counters (not owned) */
    zsock_t *pipe;                  /* to the parent */
    fs_pg_t *pg;                    /* own connection: claims, applies */
    int wake;                       /* eventfd: readable when ingest stored a batch */
    intake_triage_rule_t rules [S_MAX_RULES];
    size_t nrules;                  /* loaded at config_stamp */
    s_hood_t *hoods;                /* S_MAX_HOODS of them */
    size_t nhoods;                  /* loaded at config_stamp */
    int64_t config_stamp;           /* process_config_stamp the two were read at, 0 = never */
    s_event_t *events;              /* the batch, args->config->intake_process_batch long */
    size_t nevents;                 /* claimed this round */
    char failed_ref [FS_UUID_LEN + 1];  /* the one event of a failed single-event round */
    s_json_t json;                  /* the batch as JSON, reused */
    bool draining;                  /* the last round was full: more is waiting */
    int64_t last_seq;               /* highest seq claimed by the last round */
    int64_t full_scan_at;           /* mono ms of the last claim from the start */
    bool gate;                      /* may hold the gate (session lock) */
    char why [512];                 /* the last failed round: its error */
    char sqlstate [8];              /* its SQLSTATE */
    bool lost;                      /* it lost the connection */
    char *skipped;                  /* seqs the claim skipped (locked by another), text[] */
    bool restart;                   /* the last round was undone to keep seq order */
} s_proc_t;

// ---- JSON --------------------------------------------------------------------------------

static void
s_json_put (s_json_t *self, const char *text, size_t len)
{
    if (self->failed)
        return;
    if (self->len + len + 1 > self->cap) {
        size_t cap = self->cap ? self->cap : 65536;
        while (cap < self->len + len + 1)
            cap *= 2;
        char *buf = (char *) realloc (self->buf, cap);
        if (!buf) {
            self->failed = true;
            return;
        }
        self->buf = buf;
        self->cap = cap;
    }
    memcpy (self->buf + self->len, text, len);
    self->len += len;
    self->buf [self->len] = 0;
}

static void
s_json_text (s_json_t *self, const char *text)
{
    s_json_put (self, text, strlen (text));
}

//  A quoted string: `"` `\` and control characters escaped, other bytes as they are
static void
s_json_quote (s_json_t *self, const char *value)
{
    s_json_put (self, "\"", 1);
    const char *run = value;
    for (const char *p = value; *p; p++) {
        unsigned char c = (unsigned char) *p;
        if (c == '"' || c == '\\' || c < 0x20) {
            s_json_put (self, run, (size_t) (p - run));
            char escape [8];
            if (c == '"' || c == '\\')
                snprintf (escape, sizeof escape, "\\%c", c);
            else
                snprintf (escape, sizeof escape, "\\u%04x", c);
            s_json_text (self, escape);
            run = p + 1;
        }
    }
    s_json_put (self, run, strlen (run));
    s_json_put (self, "\"", 1);
}

//  Every value is followed by a comma; closing a container takes back the last one
static void
s_json_key (s_json_t *self, const char *key)
{
    if (key) {
        s_json_quote (self, key);
        s_json_put (self, ":", 1);
    }
}

static void
s_json_open (s_json_t *self, const char *key, char bracket)
{
    s_json_key (self, key);
    s_json_put (self, &bracket, 1);
}

static void
s_json_close (s_json_t *self, char bracket)
{
    if (!self->failed && self->len && self->buf [self->len - 1] == ',')
        self->len--;
    s_json_put (self, &bracket, 1);
    s_json_put (self, ",", 1);
}

static void
s_json_str (s_json_t *self, const char *key, const char *value)
{
    if (!value)
        return;
    s_json_key (self, key);
    s_json_quote (self, value);
    s_json_put (self, ",", 1);
}

static void
s_json_int (s_json_t *self, const char *key, int64_t value)
{
    char text [32];
    snprintf (text, sizeof text, "%lld,", (long long) value);
    s_json_key (self, key);
    s_json_text (self, text);
}

static void
s_json_bool (s_json_t *self, const char *key, bool value)
{
    s_json_key (self, key);
    s_json_text (self, value ? "true," : "false,");
}

static void
s_json_list (s_json_t *self, const char *key, const fs_strlist_t *list)
{
    s_json_open (self, key, '[');
    for (size_t i = 0; i < list->n; i++)
        s_json_str (self, NULL, list->items [i]);
    s_json_close (self, ']');
}

// ---- per batch: territory and triage rules, as data --------------------------------------

static int
s_load_rules (s_proc_t *self)
{
    PGresult *result = fs_pg_exec (self->pg,
        "SELECT id, event_type, kind, param, param_text, level, due_days"
        " FROM intake.triage_rules WHERE enabled ORDER BY position", 0, NULL);
    if (!result)
        return -1;
    self->nrules = 0;
    for (int row = 0; row < PQntuples (result) && self->nrules < S_MAX_RULES; row++) {
        intake_triage_rule_t *rule = &self->rules [self->nrules];
        int kind = intake_triage_kind (PQgetvalue (result, row, 2));
        const char *level = intake_triage_level (PQgetvalue (result, row, 5));
        if (kind < 0 || !level)
            continue;           //  the table's CHECKs make this impossible; skip, never guess
        snprintf (rule->id, sizeof rule->id, "%s", PQgetvalue (result, row, 0));
        snprintf (rule->event_type, sizeof rule->event_type, "%s", PQgetvalue (result, row, 1));
        rule->kind = (intake_triage_kind_t) kind;
        rule->param = atoi (PQgetvalue (result, row, 3));
        snprintf (rule->param_text, sizeof rule->param_text, "%s", PQgetvalue (result, row, 4));
        rule->level = level;
        rule->due_days = atoi (PQgetvalue (result, row, 6));
        self->nrules++;
    }
    PQclear (result);
    return 0;
}

static int
s_load_hoods (s_proc_t *self)
{
    PGresult *result = fs_pg_exec (self->pg, "SELECT code, name FROM intake.neighbourhoods",
                                   0, NULL);
    if (!result)
        return -1;
    self->nhoods = 0;
    for (int row = 0; row < PQntuples (result) && self->nhoods < S_MAX_HOODS; row++) {
        s_hood_t *hood = &self->hoods [self->nhoods++];
        snprintf (hood->code, sizeof hood->code, "%s", PQgetvalue (result, row, 0));
        intake_fold (PQgetvalue (result, row, 1), hood->folded, sizeof hood->folded);
    }
    PQclear (result);
    return 0;
}

//  An explicit neighbourhood: a known code as written, or a name equal once folded
static const char *
s_hood_code (s_proc_t *self, const char *given)
{
    char folded [128];
    intake_fold (given, folded, sizeof folded);
    for (size_t i = 0; i < self->nhoods; i++)
        if (streq (self->hoods [i].code, given))
            return self->hoods [i].code;
    for (size_t i = 0; i < self->nhoods; i++)
        if (folded [0] && streq (self->hoods [i].folded, folded))
            return self->hoods [i].code;
    return NULL;
}

// ---- one event ---------------------------------------------------------------------------

static void
s_event_clear (s_event_t *ev)
{
    if (ev->data) {
        fs_proto_clear (ev->dtype, ev->data);
        free (ev->data);
    }
    fs_proto_clear (&fs_ingest_event_type, &ev->event);
    memset (ev, 0, sizeof *ev);
}

//  Decodes the stored bytes; on failure ev->err says why (the event is then marked, not applied)
static void
s_event_decode (s_event_t *ev, const char *bytes, size_t len)
{
    fs_proto_error_t err;
    if (fs_proto_decode (&fs_ingest_event_type, bytes, len, &ev->event, &err)) {
        snprintf (ev->err, sizeof ev->err, "stored event unreadable: %s (%s)", err.message,
                  fs_proto_code_name (err.code));
        return;
    }
    ev->dtype = fs_proto_lookup (ev->event.type);
    if (!ev->dtype || strncmp (ev->event.type, "intake.", 7) == 0) {
        snprintf (ev->err, sizeof ev->err, "stored event of unknown type '%.64s'", ev->event.type);
        return;
    }
    ev->data = calloc (1, ev->dtype->size);
    if (!ev->data) {
        snprintf (ev->err, sizeof ev->err, "out of memory");
        return;
    }
    if (fs_proto_decode (ev->dtype, ev->event.data.data, ev->event.data.len, ev->data, &err)) {
        free (ev->data);
        ev->data = NULL;
        snprintf (ev->err, sizeof ev->err, "stored data unreadable: %s (%s)", err.message,
                  fs_proto_code_name (err.code));
        return;
    }
    if (intake_date_days (ev->event.occurred_at) < 0)
        snprintf (ev->err, sizeof ev->err, "stored occurred_at '%.40s' has no date",
                  ev->event.occurred_at);
}

//  Triage facts from the event and the case it opens (five types open one)
static void
s_event_triage (s_proc_t *self, s_event_t *ev)
{
    const fs_type_t *t = ev->dtype;
    ev->opens_case = t == &fs_ev_attention_requested_type
                  || t == &fs_ev_social_risk_detected_type
                  || t == &fs_ev_eviction_scheduled_type
                  || t == &fs_ev_emergency_intervention_type
                  || t == &fs_ev_benefits_application_submitted_type;
    if (!ev->opens_case)
        return;
    int64_t reported = intake_date_days (ev->event.occurred_at);
    intake_triage_facts_t facts = { .event_type = ev->event.type, .minors = -1 };
    if (t == &fs_ev_eviction_scheduled_type) {
        const fs_ev_eviction_scheduled_t *eviction = (const fs_ev_eviction_scheduled_t *) ev->data;
        int64_t day = intake_date_days (eviction->eviction_date);
        facts.has_eviction = day >= 0;
        facts.days_to_eviction = day - reported;
        facts.minors = eviction->minors;
    }
    else
    if (t == &fs_ev_emergency_intervention_type) {
        const fs_ev_emergency_intervention_t *emergency =
            (const fs_ev_emergency_intervention_t *) ev->data;
        facts.minors = emergency->minors_involved;
        facts.reported_urgency = emergency->urgency;
    }
    else
    if (t == &fs_ev_social_risk_detected_type)
        facts.reported_urgency = ((const fs_ev_social_risk_detected_t *) ev->data)->urgency;
    intake_triage_eval (self->rules, self->nrules, &facts, &ev->triage);
    intake_date_format (reported + ev->triage.due_days, ev->due);
}

//  A person as process_batch reads it: document, names and their keys, birth date
static void
s_json_person (s_json_t *json, const char *doc_type, const char *doc_number, const char *given,
               const char *family, const char *birth)
{
    char key [512], doc [64];
    bool none = !doc_type || streq (doc_type, "NONE") || !doc_number;
    s_json_str (json, "dt", none ? "NONE" : doc_type);
    if (!none) {
        bool ok = intake_doc_normalize (doc_type, doc_number, doc, sizeof doc);
        s_json_str (json, "dn", doc);
        s_json_bool (json, "ok", ok);
    }
    intake_name_key (given, family, key, sizeof key);
    s_json_str (json, "given", given);
    s_json_str (json, "family", family);
    s_json_str (json, "nk", key);
    s_json_str (json, "birth", birth);
}

static void
s_json_address (s_proc_t *self, s_json_t *json, const fs_ingest_address_t *address)
{
    char key [512];
    intake_address_key (address->street, address->number, address->postcode, key, sizeof key);
    s_json_open (json, "addr", '{');
    s_json_str (json, "key", key);
    s_json_str (json, "street", address->street);
    s_json_str (json, "number", address->number);
    s_json_str (json, "postcode", address->postcode);
    if (FS_PRESENT (address, fs_ingest_address_F_neighbourhood)) {
        s_json_str (json, "hood", address->neighbourhood);
        s_json_str (json, "hood_code", s_hood_code (self, address->neighbourhood));
    }
    s_json_close (json, '}');
}

static int64_t
s_ms (const char *rfc3339)
{
    int64_t ms = 0;
    fs_rfc3339_parse (rfc3339, &ms);        //  validated when accepted
    return ms;
}

//  What the event tells of the person's facts, for sql/011_person_facts.sql: the padró's
//  registration, the household's size, a benefit application; "facts" when it asks the
//  router to route (the person's facts come back for the snapshot)
static void
s_json_facts (s_json_t *json, s_event_t *ev)
{
    if (ev->dtype == &fs_ev_address_changed_type) {
        const fs_ev_address_changed_t *change = (const fs_ev_address_changed_t *) ev->data;
        s_json_open (json, "reg", '{');
        s_json_str (json, "on", change->effective_date);
        s_json_close (json, '}');
        if (FS_PRESENT (change, fs_ev_address_changed_F_household_size))
            s_json_int (json, "hsize", change->household_size);
    }
    else
    if (ev->dtype == &fs_ev_eviction_scheduled_type)
        s_json_int (json, "hsize",
                    ((const fs_ev_eviction_scheduled_t *) ev->data)->household_size);
    else
    if (ev->dtype == &fs_ev_benefits_application_submitted_type) {
        const fs_ev_benefits_application_submitted_t *application =
            (const fs_ev_benefits_application_submitted_t *) ev->data;
        size_t members = application->household_members.n;
        if (members > 0 && members <= 50)
            s_json_int (json, "hsize", (int64_t) members);
        s_json_open (json, "benefit", '{');
        s_json_str (json, "programme", application->programme);
        s_json_str (json, "ref", application->application_ref);
        s_json_int (json, "at_ms", s_ms (application->submitted_at));
        s_json_close (json, '}');
    }
    if (ev->opens_case && (ev->dtype == &fs_ev_social_risk_detected_type
                       ||  ev->dtype == &fs_ev_eviction_scheduled_type
                       ||  ev->dtype == &fs_ev_emergency_intervention_type))
        s_json_bool (json, "facts", true);
}

static void
s_json_event (s_proc_t *self, s_json_t *json, s_event_t *ev, size_t index)
{
    s_json_open (json, NULL, '{');
    s_json_int (json, "i", (int64_t) index);
    s_json_str (json, "ref", ev->ref);
    if (ev->err [0]) {
        s_json_str (json, "err", ev->err);
        s_json_close (json, '}');
        return;
    }
    s_json_str (json, "src", ev->event.source);
    s_json_str (json, "type", ev->event.type);
    const fs_ingest_subject_t *subject = &ev->event.subject;
    s_json_open (json, "subj", '{');
    s_json_person (json, subject->doc_type, subject->doc_number, subject->given_name,
                   subject->family_name, subject->birth_date);
    s_json_str (json, "phone", subject->phone);
    s_json_str (json, "email", subject->email);
    s_json_str (json, "lang", subject->language);
    s_json_str (json, "sex", subject->sex);
    s_json_close (json, '}');

    //  The household is where the event says the person lives now; layer (b) of matching
    //  compares with where the file says they lived (the previous address on a move)
    const fs_ingest_address_t *address = &subject->address;
    const fs_ingest_address_t *before = address;
    if (ev->dtype == &fs_ev_address_changed_type) {
        const fs_ev_address_changed_t *change = (const fs_ev_address_changed_t *) ev->data;
        address = &change->new_address;
        if (FS_PRESENT (change, fs_ev_address_changed_F_previous_address))
            before = &change->previous_address;
    }
    s_json_address (self, json, address);
    char mkey [512];
    intake_address_key (before->street, before->number, before->postcode, mkey, sizeof mkey);
    s_json_str (json, "mkey", mkey);

    if (ev->dtype == &fs_ev_benefits_application_submitted_type) {
        const fs_ev_benefits_application_submitted_t *application =
            (const fs_ev_benefits_application_submitted_t *) ev->data;
        const fs_ingest_household_member_t *members =
            (const fs_ingest_household_member_t *) application->household_members.items;
        s_json_str (json, "rel", "applicant");
        s_json_open (json, "members", '[');
        for (size_t i = 0; i < application->household_members.n; i++) {
            const fs_ingest_household_member_t *member = &members [i];
            if (streq (member->relationship, "applicant"))
                continue;           //  the subject, registered above
            s_json_open (json, NULL, '{');
            s_json_person (json, member->doc_type, member->doc_number, member->given_name,
                           member->family_name, member->birth_date);
            s_json_str (json, "rel", member->relationship);
            s_json_close (json, '}');
        }
        s_json_close (json, ']');
    }
    if (ev->opens_case) {
        s_json_open (json, "case", '{');
        s_json_str (json, "level", ev->triage.level);
        s_json_str (json, "rule", ev->triage.rule_id);
        s_json_str (json, "due", ev->due);
        s_json_close (json, '}');
    }
    if (ev->dtype == &fs_ev_consent_granted_type) {
        const fs_ev_consent_granted_t *grant = (const fs_ev_consent_granted_t *) ev->data;
        s_json_open (json, "grant", '{');
        s_json_str (json, "ref", grant->consent_ref);
        s_json_str (json, "purpose", grant->purpose);
        s_json_list (json, "cats", &grant->data_categories);
        s_json_list (json, "recips", &grant->recipients);
        s_json_int (json, "given_ms", s_ms (grant->given_at));
        if (FS_PRESENT (grant, fs_ev_consent_granted_F_expires_at))
            s_json_int (json, "expires_ms", s_ms (grant->expires_at));
        s_json_str (json, "evidence", grant->evidence_ref);
        s_json_close (json, '}');
    }
    if (ev->dtype == &fs_ev_consent_revoked_type) {
        const fs_ev_consent_revoked_t *revoke = (const fs_ev_consent_revoked_t *) ev->data;
        s_json_open (json, "revoke", '{');
        s_json_str (json, "ref", revoke->consent_ref);
        s_json_int (json, "at_ms", s_ms (revoke->revoked_at));
        s_json_str (json, "reason", revoke->reason);
        s_json_close (json, '}');
    }
    s_json_facts (json, ev);
    s_json_close (json, '}');
}

// ---- emitting ----------------------------------------------------------------------------

//  The payloads one applied event emits (at most three), kept until the outbox has them
typedef struct {
    fs_case_opened_t opened;
    fs_referral_requested_t referral;
    fs_benefit_application_received_t benefit;
    fs_consent_changed_t consent;
    fs_envelope_t cause;            /* the stored event starts the chain */
} s_emits_t;

static void
s_emits_clear (s_emits_t *e)
{
    //  Borrowed lists (the event's own) are unset before clearing
    memset (&e->referral.icd10_codes, 0, sizeof e->referral.icd10_codes);
    memset (&e->consent.recipients, 0, sizeof e->consent.recipients);
    memset (&e->consent.data_categories, 0, sizeof e->consent.data_categories);
    fs_proto_clear (&fs_case_opened_type, &e->opened);
    fs_proto_clear (&fs_referral_requested_type, &e->referral);
    fs_proto_clear (&fs_benefit_application_received_type, &e->benefit);
    fs_proto_clear (&fs_consent_changed_type, &e->consent);
}

//  The person's facts from the file, as process_batch_facts returns them
typedef struct {
    bool known;                     /* the row has them (else: the event's own only) */
    const char *sex;                /* persons.sex, NULL unknown */
    const char *residency;          /* registered_in_city|lives_in_city|outside_city, NULL */
    int household;                  /* reported household size, -1 unknown */
    const char *benefits;           /* "programme YYYY-MM-DD,..." newest first, NULL none */
} s_facts_t;

//  "programme YYYY-MM-DD,..." into the subject's benefits (at most 8)
static void
s_referral_benefits (const char *text, fs_referral_subject_t *to)
{
    char copy [1024];
    snprintf (copy, sizeof copy, "%s", text);
    fs_referral_benefit_t *items = (fs_referral_benefit_t *) zmalloc (8 * sizeof *items);
    size_t n = 0;
    char *save = NULL;
    for (char *item = strtok_r (copy, ",", &save); item && n < 8;
         item = strtok_r (NULL, ",", &save)) {
        char *day = strchr (item, ' ');
        if (!day)
            continue;
        *day++ = 0;
        fs_proto_set_str (&fs_referral_benefit_type, &items [n], "programme", item);
        fs_proto_set_str (&fs_referral_benefit_type, &items [n], "submitted_on", day);
        n++;
    }
    if (n == 0) {
        free (items);
        return;
    }
    to->benefits.items = items;
    to->benefits.n = n;
    to->present |= 1ull << fs_referral_subject_F_benefits;
}

//  The router's facts and the personal data it may pass on (it decides what leaves):
//  subject, needs, note and minors of the referral request
static void
s_referral_facts (s_event_t *ev, const char *hood, const s_facts_t *facts,
                  fs_referral_requested_t *referral)
{
    const fs_type_t *st = &fs_referral_subject_type;
    const fs_ingest_subject_t *from = &ev->event.subject;
    fs_referral_subject_t *to = &referral->subject;
    fs_proto_set_str (st, to, "given_name", from->given_name);
    fs_proto_set_str (st, to, "family_name", from->family_name);
    fs_proto_set_str (st, to, "doc_type", from->doc_type);
    fs_proto_set_str (st, to, "doc_number", from->doc_number);
    fs_proto_set_str (st, to, "birth_date", from->birth_date);
    fs_proto_set_str (st, to, "phone", from->phone);
    fs_proto_set_str (st, to, "email", from->email);
    fs_proto_set_str (st, to, "language", from->language);
    //  The file's facts (sql/011_person_facts.sql): residency with the padró's registration,
    //  the last sex given, the household's reported size, the benefit applications seen
    if (facts->known) {
        fs_proto_set_str (st, to, "residency", facts->residency);
        fs_proto_set_str (st, to, "sex", facts->sex);
        if (facts->household > 0 && facts->household <= 50)
            fs_proto_set_int (st, to, "household_size", facts->household);
        if (facts->benefits)
            s_referral_benefits (facts->benefits, to);
    }
    else {
        //  Placed in a neighbourhood: lives in the city; whether registered is not known
        fs_proto_set_str (st, to, "residency", hood ? "lives_in_city" : NULL);
        fs_proto_set_str (st, to, "sex", from->sex);
    }
    const fs_type_t *at = &fs_referral_address_type;
    fs_proto_set_str (at, &to->address, "street", from->address.street);
    fs_proto_set_str (at, &to->address, "number", from->address.number);
    fs_proto_set_str (at, &to->address, "postcode", from->address.postcode);
    fs_proto_set_str (at, &to->address, "neighbourhood", hood);
    to->present |= 1ull << fs_referral_subject_F_address;
    referral->present |= 1ull << fs_referral_requested_F_subject;

    const fs_type_t *t = &fs_referral_requested_type;
    const char *kind = NULL;
    const fs_strlist_t *found = NULL;
    if (ev->dtype == &fs_ev_eviction_scheduled_type) {
        const fs_ev_eviction_scheduled_t *eviction = (const fs_ev_eviction_scheduled_t *) ev->data;
        fs_proto_set_int (t, referral, "minors", eviction->minors);
    }
    else
    if (ev->dtype == &fs_ev_emergency_intervention_type) {
        const fs_ev_emergency_intervention_t *emergency =
            (const fs_ev_emergency_intervention_t *) ev->data;
        kind = emergency->kind;
        found = &emergency->needs;
        fs_proto_set_int (t, referral, "minors", emergency->minors_involved);
        fs_proto_set_str (t, referral, "note", emergency->summary);
    }
    else {
        const fs_ev_social_risk_detected_t *risk = (const fs_ev_social_risk_detected_t *) ev->data;
        fs_proto_set_str (t, referral, "note", risk->note);
    }
    //  Eviction -> housing, the emergency's kind and what its team found (intake_rules)
    const char *needs [INTAKE_NEEDS_MAX];
    size_t n = intake_needs (ev->event.type, kind, found, needs, INTAKE_NEEDS_MAX);
    if (n) {
        referral->needs.items = (char **) zmalloc (n * sizeof (char *));
        for (size_t i = 0; i < n; i++)
            referral->needs.items [i] = strdup (needs [i]);
        referral->needs.n = n;
        referral->present |= 1ull << fs_referral_requested_F_needs;
    }
}

static const char *
s_value (PGresult *result, int row, int column)
{
    return PQgetisnull (result, row, column) ? NULL : PQgetvalue (result, row, column);
}

//  Fills the payloads of one result row of process_batch; adds them to items
static size_t
s_emits_build (s_event_t *ev, PGresult *result, int row, s_emits_t *e, fs_outbox_item_t *items)
{
    size_t n = 0;
    const char *person = s_value (result, row, 1);
    const char *case_id = s_value (result, row, 2);
    const char *centre = s_value (result, row, 3);
    const char *hood = s_value (result, row, 4);
    const char *consent = s_value (result, row, 5);
    const char *status = s_value (result, row, 6);
    const char *purpose = s_value (result, row, 7);
    s_facts_t facts = { .household = -1 };
    if (PQnfields (result) >= 12) {
        facts.known = true;
        facts.sex = s_value (result, row, 8);
        facts.residency = s_value (result, row, 9);
        facts.household = s_value (result, row, 10) ? atoi (s_value (result, row, 10)) : -1;
        facts.benefits = s_value (result, row, 11);
    }
    e->cause.hdr.id = ev->ref;
    e->cause.hdr.correlation_id = ev->ref;
    if (case_id) {
        const fs_type_t *t = &fs_case_opened_type;
        fs_proto_set_str (t, &e->opened, "case_id", case_id);
        fs_proto_set_str (t, &e->opened, "event_ref", ev->ref);
        fs_proto_set_str (t, &e->opened, "event_type", ev->event.type);
        fs_proto_set_str (t, &e->opened, "person_id", person);
        fs_proto_set_str (t, &e->opened, "centre", centre);
        fs_proto_set_str (t, &e->opened, "neighbourhood", hood);
        fs_proto_set_str (t, &e->opened, "triage_level", ev->triage.level);
        fs_proto_set_str (t, &e->opened, "triage_rule", ev->triage.rule_id);
        fs_proto_set_str (t, &e->opened, "due_date", ev->due);
        items [n++] = (fs_outbox_item_t) { t, &e->opened, &e->cause };
    }
    bool health = ev->dtype == &fs_ev_social_risk_detected_type;
    if (case_id && (health || ev->dtype == &fs_ev_eviction_scheduled_type
                 || ev->dtype == &fs_ev_emergency_intervention_type)) {
        const fs_type_t *t = &fs_referral_requested_type;
        fs_proto_set_str (t, &e->referral, "event_ref", ev->ref);
        fs_proto_set_str (t, &e->referral, "source", ev->event.source);
        fs_proto_set_str (t, &e->referral, "event_type", ev->event.type);
        fs_proto_set_str (t, &e->referral, "urgency", ev->triage.level);
        fs_proto_set_str (t, &e->referral, "case_id", case_id);
        fs_proto_set_str (t, &e->referral, "person_id", person);
        fs_proto_set_str (t, &e->referral, "centre", centre);
        if (health) {
            const fs_ev_social_risk_detected_t *risk =
                (const fs_ev_social_risk_detected_t *) ev->data;
            e->referral.icd10_codes = risk->icd10_codes;
            e->referral.present |= 1ull << fs_referral_requested_F_icd10_codes;
            fs_proto_set_str (t, &e->referral, "suggested_level", risk->suggested_level);
            fs_proto_set_str (t, &e->referral, "consent_ref", risk->consent_ref);
        }
        s_referral_facts (ev, hood, &facts, &e->referral);
        items [n++] = (fs_outbox_item_t) { t, &e->referral, &e->cause };
    }
    if (case_id && ev->dtype == &fs_ev_benefits_application_submitted_type) {
        const fs_type_t *t = &fs_benefit_application_received_type;
        fs_proto_set_str (t, &e->benefit, "event_ref", ev->ref);
        fs_proto_set_str (t, &e->benefit, "person_id", person);
        fs_proto_set_str (t, &e->benefit, "case_id", case_id);
        fs_proto_set_str (t, &e->benefit, "source", ev->event.source);
        items [n++] = (fs_outbox_item_t) { t, &e->benefit, &e->cause };
    }
    if (consent && status && purpose) {
        const fs_type_t *t = &fs_consent_changed_type;
        fs_proto_set_str (t, &e->consent, "consent_id", consent);
        fs_proto_set_str (t, &e->consent, "person_id", person);
        fs_proto_set_str (t, &e->consent, "status", status);
        fs_proto_set_str (t, &e->consent, "purpose", purpose);
        if (ev->dtype == &fs_ev_consent_granted_type) {
            const fs_ev_consent_granted_t *grant = (const fs_ev_consent_granted_t *) ev->data;
            e->consent.recipients = grant->recipients;
            e->consent.data_categories = grant->data_categories;
            e->consent.present |= 1ull << fs_consent_changed_F_recipients;
            e->consent.present |= 1ull << fs_consent_changed_F_data_categories;
            if (FS_PRESENT (grant, fs_ev_consent_granted_F_expires_at))
                fs_proto_set_str (t, &e->consent, "expires_at", grant->expires_at);
        }
        items [n++] = (fs_outbox_item_t) { t, &e->consent, &e->cause };
    }
    return n;
}

// ---- a round: claim, apply, mark, emit, commit -------------------------------------------

//  Releases the gate after a round that did not reach process_batch: a session lock outlives
//  the rollback. (A lost connection released it already.)
static void
s_open_gate (s_proc_t *self)
{
    if (!self->gate)
        return;
    self->gate = false;
    if (fs_pg_ok (self->pg))
        fs_pg_run (self->pg, "SELECT pg_advisory_unlock_all ()", 0, NULL);
}

//  Monotonic microseconds, for the round's steps
static int64_t
s_mono_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

//  At debug level, each committed round's steps in ms: where an event's wait goes
static void
s_log_round (size_t events, const int64_t *at)
{
    if (FS_LOG_DEBUG < fs_log_threshold)
        return;
    char n [24], step [5][24];
    snprintf (n, sizeof n, "%zu", events);
    for (int i = 0; i < 5; i++)
        snprintf (step [i], sizeof step [i], "%.2f", (at [i + 1] - at [i]) / 1000.0);
    fs_debug ("processing round committed", "events", n, "gate_ms", step [0],
              "claim_ms", step [1], "apply_ms", step [2], "emit_ms", step [3],
              "commit_ms", step [4]);
}

//  Did a batch that held events this claim skipped end without processing them (rolled
//  back, or its intake killed while PostgreSQL still held its locks)? Their people's later
//  events may be in this batch and must not go first: the round is undone and claimed again
//  from the start. Asked after taking the batch's people as process_batch will (the same
//  keys, 010_process_mark.sql; it takes them again, at no cost) and before the gate opens:
//  a live batch of the same people has committed by then, a live batch of others still holds
//  its events (skipped here), and no other worker can claim the ended batch's events before
//  this one asks. An event committed after the claim's snapshot is not in the list (it was
//  stored later). true when the round must be undone (or the database failed)
static bool
s_left_behind (s_proc_t *self, const char *batch)
{
    if (!self->skipped)
        return false;
    const char *people [1] = { batch };
    if (fs_pg_run (self->pg,
        "SELECT count (pg_advisory_xact_lock (1179403647, k)) FROM ("
        " SELECT DISTINCT hashtext ((p->>'nk') || '|' || (p->>'birth')) AS k FROM ("
        "  SELECT x->'subj' AS p FROM jsonb_array_elements ($1::jsonb) x WHERE NOT x ? 'err'"
        "  UNION ALL SELECT y FROM jsonb_array_elements ($1::jsonb) x,"
        "   jsonb_array_elements (x->'members') y WHERE x ? 'members') people ORDER BY 1) keys",
        1, people))
        return true;
    const char *values [1] = { self->skipped };
    PGresult *result = fs_pg_exec (self->pg,
        "SELECT count (*) FROM (SELECT 1 FROM intake.events WHERE seq = ANY ($1::bigint[])"
        " AND processed_at IS NULL FOR UPDATE SKIP LOCKED) left_behind", 1, values);
    if (!result)
        return true;
    bool behind = atol (PQgetvalue (result, 0, 0)) > 0;
    PQclear (result);
    if (behind) {
        fs_pg_set_error (self->pg, "earlier events of an ended batch are unprocessed:"
                         " claimed again from the start, in seq order");
        self->restart = true;
    }
    return behind;
}

//  Claims and applies up to limit events in one transaction. The number claimed, or -1 when
//  the database failed or the round must start again (then everything was rolled back)
static int
s_round (s_proc_t *self, long limit)
{
    intake_process_args_t *args = self->args;
    fs_pg_t *pg = self->pg;
    for (size_t i = 0; i < self->nevents; i++)
        s_event_clear (&self->events [i]);
    self->nevents = 0;
    self->failed_ref [0] = 0;
    self->restart = false;
    s_emits_t *emits = NULL;
    fs_outbox_item_t *items = NULL;
    PGresult *result = NULL;
    int rc = -1;
    int64_t at [6] = { s_mono_us () };      //  start, gate, claim, apply, emit, commit

    //  The claim below must walk the partial index in seq order. Statistics of a table that
    //  just received a backlog are stale (autovacuum analyzes a minute later at best), and
    //  the planner then sorts the whole backlog for every batch (33 ms a claim, measured);
    //  process_batch restores both settings
    //  The gate (a session lock, see 007_process_workers.sql): held from before the claim
    //  until process_batch has locked the batch's people, so workers (and replicas) lock
    //  people in claim order and each person's events are applied in seq order
    //  BEGIN goes with it: each round trip of a round is paid by every event waiting on it.
    //  JIT off: with seqscan off, a plan holding any seq scan (the claim's one-row read of
    //  the stamp) costs over 1e10 and was JIT-compiled, 480 ms a claim (measured)
    self->gate = true;
    if (fs_pg_script (pg, "BEGIN; SELECT set_config ('enable_seqscan', 'off', true),"
                          " set_config ('enable_bitmapscan', 'off', true),"
                          " set_config ('jit', 'off', true),"
                          " pg_advisory_lock (hashtext ('" S_LOCK_KEY "'))"))
        goto done;
    at [1] = s_mono_us ();
    //  While draining a backlog, rounds start after the last seq claimed: the index entries
    //  of events just processed are not skipped again and again. At least once a second, and
    //  whenever the queue looked empty, from the start: an event stored by a transaction
    //  that committed late (a lower seq) is never left behind
    int64_t now = fs_mono_ms ();
    bool resume = self->draining && now - self->full_scan_at < S_FULL_SCAN_MS;
    if (!resume)
        self->full_scan_at = now;
    char lim [24], after [24];
    snprintf (lim, sizeof lim, "%ld", limit);
    snprintf (after, sizeof after, "%lld", resume ? (long long) self->last_seq : 0LL);
    const char *values [2] = { lim, after };
    //  With the rules' and territory's stamp (013_process_config_stamp.sql): both are read
    //  again, before triage, only when it moved. And, in the same snapshot, the earlier
    //  events it skipped (locked by another batch): see s_left_behind
    result = fs_pg_execb (pg,
        "WITH c AS MATERIALIZED (SELECT e.ref, e.event, e.received_at, e.seq"
        "  FROM intake.events e WHERE e.processed_at IS NULL AND e.seq > $2::bigint"
        "  ORDER BY e.seq LIMIT $1::int FOR UPDATE SKIP LOCKED)"
        " SELECT c.ref::text, c.event,"
        "       extract (epoch FROM now () - c.received_at)::float8::text, c.seq::text,"
        "       (SELECT stamp FROM intake.process_config_stamp)::text,"
        "       (SELECT coalesce (array_agg (x.seq), '{}')::text FROM intake.events x"
        "         WHERE x.processed_at IS NULL AND x.seq > $2::bigint"
        "         AND x.seq < (SELECT max (seq) FROM c) AND x.seq NOT IN (SELECT seq FROM c))"
        " FROM c ORDER BY c.seq",
        2, values, NULL, NULL, 1);
    if (!result)
        goto done;
    int n = PQntuples (result);
    int64_t stamp = n > 0 ? atoll (PQgetvalue (result, 0, 4)) : 0;
    if (n > 0 && stamp != self->config_stamp) {
        if (s_load_rules (self) || s_load_hoods (self)) {
            self->config_stamp = 0;
            goto done;
        }
        self->config_stamp = stamp;
    }
    for (int row = 0; row < n; row++) {
        s_event_t *ev = &self->events [self->nevents++];
        snprintf (ev->ref, sizeof ev->ref, "%s", PQgetvalue (result, row, 0));
        s_event_decode (ev, PQgetvalue (result, row, 1), (size_t) PQgetlength (result, row, 1));
        if (ev->err [0])
            fs_error ("stored event cannot be processed: marked with its error",
                      "ref", ev->ref, "reason", ev->err);
        else
            s_event_triage (self, ev);
    }
    free (self->skipped);
    self->skipped = n > 0 && strcmp (PQgetvalue (result, 0, 5), "{}")
                  ? strdup (PQgetvalue (result, 0, 5)) : NULL;
    if (n > 0) {
        fs_histogram_observe (args->lag, atof (PQgetvalue (result, 0, 2)));
        self->last_seq = atoll (PQgetvalue (result, n - 1, 3));
    }
    self->draining = n == limit;
    PQclear (result);
    result = NULL;
    if (n == 0) {
        fs_pg_rollback (pg);
        s_open_gate (self);
        return 0;
    }
    if (n == 1)
        snprintf (self->failed_ref, sizeof self->failed_ref, "%s", self->events [0].ref);
    at [2] = s_mono_us ();

    s_json_t *json = &self->json;
    json->len = 0;
    json->failed = false;
    s_json_open (json, NULL, '[');
    for (size_t i = 0; i < self->nevents; i++)
        s_json_event (self, json, &self->events [i], i);
    s_json_close (json, ']');
    if (json->failed) {
        fs_pg_set_error (pg, "out of memory building the batch");
        goto done;
    }
    json->buf [--json->len] = 0;            //  the comma after the array
    const char *batch [1] = { json->buf };
    if (s_left_behind (self, json->buf))
        goto done;
    result = fs_pg_exec (pg, "SELECT o_i, o_person::text, o_case::text, o_centre, o_hood,"
                             " o_consent::text, o_consent_status, o_consent_purpose,"
                             " o_sex, o_residency, o_household, o_benefits"
                             " FROM intake.process_batch_facts ($1::jsonb)", 1, batch);
    if (!result)
        goto done;
    self->gate = false;                     //  process_batch opened it
    at [3] = s_mono_us ();
    int rows = PQntuples (result);
    emits = (s_emits_t *) calloc ((size_t) rows + 1, sizeof *emits);
    items = (fs_outbox_item_t *) calloc ((size_t) rows * 4 + 1, sizeof *items);
    if (!emits || !items) {
        fs_pg_set_error (pg, "out of memory emitting the batch");
        goto done;
    }
    size_t nitems = 0;
    for (int row = 0; row < rows; row++) {
        long index = atol (PQgetvalue (result, row, 0));
        if (index < 0 || (size_t) index >= self->nevents)
            continue;
        nitems += s_emits_build (&self->events [index], result, row, &emits [row],
                                 items + nitems);
    }
    fs_proto_error_t err;
    if (fs_outbox_emit_many (pg, "intake", "intake", args->routes, items, nitems, &err)) {
        if (err.code != FS_PROTO_OK)
            fs_pg_set_error (pg, "an emitted event is invalid: %s", err.message);
        goto done;
    }
    at [4] = s_mono_us ();
    if (fs_pg_commit (pg))
        goto done;
    at [5] = s_mono_us ();
    s_log_round (self->nevents, at);
    size_t bad = 0;
    for (size_t i = 0; i < self->nevents; i++)
        bad += self->events [i].err [0] != 0;
    fs_counter_add (args->processed, self->nevents);
    fs_counter_add (args->errors, bad);
    fs_counter_add (args->batches, 1);
    rc = (int) self->nevents;
done:
    if (emits)
        for (int row = 0; result && row < PQntuples (result); row++)
            s_emits_clear (&emits [row]);
    free (emits);
    free (items);
    if (result)
        PQclear (result);
    if (rc < 0) {
        //  What failed, kept before the rollback and the unlock run statements of their own
        snprintf (self->why, sizeof self->why, "%s", fs_pg_error (pg));
        snprintf (self->sqlstate, sizeof self->sqlstate, "%s", fs_pg_sqlstate (pg));
        self->lost = fs_pg_lost (pg);
        fs_pg_rollback (pg);
        s_open_gate (self);
        self->draining = false;     //  what it claimed is unprocessed again: start over
    }
    return rc;
}

//  A data error is the event's own (it would fail again): worth isolating and marking.
//  Anything else (connection, lock, resources, a bug in the SQL) is retried with back-off
static bool
s_event_fault (s_proc_t *self)
{
    const char *state = self->sqlstate;
    return !self->lost && (strncmp (state, "22", 2) == 0 || strncmp (state, "23", 2) == 0);
}

//  Marks the one event a single-event round failed on, with the database's error
static int
s_mark_failed (s_proc_t *self, const char *why)
{
    const char *values [2] = { self->failed_ref, why };
    int rc = fs_pg_run (self->pg, "UPDATE intake.events SET processed_at = now (),"
                                  " process_error = $2 WHERE ref = $1::uuid"
                                  " AND processed_at IS NULL", 2, values);
    if (rc == 0) {
        fs_error ("event cannot be applied: marked with its error", "ref", self->failed_ref,
                  "reason", why);
        fs_counter_add (self->args->errors, 1);
        fs_counter_add (self->args->processed, 1);
    }
    return rc;
}

//  The connection (again after a lost one)
static int
s_connect (s_proc_t *self)
{
    if (!fs_pg_ok (self->pg) && fs_pg_connect (self->pg, 0))
        return -1;
    return 0;
}

//  One eventfd per worker, made once and kept for the life of the process: ingest's writers
//  may still signal after stop, and a closed descriptor's number could be reused meanwhile
#define S_MAX_WORKERS 16
static int s_wake_fds [S_MAX_WORKERS] = { -1, -1, -1, -1, -1, -1, -1, -1,
                                          -1, -1, -1, -1, -1, -1, -1, -1 };
//  Per worker (the index of its eventfd): true from when it is due for a round until it
//  waits again. A wake-up goes to an idle worker, which claims at once (see intake_process_wake)
static atomic_bool s_busy [S_MAX_WORKERS];

//  Resets the wake-up: whatever was stored is claimed by the round that follows
static void
s_drain_wake (s_proc_t *self)
{
    uint64_t count;
    if (read (self->wake, &count, sizeof count) < 0 && errno != EAGAIN)
        fs_warn ("processor wake-up unreadable", "reason", strerror (errno));
}

void
intake_process_actor (zsock_t *pipe, void *varg)
{
    s_proc_t self_data = { 0 };
    s_proc_t *self = &self_data;
    self->args = (intake_process_args_t *) varg;
    self->pipe = pipe;
    self->wake = self->args->wake_fd;      //  read before the signal: the next worker's follows
    int slot = -1;                          //  its index in s_wake_fds, -1 none (timer only)
    for (int i = 0; i < S_MAX_WORKERS && self->wake >= 0; i++)
        if (s_wake_fds [i] == self->wake)
            slot = i;
    const fs_config_t *config = self->args->config;
    long batch = config->intake_process_batch;
    self->pg = fs_pg_new (config->pg_url);
    self->hoods = (s_hood_t *) calloc (S_MAX_HOODS, sizeof *self->hoods);
    self->events = (s_event_t *) calloc ((size_t) batch, sizeof *self->events);
    if (!self->pg || !self->hoods || !self->events) {
        fs_pg_destroy (&self->pg);
        free (self->hoods);
        free (self->events);
        zsock_signal (pipe, 1);
        return;
    }
    zsock_signal (pipe, 0);

    bool due = true;                //  work may be waiting: a round now
    int64_t next_try = 0;           //  mono ms before which no round runs (back-off)
    long backoff = 0;               //  current back-off
    long isolate = 0;               //  rounds left to run one event at a time
    bool terminated = false;
    while (!terminated) {
        if (due && fs_mono_ms () >= next_try) {
            if (slot >= 0)
                atomic_store (&s_busy [slot], true);
            long limit = isolate > 0 ? 1 : batch;
            int rc = -1;
            if (s_connect (self) == 0)
                rc = s_round (self, limit);
            else {
                snprintf (self->why, sizeof self->why, "%s", fs_pg_error (self->pg));
                self->sqlstate [0] = 0;
                self->lost = true;
            }
            if (rc >= 0) {
                backoff = 0;
                due = rc == limit || isolate > 0;
                if (isolate > 0)
                    isolate--;
            }
            else
            if (self->restart) {
                fs_debug ("processing round undone", "reason", self->why);
                due = true;                 //  at once: nothing failed
            }
            else {
                const char *why = self->why;
                fs_counter_add (self->args->failures, 1);
                if (s_event_fault (self) && limit > 1) {
                    //  One event of the batch is at fault: find it, one by one
                    fs_warn ("processing batch failed: retrying its events one by one",
                             "reason", why);
                    isolate = limit;
                }
                else
                if (s_event_fault (self) && self->failed_ref [0]
                &&  s_mark_failed (self, why) == 0) {
                    if (isolate > 0)
                        isolate--;
                }
                else {
                    backoff = backoff ? backoff * 2 : S_BACKOFF_MIN_MS;
                    if (backoff > S_BACKOFF_MAX_MS)
                        backoff = S_BACKOFF_MAX_MS;
                    next_try = fs_mono_ms () + backoff;
                    fs_warn ("processing failed: retrying", "reason", why);
                }
                due = true;
            }
        }
        zmq_pollitem_t items [2];
        int nitems = 0;
        items [nitems++] = (zmq_pollitem_t) { zsock_resolve (pipe), 0, ZMQ_POLLIN, 0 };
        if (self->wake >= 0)
            items [nitems++] = (zmq_pollitem_t) { NULL, self->wake, ZMQ_POLLIN, 0 };
        long timeout = config->intake_process_poll_ms;
        if (!due && slot >= 0)
            atomic_store (&s_busy [slot], false);
        if (due) {
            int64_t wait = next_try - fs_mono_ms ();
            timeout = wait > 0 ? (long) wait : 0;
        }
        int fired = zmq_poll (items, nitems, timeout);
        if (fired < 0) {
            if (errno == EINTR)
                continue;               //  a signal: the parent decides when we stop
            break;
        }
        if (fired == 0)
            due = true;                 //  the safety net: poll anyway
        if (items [0].revents & ZMQ_POLLIN) {
            char *command = zstr_recv (pipe);
            terminated = !command || streq (command, "$TERM");
            zstr_free (&command);
        }
        if (nitems > 1 && (items [1].revents & ZMQ_POLLIN)) {
            s_drain_wake (self);
            due = true;
        }
    }
    for (size_t i = 0; i < self->nevents; i++)
        s_event_clear (&self->events [i]);
    free (self->events);
    free (self->hoods);
    free (self->json.buf);
    free (self->skipped);
    fs_pg_destroy (&self->pg);
    //  libpq's OpenSSL keeps per-thread state, freed when the thread exits; czmq signals the
    //  parent before that, so a process exiting right after stop could see it leaked (LSan
    //  did, now and then). Freed here, when the OpenSSL that libpq loaded provides the call
    void (*thread_stop) (void) = (void (*) (void)) dlsym (RTLD_DEFAULT, "OPENSSL_thread_stop");
    if (thread_stop)
        thread_stop ();
}

// ---- the service's hooks -----------------------------------------------------------------

static intake_process_args_t s_args;    //  one processor per process
static zactor_t *s_actors [S_MAX_WORKERS];
static atomic_int s_wake_count;         //  workers listening: the first s_wake_count fds

//  One idle worker is enough: it claims what was stored as soon as it wakes. Waking every
//  worker made the busy ones run a round each after theirs, most finding nothing or a
//  straggler, and each round costs every waiting event its round trips. When all are busy,
//  all are woken: whichever finishes first claims it. Never lost: the worker woken runs a
//  round after it reads its eventfd, and that round's claim sees this commit
void
intake_process_wake (void)
{
    int n = atomic_load (&s_wake_count);
    uint64_t one = 1;
    for (int i = 0; i < n; i++)
        if (s_wake_fds [i] >= 0 && !atomic_load (&s_busy [i])) {
            if (write (s_wake_fds [i], &one, sizeof one) < 0)
                continue;       //  EAGAIN: a wake-up is pending already: it will run a round
            return;
        }
    for (int i = 0; i < n; i++)
        if (s_wake_fds [i] >= 0 && write (s_wake_fds [i], &one, sizeof one) < 0)
            continue;           //  EAGAIN: a wake-up is pending already; the timer covers others
}

int
intake_process_init (fs_server_t *server)
{
    fs_metrics_t *metrics = fs_server_metrics (server);
    s_args.processed = fs_metrics_counter (metrics, "finestra_intake_processed_total",
                                           "Stored events processed (applied or marked)", NULL);
    s_args.batches = fs_metrics_counter (metrics, "finestra_intake_process_batches_total",
                                         "Processing transactions committed", NULL);
    s_args.errors = fs_metrics_counter (metrics, "finestra_intake_process_errors_total",
                                        "Stored events that could not be applied (marked)", NULL);
    s_args.failures = fs_metrics_counter (metrics, "finestra_intake_process_failures_total",
                                          "Processing transactions rolled back and retried",
                                          NULL);
    s_args.lag = fs_metrics_histogram (metrics, "finestra_intake_process_lag_seconds",
                                       "Age of the oldest event of each batch when claimed",
                                       NULL);
    return 0;
}

int
intake_process_start (fs_server_t *server)
{
    const fs_config_t *config = fs_server_config (server);
    if (!streq (config->intake_process, "on")) {
        fs_info ("processing off: events are stored, not processed",
                 "setting", "FINESTRA_INTAKE_PROCESS");
        return 0;
    }
    s_args.config = config;
    s_args.routes = fs_server_routes (server);
    for (long i = 0; i < config->intake_process_workers && i < S_MAX_WORKERS; i++) {
        if (s_wake_fds [i] < 0)
            s_wake_fds [i] = eventfd (0, EFD_NONBLOCK | EFD_CLOEXEC);
        s_args.wake_fd = s_wake_fds [i];            //  -1: that worker polls on its timer only
        if (!(s_actors [i] = zactor_new (intake_process_actor, &s_args))) {
            fs_error ("processor did not start");
            return -1;
        }
        if (s_wake_fds [i] >= 0)
            atomic_store (&s_wake_count, (int) i + 1);
    }
    return 0;
}

void
intake_process_stop (fs_server_t *server)
{
    //  Whatever it was doing is rolled back: the events stay unprocessed for next time
    atomic_store (&s_wake_count, 0);
    for (size_t i = 0; i < S_MAX_WORKERS; i++)
        zactor_destroy (&s_actors [i]);
}
