"""The pipeline's detection across worker processes (setting ``detect_jobs``), fenced by the pipeline lease.

Each worker checks the lease term, with its row locked, just before its own commit (``TermFence``): the
alerts are those of a single-process run while the term holds, and nothing of the workers' commits lands
once another hub took the lease over.
"""

from __future__ import annotations

import pickle
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from pydantic import ValidationError

from anju.hub.detection.asof import detect_as_of
from anju.hub.detection.parallel import DetectionLeaseLost
from anju.hub.lease import Lease, LeaseKeeper, LeaseLost, TermFence
from anju.hub.main import detect_once
from anju.hub.settings import HubSettings
from anju_wire.clock import ESTATE_TZ
from tests.hub.test_detection import AS_OF
from tests.hub.test_detection_parallel import outcome, two_estates_one_vacant_each
from tests.hub.test_features import add_readings, hourly, prepare_schema
from tests.hub.test_lease import wait_until
from tests.services import create_database, drop_database

pytestmark = pytest.mark.integration

SINCE = AS_OF + timedelta(days=1)  # the day of the newest readings: AS_OF is the last complete day


def seed(url: str) -> None:
    """Two estates of three flats, one vacant in each, and a reading the day after AS_OF."""
    with psycopg.connect(url) as conn:
        two_estates_one_vacant_each(conn)
        add_readings(conn, "E01-1-0101", "electricity", hourly(SINCE, start=9, per_hour=1))
        conn.commit()


@pytest.fixture
def two_cities(pg_admin_url: str) -> Iterator[tuple[str, str]]:
    """Two databases with the same flats."""
    urls = [create_database(pg_admin_url) for _ in range(2)]
    try:
        for url in urls:
            seed(url)
        yield urls[0], urls[1]
    finally:
        for url in urls:
            drop_database(pg_admin_url, url)


def pipeline_detection(url: str, jobs: int) -> dict[str, Any]:
    """One detection as the pipeline runs it (``Pipeline._run``): under a held lease, checked before,
    fenced at every commit, the workers with the term's ``TermFence``; what it left."""
    keeper = LeaseKeeper(database_url=url, lease=Lease(holder="hub-a", ttl_s=30))
    keeper.start()
    try:
        assert wait_until(lambda: keeper.term() is not None, 5)
        term = keeper.term()
        assert term is not None
        with psycopg.connect(url) as conn:
            keeper.check(conn, term.epoch)
            last = detect_once(conn, since=SINCE, tz=ESTATE_TZ, jobs=jobs,
                               fence=lambda: keeper.fence(conn, term.epoch),
                               workers_fence=keeper.term_fence(term.epoch))  # fmt: skip
            assert last == SINCE
            seen = outcome(conn)
            seen["run"] = conn.execute("SELECT as_of, units, flagged, opened, jobs FROM detection_last_run"
                                       ).fetchall()  # fmt: skip
            return seen
    finally:
        keeper.stop()


def test_pipeline_detection_with_two_workers_opens_the_alerts_of_one_process(
    two_cities: tuple[str, str],
) -> None:
    one, two = two_cities
    single = pipeline_detection(one, jobs=1)
    workers = pipeline_detection(two, jobs=2)
    assert [(a[0], a[2]) for a in single["alerts"]] == [("E01-1-0100", "vacancy"), ("E02-1-0100", "vacancy")]
    assert len(single["cases"]) == 2
    assert workers["alerts"] == single["alerts"] and workers["cases"] == single["cases"]
    assert workers["audit"] == single["audit"]
    assert single["run"] == [(AS_OF, 6, 2, 2, 1)] and workers["run"] == [(AS_OF, 6, 2, 2, 2)]


def test_workers_commit_nothing_once_another_hub_took_the_lease(database_url: str) -> None:
    """The lease's epoch moves on after the pipeline's own (fenced) commit and before the workers': each
    worker's fence finds the row taken, its share is rolled back and the run raises a lost lease."""
    seed(database_url)
    a = Lease(holder="hub-a", ttl_s=30)
    with psycopg.connect(database_url, autocommit=True) as admin, psycopg.connect(database_url) as conn:
        term = a.try_acquire(admin)
        assert term is not None

        def take_over() -> None:  # a standby's new term (as if hub-a had been partitioned past its expiry)
            with psycopg.connect(database_url, autocommit=True) as other:
                other.execute("UPDATE hub_leases SET holder = 'hub-b', epoch = epoch + 1"
                              " WHERE name = 'pipeline'")

        standby = threading.Thread(target=take_over)

        def fence() -> None:
            a.fence(conn, term)
            if not standby.is_alive() and standby.ident is None:  # the pipeline's commit before the workers
                standby.start()  # its UPDATE waits on the row this fence locked, until that commit
                assert wait_until(lambda: admin.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock'").fetchone() == (1,), 5)

        workers_fence = a.term_fence(term)  # what each worker is sent: plain data
        assert pickle.loads(pickle.dumps(workers_fence)) == TermFence("pipeline", "hub-a", 1)
        a.check(conn, term)
        with pytest.raises(LeaseLost) as raised:
            detect_once(conn, since=SINCE, tz=ESTATE_TZ, jobs=2, fence=fence, workers_fence=workers_fence)
        standby.join(5)
        assert isinstance(raised.value, DetectionLeaseLost)
        assert "no longer held by hub-a" in str(raised.value)
        conn.rollback()
        assert admin.execute("SELECT holder, epoch FROM hub_leases").fetchall() == [("hub-b", 2)]
        for table in ("alerts", "cases", "detection_last_run"):
            assert admin.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), table
        # (The same flats give two alerts with two workers under a live term: the test above.)


def test_a_fenced_run_with_workers_needs_their_fence(database_url: str) -> None:
    with psycopg.connect(database_url) as conn, pytest.raises(ValueError, match="workers_fence"):
        detect_as_of(conn, as_of=AS_OF, jobs=2, fence=lambda: None)


def test_detect_jobs_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert HubSettings().detect_jobs == 1
    monkeypatch.setenv("ANJU_DETECT_JOBS", "3")
    assert HubSettings().detect_jobs == 3
    with pytest.raises(ValidationError, match="detect_jobs"):
        HubSettings(detect_jobs=0)


def test_the_pipeline_passes_its_detect_jobs_and_term_to_detection(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from anju.hub import main
    from tests.services import free_port

    with psycopg.connect(database_url) as conn:
        prepare_schema(conn)
    calls: list[dict[str, Any]] = []

    def recorded(conn: psycopg.Connection, **how: Any) -> None:
        calls.append(how)
        how["fence"]()  # the pipeline's own fence holds in its term
        conn.commit()

    monkeypatch.setattr(main, "detect_once", recorded)
    dead = f"http://127.0.0.1:{free_port()}"  # no tenancy system or SMS gateway: their steps wait
    settings = HubSettings(tenancy_url=dead, sms_url=dead, detect_interval_s=600, filing_interval_s=0.05,
                           pipeline_lease_s=30, detect_jobs=3)  # fmt: skip
    pipeline = main.Pipeline(database_url=database_url, settings=settings)
    pipeline.start()
    try:
        assert wait_until(lambda: calls, 10)
    finally:
        pipeline.stop()
    term = calls[0]["workers_fence"]
    assert calls[0]["jobs"] == 3
    assert isinstance(term, TermFence) and term.name == "pipeline" and term.epoch == 1
    assert term.holder == pipeline.lease.lease.holder
