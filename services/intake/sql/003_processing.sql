-- intake: what processing an accepted event produces: persons, households, consent, triage, cases.
-- Processing order and the exactly-once mark: an event is processed when processed_at is set,
-- in the same transaction as everything it caused.
ALTER TABLE events ADD COLUMN seq bigserial;
ALTER TABLE events ADD COLUMN processed_at timestamptz;
CREATE UNIQUE INDEX events_seq ON events (seq);
CREATE INDEX events_unprocessed ON events (seq) WHERE processed_at IS NULL;

-- One person, one file. name_key: normalized names (intake_registry_norm.c), for candidates.
CREATE TABLE persons (
    id           uuid PRIMARY KEY,
    given_name   text NOT NULL,
    family_name  text NOT NULL,
    name_key     text NOT NULL,                     -- folded, particles out, tokens sorted
    birth_date   date NOT NULL,
    phone        text,
    email        text,
    language     text,
    merged_into  uuid REFERENCES persons (id),      -- set while merged into another file
    created_by   uuid NOT NULL,                     -- event ref that created the file
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX persons_match ON persons (name_key, birth_date);

-- Identity documents, normalized (upper case, no spaces or dashes); one owner each.
CREATE TABLE person_documents (
    doc_type     text NOT NULL CHECK (doc_type IN ('DNI', 'NIE', 'PASSPORT')),
    doc_number   text NOT NULL,
    person_id    uuid NOT NULL REFERENCES persons (id),
    check_ok     boolean NOT NULL,                  -- DNI/NIE check letter right (PASSPORT: true)
    created_by   uuid NOT NULL,
    PRIMARY KEY (doc_type, doc_number)
);
CREATE INDEX person_documents_person ON person_documents (person_id);

-- Possible duplicates, for a person to review: never merged automatically.
CREATE TABLE match_candidates (
    id           bigserial PRIMARY KEY,
    person_id    uuid NOT NULL REFERENCES persons (id),   -- the newer file
    candidate_id uuid NOT NULL REFERENCES persons (id),   -- the existing file it resembles
    reason       text NOT NULL,
    status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'merged', 'dismissed')),
    event_ref    uuid NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (person_id, candidate_id)
);

-- Merges, audited, with what moved so that unmerge can put it back.
CREATE TABLE merges (
    id               bigserial PRIMARY KEY,
    keep_id          uuid NOT NULL REFERENCES persons (id),
    merged_id        uuid NOT NULL REFERENCES persons (id),
    merged_by        text NOT NULL,
    reason           text NOT NULL,
    merged_at        timestamptz NOT NULL DEFAULT now(),
    moved_documents  text[] NOT NULL DEFAULT '{}',  -- "TYPE:NUMBER" moved to keep_id
    moved_cases      uuid[] NOT NULL DEFAULT '{}',
    moved_consents   uuid[] NOT NULL DEFAULT '{}',
    undone_at        timestamptz,
    undone_by        text,
    undo_reason      text
);

-- Households (unitat de convivència): one per normalized address.
CREATE TABLE households (
    id                 uuid PRIMARY KEY,
    address_key        text NOT NULL UNIQUE,
    street             text NOT NULL,
    number             text NOT NULL,
    postcode           text NOT NULL,
    created_by         uuid NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE household_members (
    id            bigserial PRIMARY KEY,
    household_id  uuid NOT NULL REFERENCES households (id),
    person_id     uuid NOT NULL REFERENCES persons (id),
    relationship  text NOT NULL DEFAULT 'unknown',
    since         timestamptz NOT NULL DEFAULT now(),
    until         timestamptz,                      -- set when the person moves out
    opened_by     uuid NOT NULL,
    closed_by     uuid
);
CREATE UNIQUE INDEX household_members_current ON household_members (person_id) WHERE until IS NULL;

-- Consent records, which the referral router checks before data crosses.
CREATE TABLE consents (
    id               uuid PRIMARY KEY,
    person_id        uuid NOT NULL REFERENCES persons (id),
    consent_ref      text,                          -- the publisher's reference, when given
    purpose          text NOT NULL,
    data_categories  text[] NOT NULL DEFAULT '{}',
    recipients       text[] NOT NULL DEFAULT '{}',
    given_at         timestamptz NOT NULL,
    expires_at       timestamptz,
    withdrawn_at     timestamptz,
    evidence_ref     text,
    source           text NOT NULL,
    event_ref        uuid NOT NULL
);
CREATE INDEX consents_person ON consents (person_id);

-- Triage rules as data: evaluated in `position` order, first enabled match wins; no match
-- gives ordinary with 30 days. Kinds (intake_triage.c): always, eviction_within_days (param =
-- days), minors_at_least (param = count), reported_urgency (param_text = urgent|preferent|...).
CREATE TABLE triage_rules (
    id          text PRIMARY KEY,
    position    integer NOT NULL UNIQUE,
    event_type  text NOT NULL,                      -- '*' for any
    kind        text NOT NULL CHECK (kind IN ('always', 'eviction_within_days', 'minors_at_least',
                                              'reported_urgency')),
    param       integer NOT NULL DEFAULT 0,
    param_text  text NOT NULL DEFAULT '',
    level       text NOT NULL CHECK (level IN ('urgent', 'preferent', 'ordinary')),
    due_days    integer NOT NULL CHECK (due_days BETWEEN 0 AND 365),
    description text NOT NULL,
    enabled     boolean NOT NULL DEFAULT true
);
INSERT INTO triage_rules (id, position, event_type, kind, param, param_text, level, due_days, description) VALUES
 ('eviction-30d',      10, 'housing.eviction_scheduled',  'eviction_within_days', 30, '', 'urgent',    2, 'Eviction in 30 days or less'),
 ('eviction-minors',   20, 'housing.eviction_scheduled',  'minors_at_least',       1, '', 'urgent',    2, 'Eviction of a household with minors'),
 ('emergency-minors',  30, 'emergency.intervention',      'minors_at_least',       1, '', 'urgent',    1, 'Emergency intervention involving minors'),
 ('emergency',         40, 'emergency.intervention',      'always',                0, '', 'urgent',    2, 'Emergency intervention'),
 ('health-urgent',     50, 'health.social_risk_detected', 'reported_urgency',      0, 'urgent', 'urgent', 2, 'Health marks the social risk urgent'),
 ('health-preferent',  60, 'health.social_risk_detected', 'reported_urgency',      0, 'preferent', 'preferent', 10, 'Health marks the social risk preferent'),
 ('eviction-90d',      70, 'housing.eviction_scheduled',  'eviction_within_days', 90, '', 'preferent', 10, 'Eviction in 90 days or less'),
 ('eviction',          80, 'housing.eviction_scheduled',  'always',                0, '', 'preferent', 15, 'Any scheduled eviction');

-- Cases: one per event that opens one; placed at a centre, or unplaced (then in `unplaced`).
CREATE TABLE cases (
    id                 uuid PRIMARY KEY,
    person_id          uuid NOT NULL REFERENCES persons (id),
    event_ref          uuid NOT NULL UNIQUE REFERENCES events (ref),
    event_type         text NOT NULL,
    centre_code        text,                        -- NULL: unplaced
    neighbourhood_code text,
    triage_level       text NOT NULL CHECK (triage_level IN ('urgent', 'preferent', 'ordinary')),
    triage_rule        text NOT NULL,               -- the rule that decided it ('default')
    due_date           date NOT NULL,               -- first attention due by
    opened_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cases_person ON cases (person_id);

-- Cases no centre could be found for: visible (`finestra-intake unplaced`), never lost.
CREATE TABLE unplaced (
    case_id      uuid PRIMARY KEY REFERENCES cases (id),
    reason       text NOT NULL,
    postcode     text,
    neighbourhood text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    resolved_at  timestamptz
);
