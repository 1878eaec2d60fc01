-- intake: process_batch (007's, unchanged but for the processed marks): the batch's events are
-- found by their refs (ref = ANY, the primary key) rather than by joining the batch to the
-- partial index of unprocessed events, which the planner may walk whole (the backlog) for
-- every batch. Measured (bench/run process, pg_stat_statements, 2 A/B pairs): the mark
-- 13.9 -> 10.2 and 16.8 -> 13.6 ms per batch of ~250.
CREATE OR REPLACE FUNCTION process_batch (batch jsonb)
RETURNS TABLE (o_i integer, o_person uuid, o_case uuid, o_centre text, o_hood text,
               o_consent uuid, o_consent_status text, o_consent_purpose text)
LANGUAGE plpgsql AS $$
DECLARE
    e jsonb;
    ev uuid;
    pid uuid;
    hid uuid;
    cur record;
    m jsonb;
    rel text;
    c_id uuid;
    c_status text;
    c_purpose text;
    idx integer[] := '{}';
    pids uuid[] := '{}';
    cids uuid[] := '{}';
    cstatus text[] := '{}';
    cpurpose text[] := '{}';
BEGIN
    --  Turned off for the claim (intake_process.c): on again for everything else
    PERFORM set_config ('enable_seqscan', 'on', true), set_config ('enable_bitmapscan', 'on', true);
    PERFORM pg_advisory_xact_lock (1179403647, k) FROM (
        SELECT DISTINCT hashtext ((p->>'nk') || '|' || (p->>'birth')) AS k FROM (
            SELECT x->'subj' AS p FROM jsonb_array_elements (batch) x WHERE NOT x ? 'err'
            UNION ALL
            SELECT y FROM jsonb_array_elements (batch) x,
                          jsonb_array_elements (x->'members') y WHERE x ? 'members'
        ) people ORDER BY 1) keys;
    PERFORM pg_advisory_unlock (hashtext ('finestra.intake.process'));

    FOR e IN SELECT value FROM jsonb_array_elements (batch) LOOP
        CONTINUE WHEN e ? 'err';
        ev := (e->>'ref')::uuid;
        pid := intake.resolve_person (e->'subj', e->>'mkey', ev);

        --  The subject's household, created on first sight; the membership moves with them
        SELECT id INTO hid FROM intake.households WHERE address_key = e->'addr'->>'key';
        IF hid IS NULL THEN
            INSERT INTO intake.households (id, address_key, street, number, postcode, created_by)
            VALUES (gen_random_uuid (), e->'addr'->>'key', e->'addr'->>'street',
                    e->'addr'->>'number', e->'addr'->>'postcode', ev)
            ON CONFLICT (address_key) DO NOTHING RETURNING id INTO hid;
            IF hid IS NULL THEN
                SELECT id INTO hid FROM intake.households WHERE address_key = e->'addr'->>'key';
            END IF;
        END IF;
        rel := coalesce (e->>'rel', 'unknown');
        SELECT id, household_id, relationship INTO cur
          FROM intake.household_members WHERE person_id = pid AND until IS NULL;
        IF NOT FOUND THEN
            INSERT INTO intake.household_members (household_id, person_id, relationship, opened_by)
            VALUES (hid, pid, rel, ev);
        ELSIF cur.household_id <> hid OR (rel <> 'unknown' AND cur.relationship <> rel) THEN
            PERFORM intake.join_household (pid, hid, rel, ev);
        END IF;

        IF e ? 'members' THEN
            FOR m IN SELECT value FROM jsonb_array_elements (e->'members') LOOP
                PERFORM intake.join_household (
                    intake.resolve_person (m, e->'addr'->>'key', ev), hid, m->>'rel', ev);
            END LOOP;
        END IF;

        c_id := NULL;
        c_status := NULL;
        c_purpose := NULL;
        IF e ? 'grant' THEN
            SELECT cid, status INTO c_id, c_status
              FROM intake.grant_consent (pid, e->>'src', e->'grant', ev);
            c_purpose := e->'grant'->>'purpose';
        ELSIF e ? 'revoke' THEN
            SELECT cid, purpose INTO c_id, c_purpose
              FROM intake.revoke_consent (e->>'src', e->'revoke', ev);
            IF c_id IS NOT NULL THEN
                c_status := 'withdrawn';
            END IF;
        END IF;
        idx := array_append (idx, (e->>'i')::integer);
        pids := array_append (pids, pid);
        cids := array_append (cids, c_id);
        cstatus := array_append (cstatus, c_status);
        cpurpose := array_append (cpurpose, c_purpose);
    END LOOP;

    --  Cases: address -> neighbourhood (the explicit one C resolved, else the postcode) ->
    --  centre; when that fails the case stays, centre NULL, with an `unplaced` row
    RETURN QUERY
    WITH b AS (
        SELECT u.i, u.pid, u.cid, u.cstatus, u.cpurpose, x.value AS e,
               coalesce (x.value->'addr'->>'hood_code', p.neighbourhood_code) AS hood
          FROM unnest (idx, pids, cids, cstatus, cpurpose) AS u (i, pid, cid, cstatus, cpurpose)
          JOIN jsonb_array_elements (batch) WITH ORDINALITY AS x (value, o) ON x.o = u.i + 1
          LEFT JOIN intake.postcodes p ON p.postcode = x.value->'addr'->>'postcode'
    ), placed AS (
        SELECT b.i, b.pid, b.e, b.hood, gen_random_uuid () AS case_id, c.centre_code AS centre,
               CASE WHEN b.hood IS NULL AND b.e->'addr' ? 'hood' THEN 'unknown_neighbourhood'
                    WHEN b.hood IS NULL THEN 'unknown_postcode'
                    WHEN c.centre_code IS NULL THEN 'no_centre_for_neighbourhood' END AS why
          FROM b LEFT JOIN intake.centre_neighbourhoods c ON c.neighbourhood_code = b.hood
         WHERE b.e ? 'case'
    ), opened AS (
        INSERT INTO intake.cases (id, person_id, event_ref, event_type, centre_code,
                                  neighbourhood_code, triage_level, triage_rule, due_date)
        SELECT pl.case_id, pl.pid, (pl.e->>'ref')::uuid, pl.e->>'type', pl.centre, pl.hood,
               pl.e->'case'->>'level', pl.e->'case'->>'rule', (pl.e->'case'->>'due')::date
          FROM placed pl ORDER BY pl.i
        RETURNING id
    ), queued AS (
        INSERT INTO intake.unplaced (case_id, reason, postcode, neighbourhood)
        SELECT pl.case_id, pl.why, pl.e->'addr'->>'postcode', pl.e->'addr'->>'hood'
          FROM placed pl WHERE pl.why IS NOT NULL
        RETURNING case_id
    )
    SELECT b.i, b.pid, pl.case_id, pl.centre, pl.hood, b.cid, b.cstatus, b.cpurpose
      FROM b LEFT JOIN placed pl ON pl.i = b.i      -- opened and queued run regardless
     ORDER BY b.i;

    UPDATE intake.events x SET processed_at = now (), process_error = b.err
      FROM (SELECT (v->>'ref')::uuid AS ref, v->>'err' AS err
              FROM jsonb_array_elements (batch) v) b
     WHERE x.ref = ANY (ARRAY (SELECT (v->>'ref')::uuid FROM jsonb_array_elements (batch) v))
       AND x.ref = b.ref AND x.processed_at IS NULL;
END $$;
