"""Detection's one entry point: refresh the daily features the window needs, then run the rules.

The hub's pipeline, ``anju detect`` and ``anju eval`` all call ``detect_as_of``, so every run honours the
days a bulk import left stale and judges the same window the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import TYPE_CHECKING, Literal

import psycopg

from anju.hub.detection.load import estate_batches, history_start
from anju.hub.detection.service import BATCH_UNITS, DetectionResult, last_complete_day, run_detection
from anju.hub.storage.rollups import refresh_daily_features
from anju.models.rules import Policy
from anju_wire.clock import ESTATE_TZ

if TYPE_CHECKING:
    from anju.hub.lease import TermFence

_DAYS_TO_REFRESH = """
SELECT d::date FROM generate_series(%(lo)s::date, %(hi)s::date, interval '1 day') d
WHERE (%(missing)s AND NOT EXISTS (SELECT 1 FROM unit_daily u WHERE u.day = d::date))
   OR EXISTS (SELECT 1 FROM bulk_stale_days s WHERE s.day = d::date)
ORDER BY 1
"""

Refresh = Literal["window", "stale", "none"]


def refresh_for_window(
    conn: psycopg.Connection, *, as_of: date, policy: Policy, missing: bool = True, tz: str = ESTATE_TZ,
    fence: Callable[[], None] | None = None,
) -> tuple[date, date] | None:
    """Recompute daily features for the days of the detection window (and baseline) that a bulk import
    changed and, with ``missing``, those that lack them, and commit (``fence`` first, when given); return
    the refreshed span, or None when nothing needed refreshing."""
    lo = history_start(as_of, policy)
    days = [r[0] for r in conn.execute(_DAYS_TO_REFRESH, {"lo": lo, "hi": as_of, "missing": missing})]
    if not days:
        return None
    since, until = days[0], days[-1]
    refresh_daily_features(conn, tz=tz, since=since, until=until)
    conn.execute("DELETE FROM bulk_stale_days WHERE day BETWEEN %s AND %s", (since, until))
    _commit(conn, fence)
    return since, until


def detect_as_of(
    conn: psycopg.Connection, *, as_of: date | None = None, policy: Policy | None = None,
    refresh: Refresh = "window", models: bool = True, jobs: int = 1, batch_units: int | None = BATCH_UNITS,
    tz: str = ESTATE_TZ, fence: Callable[[], None] | None = None, workers_fence: TermFence | None = None,
) -> DetectionResult:
    """Run detection on the data up to ``as_of`` (default: the last complete day); opens or updates alerts.

    First the window's daily features are refreshed: ``"window"`` where they are missing or a bulk import
    left them stale (``anju detect`` on imported history); ``"stale"`` only the latter (the hub, whose
    pipeline rolls up new readings itself, and whose window may reach back before its first data);
    ``"none"`` when the caller has just rolled up every day.

    ``tz``: the estates' zone (the hub's ``estate_tz``): the days refreshed and judged are its days, as
    the features and the importer's stale days are.

    ``models=False`` leaves out the scikit-learn models, which only rank alerts (the evaluation's many runs).

    The estates are judged in batches of whole estates of at most ``batch_units`` units (None: the whole
    city in one load); memory follows the largest batch, the alerts are the same. With ``jobs`` = 1 the run
    is one transaction of its own, or a savepoint of the caller's. With ``jobs`` > 1 the batches are shared
    out to that many worker processes, each with its own connection and transaction (``parallel.py``);
    they see only committed data, so the caller's transaction is committed first.

    ``fence`` (the hub's pipeline lease, ``LeaseKeeper.fence``) runs just before each commit this call makes
    of the caller's transaction and raises when the caller may no longer commit; with ``jobs`` = 1 the
    detection itself is left to the caller's commit, which the caller fences. With ``jobs`` > 1 each
    worker fences its own commit with ``workers_fence``, the same term as data
    (``LeaseKeeper.term_fence``); a worker that finds the term gone rolls its share back and the run
    raises ``DetectionLeaseLost`` (a ``LeaseLost``). A ``fence`` without a ``workers_fence`` for ``jobs`` > 1
    is refused: the workers' commits would be unfenced.
    """
    if jobs > 1 and fence is not None and workers_fence is None:
        raise ValueError("a fenced detection with jobs > 1 needs workers_fence for the workers' commits")
    policy = policy or Policy.load()
    as_of = as_of or last_complete_day(conn, tz=tz)
    if as_of is None:
        return DetectionResult(as_of=None)
    started = _now(conn)
    if refresh != "none":
        refresh_for_window(conn, as_of=as_of, policy=policy, missing=refresh == "window", tz=tz, fence=fence)
    if jobs <= 1:
        result = run_detection(conn, as_of=as_of, policy=policy, models=models, batch_units=batch_units,
                               tz=tz)
    else:
        from anju.hub.detection.parallel import conninfo_of, run_parallel

        sizes = estate_batches(conn, max_units=batch_units)
        _commit(conn, fence)
        result = run_parallel(conninfo_of(conn), as_of=as_of, policy=policy, models=models, sizes=sizes,
                              jobs=jobs, tz=tz, fence=workers_fence)
    record_run(conn, result, started=started, jobs=jobs)
    if jobs > 1:
        _commit(conn, fence)  # the workers committed their shares; the record of the run follows them
    return result


def _commit(conn: psycopg.Connection, fence: Callable[[], None] | None) -> None:
    if fence is not None:
        fence()
    conn.commit()


def _now(conn: psycopg.Connection) -> datetime:
    row = conn.execute("SELECT clock_timestamp()").fetchone()
    assert row is not None
    return row[0]


def record_run(conn: psycopg.Connection, result: DetectionResult, *, started: datetime, jobs: int) -> None:
    """Keep what this run did as the last run (``detection_last_run``), in the caller's transaction: a run
    rolled back (``anju eval``'s history-import mode) leaves the one before it as the last (after a run by
    workers, ``detect_as_of`` commits it)."""
    assert result.as_of is not None
    conn.execute(
        "INSERT INTO detection_last_run (started_at, finished_at, as_of, units, flagged, opened, jobs)"
        " VALUES (%s, clock_timestamp(), %s, %s, %s, %s, %s)"
        " ON CONFLICT (only_row) DO UPDATE SET started_at = EXCLUDED.started_at,"
        " finished_at = EXCLUDED.finished_at, as_of = EXCLUDED.as_of, units = EXCLUDED.units,"
        " flagged = EXCLUDED.flagged, opened = EXCLUDED.opened, jobs = EXCLUDED.jobs",
        (started, result.as_of, result.units, result.flagged_vacancy + result.flagged_sublet,
         result.alerts_opened, jobs),
    )

