-- Exactly-once filing without trusting Idempotency-Key (issue 14). Idempotent.
-- uncertain_since: when a send of this outbox row got no answer (a time-out, a connection reset): the
-- tenancy system may or may not hold it. Until the row is sent, every later try first looks the case up
-- by anju's case reference (hub/tenancy/outbox.py) and sends again only if it is not there.
ALTER TABLE tenancy_outbox ADD COLUMN IF NOT EXISTS uncertain_since timestamptz NULL;
