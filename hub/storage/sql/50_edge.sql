-- Edge additions to the time-series tables (idempotent; runs after hub/storage/timeseries.py made them).
-- event: 'rollover' or 'replaced' when the edge saw the meter's total fall (wire contract v1, optional
-- MeterReading.event); consumption must not be derived across such a reading. NULL otherwise.
-- On a partitioned table ADD COLUMN reaches every partition; on a hypertable, every chunk.
ALTER TABLE meter_readings ADD COLUMN IF NOT EXISTS event text NULL;
