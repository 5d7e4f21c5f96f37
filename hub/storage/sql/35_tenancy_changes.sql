-- Status changes flowing back from the tenancy system (issue 5). Idempotent.
-- The number of the last change of the tenancy system's feed that the hub applied; advanced in the
-- same transaction as the cases it changed, so a change is applied exactly once.
CREATE TABLE IF NOT EXISTS tenancy_feed (
    feed       text        PRIMARY KEY,
    last_seq   bigint      NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO tenancy_feed (feed) VALUES ('changes') ON CONFLICT (feed) DO NOTHING;
