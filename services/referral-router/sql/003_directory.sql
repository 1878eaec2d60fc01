-- referral-router: the service directory and the Z-code mapping, operator data loaded by
-- `finestra-referral-router load-directory` (services/referral-router/data/*.csv). The
-- vocabularies of kinds, scopes, residency, capacity and conditions are checked in C
-- (router_rules.h) and again here; need categories are data.
CREATE TABLE need_categories (
    code        text PRIMARY KEY CHECK (code ~ '^[a-z][a-z0-9_]*$'),
    label       text NOT NULL,
    description text NOT NULL DEFAULT ''
);

-- ICD-10 Z55-Z65: blocks ("Z59") and subcodes ("Z59.0"), normalized upper case with the dot.
-- A code with no row in zcode_needs is known and deliberately unmapped.
CREATE TABLE zcodes (
    code  text PRIMARY KEY CHECK (code ~ '^Z(5[5-9]|6[0-5])(\.[0-9A-Z]{1,2})?$'),
    label text NOT NULL
);
CREATE TABLE zcode_needs (
    code text NOT NULL REFERENCES zcodes (code) ON DELETE CASCADE,
    need text NOT NULL REFERENCES need_categories (code),
    PRIMARY KEY (code, need)
);

CREATE TABLE services (
    code            text PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('social_services_centre', 'primary_care',
                        'home_help', 'childhood_at_risk', 'immigrant_reception',
                        'housing_office', 'womens_service', 'homelessness', 'employment',
                        'benefits_office')),
    name            text NOT NULL,
    territory_scope text NOT NULL CHECK (territory_scope IN ('city', 'district', 'neighbourhood')),
    territory_codes text[] NOT NULL DEFAULT '{}',   -- district or neighbourhood codes
    age_min         integer CHECK (age_min BETWEEN 0 AND 150),     -- inclusive; NULL: none
    age_max         integer CHECK (age_max BETWEEN 0 AND 150),
    residency       text NOT NULL CHECK (residency IN ('any', 'lives_in_city',
                        'registered_in_city')),
    any_need        boolean NOT NULL,               -- takes every need; else service_needs
    conditions      text[] NOT NULL DEFAULT '{}',   -- named flags, all required
    criteria_text   text NOT NULL,                  -- the criteria in words, for people
    capacity        text NOT NULL CHECK (capacity IN ('capacity', 'no_capacity',
                        'waiting_list')),
    delivery        text NOT NULL CHECK (delivery IN ('internal', 'feed')),
    delivery_target text NOT NULL,                  -- a suite service, or a feed name
    demo            boolean NOT NULL DEFAULT false, -- invented for the demo city
    active          boolean NOT NULL DEFAULT true,  -- false: absent from the last load
    loaded_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (age_min IS NULL OR age_max IS NULL OR age_min <= age_max),
    CHECK ((territory_scope = 'city') = (cardinality (territory_codes) = 0))
);
CREATE TABLE service_needs (
    service_code text NOT NULL REFERENCES services (code) ON DELETE CASCADE,
    need         text NOT NULL REFERENCES need_categories (code),
    PRIMARY KEY (service_code, need)
);
CREATE INDEX service_needs_need ON service_needs (need);
