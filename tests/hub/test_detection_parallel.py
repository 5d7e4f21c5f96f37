"""Detection streamed estate by estate and across worker processes gives the alerts of one whole-city run.

The city is the households scenario (``device_sims/scenarios.py``) imported as ``anju import`` would:
two estates of 160 units and one of 10 (an estate too small to be its own peers, whose anomaly is compared
with every unit), with vacancies, sublets, strangers on floors and card-only households, so the rules'
comparisons across units (estate peers, same-size crowding, a building's arrivals and claimed faces, a
floor's sole candidate) and the city-wide anomaly score all take part.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest

from anju.device_sims import scenarios
from anju.hub.bulk import BulkImport, import_all
from anju.hub.detection.asof import detect_as_of
from anju.hub.detection.load import estate_batches
from anju.hub.detection.parallel import DetectionWorkerError, run_parallel, share_out
from anju.hub.detection.service import DetectionResult
from anju.hub.storage.rollups import refresh_daily_features
from anju.models.rules import Policy
from anju_wire.clock import ESTATE_TZ
from tests.hub.test_features import prepare_schema

pytestmark = pytest.mark.integration

UNITS = 330  # S001 and S002 with 160 units each, S003 with 10
DAYS = 90


@pytest.fixture
def database_url(database_url_each_backend: str) -> str:
    """On monthly partitions and on TimescaleDB (the strangers come from the access events' hypertable)."""
    return database_url_each_backend


@pytest.fixture
def city(database_url: str, tmp_path: Path) -> Iterator[tuple[psycopg.Connection, date]]:
    """The scenario imported and rolled up; the connection and the last day."""
    scenario = scenarios.make_scenario(n_units=UNITS, days=DAYS, seed=3)
    files = scenarios.write_scenario(scenario, tmp_path)
    with psycopg.connect(database_url) as conn:
        prepare_schema(conn)
        import_all(conn, BulkImport(units=files.units, readings=files.readings, access=files.access),
                   rejects_path=tmp_path / "rejects.csv", tz=ESTATE_TZ, progress=False)
        refresh_daily_features(conn, tz=ESTATE_TZ)
        conn.execute("TRUNCATE bulk_stale_days")
        conn.commit()
        yield conn, scenario.last_day


def outcome(conn: psycopg.Connection) -> dict[str, Any]:
    """Everything a run leaves that does not depend on the order units were acted on (ids, times)."""
    alerts = conn.execute(
        "SELECT unit_id, estate_id, kind, status, score, reasons, evidence, rule_version, window_start,"
        " window_end, first_flagged, last_flagged FROM alerts ORDER BY unit_id, kind").fetchall()
    cases = conn.execute(
        "SELECT a.unit_id, a.kind, c.status, c.evidence - 'alert_id' FROM cases c"
        " JOIN alerts a ON a.id = c.alert_id ORDER BY 1, 2").fetchall()
    audit = conn.execute("SELECT action, count(*) FROM audit_log GROUP BY 1 ORDER BY 1").fetchall()
    return {"alerts": alerts, "cases": cases, "audit": audit}


def run(
    conn: psycopg.Connection, as_of: date, *, keep: bool = False, **how: Any
) -> tuple[DetectionResult, dict[str, Any]]:
    """One detection as ``how`` says and its outcome; a single-process run is rolled back unless ``keep``
    (inside an outer transaction its own commit is a savepoint); workers commit their own."""
    undo = not keep and how.get("jobs", 1) == 1
    if undo:
        conn.execute("SELECT 1")
    result = detect_as_of(conn, as_of=as_of, refresh="none", **how)
    seen = outcome(conn)
    if undo:
        conn.rollback()
    else:
        conn.commit()
    return result, seen


def two_estates_one_vacant_each(conn: psycopg.Connection) -> None:
    """Two estates of three flats (the schema made), the first flat of each vacant for its last 40 days."""
    from tests.hub.test_detection import add_days
    from tests.hub.test_features import add_unit

    prepare_schema(conn)
    for estate in ("E01", "E02"):
        for i in range(3):
            add_unit(conn, f"{estate}-1-010{i}", estate=estate)
            add_days(conn, f"{estate}-1-010{i}", vacant_last=40 if i == 0 else 0)


def test_streamed_and_parallel_runs_open_the_alerts_of_one_whole_city_run(
    city: tuple[psycopg.Connection, date],
) -> None:
    conn, as_of = city
    assert [b for b, _ in estate_batches(conn, max_units=1)] == [("S001",), ("S002",), ("S003",)]
    assert estate_batches(conn, max_units=None) == [(None, UNITS)]

    whole, expected = run(conn, as_of, batch_units=None)
    per_estate, streamed = run(conn, as_of, batch_units=1)
    two_estates = run(conn, as_of, batch_units=170)  # S001 alone, S002 with S003
    parallel, shared = run(conn, as_of, jobs=2, batch_units=1)

    # The set is not trivial: both kinds flagged, in more than one estate, ranked by the anomaly.
    flagged = {(a[0], a[2]) for a in expected["alerts"]}
    assert whole.flagged_vacancy >= 5 and whole.flagged_sublet >= 5
    assert len({a[1] for a in expected["alerts"]}) >= 2
    assert all(any(r["code"] == "peer_anomaly" for r in a[5]) for a in expected["alerts"])
    assert whole.alerts_opened == whole.cases_opened == len(flagged)

    assert per_estate == whole and streamed == expected
    assert two_estates == (whole, expected)
    assert parallel == whole and shared == expected

    # The parallel run committed. Judged again, whole or in parallel, its alerts are refreshed the same
    # way (their models' view kept from the opening) and nothing is opened twice.
    again = run(conn, as_of, batch_units=None)
    assert (again[0].alerts_opened, again[0].alerts_updated, again[0].cases_opened) == (0, len(flagged), 0)
    assert again[1]["cases"] == expected["cases"]
    first_flagged = {(a[0], a[2], a[10]) for a in expected["alerts"]}
    assert {(a[0], a[2], a[10]) for a in again[1]["alerts"]} == first_flagged
    assert run(conn, as_of, jobs=2, batch_units=1) == again


def test_batches_are_shared_out_by_units_and_keep_estate_order() -> None:
    sizes = [(("A",), 100), (("B",), 400), (("C", "D"), 250), (("E",), 240)]
    # B (400) to the first share, C+D (250) and E (240) to the second, A (100) back to the first.
    assert share_out(sizes, 2) == [(("A",), ("B",)), (("C", "D"), ("E",))]
    assert share_out(sizes, 1) == [(("A",), ("B",), ("C", "D"), ("E",))]
    assert share_out(sizes[:1], 4) == [(("A",),)]


def test_a_worker_that_cannot_connect_fails_the_run() -> None:
    with pytest.raises(DetectionWorkerError, match="failed"):
        run_parallel("host=/nonexistent-anju-socket dbname=none connect_timeout=2", as_of=date(2026, 4, 1),
                     policy=Policy.load(), models=False, sizes=[(("S001",), 1), (("S002",), 1)], jobs=2)


def test_anju_detect_with_jobs_judges_every_estate(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``anju detect --jobs 2``: two estates, each worker one; a vacant flat in each is flagged once."""
    from anju.cli import main
    from tests.hub.test_detection import AS_OF

    with psycopg.connect(database_url) as conn:
        two_estates_one_vacant_each(conn)
        conn.commit()
    args = ["detect", "--database-url", database_url, "--as-of", AS_OF.isoformat(), "--jobs", "2"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "units=6 flagged_vacancy=2" in out and "alerts_opened=2" in out
    with psycopg.connect(database_url) as conn:
        alerts = conn.execute("SELECT unit_id FROM alerts ORDER BY 1").fetchall()
    assert alerts == [("E01-1-0100",), ("E02-1-0100",)]
