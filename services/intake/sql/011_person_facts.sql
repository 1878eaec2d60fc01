-- intake: the person's facts that the referral-router routes by and may pass on, kept on the
-- file: sex (the last value given wins, like phone and email), registration on the municipal
-- register (padró: register.address_changed), the household's size as last reported, and the
-- benefit applications intake has seen. process_batch_facts wraps process_batch (whatever its
-- version): the same rows, the facts written, and for events marked "facts" (those that ask
-- the router to route) the person's facts for intake.referral_requested's subject.

ALTER TABLE persons ADD COLUMN sex text CHECK (sex IN ('female', 'male', 'non_binary'));
-- The address the padró last registered for the person: its key, the neighbourhood it lies
-- in (NULL: outside the city's territory, so not registered in the city), since when, by which
-- event
ALTER TABLE persons ADD COLUMN registered_key text;
ALTER TABLE persons ADD COLUMN registered_hood text;
ALTER TABLE persons ADD COLUMN registered_on date;
ALTER TABLE persons ADD COLUMN registered_by uuid;

-- People living at the address as the last event that said so reported it (the padró's
-- household_size, an eviction's, a benefit application's members); NULL: never reported
ALTER TABLE households ADD COLUMN reported_size integer CHECK (reported_size BETWEEN 1 AND 50);
ALTER TABLE households ADD COLUMN reported_by uuid;

-- benefits.application_submitted, one row per application event, on the applicant's file
CREATE TABLE benefit_applications (
    event_ref        uuid PRIMARY KEY,
    person_id        uuid NOT NULL REFERENCES persons (id),
    programme        text NOT NULL,
    submitted_at     timestamptz NOT NULL,
    source           text NOT NULL,
    application_ref  text NOT NULL
);
CREATE INDEX benefit_applications_person ON benefit_applications (person_id, submitted_at);

-- Unused since 006/007 (process_batch does both inline)
DROP FUNCTION household_of (jsonb, uuid);
DROP FUNCTION open_case (uuid, jsonb);

-- Keys of the batch's events that this function reads (intake_process.c writes them):
--   subj.sex        the subject's sex, when the event gives it
--   reg             {"on": date}: a register.address_changed, its addr the registered one
--   hsize           people in the household at addr, as the event reports
--   benefit         {"programme", "ref", "at_ms"}: a benefits.application_submitted
--   facts           true: the event asks the router to route; return the person's facts
CREATE FUNCTION process_batch_facts (batch jsonb)
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
