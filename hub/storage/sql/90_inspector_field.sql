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
