-- reporting: how many of each domain event the city has seen (the source of truth for
-- the live counters Redis holds).
CREATE TABLE event_counts (
    type  text PRIMARY KEY,
    count bigint NOT NULL
);
