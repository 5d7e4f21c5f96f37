"""The pipeline lease (hub/lease.py) on a real PostgreSQL: acquire, renew, takeover at expiry, fencing."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from anju.hub.lease import Lease, LeaseKeeper, LeaseLost, LeaseTerm, holder_id
from anju.hub.storage import ensure_schema
from tests.services import free_port


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url, autocommit=True) as c:
        ensure_schema(c)
        c.execute("CREATE TABLE work (holder text NOT NULL)")
        yield c


def row(conn: psycopg.Connection) -> tuple[object, ...]:
    found = conn.execute("SELECT holder, epoch FROM hub_leases WHERE name = 'pipeline'").fetchone()
    assert found is not None
    return tuple(found)


def test_first_hub_takes_the_lease_and_a_second_waits(conn: psycopg.Connection) -> None:
    a, b = Lease(holder="hub-a", ttl_s=30), Lease(holder="hub-b", ttl_s=30)
    term = a.try_acquire(conn)
    assert term is not None and term.epoch == 1 and term.holder == "hub-a"
    assert b.try_acquire(conn) is None
    assert 29 < b.remaining_s(conn) <= 30
    assert row(conn) == ("hub-a", 1)


def test_the_holder_renews_its_term_without_a_new_epoch(conn: psycopg.Connection) -> None:
    a = Lease(holder="hub-a", ttl_s=1.0)
    first = a.try_acquire(conn)
    assert first is not None
    time.sleep(0.5)
    again = a.try_acquire(conn, current=first)
    assert again is not None and again.epoch == first.epoch == 1
    assert again.valid_until > first.valid_until
    time.sleep(0.7)  # past the first term's end, within the renewed one
    assert 0 < a.remaining_s(conn) < 0.5
    assert Lease(holder="hub-b", ttl_s=1.0).try_acquire(conn) is None


def test_a_standby_takes_over_at_expiry_with_a_new_epoch(conn: psycopg.Connection) -> None:
    a, b = Lease(holder="hub-a", ttl_s=0.4), Lease(holder="hub-b", ttl_s=0.4)
    old = a.try_acquire(conn)
    assert old is not None and b.try_acquire(conn) is None
    time.sleep(0.5)
    assert b.remaining_s(conn) == 0.0
    new = b.try_acquire(conn)
    assert new is not None and new.epoch == 2
    # The old holder's renewal names its old term: it finds another holder and gets nothing.
    assert a.try_acquire(conn, current=old) is None
    assert row(conn) == ("hub-b", 2)


def test_the_holder_may_not_renew_a_term_that_expired(conn: psycopg.Connection) -> None:
    """Even when no one else took it: its work may have been fenced out meanwhile, so it is a new term."""
    a = Lease(holder="hub-a", ttl_s=0.3)
    old = a.try_acquire(conn)
    assert old is not None
    time.sleep(0.4)
    new = a.try_acquire(conn, current=old)
    assert new is not None and new.epoch == 2


def test_a_stale_holder_cannot_commit_its_work(conn: psycopg.Connection, database_url: str) -> None:
    a, b = Lease(holder="hub-a", ttl_s=0.5), Lease(holder="hub-b", ttl_s=0.5)
    old = a.try_acquire(conn)
    assert old is not None
    with psycopg.connect(database_url) as work:
        a.check(work, old)
        work.execute("INSERT INTO work VALUES ('hub-a')")
        time.sleep(0.6)  # hub-a is paused past its term; hub-b takes over
        assert b.try_acquire(conn) is not None
        with pytest.raises(LeaseLost, match="ran out"):
            a.fence(work, old)
        # Even a hub whose own clock has not seen its term end is refused by the database.
        lagging = LeaseTerm(holder=old.holder, epoch=old.epoch, valid_until=time.monotonic() + 60)
        with pytest.raises(LeaseLost, match="no longer held"):
            a.fence(work, lagging)
        work.rollback()
    assert conn.execute("SELECT count(*) FROM work").fetchone() == (0,)


def test_a_takeover_waits_for_the_fenced_commit(conn: psycopg.Connection, database_url: str) -> None:
    """The fence locks the lease row until the holder commits: a standby's takeover lands after it."""
    a, b = Lease(holder="hub-a", ttl_s=0.5), Lease(holder="hub-b", ttl_s=0.5)
    term = a.try_acquire(conn)
    assert term is not None
    taken: list[LeaseTerm | None] = []
    with psycopg.connect(database_url) as work:
        work.execute("INSERT INTO work VALUES ('hub-a')")
        a.fence(work, term)  # just before the commit
        time.sleep(0.6)  # the term expires while the commit is on its way

        def take() -> None:
            with psycopg.connect(database_url, autocommit=True) as other:
                taken.append(b.try_acquire(other))

        thread = threading.Thread(target=take)
        thread.start()
        thread.join(0.5)
        assert thread.is_alive() and taken == []  # the takeover waits on the holder's lock
        work.commit()
    thread.join(5)
    assert len(taken) == 1 and taken[0] is not None and taken[0].epoch == 2
    assert conn.execute("SELECT holder FROM work").fetchall() == [("hub-a",)]


def test_a_restarted_hub_is_a_new_holder() -> None:
    assert holder_id("hub-1") != holder_id("hub-1")
    assert holder_id("hub-1").startswith("hub-1:")


def wait_until(cond: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(cond) and cond():
            return True
        time.sleep(0.02)
    return False


def test_keepers_renew_and_hand_over_on_a_clean_stop(conn: psycopg.Connection, database_url: str) -> None:
    ttl = 0.6
    a = LeaseKeeper(database_url=database_url, lease=Lease(holder="hub-a", ttl_s=ttl))
    b = LeaseKeeper(database_url=database_url, lease=Lease(holder="hub-b", ttl_s=ttl))
    a.start()
    try:
        assert wait_until(lambda: a.term() is not None, 5)
        b.start()
        time.sleep(4 * ttl)  # several renewals: still hub-a's first term
        term = a.term()
        assert term is not None and term.epoch == 1 and b.term() is None
        stopped = time.monotonic()
        a.stop()  # releases the lease: hub-b need not wait for it to expire
        assert wait_until(lambda: b.term() is not None, 5)
        assert time.monotonic() - stopped < ttl
        new = b.term()
        assert new is not None and new.epoch == 2 and a.term() is None
    finally:
        a.stop()
        b.stop()


def test_a_step_may_outlast_the_renewal_it_began_under_but_not_the_term(
    conn: psycopg.Connection, database_url: str
) -> None:
    keeper = LeaseKeeper(database_url=database_url, lease=Lease(holder="hub-a", ttl_s=0.6))
    keeper.start()
    try:
        assert wait_until(lambda: keeper.term() is not None, 5)
        began = keeper.term()
        assert began is not None
        with psycopg.connect(database_url) as work:
            keeper.check(work, began.epoch)
            work.execute("INSERT INTO work VALUES ('hub-a')")
            time.sleep(1.5)  # a slow step: the term began under ran out, renewed twice since
            assert time.monotonic() > began.valid_until
            keeper.fence(work, began.epoch)
            work.commit()
            keeper.check(work, began.epoch)
            keeper.stop()  # released: the term is over
            with pytest.raises(LeaseLost):
                keeper.fence(work, began.epoch)
            work.rollback()
    finally:
        keeper.stop()
    assert conn.execute("SELECT count(*) FROM work").fetchone() == (1,)


def test_two_pipelines_one_works_and_the_other_takes_over(database_url: str) -> None:
    from anju.hub.main import Pipeline
    from anju.hub.settings import HubSettings

    with psycopg.connect(database_url) as c:
        ensure_schema(c)
        c.commit()
    dead = f"http://127.0.0.1:{free_port()}"  # no tenancy system or SMS gateway: their steps wait
    settings = HubSettings(tenancy_url=dead, sms_url=dead, detect_interval_s=0.2, filing_interval_s=0.05,
                           pipeline_lease_s=0.9)  # fmt: skip
    first = Pipeline(database_url=database_url, settings=settings)
    second = Pipeline(database_url=database_url, settings=settings.model_copy(update={"hub_id": "hub-2"}))
    first.start()
    try:
        assert wait_until(lambda: first.stats.detection_runs > 0, 10)
        second.start()
        time.sleep(1.5)
        assert first.active() and not second.active()
        assert second.stats.detection_runs == 0 and second.part.snapshot().up
        first.stop()
        assert wait_until(lambda: second.stats.detection_runs > 0, 10)
        assert second.active() and second.stats.terms == 1
    finally:
        first.stop()
        second.stop()
