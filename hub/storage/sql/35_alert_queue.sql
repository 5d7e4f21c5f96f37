-- The alert queue at 100,000 alerts (bench/api_alert_queue.py). Idempotent.
--
-- The queue pages through alerts in risk order and filters by estate, kind and status. The pages are
-- found by an index-only scan: every column the filter and the order need is in the index, so walking
-- past rows of other estates (or past a deep offset) never touches the wide alert rows with their
-- evidence; only the 50 rows of the page are fetched, and only they get their case looked up.
DROP INDEX IF EXISTS alerts_queue;
DROP INDEX IF EXISTS alerts_queue_all;
CREATE INDEX IF NOT EXISTS alerts_queue_by_status ON alerts
    (status, score DESC NULLS LAST, last_flagged DESC NULLS LAST, id) INCLUDE (estate_id, kind, unit_id);
CREATE INDEX IF NOT EXISTS alerts_queue_by_risk ON alerts
    (score DESC NULLS LAST, last_flagged DESC NULLS LAST, id) INCLUDE (status, estate_id, kind, unit_id);
-- One estate's queue in order without walking the others' alerts.
CREATE INDEX IF NOT EXISTS alerts_queue_by_estate ON alerts
    (estate_id, status, score DESC NULLS LAST, last_flagged DESC NULLS LAST, id) INCLUDE (kind, unit_id);
-- The queue's total: counted from the index alone.
CREATE INDEX IF NOT EXISTS alerts_count ON alerts (estate_id, status, kind);
-- "Filing dead-lettered" marks on each row of the queue: a probe, not a scan of every filing.
CREATE INDEX IF NOT EXISTS tenancy_outbox_dead ON tenancy_outbox (case_id) WHERE state = 'dead';
