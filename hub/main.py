"""``anju hub``: ingest, periodic detection, tenancy filing and the inspector API, in one process.

The ingest writer and the pipeline run as supervised threads (``anju.hub.monitor.run_supervised``): a crash
in either is logged, shown by ``/api/health`` (503) and ``/metrics``, and the loop restarts with backoff.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from types import FrameType

import psycopg

from anju.hub.monitor import HubMonitor, PartMonitor, run_supervised
from anju.hub.settings import HubSettings
from anju.hub.storage.embedded import resolve_database_url
from anju_wire import TimeBounds

log = logging.getLogger(__name__)
OVERDUE_INTERVAL_S = 60.0  # how often the pipeline records cases whose deadline passed (hub/cases/deadlines)


@dataclass
class PipelineStats:
    """What the background pipeline has done so far."""

    detection_runs: int = 0
    alerts_opened: int = 0
    cases_filed: int = 0
    errors: list[str] = field(default_factory=list)


def detect_once(
    conn: psycopg.Connection, *, since: date | None, bounds: TimeBounds | None = None
) -> date | None:
    """Refresh daily features from ``since`` and run detection; return the last day with features.

    The last day is read inside the time window, so a stray far-future day left in ``unit_daily`` cannot
    hold the next refresh there (fresh days would never get features).
    """
    from anju.hub.detection.asof import detect_as_of
    from anju.hub.storage.rollups import refresh_daily_features

    bounds = bounds or TimeBounds()
    now = datetime.now(UTC)
    refresh_daily_features(conn, since=since, bounds=bounds, now=now)
    detect_as_of(conn, refresh="stale")  # new days were just rolled up; imports mark theirs stale
    latest = (now + bounds.max_future).date()
    row = conn.execute("SELECT max(day) FROM unit_daily WHERE day <= %s", (latest,)).fetchone()
    conn.commit()
    return row[0] if row else None


class Pipeline:
    """Background thread: rolls up features, runs the detectors, files cases from the outbox."""

    def __init__(self, *, database_url: str, settings: HubSettings) -> None:
        self._url = database_url
        self._settings = settings
        self._stop = threading.Event()
        self.stats = PipelineStats()
        # A detection run over a large estate takes minutes; stale means stuck far longer than that.
        self.part = PartMonitor(
            "pipeline", stale_after_s=max(900.0, 3 * settings.detect_interval_s), lag=self._lag_s
        )
        self._last_ok: float | None = None  # monotonic time of the last successful step
        self._thread = threading.Thread(
            target=run_supervised,
            kwargs={"loop": self._run, "part": self.part, "stop": self._stop},
            name="anju-pipeline",
            daemon=True,
        )

    def start(self) -> None:
        """Start the background thread."""
        self._thread.start()

    def _lag_s(self) -> float | None:
        """Seconds since the last successful step (None before the first)."""
        return None if self._last_ok is None else time.monotonic() - self._last_ok

    def stop(self) -> None:
        """Ask the thread to finish and wait for it."""
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        """The pipeline loop (under ``run_supervised``): a database error is retried in place; anything
        else ends the loop, and the supervisor restarts it on a fresh connection."""
        from anju.hub.cases.deadlines import note_overdue
        from anju.hub.cases.service import close_for_tenancy
        from anju.hub.household.gateway import SmsGateway
        from anju.hub.household.pipeline import household_step
        from anju.hub.storage.retention import RETENTION_INTERVAL, apply_retention
        from anju.hub.tenancy.changes import FeedBackoff, apply_tenancy_changes
        from anju.hub.tenancy.client import TenancyClient
        from anju.hub.tenancy.outbox import deliver_pending

        s = self._settings
        last_day: date | None = None
        next_detect = 0.0
        next_overdue = 0.0
        next_retention = 0.0
        clock = 0.0
        feed_backoff = FeedBackoff()  # a tenancy system that is down is not asked every filing interval
        with (
            psycopg.connect(self._url) as conn,
            TenancyClient(base_url=s.tenancy_url, token=s.tenancy_token) as client,
            SmsGateway(s.sms_url) as gateway,
        ):
            while not self._stop.is_set():
                self.part.beat()
                try:
                    if clock >= next_detect:
                        since = last_day - timedelta(days=2) if last_day else None
                        last_day = detect_once(conn, since=since, bounds=s.time_bounds())
                        self.stats.detection_runs += 1
                        next_detect = clock + s.detect_interval_s
                    if clock >= next_retention:  # raw rows past the horizon, a partition at a time
                        next_retention = clock + RETENTION_INTERVAL.total_seconds()  # a failure waits too
                        apply_retention(conn, horizon_days=s.retention_days)
                    if clock >= next_overdue:  # deadlines passed since the last look, in the trail once
                        next_overdue = clock + OVERDUE_INTERVAL_S
                        note_overdue(conn)
                    result = deliver_pending(conn, client=client)
                    household_step(conn, gateway=gateway)  # notices to households, welfare signals
                    # Closed / moved out flow back to cases: the workflow closes them.
                    apply_tenancy_changes(
                        conn, client=client, close_case=close_for_tenancy, backoff=feed_backoff
                    )
                    conn.commit()
                    self.stats.cases_filed += result.sent
                    self._last_ok = time.monotonic()
                    self.part.success()
                except psycopg.Error as err:
                    # The database may be restarting; keep the loop alive, the work is idempotent.
                    self.part.failure(err)
                    if conn.closed:
                        raise  # a fresh connection comes with the supervisor's restart
                    conn.rollback()
                    log.warning("pipeline step failed, will retry: %s", err)
                    self.stats.errors[:] = [*self.stats.errors[-99:], str(err)]
                self._stop.wait(s.filing_interval_s)
                clock += s.filing_interval_s


def run_hub(settings: HubSettings) -> int:
    """Run the hub until SIGINT/SIGTERM."""
    import uvicorn

    from anju.hub.api.app import create_app
    from anju.hub.ingest.consumer import IngestService
    from anju.hub.storage import ensure_schema

    url = resolve_database_url(settings.database_url, settings.home)
    monitor = HubMonitor()
    with psycopg.connect(url) as conn:
        info = ensure_schema(conn, policy=settings.timescale_policy())
        conn.commit()
    log.info("storage ready: %s", info)
    ingest = IngestService(
        database_url=url,
        mqtt_url=settings.mqtt_url,
        share_group=settings.share_group,
        client_id=settings.hub_id,
        batch_max=settings.ingest_batch_max,
        flush_s=settings.ingest_flush_s,
        mqtt_username=settings.mqtt_username,
        mqtt_password=settings.mqtt_password.get_secret_value() if settings.mqtt_password else None,
        bounds=settings.time_bounds(),
    )
    pipeline = Pipeline(database_url=url, settings=settings)
    monitor.add(*ingest.parts(), pipeline.part)
    monitor.attach_ingest(ingest)
    ingest.start()
    pipeline.start()
    app = create_app(database_url=url, monitor=monitor, sms_url=settings.sms_url,
                     workflow=settings.workflow())
    server = uvicorn.Server(
        uvicorn.Config(app, host=settings.http_host, port=settings.http_port, log_level="warning")
    )

    def _stop(_sig: int, _frame: FrameType | None) -> None:
        server.should_exit = True

    signal.signal(signal.SIGTERM, _stop)
    log.info("inspector page at http://%s:%d/ (API docs at /docs)", settings.http_host, settings.http_port)
    try:
        server.run()
    finally:
        pipeline.stop()
        ingest.stop()
    return 0
