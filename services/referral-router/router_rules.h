/*  router_rules.h - the referral-router's pure rules (no database, no sockets): the service
    directory's vocabularies and rows, access-criteria evaluation, the ICD-10 Z55-Z65 -> need
    mapping lookup, and the referral lifecycle's transition table. Built as the router_rules
    library, which the service and the unit tests both link. */
#ifndef ROUTER_RULES_H_INCLUDED
#define ROUTER_RULES_H_INCLUDED

#include "finestra.h"

#define ROUTER_CODE_MAX     32          /* service, need, territory and feed codes */
#define ROUTER_NAME_MAX     160         /* a service's name */
#define ROUTER_TEXT_MAX     1024        /* the criteria's text for people */
#define ROUTER_LIST_MAX     32          /* territory codes or needs of one service */
#define ROUTER_ERR_MAX      512         /* any error or reason text */

/* ---- router_csv.c: one CSV line --------------------------------------------------------- */

/* Splits one CSV line (RFC 4180 quoting, no embedded newlines) in place into at most max
   fields. Returns the field count, or -1 when a quote is not closed or text follows a
   closing quote (*column then says which field, 1-based). */
int router_csv_split (char *line, char **fields, int max, int *column);

/* ---- router_directory_rules.c: vocabularies and a directory row --------------------- */

typedef enum {
    ROUTER_KIND_SOCIAL_SERVICES,        /* social_services_centre (CSS) */
    ROUTER_KIND_PRIMARY_CARE,           /* primary_care (CAP) */
    ROUTER_KIND_HOME_HELP,              /* home_help (SAD) */
    ROUTER_KIND_CHILDHOOD_AT_RISK,      /* childhood_at_risk (EAIA) */
    ROUTER_KIND_IMMIGRANT_RECEPTION,    /* immigrant_reception (SAIER) */
    ROUTER_KIND_HOUSING,                /* housing_office */
    ROUTER_KIND_WOMEN,                  /* womens_service (SIAD / PIAD) */
    ROUTER_KIND_HOMELESSNESS,           /* homelessness */
    ROUTER_KIND_EMPLOYMENT,             /* employment (Barcelona Activa) */
    ROUTER_KIND_BENEFITS,               /* benefits_office (the suite's benefits-office) */
    ROUTER_KIND_COUNT
} router_kind_t;

typedef enum {
    ROUTER_SCOPE_CITY,                  /* the whole city */
    ROUTER_SCOPE_DISTRICT,              /* the districts listed */
    ROUTER_SCOPE_NEIGHBOURHOOD,         /* the neighbourhoods listed */
    ROUTER_SCOPE_COUNT
} router_scope_t;

/* What a service requires of where the person lives. */
typedef enum {
    ROUTER_RESIDENCY_ANY,               /* any: nobody turned away for it */
    ROUTER_RESIDENCY_LIVES,             /* lives_in_city: registered or not */
    ROUTER_RESIDENCY_REGISTERED,        /* registered_in_city: on the padró */
    ROUTER_RESIDENCY_COUNT
} router_residency_t;

/* What is known of the person's residency. */
typedef enum {
    ROUTER_LIVES_UNKNOWN,               /* not known */
    ROUTER_LIVES_OUTSIDE,               /* does not live in the city */
    ROUTER_LIVES_UNREGISTERED,          /* lives in the city, not registered */
    ROUTER_LIVES_REGISTERED,            /* lives in the city, registered */
    ROUTER_LIVES_IN_CITY                /* lives in the city, registration not known */
} router_lives_t;

typedef enum {
    ROUTER_CAPACITY_OPEN,               /* capacity */
    ROUTER_CAPACITY_NONE,               /* no_capacity: takes nobody now */
    ROUTER_CAPACITY_WAITING,            /* waiting_list: takes people, not at once */
    ROUTER_CAPACITY_COUNT
} router_capacity_t;

typedef enum {
    ROUTER_DELIVERY_INTERNAL,           /* internal: a service of the suite */
    ROUTER_DELIVERY_FEED,               /* feed: another city system reading the outbound feed */
    ROUTER_DELIVERY_COUNT
} router_delivery_t;

/* Other conditions, as named flags (a bit each). Facts are computed by code, so a new flag
   is a code change: the vocabulary lives here, not in data. */
typedef enum {
    ROUTER_COND_WOMAN                = 1 << 0,  /* woman */
    ROUTER_COND_MINORS_IN_HOUSEHOLD  = 1 << 1,  /* minors_in_household */
    ROUTER_COND_REDUCED_AUTONOMY     = 1 << 2,  /* reduced_autonomy */
    ROUTER_COND_DEPENDENCY_GRADE     = 1 << 3,  /* dependency_recognised: a grade granted */
    ROUTER_COND_MIGRANT_OR_RETURNEE  = 1 << 4,  /* migrant_or_returnee */
    ROUTER_COND_EVICTION_IN_PROCESS  = 1 << 5,  /* eviction_in_process */
    ROUTER_COND_SLEEPING_ROUGH       = 1 << 6,  /* sleeping_rough */
    ROUTER_COND_JOB_SEEKER           = 1 << 7,  /* job_seeker */
} router_condition_t;
#define ROUTER_COND_COUNT 8

/* Names of each vocabulary (as written in the CSV and the database), by value. */
const char *router_kind_name (router_kind_t kind);
const char *router_scope_name (router_scope_t scope);
const char *router_residency_name (router_residency_t residency);
const char *router_capacity_name (router_capacity_t capacity);
const char *router_delivery_name (router_delivery_t delivery);
/* Name of one condition bit; NULL if not exactly one known bit. */
const char *router_condition_name (uint32_t bit);
/* Parses a name of the vocabulary; -1 when unknown (conditions: the bit, 0 when unknown). */
int router_kind_parse (const char *name);
int router_scope_parse (const char *name);
int router_residency_parse (const char *name);
int router_capacity_parse (const char *name);
int router_delivery_parse (const char *name);
uint32_t router_condition_parse (const char *name);

/* One service of the directory, with its access criteria as data. */
typedef struct {
    char code [ROUTER_CODE_MAX];                        /* unique, e.g. "CSS14", "SAIER" */
    router_kind_t kind;                                 /* what sort of service */
    char name [ROUTER_NAME_MAX];                        /* for people */
    router_scope_t scope;                               /* territory served */
    char territory [ROUTER_LIST_MAX][ROUTER_CODE_MAX];  /* district or neighbourhood codes */
    size_t nterritory;                                  /* 0 for the city */
    int age_min;                                        /* inclusive, -1 for no bound */
    int age_max;                                        /* inclusive, -1 for no bound */
    router_residency_t residency;                       /* residency required */
    bool any_need;                                      /* takes every need ("*") */
    char needs [ROUTER_LIST_MAX][ROUTER_CODE_MAX];      /* need categories it takes */
    size_t nneeds;                                      /* 0 when any_need */
    uint32_t conditions;                                /* router_condition_t bits required */
    char criteria_text [ROUTER_TEXT_MAX];               /* the criteria in words, for people */
    router_capacity_t capacity;                         /* capacity state now */
    router_delivery_t delivery;                         /* how it receives referrals */
    char delivery_target [ROUTER_CODE_MAX];             /* service name or feed name */
    bool demo;                                          /* invented for the demo city */
} router_service_t;

/* The services CSV's columns, in order (the header must be exactly these). */
extern const char *const router_service_columns [];
#define ROUTER_SERVICE_NCOLUMNS 15

/* Fills service from one CSV row of ROUTER_SERVICE_NCOLUMNS fields. Needs are checked only
   for form here (the vocabulary is data: the loader checks them against it). Returns 0, or
   the 1-based column of the first bad field with a specific message in err. */
int router_service_parse (char **fields, router_service_t *service, char *err, size_t errlen);

/* True when text is a code: 1..ROUTER_CODE_MAX-1 of [A-Za-z0-9_.-] */
bool router_code_valid (const char *text);

/* ---- router_criteria.c: does a service fit a person? --------------------------------- */

/* What is known of the person. Unknown facts never make a criterion pass. */
typedef struct {
    int age;                            /* years, -1 unknown */
    router_lives_t lives;               /* residency */
    const char *district;               /* district code, NULL unknown */
    const char *neighbourhood;          /* neighbourhood code, NULL unknown */
    const char *const *needs;           /* need categories, nneeds of them */
    size_t nneeds;                      /* 0: needs unknown */
    uint32_t holds;                     /* conditions known to hold */
    uint32_t lacks;                     /* conditions known not to hold; in neither: unknown */
    const char *sex;                    /* female, male or non_binary as recorded, NULL
                                           unknown: decides `woman` when holds/lacks do not */
} router_facts_t;

/* The criteria, a bit each, in the order they are checked and reported. */
typedef enum {
    ROUTER_CRIT_TERRITORY   = 1 << 0,
    ROUTER_CRIT_AGE_MIN     = 1 << 1,
    ROUTER_CRIT_AGE_MAX     = 1 << 2,
    ROUTER_CRIT_RESIDENCY   = 1 << 3,
    ROUTER_CRIT_NEEDS       = 1 << 4,
    ROUTER_CRIT_CONDITIONS  = 1 << 5,
    ROUTER_CRIT_CAPACITY    = 1 << 6,
} router_criterion_t;
#define ROUTER_CRIT_COUNT 7

typedef enum {
    ROUTER_FIT,                         /* every criterion holds */
    ROUTER_NO_FIT,                      /* at least one criterion fails */
    ROUTER_FIT_UNKNOWN                  /* none fails, but some cannot be decided */
} router_verdict_t;

typedef struct {
    router_verdict_t verdict;
    uint32_t failed;                    /* criteria that fail */
    uint32_t unknown;                   /* criteria that need a fact not known */
    router_criterion_t first;           /* the first failing (else unknown) criterion, or 0 */
    bool waiting_list;                  /* fits, but the service has a waiting list */
    char reason [ROUTER_ERR_MAX];       /* the first one in words; "" when it fits */
} router_fit_t;

/* "territory", "age_min", ...; NULL if not exactly one known bit. */
const char *router_criterion_name (uint32_t bit);
/* Evaluates every criterion of service for facts; fills out. */
void router_criteria_eval (const router_service_t *service, const router_facts_t *facts,
                           router_fit_t *out);

/* ---- router_zcode.c: ICD-10 Z55-Z65 -> need categories -------------------------------- */

#define ROUTER_ZCODE_MAX 8              /* "Z59.01" and its NUL fit */

/* One row of the mapping: a block ("Z59") or a subcode ("Z59.0"), and its needs (none: the
   code is known and deliberately not mapped). */
typedef struct {
    const char *code;                   /* normalized: upper case, with the dot */
    const char *label;                  /* ICD-10 title */
    const char *const *needs;           /* nneeds need categories */
    size_t nneeds;
} router_zmap_t;

typedef enum {
    ROUTER_ZCODE_MAPPED,                /* needs found (on the code or a shorter parent) */
    ROUTER_ZCODE_UNMAPPED,              /* a Z55-Z65 code the table does not map */
    ROUTER_ZCODE_OUT_OF_RANGE,          /* a well-formed ICD-10 code outside Z55-Z65 */
    ROUTER_ZCODE_INVALID                /* not an ICD-10 code */
} router_zcode_result_t;

/* Normalizes "z590", "Z59.0", " Z59 " into "Z59.0" / "Z59" (out[ROUTER_ZCODE_MAX]).
   Returns ROUTER_ZCODE_OUT_OF_RANGE for a well-formed code outside Z55-Z65 (still written),
   ROUTER_ZCODE_INVALID when malformed (out is ""), else ROUTER_ZCODE_MAPPED meaning "in
   range". */
router_zcode_result_t router_zcode_normalize (const char *text, char *out);

/* Looks code up in map (nmap rows, any order): the code itself, else its parents down to the
   3-character block ("Z59.01" -> "Z59.0" -> "Z59"). The first row found decides: a row with
   no needs means unmapped, it is never skipped for a parent. *row is set to that row (NULL
   when none); normalized (when not NULL) receives the normalized code. */
router_zcode_result_t router_zcode_lookup (const router_zmap_t *map, size_t nmap,
                                           const char *code, const router_zmap_t **row,
                                           char *normalized);

/* The needs of several codes (a health event's icd10_codes): the union, in first-seen
   order, of each code's needs as router_zcode_lookup finds them, into needs (at most max;
   the strings are the map's). results[i] (when not NULL; ncodes entries) receives each
   code's lookup result, so unmapped codes can be reported. Returns the needs written. */
size_t router_zcode_needs (const router_zmap_t *map, size_t nmap, const char *const *codes,
                           size_t ncodes, const char **needs, size_t max,
                           router_zcode_result_t *results);

/* ---- router_lifecycle.c: referral statuses, who may change them, reasons ------------- */

/* FHIR Task statuses, as the HL7 Gravity (SDOH) referral guide uses them. */
typedef enum {
    ROUTER_ST_DRAFT, ROUTER_ST_REQUESTED, ROUTER_ST_ACCEPTED, ROUTER_ST_REJECTED,
    ROUTER_ST_IN_PROGRESS, ROUTER_ST_ON_HOLD, ROUTER_ST_COMPLETED, ROUTER_ST_FAILED,
    ROUTER_ST_CANCELLED, ROUTER_ST_ENTERED_IN_ERROR,
    ROUTER_ST_COUNT
} router_status_t;

/* Who proposes a transition; a table row allows one or both. */
typedef enum {
    ROUTER_ACTOR_REQUESTER = 1,         /* who sent the referral */
    ROUTER_ACTOR_TARGET    = 2,         /* the service it was sent to */
    ROUTER_ACTOR_BOTH      = 3
} router_actor_t;

/* One allowed transition. */
typedef struct {
    router_status_t from;
    router_status_t to;
    router_actor_t who;                 /* who may make it */
    bool reason_required;               /* a structured reason must come with it */
} router_transition_t;

/* THE table: every allowed transition; anything else is refused. */
extern const router_transition_t router_transitions [];
extern const size_t router_ntransitions;

/* Structured reasons: the vocabulary, for measuring inappropriate referrals. */
typedef struct {
    const char *code;                   /* "outside_criteria" */
    uint32_t statuses;                  /* 1 << router_status_t it may explain */
    bool inappropriate;                 /* counts as an inappropriate referral */
    bool needs_text;                    /* only meaningful with a free text ("other") */
    const char *meaning;                /* one line for people */
} router_reason_t;

extern const router_reason_t router_reasons [];
extern const size_t router_nreasons;

/* "in-progress" etc.; NULL out of range. */
const char *router_status_name (router_status_t status);
/* -1 when unknown. */
int router_status_parse (const char *name);
/* "requester", "target", "requester or target". */
const char *router_actor_name (router_actor_t actor);
/* -1 when unknown ("requester" or "target"). */
int router_actor_parse (const char *name);
/* The reason of that code, NULL when unknown. */
const router_reason_t *router_reason_find (const char *code);
/* The table's row for from -> to, NULL when there is none. */
const router_transition_t *router_transition_find (router_status_t from, router_status_t to);

typedef enum {
    ROUTER_TX_OK = 0,
    ROUTER_TX_UNKNOWN_STATUS,           /* from or to is not a status */
    ROUTER_TX_ILLEGAL,                  /* not in the table at all */
    ROUTER_TX_WRONG_ACTOR,              /* in the table, but for the other party */
    ROUTER_TX_REASON_MISSING,           /* a reason is required and none was given */
    ROUTER_TX_REASON_UNKNOWN,           /* the reason code is not in the vocabulary */
    ROUTER_TX_REASON_NOT_FOR_STATUS,    /* the reason does not explain that status */
    ROUTER_TX_REASON_TEXT_MISSING       /* "other" without a text */
} router_tx_result_t;

/* Checks that actor may move a referral from -> to with that reason (reason_code NULL or ""
   for none; a reason given where none is required is still checked). On refusal err says why
   and, for ILLEGAL and WRONG_ACTOR, lists the transitions allowed from that status for that
   actor (with "(reason)" where one is required). */
router_tx_result_t router_transition_check (router_status_t from, router_status_t to,
                                            router_actor_t actor, const char *reason_code,
                                            const char *reason_text, char *err, size_t errlen);
/* Writes the statuses actor may move to from from ("accepted, rejected (reason), ...", or
   "none: <from> is final") into out. */
void router_transition_allowed (router_status_t from, router_actor_t actor, char *out,
                                size_t outlen);

#endif
