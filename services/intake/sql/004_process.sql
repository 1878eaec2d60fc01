-- intake: the processor (intake_process.c). It claims unprocessed events in seq order, computes
-- the pure parts in C (name/document/address keys, triage) and applies a whole batch with ONE
-- call of intake.process_batch, in the same transaction that marks the events processed.

-- An event whose stored bytes could not be applied: processed (never retried), error kept.
ALTER TABLE events ADD COLUMN process_error text;

-- One NOTIFY per statement that stores events, in its transaction: the processor wakes when
-- the batch commits (a trigger, so the ingest path pays no extra round trip).
CREATE FUNCTION notify_events () RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify ('finestra_intake_events', '');
    RETURN NULL;
END $$;
CREATE TRIGGER events_notify AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION notify_events ();

-- A source's consent_ref names one consent: a second grant updates it.
CREATE UNIQUE INDEX consents_source_ref ON consents (source, consent_ref);

-- Revocations that arrived before their grant: the grant, when it comes, is stored withdrawn
-- (if it was given no later than the revocation) and the row here is removed.
CREATE TABLE consent_revocations (
    source       text NOT NULL,
    consent_ref  text NOT NULL,
    revoked_at   timestamptz NOT NULL,
    reason       text,
    event_ref    uuid NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, consent_ref)
);

-- The surviving file of a person: follows merged_into.
CREATE FUNCTION live_person (pid uuid) RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
    nxt uuid;
BEGIN
    FOR hop IN 1..32 LOOP
        SELECT merged_into INTO nxt FROM intake.persons WHERE id = pid;
        EXIT WHEN nxt IS NULL;
        pid := nxt;
    END LOOP;
    RETURN pid;
END $$;

-- The household of an address key, created on first sight.
CREATE FUNCTION household_of (a jsonb, ev uuid) RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
    hid uuid;
BEGIN
    SELECT id INTO hid FROM intake.households WHERE address_key = a->>'key';
    IF hid IS NULL THEN
        hid := gen_random_uuid ();
        INSERT INTO intake.households (id, address_key, street, number, postcode, created_by)
        VALUES (hid, a->>'key', a->>'street', a->>'number', a->>'postcode', ev);
    END IF;
    RETURN hid;
END $$;

-- Makes hid the person's current household: closes the old membership when it differs.
CREATE FUNCTION join_household (pid uuid, hid uuid, rel text, ev uuid) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    cur record;
BEGIN
    SELECT id, household_id, relationship INTO cur
      FROM intake.household_members WHERE person_id = pid AND until IS NULL;
    IF FOUND AND cur.household_id = hid THEN
        IF rel <> 'unknown' AND cur.relationship <> rel THEN
            UPDATE intake.household_members SET relationship = rel WHERE id = cur.id;
        END IF;
        RETURN;
    END IF;
    IF FOUND THEN
        UPDATE intake.household_members SET until = now (), closed_by = ev WHERE id = cur.id;
    END IF;
    INSERT INTO intake.household_members (household_id, person_id, relationship, opened_by)
    VALUES (hid, pid, rel, ev);
END $$;

-- One person, one file. p: dt (DNI|NIE|PASSPORT|NONE), dn (normalized), ok (check letter),
-- given, family, nk (name key), birth, phone, email, lang. mkey: the address key that layer
-- (b) compares with the current household. Layers:
--  (a) a registered document -> its (surviving) file;
--  (b) NONE and exactly one live file with the same name key + birth date living at mkey;
--  (c) a new file; every live file with the same name key + birth date becomes a candidate.
CREATE FUNCTION resolve_person (p jsonb, mkey text, ev uuid) RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
    dt text := p->>'dt';
    dn text := p->>'dn';
    nk text := p->>'nk';
    bd date := (p->>'birth')::date;
    ok boolean := coalesce ((p->>'ok')::boolean, true);
    pid uuid;
    merged uuid;
    ids uuid[];
    r record;
    reason text;
BEGIN
    IF dt <> 'NONE' THEN
        SELECT d.person_id, q.merged_into INTO pid, merged
          FROM intake.person_documents d JOIN intake.persons q ON q.id = d.person_id
         WHERE d.doc_type = dt AND d.doc_number = dn;
        IF merged IS NOT NULL THEN
            pid := intake.live_person (merged);
        END IF;
    ELSE
        SELECT array_agg (q.id) INTO ids
          FROM intake.persons q
          JOIN intake.household_members m ON m.person_id = q.id AND m.until IS NULL
          JOIN intake.households h ON h.id = m.household_id
         WHERE q.name_key = nk AND q.birth_date = bd AND q.merged_into IS NULL
           AND h.address_key = mkey;
        IF cardinality (ids) = 1 THEN
            pid := ids [1];
        END IF;
    END IF;
    IF pid IS NOT NULL THEN
        IF p ? 'phone' OR p ? 'email' OR p ? 'lang' THEN
            UPDATE intake.persons
               SET phone = coalesce (p->>'phone', phone), email = coalesce (p->>'email', email),
                   language = coalesce (p->>'lang', language), updated_at = now ()
             WHERE id = pid;
        END IF;
        RETURN pid;
    END IF;

    pid := gen_random_uuid ();
    INSERT INTO intake.persons (id, given_name, family_name, name_key, birth_date, phone, email,
                                language, created_by)
    VALUES (pid, p->>'given', p->>'family', nk, bd, p->>'phone', p->>'email', p->>'lang', ev);
    IF dt <> 'NONE' THEN
        INSERT INTO intake.person_documents (doc_type, doc_number, person_id, check_ok, created_by)
        VALUES (dt, dn, pid, ok, ev);
    END IF;
    FOR r IN
        SELECT q.id,
               (SELECT string_agg (d.doc_type || ' ' || d.doc_number
                                   || CASE WHEN d.check_ok THEN '' ELSE ' (wrong check letter)' END,
                                   ', ' ORDER BY d.doc_type, d.doc_number)
                  FROM intake.person_documents d WHERE d.person_id = q.id) AS docs,
               (SELECT h.address_key FROM intake.household_members m
                  JOIN intake.households h ON h.id = m.household_id
                 WHERE m.person_id = q.id AND m.until IS NULL) AS akey
          FROM intake.persons q
         WHERE q.name_key = nk AND q.birth_date = bd AND q.merged_into IS NULL AND q.id <> pid
    LOOP
        reason := 'same name and birth date; ';
        IF dt = 'NONE' AND r.docs IS NULL THEN
            reason := reason || 'no document on either';
        ELSE
            reason := reason || 'document differs: '
                || CASE WHEN dt = 'NONE' THEN 'none' ELSE dt || ' ' || dn END || ' here, '
                || coalesce (r.docs, 'none') || ' there';
        END IF;
        reason := reason || CASE WHEN r.akey = mkey THEN '; same address' ELSE '; address differs' END;
        IF NOT ok THEN
            reason := reason || '; ' || dt || ' ' || dn || ' has a wrong check letter';
        END IF;
        INSERT INTO intake.match_candidates (person_id, candidate_id, reason, event_ref)
        VALUES (pid, r.id, reason, ev) ON CONFLICT (person_id, candidate_id) DO NOTHING;
    END LOOP;
    RETURN pid;
END $$;

-- consent.granted: one consents row per source + consent_ref (a second grant updates it).
-- Withdrawn when a revocation at or after given_at is known (on the row, or pending).
CREATE FUNCTION grant_consent (pid uuid, src text, g jsonb, ev uuid, OUT cid uuid, OUT status text)
LANGUAGE plpgsql AS $$
DECLARE
    given timestamptz := to_timestamp ((g->>'given_ms')::numeric / 1000);
    expires timestamptz := to_timestamp ((g->>'expires_ms')::numeric / 1000);
    withdrawn timestamptz;
    pending timestamptz;
BEGIN
    SELECT id, withdrawn_at INTO cid, withdrawn
      FROM intake.consents WHERE source = src AND consent_ref = g->>'ref' FOR UPDATE;
    DELETE FROM intake.consent_revocations WHERE source = src AND consent_ref = g->>'ref'
    RETURNING revoked_at INTO pending;
    IF pending IS NOT NULL AND (withdrawn IS NULL OR pending > withdrawn) THEN
        withdrawn := pending;
    END IF;
    IF withdrawn < given THEN
        withdrawn := NULL;              -- granted again after it was withdrawn
    END IF;
    IF cid IS NULL THEN
        cid := gen_random_uuid ();
        INSERT INTO intake.consents (id, person_id, consent_ref, purpose, data_categories,
                                     recipients, given_at, expires_at, withdrawn_at,
                                     evidence_ref, source, event_ref)
        VALUES (cid, pid, g->>'ref', g->>'purpose',
                ARRAY (SELECT jsonb_array_elements_text (g->'cats')),
                ARRAY (SELECT jsonb_array_elements_text (g->'recips')),
                given, expires, withdrawn, g->>'evidence', src, ev);
    ELSE
        UPDATE intake.consents
           SET person_id = pid, purpose = g->>'purpose',
               data_categories = ARRAY (SELECT jsonb_array_elements_text (g->'cats')),
               recipients = ARRAY (SELECT jsonb_array_elements_text (g->'recips')),
               given_at = given, expires_at = expires, withdrawn_at = withdrawn,
               evidence_ref = g->>'evidence', event_ref = ev
         WHERE id = cid;
    END IF;
    status := CASE WHEN withdrawn IS NULL THEN 'granted' ELSE 'withdrawn' END;
END $$;

-- consent.revoked: withdraws the source's consent_ref if it was given no later than the
-- revocation; unknown yet: kept pending for its grant. cid NULL when nothing changed.
CREATE FUNCTION revoke_consent (src text, r jsonb, ev uuid, OUT cid uuid, OUT purpose text)
LANGUAGE plpgsql AS $$
DECLARE
    revoked timestamptz := to_timestamp ((r->>'at_ms')::numeric / 1000);
BEGIN
    UPDATE intake.consents c SET withdrawn_at = revoked
     WHERE c.source = src AND c.consent_ref = r->>'ref' AND c.withdrawn_at IS NULL
       AND c.given_at <= revoked
    RETURNING c.id, c.purpose INTO cid, purpose;
    IF cid IS NULL AND NOT EXISTS (SELECT 1 FROM intake.consents c
                                    WHERE c.source = src AND c.consent_ref = r->>'ref') THEN
        INSERT INTO intake.consent_revocations (source, consent_ref, revoked_at, reason, event_ref)
        VALUES (src, r->>'ref', revoked, r->>'reason', ev)
        ON CONFLICT (source, consent_ref) DO UPDATE
           SET revoked_at = greatest (consent_revocations.revoked_at, EXCLUDED.revoked_at);
    END IF;
END $$;

-- Opens the case of an event: address -> neighbourhood (the explicit one C resolved, else the
-- postcode) -> centre; when that fails the case stays, centre NULL, with an `unplaced` row.
CREATE FUNCTION open_case (pid uuid, e jsonb, OUT case_id uuid, OUT centre text, OUT hood text)
LANGUAGE plpgsql AS $$
DECLARE
    a jsonb := e->'addr';
    c jsonb := e->'case';
    why text;
BEGIN
    hood := a->>'hood_code';
    IF hood IS NULL THEN
        SELECT neighbourhood_code INTO hood FROM intake.postcodes WHERE postcode = a->>'postcode';
    END IF;
    IF hood IS NULL THEN
        why := CASE WHEN a ? 'hood' THEN 'unknown_neighbourhood' ELSE 'unknown_postcode' END;
    ELSE
        SELECT centre_code INTO centre FROM intake.centre_neighbourhoods
         WHERE neighbourhood_code = hood;
        IF centre IS NULL THEN
            why := 'no_centre_for_neighbourhood';
        END IF;
    END IF;
    case_id := gen_random_uuid ();
    INSERT INTO intake.cases (id, person_id, event_ref, event_type, centre_code,
                              neighbourhood_code, triage_level, triage_rule, due_date)
    VALUES (case_id, pid, (e->>'ref')::uuid, e->>'type', centre, hood, c->>'level', c->>'rule',
            (c->>'due')::date);
    IF why IS NOT NULL THEN
        INSERT INTO intake.unplaced (case_id, reason, postcode, neighbourhood)
        VALUES (case_id, why, a->>'postcode', a->>'hood');
    END IF;
END $$;

-- Applies a batch (a JSON array built by intake_process.c, in seq order) and marks every
-- event of it processed, with its error when C could not read it ("err").
-- One row per applied event: what the emitted internal events need.
CREATE FUNCTION process_batch (batch jsonb)
RETURNS TABLE (i integer, person_id uuid, case_id uuid, centre text, hood text,
               consent_id uuid, consent_status text, consent_purpose text)
LANGUAGE plpgsql AS $$
DECLARE
    e jsonb;
    ev uuid;
    hid uuid;
    m jsonb;
    g record;
    oc record;
BEGIN
    FOR e IN SELECT value FROM jsonb_array_elements (batch) LOOP
        CONTINUE WHEN e ? 'err';
        ev := (e->>'ref')::uuid;
        i := (e->>'i')::integer;
        person_id := intake.resolve_person (e->'subj', e->>'mkey', ev);
        hid := intake.household_of (e->'addr', ev);
        PERFORM intake.join_household (person_id, hid, coalesce (e->>'rel', 'unknown'), ev);
        IF e ? 'members' THEN
            FOR m IN SELECT value FROM jsonb_array_elements (e->'members') LOOP
                PERFORM intake.join_household (
                    intake.resolve_person (m, e->'addr'->>'key', ev), hid, m->>'rel', ev);
            END LOOP;
        END IF;
        case_id := NULL; centre := NULL; hood := NULL;
        consent_id := NULL; consent_status := NULL; consent_purpose := NULL;
        IF e ? 'case' THEN
            SELECT * INTO oc FROM intake.open_case (person_id, e);
            case_id := oc.case_id; centre := oc.centre; hood := oc.hood;
        END IF;
        IF e ? 'grant' THEN
            SELECT * INTO g FROM intake.grant_consent (person_id, e->>'src', e->'grant', ev);
            consent_id := g.cid; consent_status := g.status;
            consent_purpose := e->'grant'->>'purpose';
        ELSIF e ? 'revoke' THEN
            SELECT * INTO g FROM intake.revoke_consent (e->>'src', e->'revoke', ev);
            consent_id := g.cid; consent_purpose := g.purpose;
            consent_status := CASE WHEN g.cid IS NULL THEN NULL ELSE 'withdrawn' END;
        END IF;
        RETURN NEXT;
    END LOOP;
    UPDATE intake.events x SET processed_at = now (), process_error = b->>'err'
      FROM jsonb_array_elements (batch) b
     WHERE x.ref = (b->>'ref')::uuid AND x.processed_at IS NULL;
END $$;
