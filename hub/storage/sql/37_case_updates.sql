-- Case updates to the tenancy system (issue 14). Idempotent.
--
-- A case's outbox rows: its filing (once, when it is confirmed, or when it opens with ANJU_AUTO_FILE),
-- then one update per later decision, sent in id order after the filing (hub/tenancy/outbox.py).
ALTER TABLE tenancy_outbox ADD COLUMN IF NOT EXISTS kind text NOT NULL DEFAULT 'filing';
ALTER TABLE tenancy_outbox DROP CONSTRAINT IF EXISTS tenancy_outbox_kind_check;
ALTER TABLE tenancy_outbox ADD CONSTRAINT tenancy_outbox_kind_check CHECK (kind IN ('filing', 'update'));
CREATE UNIQUE INDEX IF NOT EXISTS tenancy_outbox_one_filing ON tenancy_outbox (case_id) WHERE kind = 'filing';
