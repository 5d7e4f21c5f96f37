-- Detection, cases and filing: daily rollups, alerts, cases, the tenancy outbox and the audit log.
-- Idempotent: every statement may run again on an existing database.

CREATE TABLE IF NOT EXISTS meter_daily (
    unit_id       text             NOT NULL,
    meter         text             NOT NULL,
    day           date             NOT NULL,
    consumption   double precision NULL,      -- NULL = unknown (too little coverage), never "zero"
    hours_covered int              NOT NULL DEFAULT 0,
    readings      int              NOT NULL DEFAULT 0,
    resets        int              NOT NULL DEFAULT 0,
    PRIMARY KEY (unit_id, meter, day)
);
CREATE INDEX IF NOT EXISTS meter_daily_day ON meter_daily (day);

CREATE TABLE IF NOT EXISTS unit_daily (
    unit_id              text             NOT NULL,
    day                  date             NOT NULL,
    elec_kwh             double precision NULL,
    water_m3             double precision NULL,
    gas_m3               double precision NULL,
    elec_hours           int              NOT NULL DEFAULT 0,
    water_hours          int              NOT NULL DEFAULT 0,
    gas_hours            int              NOT NULL DEFAULT 0,
    tenant_entries       int              NOT NULL DEFAULT 0,
    strangers_building   int              NOT NULL DEFAULT 0,
    gate_events_building int              NOT NULL DEFAULT 0,
    PRIMARY KEY (unit_id, day)
);
CREATE INDEX IF NOT EXISTS unit_daily_day ON unit_daily (day);

CREATE TABLE IF NOT EXISTS alerts (
    id            bigserial        PRIMARY KEY,
    unit_id       text             NOT NULL,
    estate_id     text             NOT NULL,
    kind          text             NOT NULL CHECK (kind IN ('vacancy', 'sublet')),
    status        text             NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    score         double precision NOT NULL,
    first_flagged date             NOT NULL,
    last_flagged  date             NOT NULL,
    reasons       jsonb            NOT NULL DEFAULT '[]'::jsonb,
    evidence      jsonb            NOT NULL DEFAULT '{}'::jsonb,
    rule_version  text             NOT NULL,
    window_start  date             NOT NULL,
    window_end    date             NOT NULL,
    created_at    timestamptz      NOT NULL DEFAULT now(),
    updated_at    timestamptz      NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS alerts_one_open ON alerts (unit_id, kind) WHERE status = 'open';
CREATE INDEX IF NOT EXISTS alerts_estate ON alerts (estate_id, status);

CREATE TABLE IF NOT EXISTS cases (
    id              bigserial   PRIMARY KEY,
    unit_id         text        NOT NULL,
    estate_id       text        NOT NULL,
    kind            text        NOT NULL CHECK (kind IN ('vacancy', 'sublet')),
    alert_id        bigint      NULL REFERENCES alerts (id),
    status          text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'filed', 'closed')),
    opened_at       timestamptz NOT NULL DEFAULT now(),
    evidence        jsonb       NOT NULL,
    evidence_sha256 text        NOT NULL,
    filed_at        timestamptz NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS cases_one_active ON cases (unit_id, kind) WHERE status <> 'closed';
CREATE INDEX IF NOT EXISTS cases_alert ON cases (alert_id);

CREATE TABLE IF NOT EXISTS tenancy_outbox (
    id              bigserial   PRIMARY KEY,
    case_id         bigint      NOT NULL REFERENCES cases (id),
    idempotency_key text        NOT NULL UNIQUE,
    payload         jsonb       NOT NULL,
    state           text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'dead')),
    attempts        int         NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text        NULL,
    sent_at         timestamptz NULL,
    response_status int         NULL
);
CREATE INDEX IF NOT EXISTS tenancy_outbox_due ON tenancy_outbox (next_attempt_at) WHERE state = 'pending';

-- Append-only by convention and by grant: the hub only ever INSERTs here.
CREATE TABLE IF NOT EXISTS audit_log (
    seq         bigserial   PRIMARY KEY,
    ts          timestamptz NOT NULL DEFAULT now(),
    actor       text        NOT NULL,
    action      text        NOT NULL,
    object_type text        NOT NULL,
    object_id   text        NOT NULL,
    detail      jsonb       NOT NULL DEFAULT '{}'::jsonb
);
-- Only the table's owner may index it: once 80_audit_guard.sql has handed audit_log to its own role,
-- the hub's runtime role skips this (the index exists by then).
DO $$
BEGIN
    IF pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = 'audit_log'::regclass), 'USAGE') THEN
        CREATE INDEX IF NOT EXISTS audit_log_object ON audit_log (object_type, object_id);
    END IF;
END
$$;
