-- Activity signatures per meter and day (issue 12): what a lived-in flat shows whatever its totals.
-- floor_rate: the day's smallest hourly rate (fridge and standby for electricity, a leak for water);
-- active_amount: the day's consumption above that floor; active_hours: local hours in which the meter
-- rose by more than one appliance event above the floor (a flush, a light and a TV, a burner lit).
-- NULL where the day's consumption is unknown. Idempotent.
ALTER TABLE meter_daily ADD COLUMN IF NOT EXISTS floor_rate double precision NULL;
ALTER TABLE meter_daily ADD COLUMN IF NOT EXISTS active_amount double precision NULL;
ALTER TABLE meter_daily ADD COLUMN IF NOT EXISTS active_hours int NULL;
ALTER TABLE unit_daily ADD COLUMN IF NOT EXISTS elec_active_kwh double precision NULL;
ALTER TABLE unit_daily ADD COLUMN IF NOT EXISTS elec_active_hours int NULL;
ALTER TABLE unit_daily ADD COLUMN IF NOT EXISTS water_active_m3 double precision NULL;
ALTER TABLE unit_daily ADD COLUMN IF NOT EXISTS water_active_hours int NULL;
ALTER TABLE unit_daily ADD COLUMN IF NOT EXISTS gas_active_hours int NULL;
-- Registered-tenant entries by a recognised face: a card or code counts as presence as much as a face,
-- but a household whose faces vanish while its card goes on being used, as new faces appear, has lent it.
ALTER TABLE unit_daily ADD COLUMN IF NOT EXISTS tenant_face_entries int NOT NULL DEFAULT 0;
