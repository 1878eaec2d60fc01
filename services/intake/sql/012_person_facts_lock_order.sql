-- intake: 011's process_batch_facts, its writes made deadlock-free: the persons and households
-- it updates are locked first, in key order (two batches updating the same two addresses in
-- opposite orders could deadlock, and the processor would back off and retry). Unchanged
-- otherwise.
CREATE OR REPLACE FUNCTION process_batch_facts (batch jsonb)
RETURNS TABLE (o_i integer, o_person uuid, o_case uuid, o_centre text, o_hood text,
               o_consent uuid, o_consent_status text, o_consent_purpose text,
               o_sex text, o_residency text, o_household integer, o_benefits text)
LANGUAGE plpgsql AS $$
DECLARE
    a_i integer[];
    a_person uuid[];
    a_case uuid[];
    a_centre text[];
    a_hood text[];
    a_consent uuid[];
    a_status text[];
    a_purpose text[];
BEGIN
    --  Kept in arrays: the statements below must see what process_batch wrote, which a
    --  join in the same statement would not
    SELECT array_agg (b.o_i ORDER BY b.o_i), array_agg (b.o_person ORDER BY b.o_i),
           array_agg (b.o_case ORDER BY b.o_i), array_agg (b.o_centre ORDER BY b.o_i),
           array_agg (b.o_hood ORDER BY b.o_i), array_agg (b.o_consent ORDER BY b.o_i),
           array_agg (b.o_consent_status ORDER BY b.o_i),
           array_agg (b.o_consent_purpose ORDER BY b.o_i)
      INTO a_i, a_person, a_case, a_centre, a_hood, a_consent, a_status, a_purpose
      FROM intake.process_batch (batch) b;
    IF a_i IS NULL THEN
        RETURN;
    END IF;

    --  Rows written below are locked first, in key order: two batches writing the same
    --  people or addresses (a shared household, a file two name keys lead to) wait for each
    --  other instead of deadlocking
    PERFORM 1 FROM intake.persons q
     WHERE q.id IN (SELECT u.pid FROM unnest (a_i, a_person) AS u (i, pid)
                      JOIN jsonb_array_elements (batch) WITH ORDINALITY AS x (value, o)
                        ON x.o = u.i + 1
                     WHERE x.value->'subj' ? 'sex' OR x.value ? 'reg')
     ORDER BY q.id FOR NO KEY UPDATE;
    PERFORM 1 FROM intake.households h
     WHERE h.address_key IN (SELECT x.value->'addr'->>'key'
                               FROM jsonb_array_elements (batch) x WHERE x.value ? 'hsize')
     ORDER BY h.address_key FOR NO KEY UPDATE;

    --  Each person's last given sex and padró registration in the batch (seq order) wins
    WITH e AS (
        SELECT u.i, u.pid, x.value AS v
          FROM unnest (a_i, a_person) AS u (i, pid)
          JOIN jsonb_array_elements (batch) WITH ORDINALITY AS x (value, o) ON x.o = u.i + 1
    ), sexes AS (
        SELECT DISTINCT ON (e.pid) e.pid, e.v->'subj'->>'sex' AS sex
          FROM e WHERE e.v->'subj' ? 'sex' ORDER BY e.pid, e.i DESC
    )
    UPDATE intake.persons q SET sex = s.sex, updated_at = now ()
      FROM sexes s WHERE q.id = s.pid AND q.sex IS DISTINCT FROM s.sex;

    WITH e AS (
        SELECT u.i, u.pid, x.value AS v
          FROM unnest (a_i, a_person) AS u (i, pid)
          JOIN jsonb_array_elements (batch) WITH ORDINALITY AS x (value, o) ON x.o = u.i + 1
    ), regs AS (
        SELECT DISTINCT ON (e.pid) e.pid, e.v
          FROM e WHERE e.v ? 'reg' ORDER BY e.pid, e.i DESC
    )
    UPDATE intake.persons q
       SET registered_key = r.v->'addr'->>'key',
           registered_hood = coalesce (r.v->'addr'->>'hood_code', p.neighbourhood_code),
           registered_on = (r.v->'reg'->>'on')::date, registered_by = (r.v->>'ref')::uuid,
           updated_at = now ()
      FROM regs r LEFT JOIN intake.postcodes p ON p.postcode = r.v->'addr'->>'postcode'
     WHERE q.id = r.pid;

    WITH sizes AS (
        SELECT DISTINCT ON (x.value->'addr'->>'key') x.value->'addr'->>'key' AS akey,
               (x.value->>'hsize')::integer AS size, (x.value->>'ref')::uuid AS ref
          FROM unnest (a_i) AS u (i)
          JOIN jsonb_array_elements (batch) WITH ORDINALITY AS x (value, o) ON x.o = u.i + 1
         WHERE x.value ? 'hsize' ORDER BY x.value->'addr'->>'key', u.i DESC
    )
    UPDATE intake.households h SET reported_size = s.size, reported_by = s.ref
      FROM sizes s WHERE h.address_key = s.akey;

    INSERT INTO intake.benefit_applications (event_ref, person_id, programme, submitted_at,
                                             source, application_ref)
    SELECT (x.value->>'ref')::uuid, u.pid, x.value->'benefit'->>'programme',
           to_timestamp ((x.value->'benefit'->>'at_ms')::float8 / 1000), x.value->>'src',
           x.value->'benefit'->>'ref'
      FROM unnest (a_i, a_person) AS u (i, pid)
      JOIN jsonb_array_elements (batch) WITH ORDINALITY AS x (value, o) ON x.o = u.i + 1
     WHERE x.value ? 'benefit'
    ON CONFLICT (event_ref) DO NOTHING;

    --  The facts, for the events that ask for routing. Residency: placed in a neighbourhood
    --  (the case's) -> lives in the city, registered when the padró's last address for the
    --  person is in the city; not placed, no neighbourhood given and a postcode the territory
    --  does not list -> outside the city; else unknown
    RETURN QUERY
    SELECT u.i, u.pid, u.cid, u.centre, u.hood, u.consent, u.status, u.purpose,
           f.sex, f.residency, f.household, f.benefits
      FROM unnest (a_i, a_person, a_case, a_centre, a_hood, a_consent, a_status, a_purpose)
           AS u (i, pid, cid, centre, hood, consent, status, purpose)
      JOIN jsonb_array_elements (batch) WITH ORDINALITY AS x (value, o) ON x.o = u.i + 1
      LEFT JOIN LATERAL (
        SELECT q.sex,
               CASE WHEN u.hood IS NOT NULL AND q.registered_hood IS NOT NULL
                    THEN 'registered_in_city'
                    WHEN u.hood IS NOT NULL THEN 'lives_in_city'
                    WHEN NOT (x.value->'addr' ? 'hood') AND NOT EXISTS (
                        SELECT 1 FROM intake.postcodes p
                         WHERE p.postcode = x.value->'addr'->>'postcode')
                    THEN 'outside_city' END AS residency,
               (SELECT h.reported_size FROM intake.household_members m
                  JOIN intake.households h ON h.id = m.household_id
                 WHERE m.person_id = u.pid AND m.until IS NULL) AS household,
               (SELECT string_agg (b.programme || ' '
                                   || to_char (b.submitted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'),
                                   ',' ORDER BY b.submitted_at DESC, b.event_ref)
                  FROM (SELECT a.programme, a.submitted_at, a.event_ref
                          FROM intake.benefit_applications a WHERE a.person_id = u.pid
                         ORDER BY a.submitted_at DESC, a.event_ref LIMIT 8) b) AS benefits
          FROM intake.persons q WHERE q.id = u.pid
      ) f ON x.value ? 'facts'
     ORDER BY u.i;
END $$;
