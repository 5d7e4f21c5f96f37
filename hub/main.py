"""``anju hub``: ingest, periodic detection, tenancy filing and the inspector API, in one process or many.

``--role`` (setting ``role``) says which parts a hub runs: ``ingest``, ``pipeline``, ``api``, a
comma-separated mix, or ``all``; any number of hubs of each may run against one database and one
broker. Ingest hubs share the agents' messages through the MQTT 5 shared subscription (``share_group``):
the broker gives each message to one of them, and an ack goes out only after the commit, so a hub that
dies loses nothing (the agent resends what stays unacked, and the database's unique keys drop a second
copy). The API keeps no state of its own: sessions and the sign-in throttle live in the database. The
pipeline runs in every hub that has the role, but works only while it holds the ``pipeline`` lease
(``anju.hub.lease``); the others stand by and take over within one lease period of the holder's death.

The ingest writer and the pipeline run as supervised threads (``anju.hub.monitor.run_supervised``): a crash
in either is logged, shown by ``/api/health`` (503) and ``/metrics``, and the loop restarts with backoff.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from types import FrameType
from typing import TypeVar

import psycopg

from anju.hub.lease import Lease, LeaseKeeper, LeaseLost, LeaseTerm, TermFence, holder_id
from anju.hub.monitor import HubMonitor, PartMonitor, run_supervised
from anju.hub.settings import HubSettings
from anju.hub.storage.embedded import resolve_database_url
from anju_wire import TimeBounds

log = logging.getLogger(__name__)
OVERDUE_INTERVAL_S = 60.0  # how often the pipeline records cases whose deadline passed (hub/cases/deadlines)
FILING_BATCH = 10  # outbox rows per drain: 10 a filing interval is far above a city's rate of cases
T = TypeVar("T")


@dataclass
class PipelineStats:
    """What the background pipeline has done so far."""

    detection_runs: int = 0
    alerts_opened: int = 0
    cases_filed: int = 0
    terms: int = 0  # times this hub took the pipeline lease
    errors: list[str] = field(default_factory=list)


def detect_once(
    conn: psycopg.Connection, *, since: date | None, tz: str, bounds: TimeBounds | None = None,
    fence: Callable[[], None] | None = None, jobs: int = 1, workers_fence: TermFence | None = None,
) -> date | None:
    """Refresh daily features from ``since`` (days of the estates' zone ``tz``) and run detection; return
    the last day with features.

    The last day is read inside the time window, so a stray far-future day left in ``unit_daily`` cannot
    hold the next refresh there (fresh days would never get features). ``fence`` (the pipeline lease's)
    runs just before each commit and raises when this hub may no longer commit; open the transaction
    before the call for it to cover the refresh and the detection too. With ``jobs`` > 1 detection runs in
    that many worker processes, each fencing its own commit with ``workers_fence`` (the same term, as
    data); the refresh is committed, fenced, before they start (``detect_as_of``).
    """
    from anju.hub.detection.asof import detect_as_of
    from anju.hub.storage.rollups import refresh_daily_features

    bounds = bounds or TimeBounds()
    now = datetime.now(UTC)
    refresh_daily_features(conn, tz=tz, since=since, bounds=bounds, now=now)
    # New days were just rolled up; imports mark theirs stale.
    detect_as_of(conn, tz=tz, refresh="stale", jobs=jobs, fence=fence, workers_fence=workers_fence)
    latest = (now + bounds.max_future).date()
    row = conn.execute("SELECT max(day) FROM unit_daily WHERE day <= %s", (latest,)).fetchone()
    if fence is not None:
        fence()
    conn.commit()
    return row[0] if row else None


class Pipeline:
    """Background thread: rolls up features, runs the detectors, files cases from the outbox; works only
    while this hub holds the pipeline lease (``anju.hub.lease``), and stands by otherwise."""

    def __init__(self, *, database_url: str, settings: HubSettings) -> None:
        self._url = database_url
        self._settings = settings
        self._stop = threading.Event()
        self._wake = threading.Event()  # the lease changed hands, or stop
        self.stats = PipelineStats()
        lease = Lease(holder=holder_id(settings.hub_id), ttl_s=settings.pipeline_lease_s)
        self.lease = LeaseKeeper(database_url=database_url, lease=lease, on_change=self._lease_changed)
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
        """Start asking for the lease, and the background thread."""
        self.lease.start()
        self._thread.start()

    def _lag_s(self) -> float | None:
        """Seconds since the last successful step (None before the first)."""
        return None if self._last_ok is None else time.monotonic() - self._last_ok

    def _lease_changed(self, _term: LeaseTerm | None) -> None:
        self._wake.set()

    def active(self) -> bool:
        """Whether this hub holds the pipeline lease now."""
        return self.lease.term() is not None

    def stop(self) -> None:
        """Ask the thread to finish, wait for it, then give the lease up for a standby."""
        self._stop.set()
        self._wake.set()
        self._thread.join(30)
        self.lease.stop()

    def _fenced(self, conn: psycopg.Connection, epoch: int, step: Callable[[], T], *,
                atomic: bool = True) -> T:  # fmt: skip
        """Run ``step`` while the term ``epoch`` holds: checked before; an ``atomic`` step (its writes in
        the connection's transaction) is fenced again at its commit. Others manage their own transactions
        (the outbox sends outside any) and start idle."""
        self.lease.check(conn, epoch)
        if not atomic:
            conn.commit()
            return step()
        out = step()
        self.lease.fence(conn, epoch)
        conn.commit()
        return out

    def _standby(self) -> None:
        """Wait for the lease (or stop); a standby is healthy."""
        self.part.success()
        self._wake.wait(self._settings.pipeline_lease_s / 3)
        self._wake.clear()

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
        # A claimed outbox row is left to its claimer for as long as its drain may take (a look-up and a
        # send per row, each up to the time-out): a holder paused past its term may still be sending it.
        # After that, the holder's successor looks the filing up before it sends it again. (The outbox's
        # own default, 5 minutes, would hold a dead holder's last rows back that long.)
        claim = timedelta(seconds=2 * FILING_BATCH * s.tenancy_timeout_s)
        timeout = s.tenancy_timeout_s
        last_day: date | None = None
        epoch: int | None = None  # the term the schedule below belongs to
        took: float | None = None  # when this term began, until its first detection
        next_detect = next_overdue = next_retention = clock = 0.0
        feed_backoff = FeedBackoff()  # a tenancy system that is down is not asked every filing interval
        with (
            psycopg.connect(self._url) as conn,
            TenancyClient(base_url=s.tenancy_url, token=s.tenancy_token, timeout=timeout) as client,
            SmsGateway(s.sms_url) as gateway,
        ):
            while not self._stop.is_set():
                self.part.beat()
                term = self.lease.term()
                if term is None:
                    self._standby()
                    continue
                try:
                    if term.epoch != epoch:  # a new term is a start: every job is due, and the features are
                        epoch, last_day = term.epoch, None  # refreshed from the first day, as at start-up
                        next_detect = next_overdue = next_retention = clock
                        self.stats.terms += 1
                        took = time.monotonic()
                    if clock >= next_detect:
                        since = last_day - timedelta(days=2) if last_day else None
                        self.lease.check(conn, term.epoch)  # opens the transaction the fence closes
                        last_day = detect_once(
                            conn, since=since, tz=s.estate_tz, bounds=s.time_bounds(), jobs=s.detect_jobs,
                            fence=lambda: self.lease.fence(conn, term.epoch),  # noqa: B023
                            workers_fence=self.lease.term_fence(term.epoch))  # each worker's own commit
                        self.stats.detection_runs += 1
                        next_detect = clock + s.detect_interval_s
                        if took is not None:  # once a term: how long a takeover took to do real work
                            log.info("pipeline active (lease epoch %d): first detection done %.1f s after"
                                     " taking the lease", epoch, time.monotonic() - took)
                            took = None
                    if clock >= next_retention:  # raw rows past the horizon, a partition at a time
                        next_retention = clock + RETENTION_INTERVAL.total_seconds()  # a failure waits too
                        self._fenced(conn, term.epoch, atomic=False,  # it commits (or rolls back) itself
                                     step=lambda: apply_retention(conn, horizon_days=s.retention_days))
                    if clock >= next_overdue:  # deadlines passed since the last look, in the trail once
                        next_overdue = clock + OVERDUE_INTERVAL_S
                        self._fenced(conn, term.epoch, lambda: note_overdue(conn))
                    result = self._fenced(conn, term.epoch, lambda: deliver_pending(
                        conn, client=client, limit=FILING_BATCH, lease=claim), atomic=False)
                    # notices to households, welfare signals
                    self._fenced(conn, term.epoch, lambda: household_step(conn, gateway=gateway))
                    # Closed / moved out flow back to cases: the workflow closes them.
                    self._fenced(conn, term.epoch, lambda: apply_tenancy_changes(  # a page per transaction
                        conn, client=client, close_case=close_for_tenancy, backoff=feed_backoff),
                                 atomic=False)
                    self.stats.cases_filed += result.sent
                    self._last_ok = time.monotonic()
                    self.part.success()
                except LeaseLost as err:  # another hub took over; nothing of this step committed
                    conn.rollback()
                    log.warning("pipeline step stopped: %s", err)
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


def run_hub(settings: HubSettings, *, roles: frozenset[str] | None = None) -> int:
    """Run the hub's ``roles`` (default: the ``role`` setting) until SIGINT/SIGTERM."""
    from anju.hub.ingest.consumer import IngestService
    from anju.hub.storage import ensure_schema

    roles = roles or settings.roles()
    url = resolve_database_url(settings.database_url, settings.home)
    monitor = HubMonitor()
    with psycopg.connect(url) as conn:  # hubs that start together wait for each other (migrations' lock)
        info = ensure_schema(conn, policy=settings.timescale_policy())
        conn.commit()
        _check_zone(conn, settings.estate_tz)
    log.info("storage ready: %s; this hub runs %s", info, ", ".join(sorted(roles)))
    ingest: IngestService | None = None
    pipeline: Pipeline | None = None
    if "ingest" in roles:
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
        monitor.add(*ingest.parts())
        monitor.attach_ingest(ingest)
        ingest.start()
    if "pipeline" in roles:
        pipeline = Pipeline(database_url=url, settings=settings)
        monitor.add(pipeline.part)
        monitor.attach_lease(pipeline.lease)
        pipeline.start()
    try:
        if "api" in roles:
            _serve_api(settings, url, monitor)
        else:
            _wait_for_signal()
    finally:
        if pipeline is not None:
            pipeline.stop()
        if ingest is not None:
            ingest.stop()
    return 0


def _check_zone(conn: psycopg.Connection, tz: str) -> None:
    """Refuse to start when PostgreSQL does not know the estates' zone (its time zone data is its own,
    not Python's): otherwise every rollup of the pipeline would fail the same way, again and again."""
    try:
        conn.execute("SELECT now() AT TIME ZONE %s", (tz,))
    except psycopg.errors.InvalidParameterValue as err:
        raise SystemExit(f"anju hub: the database does not know the time zone estate_tz={tz!r}") from err
    finally:
        conn.rollback()


def _serve_api(settings: HubSettings, url: str, monitor: HubMonitor) -> None:
    """The inspector pages and the JSON API until SIGINT/SIGTERM; every hub's API is alike (no state of
    its own), so a proxy may send any request to any of them."""
    import uvicorn

    from anju.hub.api.app import create_app

    app = create_app(database_url=url, monitor=monitor, sms_url=settings.sms_url,
                     workflow=settings.workflow(), estate_tz=settings.estate_tz)
    server = uvicorn.Server(uvicorn.Config(
        app, host=settings.http_host, port=settings.http_port, log_level="warning",
        forwarded_allow_ips=settings.forwarded_allow_ips,  # None: uvicorn's default
    ))

    def _stop(_sig: int, _frame: FrameType | None) -> None:
        server.should_exit = True

    signal.signal(signal.SIGTERM, _stop)
    log.info("inspector page at http://%s:%d/ (API docs at /docs)", settings.http_host, settings.http_port)
    server.run()


def _wait_for_signal() -> None:
    """Block until SIGINT or SIGTERM (a hub without the API role)."""
    done = threading.Event()

    def _stop(_sig: int, _frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info("hub running; SIGTERM stops it")
    while not done.wait(1.0):
        pass
