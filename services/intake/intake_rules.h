/*  intake_rules.h - intake's pure rules (no database, no sockets): name/document/address
    normalization, dates, triage and assignment. Built as the intake_rules library, which the
    service and the unit tests both link (so the rules are tested without a database). */
#ifndef INTAKE_RULES_H_INCLUDED
#define INTAKE_RULES_H_INCLUDED

#include "finestra.h"

/* ---- intake_registry_norm.c: matching keys ---------------------------------------- */

/* Folds UTF-8 text for matching: lower case, Catalan/Spanish accents stripped (à→a, ç→c,
   ñ→n, ...), l·l→ll, every other non-letter/digit a separator; writes the tokens, single-
   space separated, into out. Letters it does not know are kept as they are. */
void intake_fold (const char *text, char *out, size_t outlen);
/* The name key: given and family names folded, particles dropped (de, del, la, i, y, d', ...),
   tokens sorted, so case, accents, particles and order do not matter. */
void intake_name_key (const char *given, const char *family, char *out, size_t outlen);
/* Normalizes a document number (upper case; spaces, dashes and dots removed) into out.
   Returns true when its check letter is right (DNI: 8 digits + letter; NIE: X/Y/Z + 7 digits
   + letter); PASSPORT is always true; a wrong or unreadable DNI/NIE is false (the document is
   still registered, flagged). */
bool intake_doc_normalize (const char *doc_type, const char *number, char *out, size_t outlen);
/* The address key of a household: postcode|street|number, folded, street-type words
   unified (carrer/calle/c → c, avinguda/avenida/av/avda → av, passeig/paseo/pg → pg, plaça/
   plaza/pl → pl), particles dropped. */
void intake_address_key (const char *street, const char *number, const char *postcode,
                         char *out, size_t outlen);

/* Days since 1970-01-01 of a YYYY-MM-DD date (the first 10 characters of text); -1 on a
   bad date. */
int64_t intake_date_days (const char *text);
/* Writes the YYYY-MM-DD of days since 1970-01-01 into out[11]. */
void intake_date_format (int64_t days, char *out);

/* ---- intake_triage.c: urgent / preferent / ordinary, rules as data ---------------- */

typedef enum {
    INTAKE_TRIAGE_ALWAYS,               /* matches every event of its type */
    INTAKE_TRIAGE_EVICTION_WITHIN,      /* eviction in at most param days (and not past) */
    INTAKE_TRIAGE_MINORS_AT_LEAST,      /* at least param minors involved */
    INTAKE_TRIAGE_REPORTED_URGENCY,     /* the publisher's own urgency equals param_text */
    INTAKE_TRIAGE_KIND_COUNT
} intake_triage_kind_t;

/* One row of intake.triage_rules. */
typedef struct {
    char id [64];                       /* rule id, named in the outcome */
    char event_type [64];               /* type it applies to, "*" for any */
    intake_triage_kind_t kind;          /* condition */
    int param;                          /* its number (days, minors) */
    char param_text [32];               /* its text (an urgency) */
    const char *level;                  /* urgent | preferent | ordinary (static string) */
    int due_days;                       /* first attention due within */
} intake_triage_rule_t;

/* What triage looks at, taken from the event. Unknown facts never match a condition. */
typedef struct {
    const char *event_type;             /* the event's type */
    bool has_eviction;                  /* an eviction date was given */
    int64_t days_to_eviction;           /* eviction date minus the day it was reported */
    int64_t minors;                     /* minors involved, -1 unknown */
    const char *reported_urgency;       /* the publisher's urgency, NULL unknown */
} intake_triage_facts_t;

typedef struct {
    const char *rule_id;                /* the deciding rule, or "default" */
    const char *level;                  /* urgent | preferent | ordinary */
    int due_days;
} intake_triage_outcome_t;

#define INTAKE_TRIAGE_DEFAULT_DAYS 30

/* Parses a kind name ("eviction_within_days"...); -1 when unknown. */
int intake_triage_kind (const char *name);
/* The static level string for a name, NULL when not a level. */
const char *intake_triage_level (const char *name);
/* Rules in order, first match wins; none: ordinary, INTAKE_TRIAGE_DEFAULT_DAYS, "default". */
void intake_triage_eval (const intake_triage_rule_t *rules, size_t nrules,
                         const intake_triage_facts_t *facts, intake_triage_outcome_t *out);

/* ---- intake_triage.c: needs the router can route on -------------------------------- */

#define INTAKE_NEEDS_MAX 8

/* The need categories (the router's vocabulary, services/referral-router/data/needs.csv) an
   event's data tells: an eviction -> housing; an emergency by its kind (gender_violence,
   child_protection -> childhood_at_risk, homelessness, eviction/disaster/accommodation ->
   housing, elder_at_risk -> home_care) and by the needs its team found (shelter -> housing,
   food, medical -> health_care, or a category named as such). Health sends ICD-10 codes,
   which the router maps itself. Writes up to max distinct static strings; their count. */
size_t intake_needs (const char *event_type, const char *emergency_kind,
                     const fs_strlist_t *found, const char **needs, size_t max);

#endif
