-- The alert queue by age (issue 5): filtered on how long ago an alert was first flagged and sorted
-- oldest or newest first, at 100,000 alerts (bench/api_alert_queue.py). Idempotent.
--
-- Like 35_alert_queue.sql, index-only: the order (first_flagged, id) walked forwards for the oldest
-- first and backwards for the newest first, with a range on first_flagged for the age filter; the
-- filter columns and the risk order's columns are carried along, so that the risk order with an age
-- filter can also be served from the age range (then a top-N sort) when the range is the narrower.
CREATE INDEX IF NOT EXISTS alerts_queue_by_age ON alerts
    (status, first_flagged, id) INCLUDE (estate_id, kind, unit_id, score, last_flagged);
-- One estate's queue by age without walking the others' alerts.
CREATE INDEX IF NOT EXISTS alerts_queue_by_estate_age ON alerts
    (estate_id, status, first_flagged, id) INCLUDE (kind, unit_id, score, last_flagged);
