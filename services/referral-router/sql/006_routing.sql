-- referral-router: routing a request (router_route.c). The referral records where it went,
-- at which level, with what data and on which legal basis; the person's snapshot stays here
-- (the router is the gatekeeper of what leaves); every candidate evaluated is kept with why.
ALTER TABLE referrals
    ADD COLUMN person_id          uuid,
    ADD COLUMN case_id            uuid,
    ADD COLUMN referent           text,             -- the centre intake assigned (requester side)
    ADD COLUMN level_requested    text,             -- suggested, or the event type's default
    ADD COLUMN level              text CHECK (level IN ('orientation', 'complementation',
                                                        'joint_treatment')),
    ADD COLUMN level_reason       text,             -- why level differs from level_requested
    ADD COLUMN target             text,             -- directory code; NULL: nothing fits
    ADD COLUMN needs              text[] NOT NULL DEFAULT '{}',
    ADD COLUMN unmapped_codes     text[] NOT NULL DEFAULT '{}',
    ADD COLUMN complexity_factors text[] NOT NULL DEFAULT '{}',
    ADD COLUMN motivation         text,             -- the motivated request, as sent
    ADD COLUMN data_categories    text[] NOT NULL DEFAULT '{}',  -- categories sent
    ADD COLUMN legal_basis        text;             -- consent, or an override's basis

CREATE INDEX referrals_person_held ON referrals (person_id) WHERE status = 'on-hold';

-- The person as intake sent it: msgpack of fs_referral_subject, plus the health data.
CREATE TABLE referral_subjects (
    referral_id uuid PRIMARY KEY REFERENCES referrals (id),
    subject     bytea,                              -- NULL: intake sent none
    icd10_codes text[] NOT NULL DEFAULT '{}',
    note        text,
    minors      integer
);

-- Every candidate service evaluated for a referral, and why it was or was not chosen.
CREATE TABLE routing_decisions (
    referral_id  uuid NOT NULL REFERENCES referrals (id),
    rank         integer NOT NULL,                  -- 1 = the chosen one when chosen
    service_code text NOT NULL,
    outcome      text NOT NULL CHECK (outcome IN ('chosen', 'fits_not_chosen', 'no_fit',
                                                  'unknown', 'no_capacity')),
    criterion    text,                              -- the first failing or unknown one
    reason       text NOT NULL,                     -- in words, for a professional
    PRIMARY KEY (referral_id, rank)
);

-- Health codes that mapped to no need: reported, never guessed.
CREATE TABLE unmapped_codes (
    referral_id uuid NOT NULL REFERENCES referrals (id),
    code        text NOT NULL,
    result      text NOT NULL CHECK (result IN ('unmapped', 'out_of_range', 'invalid')),
    at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (referral_id, code)
);

-- The data package as delivered (msgpack of fs_referral_package): what left, and to whom.
CREATE TABLE referral_packages (
    referral_id uuid PRIMARY KEY REFERENCES referrals (id),
    target      text NOT NULL,
    delivery    text NOT NULL CHECK (delivery IN ('internal', 'feed')),
    destination text NOT NULL,                      -- the feed name or the suite service
    payload     bytea NOT NULL,
    sent_at     timestamptz NOT NULL DEFAULT now()
);

-- Joint treatment: the shared plan, a referent on each side (role + service: the target
-- names its person later), and the case conference.
CREATE TABLE shared_plans (
    referral_id       uuid PRIMARY KEY REFERENCES referrals (id),
    requester_role    text NOT NULL,
    requester_service text NOT NULL,
    target_role       text NOT NULL,
    target_service    text NOT NULL,
    target_person     text,                         -- filled by the target
    factors           text[] NOT NULL CHECK (cardinality (factors) > 0),
    conference_on     date NOT NULL
);

-- Audited consent overrides: who released which referral's data, on what legal basis, why.
CREATE TABLE consent_overrides (
    id          bigserial PRIMARY KEY,
    referral_id uuid NOT NULL REFERENCES referrals (id),
    basis       text NOT NULL CHECK (basis IN ('vital_interest', 'legal_obligation',
                                               'public_interest')),
    by_who      text NOT NULL,
    reason      text NOT NULL,
    categories  text[] NOT NULL,
    at          timestamptz NOT NULL DEFAULT now()
);
