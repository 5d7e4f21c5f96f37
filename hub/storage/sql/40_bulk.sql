-- Bulk import and detection support (issue 3). Idempotent: every statement may run again.

-- Local days whose daily features are out of date because a bulk import added rows for them;
-- `anju detect` refreshes these (and any window day without features) before judging, then clears them.
CREATE TABLE IF NOT EXISTS bulk_stale_days (
    day date PRIMARY KEY
);

-- One row per imported file: what came in, what was new, what was rejected (and where the rejects went).
CREATE TABLE IF NOT EXISTS bulk_imports (
    id          bigserial   PRIMARY KEY,
    kind        text        NOT NULL CHECK (kind IN ('units', 'readings', 'access')),
    path        text        NOT NULL,
    rows_read   bigint      NOT NULL,
    rows_new    bigint      NOT NULL,
    rows_known  bigint      NOT NULL,
    rows_rejected bigint    NOT NULL,
    rejects_path text       NULL,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz NOT NULL DEFAULT now()
);

-- Night-time minimum flow per meter and day (rate per hour over local 01:00-05:00), and the daily
-- profile figures the detectors read beside the totals; NULL where the readings are too sparse.
ALTER TABLE meter_daily ADD COLUMN IF NOT EXISTS night_min_rate double precision NULL;
ALTER TABLE unit_daily ADD COLUMN IF NOT EXISTS elec_night_kwh_h double precision NULL;
ALTER TABLE unit_daily ADD COLUMN IF NOT EXISTS water_night_m3_h double precision NULL;
