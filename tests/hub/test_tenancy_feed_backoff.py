"""A tenancy system that is down is not asked every pipeline step: the changes feed backs off, with one
warning when it goes down and one line when it is back."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
import pytest

from anju.hub.tenancy.changes import FeedBackoff, apply_tenancy_changes
from anju.hub.tenancy.client import TenancyClient
from tests.hub.test_features import prepare_schema
from tests.services import free_port

pytestmark = pytest.mark.integration


class CountingClient(TenancyClient):
    """The real client, counting the feed requests it makes."""

    calls = 0

    def changes(self, *, since: int, limit: int = 100) -> list[dict[str, Any]]:
        self.calls += 1
        return super().changes(since=since, limit=limit)


def never_closes(conn: psycopg.Connection[Any], case_id: int, detail: dict[str, Any]) -> None:
    raise AssertionError("no change can arrive from a feed that is down")


def test_a_feed_that_is_down_is_polled_less_and_less_often(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    now = [0.0]
    backoff = FeedBackoff(base_s=2.0, cap_s=60.0, clock=lambda: now[0])
    with (
        psycopg.connect(database_url) as conn,
        CountingClient(f"http://127.0.0.1:{free_port()}", None, 2.0) as client,  # nobody listens
        caplog.at_level(logging.DEBUG, logger="anju.hub.tenancy.changes"),
    ):
        prepare_schema(conn)
        conn.commit()
        for _ in range(600):  # ten minutes of a pipeline stepping every second
            result = apply_tenancy_changes(conn, client=client, close_case=never_closes, backoff=backoff)
            assert result.error is not None and result.seen == 0
            now[0] += 1.0
    # 2 s, ~4, ~8, ~16, ~32, then ~60 s apart: a dozen or so tries, not 600
    calls = client.calls if isinstance(client, CountingClient) else -1
    assert 8 <= calls <= 20, calls
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "unavailable (1 in a row)" in warnings[0].getMessage()


def test_backoff_grows_to_its_cap_and_resets() -> None:
    now = [0.0]
    backoff = FeedBackoff(base_s=2.0, cap_s=60.0, clock=lambda: now[0])
    gaps = []
    for _ in range(10):
        backoff.failed(OSError("down"))
        gaps.append(backoff.next_try - now[0])
        now[0] = backoff.next_try
    assert 1.0 <= gaps[0] <= 2.0 and all(30.0 <= g <= 60.0 for g in gaps[6:])
    assert not FeedBackoff(clock=lambda: -1.0, next_try=0.0).due()
    backoff.succeeded()
    assert backoff.failures == 0 and backoff.due()
