-- Detection's load (hub/detection/load.py): a household entering often by card while its faces are gone
-- keeps its history. Finding whether its faces were seen before the window is one probe of this index
-- per such unit, instead of a scan of every unit's history. Idempotent.
CREATE INDEX IF NOT EXISTS unit_daily_face_days ON unit_daily (unit_id, day) WHERE tenant_face_entries > 0;
