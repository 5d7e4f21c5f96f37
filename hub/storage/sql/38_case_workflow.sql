-- The case workflow by the bureau's steps (issue 14): deadlines, escalation and the city's case number.
-- Idempotent. The statuses 'accepted' (签收) and 'visited' (走访 done) are in 30_cases_auth_audit.sql's
-- CHECK, which every start re-runs.
--
-- due_at: the deadline of the step the case waits for (hub/cases/workflow.yaml), set as it enters a status;
-- a case is overdue (超期) while due_at < now() and it is not closed. stage_since: when it entered that
-- status. escalations / escalated_at: a supervisor's 督办 of an overdue case (each one audited).
-- city_case_no: the tenancy system's own number of the case, from its answer to the filing.
ALTER TABLE cases ADD COLUMN IF NOT EXISTS stage_since timestamptz NULL;
ALTER TABLE cases ADD COLUMN IF NOT EXISTS due_at timestamptz NULL;
ALTER TABLE cases ADD COLUMN IF NOT EXISTS accepted_at timestamptz NULL;
ALTER TABLE cases ADD COLUMN IF NOT EXISTS visited_at timestamptz NULL;
ALTER TABLE cases ADD COLUMN IF NOT EXISTS escalated_at timestamptz NULL;
ALTER TABLE cases ADD COLUMN IF NOT EXISTS escalations int NOT NULL DEFAULT 0;
ALTER TABLE cases ADD COLUMN IF NOT EXISTS city_case_no text NULL;
CREATE INDEX IF NOT EXISTS cases_due_open ON cases (due_at) WHERE status <> 'closed';
-- overdue_noted_due: the deadline whose passing was last recorded (a case.overdue audit row), so that
-- each deadline is recorded as passed once (hub/cases/deadlines.py).
ALTER TABLE cases ADD COLUMN IF NOT EXISTS overdue_noted_due timestamptz NULL;
