-- intake: the processor locks the file it resolves a person to (FOR KEY SHARE) and follows
-- merged_into under that lock. `finestra-intake merge` takes FOR UPDATE on both files, so it
-- can no longer commit between the processor's lookup and its writes: before, a merge could
-- leave a case, membership or consent the processor was writing on the merged file. Now the
-- processor either waits for the merge and follows it to the kept file, or the merge waits
-- for the batch and moves what it wrote.

-- The surviving file of pid, locked FOR KEY SHARE (each hop is read after its lock is taken,
-- so a merge that committed meanwhile is seen and followed)
CREATE FUNCTION live_person_locked (pid uuid) RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
    nxt uuid;
BEGIN
    FOR hop IN 1..32 LOOP
        SELECT merged_into INTO nxt FROM intake.persons WHERE id = pid FOR KEY SHARE;
        EXIT WHEN nxt IS NULL;
        pid := nxt;
    END LOOP;
    RETURN pid;
END $$;

-- 004's resolve_person, with the file it finds locked (layers (a) and (b)); unchanged otherwise
CREATE OR REPLACE FUNCTION resolve_person (p jsonb, mkey text, ev uuid) RETURNS uuid
LANGUAGE plpgsql AS $$
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
        --  One statement as before: the lock re-reads the file if a merge changed it
        SELECT d.person_id, q.merged_into INTO pid, merged
          FROM intake.person_documents d JOIN intake.persons q ON q.id = d.person_id
         WHERE d.doc_type = dt AND d.doc_number = dn
           FOR KEY SHARE OF q;
        IF merged IS NOT NULL THEN
            pid := intake.live_person_locked (merged);
        END IF;
    ELSE
        SELECT array_agg (q.id) INTO ids
          FROM intake.persons q
          JOIN intake.household_members m ON m.person_id = q.id AND m.until IS NULL
          JOIN intake.households h ON h.id = m.household_id
         WHERE q.name_key = nk AND q.birth_date = bd AND q.merged_into IS NULL
           AND h.address_key = mkey;
        IF cardinality (ids) = 1 THEN
            pid := intake.live_person_locked (ids [1]);
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
