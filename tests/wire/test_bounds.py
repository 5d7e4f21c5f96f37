"""Time bounds and the agent-to-estate rule of the wire contract, without a broker or a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from anju_wire import ContractError, TimeBounds, agent_of_estate

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("ts", "code"),
    [
        (datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-12))), "ts_future"),  # past UTC's 9999
        (datetime(2999, 1, 1, tzinfo=UTC), "ts_future"),
        (NOW + timedelta(days=1, seconds=1), "ts_future"),
        (datetime(1901, 1, 1, tzinfo=UTC), "ts_too_old"),
        (datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))), "ts_too_old"),  # before UTC's year 1
    ],
)
def test_timestamps_outside_the_window_are_refused_with_a_code(ts: datetime, code: str) -> None:
    with pytest.raises(ContractError) as err:
        TimeBounds().check(ts, now=NOW)
    assert err.value.code == code


def test_timestamps_inside_the_window_pass() -> None:
    bounds = TimeBounds()
    for ts in (NOW, NOW + timedelta(days=1), NOW - timedelta(days=3650)):
        bounds.check(ts, now=NOW)


def test_window_clips_at_what_datetime_holds() -> None:
    earliest, latest = TimeBounds(max_future=timedelta(days=10**7), max_age=timedelta(days=10**7)).window(NOW)
    assert (earliest.year, latest.year) == (1, 9999)
    with pytest.raises(ValueError):
        TimeBounds(max_future=timedelta(seconds=-1))


@pytest.mark.parametrize(
    ("agent", "estate", "ok"),
    [("E01-gw1", "E01", True), ("E02-gw1", "E01", False), ("E01", "E01", False), ("E01-", "E01", False),
     ("gw1", "E01", False), ("E010-gw1", "E01", False)],
)  # fmt: skip
def test_an_agent_belongs_to_the_estate_its_id_starts_with(agent: str, estate: str, ok: bool) -> None:
    assert agent_of_estate(agent, estate) is ok
