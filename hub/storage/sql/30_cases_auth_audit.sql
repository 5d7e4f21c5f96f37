-- Case workflow, users and roles, and the keyed hash chain of the audit log (issue 5).
-- Idempotent: every statement may run again on an existing database.

-- The inspector's workflow: open -> assigned (派单) -> accepted (签收) -> visit_scheduled -> visited (走访)
-- -> confirmed | dismissed (核实) -> filed -> closed (办结); 'accepted' and 'visited' came with issue 14
-- (38_case_workflow.sql). The whole list stays here: every start re-runs this file.
ALTER TABLE cases DROP CONSTRAINT IF EXISTS cases_status_check;
ALTER TABLE cases ADD CONSTRAINT cases_status_check CHECK (
    status IN ('open', 'assigned', 'accepted', 'visit_scheduled', 'visited', 'confirmed', 'dismissed', 'filed',
               'closed'));
ALTER TABLE cases ADD COLUMN IF NOT EXISTS assignee text NULL;
ALTER TABLE cases ADD COLUMN IF NOT EXISTS visit_on date NULL;
ALTER TABLE cases ADD COLUMN IF NOT EXISTS closed_at timestamptz NULL;
ALTER TABLE cases ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE cases ADD COLUMN IF NOT EXISTS alert_ids bigint[] NOT NULL DEFAULT '{}';
CREATE INDEX IF NOT EXISTS cases_estate_status ON cases (estate_id, status);
CREATE INDEX IF NOT EXISTS cases_unit ON cases (unit_id);

-- Inspectors' verdicts, kept for the models to learn from (never edited: a new verdict is a new row).
CREATE TABLE IF NOT EXISTS case_verdicts (
    id           bigserial        PRIMARY KEY,
    case_id      bigint           NOT NULL REFERENCES cases (id),
    alert_id     bigint           NULL,
    unit_id      text             NOT NULL,
    estate_id    text             NOT NULL,
    kind         text             NOT NULL,
    verdict      text             NOT NULL CHECK (verdict IN ('confirmed', 'dismissed')),
    reason_code  text             NULL,
    note         text             NOT NULL DEFAULT '',
    score        double precision NULL,
    rule_version text             NULL,
    decided_by   text             NOT NULL,
    decided_at   timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS case_verdicts_case ON case_verdicts (case_id);

-- People: a role and, for inspectors and supervisors, the estates they may see (a district is a list).
CREATE TABLE IF NOT EXISTS users (
    id            bigserial   PRIMARY KEY,
    name          text        NOT NULL UNIQUE,
    role          text        NOT NULL CHECK (role IN ('inspector', 'supervisor', 'auditor', 'admin')),
    password_hash text        NOT NULL,
    active        boolean     NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS user_estates (
    user_id   bigint NOT NULL REFERENCES users (id),
    estate_id text   NOT NULL,
    PRIMARY KEY (user_id, estate_id)
);
-- Sessions: only a SHA-256 of the token is stored, so a copy of this table logs no one in.
CREATE TABLE IF NOT EXISTS user_sessions (
    token_sha256 text        PRIMARY KEY,
    user_id      bigint      NOT NULL REFERENCES users (id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS user_sessions_expiry ON user_sessions (expires_at);

-- Audit chain: mac = HMAC-SHA256(key, previous mac || canonical row); the key never enters the database.
-- DDL only the table's owner may run: once 80_audit_guard.sql has handed audit_log to its own role, the
-- hub's runtime role skips this block (it ran before the hand-over).
DO $guard$
BEGIN
    IF NOT pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = 'audit_log'::regclass),
                       'USAGE') THEN
        RETURN;
    END IF;
    ALTER TABLE audit_log ADD COLUMN IF NOT EXISTS mac text NULL;
    CREATE INDEX IF NOT EXISTS audit_log_ts ON audit_log (ts);

    -- Append-only by trigger as well: an UPDATE or DELETE needs the table's owner disabling this, and
    -- the chain (with its checkpoints) still shows it at its sequence number.
    CREATE OR REPLACE FUNCTION anju_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP;
    END
    $$;
    DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log;
    CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
        FOR EACH ROW EXECUTE FUNCTION anju_audit_append_only();
    DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log;
    CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
        FOR EACH STATEMENT EXECUTE FUNCTION anju_audit_append_only();
END
$guard$;

-- The filing summary, kept for filings queued later (on confirmation) rather than when the case opens.
ALTER TABLE cases ADD COLUMN IF NOT EXISTS summary text NOT NULL DEFAULT '';

-- The alert queue at 100,000 alerts: sorted by risk per status, and each row's case filing looked up.
-- (The queue's own indexes are in 35_alert_queue.sql.)
CREATE INDEX IF NOT EXISTS tenancy_outbox_case ON tenancy_outbox (case_id);
CREATE INDEX IF NOT EXISTS cases_unit_kind ON cases (unit_id, kind);
