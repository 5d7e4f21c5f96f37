-- The inspector's field work (issue 14): a unit's street address for the search and the visit sheet, and
-- what the inspector found at the door (occupants seen, whether an ID was checked). Idempotent.
ALTER TABLE units ADD COLUMN IF NOT EXISTS address text NULL;

-- One row per verdict given with findings; the verdict itself stays in case_verdicts (the workflow's).
CREATE TABLE IF NOT EXISTS case_findings (
    id             bigserial   PRIMARY KEY,
    case_id        bigint      NOT NULL REFERENCES cases (id),
    action         text        NOT NULL,
    occupants_seen int         NULL CHECK (occupants_seen BETWEEN 0 AND 99),
    id_checked     boolean     NULL,
    note           text        NOT NULL DEFAULT '',
    recorded_by    text        NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS case_findings_case ON case_findings (case_id, id);

-- The queue's filters on cases (assignee, state, overdue) gather the ids of the matching cases' alerts,
-- then read those alerts by id (hub/api/queue_queries.py, bench/api_alert_queue.py).
CREATE INDEX IF NOT EXISTS cases_assignee ON cases (assignee, status);
CREATE INDEX IF NOT EXISTS cases_status ON cases (status);
-- Search by part of an address or unit id: a trigram index where pg_trgm is available (it is trusted, so
-- the database owner may create it), else the search reads the units table.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') THEN
        CREATE EXTENSION IF NOT EXISTS pg_trgm;
        CREATE INDEX IF NOT EXISTS units_address_trgm ON units USING gin (address gin_trgm_ops);
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'pg_trgm not created (%): address search reads the units table', SQLERRM;
END
$$;
