"""Detection as of a given day: refresh the daily features the window needs, then run the rules."""

from __future__ import annotations

from datetime import date

import psycopg

from hub.detection.service import DetectionResult, history_start, run_detection
from hub.features import refresh_daily_features
from models.rules import Policy

_DAYS_TO_REFRESH = """
SELECT d::date FROM generate_series(%(lo)s::date, %(hi)s::date, interval '1 day') d
WHERE NOT EXISTS (SELECT 1 FROM unit_daily u WHERE u.day = d::date)
   OR EXISTS (SELECT 1 FROM bulk_stale_days s WHERE s.day = d::date)
ORDER BY 1
"""


def refresh_for_window(conn: psycopg.Connection, *, as_of: date, policy: Policy) -> tuple[date, date] | None:
    """Recompute daily features for the days of the detection window (and baseline) that lack them or
    that a bulk import changed; return the refreshed span, or None when nothing needed refreshing."""
    lo = history_start(as_of, policy)
    days = [r[0] for r in conn.execute(_DAYS_TO_REFRESH, {"lo": lo, "hi": as_of})]
    if not days:
        return None
    since, until = days[0], days[-1]
    refresh_daily_features(conn, since=since, until=until)
    conn.execute("DELETE FROM bulk_stale_days WHERE day BETWEEN %s AND %s", (since, until))
    conn.commit()
    return since, until


def detect_as_of(
    conn: psycopg.Connection, *, as_of: date, policy: Policy | None = None, refresh: bool = True
) -> DetectionResult:
    """Run detection on the data up to ``as_of`` (features refreshed as needed); opens or updates alerts."""
    policy = policy or Policy.load()
    if refresh:
        refresh_for_window(conn, as_of=as_of, policy=policy)
    result = run_detection(conn, as_of=as_of, policy=policy)
    conn.commit()
    return result
