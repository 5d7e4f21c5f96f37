-- What Grafana charts, and nothing else (issue 13): the dashboards in dashboards/ read only these views,
-- and the deploy's read-only role (deploy/timescaledb/initdb/grafana-reader.psql) may read only this
-- schema. Each view carries just the columns a panel needs: no unit ids, people, payloads, users,
-- sessions, audit rows or sign-in counters. A view reads its tables with its owner's rights (the hub's
-- role), so the reader needs no grant on any table. Idempotent; a changed view that drops a column must
-- be dropped first.
DO $schema$
BEGIN
    IF to_regnamespace('grafana') IS NULL THEN
        CREATE SCHEMA grafana;
    END IF;
END
$schema$;

CREATE OR REPLACE VIEW grafana.estates AS
    SELECT DISTINCT estate_id FROM units;

CREATE OR REPLACE VIEW grafana.meter_readings AS
    SELECT received_at, meter FROM meter_readings;

CREATE OR REPLACE VIEW grafana.access_events AS
    SELECT received_at, estate_id FROM access_events;

CREATE OR REPLACE VIEW grafana.alerts AS
    SELECT estate_id, kind, status FROM alerts;

CREATE OR REPLACE VIEW grafana.cases AS
    SELECT estate_id, status, filed_at FROM cases;

CREATE OR REPLACE VIEW grafana.tenancy_outbox AS
    SELECT state FROM tenancy_outbox;

-- The size of a refused message, not its bytes: a payload may carry a pseudonym or a unit id.
CREATE OR REPLACE VIEW grafana.dead_letters AS
    SELECT received_at, topic, reason, octet_length(payload) AS payload_bytes FROM dead_letters;

CREATE OR REPLACE VIEW grafana.agent_status AS
    SELECT agent_id, estate_id, state, updated_at, payload ->> 'outbox_depth' AS outbox_depth
    FROM agent_status;
