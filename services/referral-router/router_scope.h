/*  router_scope.h - what may leave with a referral (pure rules, no database): the data
    categories and their fields, the consent purpose, service kinds -> consent recipient
    groups, each level's minimum data set, override bases, complexity factors, and the case
    conference's date. Defined once here; docs/ARCHITECTURE.md describes the tables. */
#ifndef ROUTER_SCOPE_H_INCLUDED
#define ROUTER_SCOPE_H_INCLUDED

#include "router_rules.h"

/* The consent purpose a referral's data transfer needs. */
#define ROUTER_PURPOSE "social_health_coordination"

/* Data categories (consent.granted data_categories), a bit each. */
typedef enum {
    ROUTER_DATA_IDENTITY      = 1 << 0, /* identity: names, document, birth date, sex */
    ROUTER_DATA_CONTACT       = 1 << 1, /* contact: address, phone, email, language */
    ROUTER_DATA_SOCIAL_HEALTH = 1 << 2, /* social_health: icd10 codes, the professional's note */
    ROUTER_DATA_ECONOMIC      = 1 << 3  /* economic: household size, benefit applications */
} router_data_t;
#define ROUTER_DATA_COUNT 4

/* "identity", ...; NULL when not exactly one known bit. */
const char *router_data_name (uint32_t bit);
/* The bit of a name, 0 when unknown. */
uint32_t router_data_parse (const char *name);

/* The levels. */
typedef enum {
    ROUTER_LEVEL_ORIENTATION,           /* orientation: no personal data */
    ROUTER_LEVEL_COMPLEMENTATION,       /* complementation: the minimum data set */
    ROUTER_LEVEL_JOINT,                 /* joint_treatment: also a shared plan */
    ROUTER_LEVEL_COUNT
} router_level_t;

const char *router_level_name (router_level_t level);
int router_level_parse (const char *name);
/* The categories a level's package asks for (before consent): orientation none,
   complementation and joint treatment identity, contact, social_health and economic (the
   economic fields are few: household size and the benefit applications intake knows). */
uint32_t router_level_categories (router_level_t level);

/* The consent recipient group of a service kind: housing_office -> "housing",
   primary_care -> "primary_care", employment -> "employment", every other kind (municipal
   social services and their specialised services) -> "social_services". */
const char *router_recipient_of (router_kind_t kind);

/* Override bases and the categories each releases: vital_interest -> identity, contact,
   social_health; legal_obligation and public_interest -> identity, contact. 0: unknown. */
uint32_t router_basis_categories (const char *basis);

/* Copies into to (zeroed) the fields of from whose category is in categories; the
   residency (a routing fact) never. to is the caller's to fs_proto_clear. Returns the
   categories of which at least one field was copied (what the package really carries). */
uint32_t router_scope_fill (const fs_referral_subject_t *from, uint32_t categories,
                            fs_referral_subject_t *to);

/* Complexity factors of joint treatment, a bit each. */
typedef enum {
    ROUTER_FACTOR_MULTIPLE_DOMAINS     = 1 << 0,    /* needs in two categories or more */
    ROUTER_FACTOR_MINORS_AT_RISK       = 1 << 1,    /* a childhood_at_risk need */
    ROUTER_FACTOR_EVICTION_WITH_MINORS = 1 << 2,    /* eviction in process, minors at home */
    ROUTER_FACTOR_GENDER_VIOLENCE      = 1 << 3,    /* a gender_violence need */
    ROUTER_FACTOR_DEPENDENCY           = 1 << 4,    /* a home_care or caregiver_support need */
    ROUTER_FACTOR_HOMELESSNESS         = 1 << 5     /* a homelessness need */
} router_factor_t;
#define ROUTER_FACTOR_COUNT 6

const char *router_factor_name (uint32_t bit);
/* The factors that hold for these needs, minors (-1 unknown) and condition bits known. */
uint32_t router_complexity (const char *const *needs, size_t nneeds, int minors,
                            uint32_t holds);

/* Days from routing to the case conference by urgency: urgent 2, preferent 7, ordinary 14. */
int router_conference_days (const char *urgency);

/* Age in full years on today (YYYY-MM-DD both); -1 when either is malformed. */
int router_age_on (const char *birth_date, const char *today);

#endif
