-- Core tables of the hub: units, rejected messages and agent status.
-- Idempotent: every statement may run again on an existing database.
-- The time-series tables (meter_readings, access_events) are made by hub/storage/timeseries.py,
-- because their form depends on whether TimescaleDB is available.

CREATE TABLE IF NOT EXISTS units (
    unit_id        text        PRIMARY KEY,
    estate_id      text        NOT NULL,
    building       text        NULL,
    floor          int         NULL,
    area_m2        real        NULL,
    household_size int         NULL,
    lease_start    date        NULL,
    first_seen     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS units_estate ON units (estate_id, building);

-- Raw bytes and the reason of every message the hub could not accept; nothing is dropped silently.
CREATE TABLE IF NOT EXISTS dead_letters (
    id          bigserial   PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    topic       text        NOT NULL,
    payload     bytea       NOT NULL,
    reason      text        NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_received ON dead_letters (received_at);

-- Last status message of each edge agent (retained on the broker, also its last will).
CREATE TABLE IF NOT EXISTS agent_status (
    agent_id   text        PRIMARY KEY,
    estate_id  text        NOT NULL,
    state      text        NOT NULL,
    payload    jsonb       NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
