"""Bulk import on a real PostgreSQL: bad lines are refused with line number and reason, twice is once."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from anju.cli import main
from hub.bulk import BulkImport, BulkImportError, import_all
from tests.hub.test_features import prepare_schema

UNITS = """unit_id,estate_id,building,floor,area_m2,household_size,lease_start
E01-1-0101,E01,1,1,45.5,2,2022-03-01
E01-1-0102,E01,1,1,,1,
E01-1-0103,,1,1,40,1,2022-03-01
E01-1-0104,E01,1,x,40,1,2022-03-01
E01-1-0101,E01,1,1,45.5,2,2022-03-01
"""
READINGS = """ts,unit_id,meter,value
2026-03-01T00:00:00+08:00,E01-1-0101,electricity,1000.0
2026-03-01T01:00:00+08:00,E01-1-0101,electricity,1000.4
2026-03-01T01:00:00+08:00,E01-1-0101,water,10.5
2026-03-01T02:00:00,E01-1-0101,electricity,1000.8
2026-03-01T03:00:00+08:00,E01-1-0101,steam,1.0
2026-03-01T03:00:00+08:00,E01-1-0101,water,abc
2026-03-01T03:00:00+08:00,E01-9-9999,water,1.0
2026-03-01T03:00:00+08:00,E01-1-0101,water
2026-03-01T04:00:00+08:00,E01-1-0101,water,-1

2026-04-01T04:00:00Z,E01-1-0102,electricity,5.0
"""
ACCESS = """ts,device_id,estate_id,building,floor,method,person_id,unit_id,stranger_track
2026-03-01T07:42:13+08:00,E01-G1,E01,1,,face,p-1,E01-1-0101,
2026-03-01T08:00:00+08:00,E01-G1,E01,1,3,face,,,E01-G1-t000001
2026-03-01T08:00:00+08:00,E01-G1,E01,1,,palm,p-1,E01-1-0101,
2026-03-01T08:00:00+08:00,E01-G1,E01,1,,face,p-1,E01-1-0101,E01-G1-t000001
2026-03-01T08:00:00+08:00,E01-G1,E01,1,,card,p-1,,
2026-03-01T09:00:00+08:00,E01-G1,E01,1,,card,,,
"""


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url) as c:
        prepare_schema(c)
        yield c


def write(tmp_path: Path) -> BulkImport:
    for name, text in (("units.csv", UNITS), ("readings.csv", READINGS), ("access.csv", ACCESS)):
        (tmp_path / name).write_text(text, encoding="utf-8")
    return BulkImport(units=tmp_path / "units.csv", readings=tmp_path / "readings.csv",
                      access=tmp_path / "access.csv")


def counts(conn: psycopg.Connection) -> tuple[int, ...]:
    row = conn.execute(
        "SELECT (SELECT count(*) FROM units), (SELECT count(*) FROM meter_readings),"
        " (SELECT count(*) FROM access_events)"
    ).fetchone()
    assert row is not None
    return tuple(int(x) for x in row)


def test_bad_lines_are_rejected_with_line_number_and_reason(conn: psycopg.Connection, tmp_path: Path) -> None:
    files = write(tmp_path)
    results = import_all(conn, files, rejects_path=tmp_path / "rejects.csv", progress=False)
    assert [(r.kind, r.rows_new, r.rows_rejected) for r in results] == [
        ("units", 2, 3), ("readings", 4, 7), ("access", 2, 4),
    ]
    assert counts(conn) == (2, 4, 2)
    with (tmp_path / "rejects.csv").open(encoding="utf-8") as fh:
        rejects = {(r["file"], int(r["line"])): r["reason"] for r in csv.DictReader(fh)}
    assert rejects == {
        ("units.csv", 4): "estate_id is empty",
        ("units.csv", 5): "floor is not an integer",
        ("units.csv", 6): "unit_id repeated in the file (first occurrence kept)",
        ("readings.csv", 5): "ts is not an ISO 8601 timestamp with a UTC offset",
        ("readings.csv", 6): "meter must be electricity, water or gas",
        ("readings.csv", 7): "value is not a number",
        ("readings.csv", 8): "unknown unit_id (not in units)",
        ("readings.csv", 9): "expected 4 fields, found 3",
        ("readings.csv", 10): "value must be a finite cumulative register >= 0",
        ("readings.csv", 11): "empty line",
        ("access.csv", 4): "method must be face, card, password or qr",
        ("access.csv", 5): "both person_id and stranger_track are set",
        ("access.csv", 6): "person_id without unit_id",
        ("access.csv", 7): "neither person_id nor stranger_track is set",
    }
    # The readings land in their (UTC) monthly partitions, made on demand.
    parts = {r[0] for r in conn.execute("SELECT tableoid::regclass::text FROM meter_readings")}
    assert parts == {"meter_readings_p2026_02", "meter_readings_p2026_04"}
    stranger = conn.execute(
        "SELECT floor, person, unit_id FROM access_events WHERE stranger_track IS NOT NULL"
    )
    assert stranger.fetchall() == [(3, None, None)]


def test_importing_twice_changes_nothing(conn: psycopg.Connection, tmp_path: Path) -> None:
    files = write(tmp_path)
    import_all(conn, files, rejects_path=tmp_path / "r1.csv", progress=False)
    before = counts(conn)
    snapshot = conn.execute("SELECT * FROM meter_readings ORDER BY 1, 2, 3").fetchall()
    again = import_all(conn, files, rejects_path=tmp_path / "r2.csv", progress=False)
    assert [r.rows_new for r in again] == [0, 0, 0]
    assert [r.rows_known for r in again] == [2, 4, 2]
    assert counts(conn) == before
    assert conn.execute("SELECT * FROM meter_readings ORDER BY 1, 2, 3").fetchall() == snapshot


def test_small_blocks_keep_line_numbers(conn: psycopg.Connection, tmp_path: Path) -> None:
    from hub.bulk import RejectWriter, import_file

    files = write(tmp_path)
    assert files.units is not None and files.readings is not None
    with RejectWriter(tmp_path / "rej.csv") as rejects:
        import_file(conn, "units", files.units, rejects=rejects, progress=False)
        r = import_file(conn, "readings", files.readings, rejects=rejects, progress=False, block_bytes=60)
    assert (r.rows_read, r.rows_new, r.rows_rejected) == (11, 4, 7)
    with (tmp_path / "rej.csv").open(encoding="utf-8") as fh:
        lines = sorted(int(x["line"]) for x in csv.DictReader(fh) if x["file"] == "readings.csv")
    assert lines == [5, 6, 7, 8, 9, 10, 11]


def test_wrong_header_refuses_the_file(conn: psycopg.Connection, tmp_path: Path) -> None:
    (tmp_path / "readings.csv").write_text("time,unit,meter,value\n", encoding="utf-8")
    with pytest.raises(BulkImportError, match="header"):
        import_all(conn, BulkImport(readings=tmp_path / "readings.csv"), rejects_path=tmp_path / "r.csv",
                   progress=False)


def test_cli_import_then_export(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = write(tmp_path)
    argv = ["import", "--units", str(files.units), "--readings", str(files.readings), "--access",
            str(files.access), "--rejects", str(tmp_path / "rej.csv"), "--database-url", database_url]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "readings: read=11 new=4 already_present=0 rejected=7" in out
    assert "refused" in err
    assert main(["alerts", "export", "--format", "csv", "--database-url", database_url]) == 0
    out, _ = capsys.readouterr()
    assert out.splitlines() == ["unit_id,kind,score,first_flagged,status,reasons"]
