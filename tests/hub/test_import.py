"""Bulk import on a real PostgreSQL: bad lines are refused with line number and reason, twice is once."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from anju.cli import main
from anju.hub.bulk import BulkImport, BulkImportError, ImportResult, import_all
from anju.hub.storage.timeseries import is_partitioned
from anju_wire.clock import ESTATE_TZ
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
2026-03-01T07:42:13+08:00,E01-G1,E01,1,,face,p-0123456789abcdef,E01-1-0101,
2026-03-01T08:00:00+08:00,E01-G1,E01,1,3,face,,,E01-G1-t000001
2026-03-01T08:00:00+08:00,E01-G1,E01,1,,palm,p-0123456789abcdef,E01-1-0101,
2026-03-01T08:00:00+08:00,E01-G1,E01,1,,face,p-0123456789abcdef,E01-1-0101,E01-G1-t000001
2026-03-01T08:00:00+08:00,E01-G1,E01,1,,card,p-0123456789abcdef,,
2026-03-01T09:00:00+08:00,E01-G1,E01,1,,card,,,
"""


@pytest.fixture
def database_url(database_url_each_backend: str) -> str:
    """Every test here runs on monthly partitions and on TimescaleDB (PostgreSQL 15, the oldest supported)."""
    return database_url_each_backend


# Tests of the partition swap itself (TimescaleDB's hypertables have no partitions to swap).
partitions_only = pytest.mark.parametrize("storage_backend", ["partitions"])


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


def test_bad_lines_are_rejected_with_line_number_and_reason(
    conn: psycopg.Connection, tmp_path: Path, storage_backend: str
) -> None:
    files = write(tmp_path)
    results = import_all(conn, files, tz=ESTATE_TZ, rejects_path=tmp_path / "rejects.csv", progress=False)
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
    # The readings land in their (UTC) monthly partitions, made on demand; or in the monthly chunks the
    # import attached to the hypertable.
    parts = {r[0] for r in conn.execute("SELECT tableoid::regclass::text FROM meter_readings")}
    form = "p" if storage_backend == "partitions" else "m"
    assert parts == {f"meter_readings_{form}2026_02", f"meter_readings_{form}2026_04"}
    stranger = conn.execute(
        "SELECT floor, person, unit_id FROM access_events WHERE stranger_track IS NOT NULL"
    )
    assert stranger.fetchall() == [(3, None, None)]


def test_importing_twice_changes_nothing(conn: psycopg.Connection, tmp_path: Path) -> None:
    files = write(tmp_path)
    import_all(conn, files, tz=ESTATE_TZ, rejects_path=tmp_path / "r1.csv", progress=False)
    before = counts(conn)
    snapshot = conn.execute("SELECT * FROM meter_readings ORDER BY 1, 2, 3").fetchall()
    again = import_all(conn, files, tz=ESTATE_TZ, rejects_path=tmp_path / "r2.csv", progress=False)
    assert [r.rows_new for r in again] == [0, 0, 0]
    assert [r.rows_known for r in again] == [2, 4, 2]
    assert counts(conn) == before
    assert conn.execute("SELECT * FROM meter_readings ORDER BY 1, 2, 3").fetchall() == snapshot


def test_small_blocks_keep_line_numbers(conn: psycopg.Connection, tmp_path: Path) -> None:
    from anju.hub.bulk import RejectWriter, import_file

    files = write(tmp_path)
    assert files.units is not None and files.readings is not None
    with RejectWriter(tmp_path / "rej.csv") as rejects:
        import_file(conn, "units", files.units, rejects=rejects, tz=ESTATE_TZ, progress=False)
        r = import_file(conn, "readings", files.readings, rejects=rejects, tz=ESTATE_TZ, progress=False,
                        block_bytes=60)
    assert (r.rows_read, r.rows_new, r.rows_rejected) == (11, 4, 7)
    with (tmp_path / "rej.csv").open(encoding="utf-8") as fh:
        lines = sorted(int(x["line"]) for x in csv.DictReader(fh) if x["file"] == "readings.csv")
    assert lines == [5, 6, 7, 8, 9, 10, 11]


def test_wrong_header_refuses_the_file(conn: psycopg.Connection, tmp_path: Path) -> None:
    (tmp_path / "readings.csv").write_text("time,unit,meter,value\n", encoding="utf-8")
    with pytest.raises(BulkImportError, match="header"):
        import_all(conn, BulkImport(readings=tmp_path / "readings.csv"), tz=ESTATE_TZ,
                   rejects_path=tmp_path / "r.csv",
                   progress=False)


UNITS_HEADER = "unit_id,estate_id,building,floor,area_m2,household_size,lease_start"


def _import_units(conn: psycopg.Connection, tmp_path: Path, text: str, name: str) -> ImportResult:
    (tmp_path / f"{name}.csv").write_text(text, encoding="utf-8")
    (result,) = import_all(conn, BulkImport(units=tmp_path / f"{name}.csv"), tz=ESTATE_TZ,
                           rejects_path=tmp_path / f"{name}-rejects.csv", progress=False)
    return result


def _faces(conn: psycopg.Connection) -> dict[str, tuple[Any, ...]]:
    rows = conn.execute("SELECT unit_id, household_size, faces_enrolled FROM units ORDER BY 1").fetchall()
    return {r[0]: tuple(r[1:]) for r in rows}


def test_faces_enrolled_is_an_optional_column_that_files_without_it_keep(
    conn: psycopg.Connection, tmp_path: Path
) -> None:
    with_faces = (f"{UNITS_HEADER},faces_enrolled\n"
                  "E01-1-0101,E01,1,1,45.5,2,2022-03-01,2\n"
                  "E01-1-0102,E01,1,1,40,1,2022-03-01,0\n"  # card, code or QR only: known, not missing
                  "E01-1-0103,E01,1,1,40,1,2022-03-01,\n")
    r = _import_units(conn, tmp_path, with_faces, "u1")
    assert (r.rows_new, r.rows_known, r.rows_rejected) == (3, 0, 0)
    assert _faces(conn) == {"E01-1-0101": (2, 2), "E01-1-0102": (1, 0), "E01-1-0103": (1, None)}
    again = _import_units(conn, tmp_path, with_faces, "u2")
    assert (again.rows_new, again.rows_known) == (0, 3)  # unchanged rows are left alone
    # An older 7-column export: its rows keep the counts known; a changed household is still updated.
    without = (f"{UNITS_HEADER}\n"
               "E01-1-0101,E01,1,1,45.5,2,2022-03-01\n"
               "E01-1-0102,E01,1,1,40,3,2022-03-01\n"
               "E01-1-0104,E01,1,1,40,1,2022-03-01\n")
    r = _import_units(conn, tmp_path, without, "u3")
    assert (r.rows_new, r.rows_known, r.rows_rejected) == (2, 1, 0)
    assert _faces(conn) == {"E01-1-0101": (2, 2), "E01-1-0102": (3, 0), "E01-1-0103": (1, None),
                            "E01-1-0104": (1, None)}
    # An 8-column file sets it; an empty field there keeps it too.
    change = (f"{UNITS_HEADER},faces_enrolled\n"
              "E01-1-0101,E01,1,1,45.5,2,2022-03-01,3\n"
              "E01-1-0102,E01,1,1,40,3,2022-03-01,\n"
              "E01-1-0104,E01,1,1,40,1,2022-03-01,0\n")
    r = _import_units(conn, tmp_path, change, "u4")
    assert (r.rows_new, r.rows_known) == (2, 1)
    assert _faces(conn) == {"E01-1-0101": (2, 3), "E01-1-0102": (3, 0), "E01-1-0103": (1, None),
                            "E01-1-0104": (1, 0)}


def test_bad_faces_enrolled_and_a_wrong_field_count_are_refused(
    conn: psycopg.Connection, tmp_path: Path
) -> None:
    r = _import_units(conn, tmp_path, f"{UNITS_HEADER},faces_enrolled\n"
                      "E01-1-0101,E01,1,1,45.5,2,2022-03-01,two\n"
                      "E01-1-0102,E01,1,1,45.5,2,2022-03-01,-1\n"
                      "E01-1-0103,E01,1,1,45.5,2,2022-03-01,1.5\n"
                      "E01-1-0104,E01,1,1,45.5,2,2022-03-01\n"  # 7 fields under an 8-column header
                      "E01-1-0105,E01,1,1,45.5,2,2022-03-01,1,9\n"
                      "E01-1-0106,E01,1,1,45.5,2,2022-03-01, 4\n", "bad8")
    assert (r.rows_new, r.rows_rejected) == (1, 5)
    r7 = _import_units(conn, tmp_path, f"{UNITS_HEADER}\n"
                       "E01-1-0107,E01,1,1,45.5,2,2022-03-01,1\n", "bad7")  # 8 fields under 7 columns
    assert (r7.rows_new, r7.rows_rejected) == (0, 1)
    reasons = {}
    for name in ("bad8", "bad7"):
        with (tmp_path / f"{name}-rejects.csv").open(encoding="utf-8") as fh:
            reasons |= {(r["file"], int(r["line"])): r["reason"] for r in csv.DictReader(fh)}
    assert reasons == {
        ("bad8.csv", 2): "faces_enrolled is not an integer",
        ("bad8.csv", 3): "faces_enrolled must be >= 0",
        ("bad8.csv", 4): "faces_enrolled is not an integer",
        ("bad8.csv", 5): "expected 8 fields, found 7",
        ("bad8.csv", 6): "expected 8 fields, found 9",
        ("bad7.csv", 2): "expected 7 fields, found 8",
    }
    assert _faces(conn) == {"E01-1-0106": (2, 4)}


@pytest.mark.parametrize("header", [
    "unit_id,estate_id,building,floor,area_m2,household_size,faces_enrolled,lease_start",
    "unit_id,estate_id,building,floor,area_m2,household_size,lease_start,faces",
])
def test_a_units_header_other_than_the_two_forms_is_refused(
    conn: psycopg.Connection, tmp_path: Path, header: str
) -> None:
    (tmp_path / "units.csv").write_text(f"{header}\n", encoding="utf-8")
    with pytest.raises(BulkImportError, match=r"lease_start or .*lease_start,faces_enrolled, found"):
        import_all(conn, BulkImport(units=tmp_path / "units.csv"), tz=ESTATE_TZ,
                   rejects_path=tmp_path / "r.csv", progress=False)


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


# --- the readings fast path ------------------------------------------------------------------------

def _binary_rows(data: bytes) -> list[tuple[datetime, str, str, float]]:
    """Decode COPY BINARY rows (ts, unit_id, meter, value) as PostgreSQL would read them."""
    import struct
    from datetime import timedelta

    assert data.startswith(b"PGCOPY\n\xff\r\n\x00") and data.endswith(b"\xff\xff")
    pos, out = 19, []
    while struct.unpack_from(">h", data, pos)[0] == 4:
        pos += 2
        fields = []
        for _ in range(4):
            (size,) = struct.unpack_from(">i", data, pos)
            fields.append(data[pos + 4:pos + 4 + size])
            pos += 4 + size
        (us,) = struct.unpack(">q", fields[0])
        (value,) = struct.unpack(">d", fields[3])
        out.append((datetime(2000, 1, 1, tzinfo=UTC) + timedelta(microseconds=us), fields[1].decode(),
                    fields[2].decode(), value))
    assert pos == len(data) - 2
    return out


def test_split_readings_keeps_canonical_lines_and_sets_the_rest_aside() -> None:
    from anju.hub.bulk.parse import month_of_index, split_readings

    block = (
        b"2026-03-01T07:00:00+08:00,U1,water,10.5\n"  # canonical, UTC 2026-02-28 23:00
        b"2026-03-01T08:00:00+08:00,U1,water,11\n"  # canonical, UTC March
        b"2026-03-01T00:00:00Z,U1,electricity,.5\n"  # canonical (Z, leading dot)
        b"2026-03-01 01:00:00-01:30,U1,gas,5.\n"  # canonical (space, negative offset)
        b"2026-03-01T02:00:00,U1,water,1\n"  # no offset
        b"2026-02-30T02:00:00+08:00,U1,water,1\n"  # no such day
        b'"2026-03-01T02:00:00+08:00",U1,water,1\n'  # quoted
        b"2026-03-01T02:00:00+08:00,U9,water,1\n"  # unknown unit
        b"2026-03-01T02:00:00+08:00,U1,steam,1\n"  # unknown meter
        b"2026-03-01T02:00:00+08:00,U1,water,1e3\n"  # exponent
        b"2026-03-01T02:00:00+08:00,U1,water,-1\n"  # sign
        b"2026-03-01T02:00:00+08:00,U1,water,1.2.3\n"  # two dots
        b"2026-03-01T02:00:00+08:00,U1,water,1234567890.123456\n"  # 16 digits: SQL's float8 input
        b"\n"
        b"2026-03-01T02:00:00+08:00,U1,water\n"
    )
    got = split_readings(block, {"U1"})
    assert got.lines == 15 and got.binary
    assert [n for n, _ in got.others] == list(range(5, 16))
    assert got.others[0] == (5, b"2026-03-01T02:00:00,U1,water,1")
    months = {month_of_index(m).isoformat(): _binary_rows(rows) for m, rows in got.by_month.items()}
    assert months == {
        "2026-02-01": [(datetime(2026, 2, 28, 23, tzinfo=UTC), "U1", "water", 10.5)],
        # key order within a month: electricity, gas, water
        "2026-03-01": [(datetime(2026, 3, 1, 0, tzinfo=UTC), "U1", "electricity", 0.5),
                       (datetime(2026, 3, 1, 2, 30, tzinfo=UTC), "U1", "gas", 5.0),
                       (datetime(2026, 3, 1, 0, tzinfo=UTC), "U1", "water", 11.0)],
    }
    assert got.fast_rows == {m: len(months[month_of_index(m).isoformat()]) for m in got.by_month}
    # distinct UTC hours, as epoch hours: 2026-02-28T23Z, 2026-03-01T00Z, 2026-03-01T02Z (02:30)
    march = int(datetime(2026, 3, 1, tzinfo=UTC).timestamp()) // 3600
    assert got.hours == [march - 1, march, march + 2]


def test_split_readings_values_are_what_float8_input_gives() -> None:
    import random

    from anju.hub.bulk.parse import split_readings

    rng = random.Random(3)
    texts = ["0", "0.0", "00012.50", "999999999999999", "0.000000000000001", "123456789.012345", "7.",
             ".25", "4503599627370497", *(f"{rng.uniform(0, 10 ** rng.randint(0, 12)):.{rng.randint(0, 6)}f}"
                                          for _ in range(2000))]
    texts = [t for t in texts if sum(c.isdigit() for c in t) <= 15]
    block = "".join(f"2026-03-01T{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z,U1,water,{t}\n"
                    for i, t in enumerate(texts)).encode()
    got = split_readings(block, {"U1"})
    assert got.others == [] and got.binary
    values = [value for _, _, _, value in _binary_rows(next(iter(got.by_month.values())))]
    assert values == [float(t) for t in texts]


def test_split_readings_of_a_file_not_grouped_by_series_keeps_csv_lines() -> None:
    from anju.hub.bulk.parse import split_readings

    lines = [f"2026-03-01T{h:02d}:00:00Z,U{u},water,{h}.5\n" for h in range(12) for u in range(20)]
    got = split_readings("".join(lines).encode(), {f"U{u}" for u in range(20)})
    assert not got.binary and got.others == []
    assert list(got.by_month.values()) == ["".join(lines).encode()]


def test_split_readings_takes_crlf_files_and_a_last_line_without_newline() -> None:
    from anju.hub.bulk.parse import split_readings

    got = split_readings(b"2026-03-01T00:00:00Z,U1,water,1\r\n2026-03-01T01:00:00Z,U1,water,2\r\n", {"U1"})
    assert got.others == []
    assert [v for _, _, _, v in _binary_rows(next(iter(got.by_month.values())))] == [1.0, 2.0]
    # A block mixing line ends sends its CR lines through the SQL checks (stripped of the CR).
    got = split_readings(b"2026-03-01T00:00:00Z,U1,water,1\r\n2026-03-01T01:00:00Z,U1,water,2\n", {"U1"})
    assert got.others == [(1, b"2026-03-01T00:00:00Z,U1,water,1")]


def _readings(units: list[str], hours: range, *, start: str = "2026-01-01T00:00:00+08:00") -> list[str]:
    from datetime import datetime, timedelta

    t0 = datetime.fromisoformat(start)
    return [f"{(t0 + timedelta(hours=h)).isoformat()},{u},{m},{1000 + h * 0.125:.3f}"
            for u in units for m in ("electricity", "water") for h in hours]


def _units_file(tmp_path: Path, units: list[str]) -> Path:
    path = tmp_path / "units.csv"
    path.write_text("unit_id,estate_id,building,floor,area_m2,household_size,lease_start\n"
                    + "".join(f"{u},E01,1,1,40,1,2022-01-01\n" for u in units), encoding="utf-8")
    return path


def _import_readings(
    conn: psycopg.Connection, tmp_path: Path, name: str, lines: list[str], **kw: Any
) -> tuple[ImportResult, list[tuple[int, str]]]:
    from anju.hub.bulk import RejectWriter, import_file

    path = tmp_path / name
    path.write_text("ts,unit_id,meter,value\n" + "".join(line + "\n" for line in lines), encoding="utf-8")
    with RejectWriter(tmp_path / f"{name}.rejects.csv") as rejects:
        result = import_file(conn, "readings", path, rejects=rejects, tz=ESTATE_TZ, progress=False, **kw)
    with (tmp_path / f"{name}.rejects.csv").open(encoding="utf-8") as fh:
        refused = [(int(r["line"]), r["reason"]) for r in csv.DictReader(fh)]
    return result, refused


def _snapshot(conn: psycopg.Connection) -> list[tuple[object, ...]]:
    return conn.execute(
        "SELECT ts, unit_id, meter, value, quality, device, agent_id, seq FROM meter_readings"
        " ORDER BY 2, 3, 1"
    ).fetchall()


def _partitions_ok(conn: psycopg.Connection) -> None:
    """Every partition of meter_readings has its key and time index attached to the parent's.

    On TimescaleDB: every chunk has the two indexes (of its own; chunks are not partitions).
    """
    attached = ("SELECT count(*) FROM pg_index i JOIN pg_inherits h ON h.inhrelid = i.indexrelid "
                "WHERE i.indrelid = c.oid")
    if not is_partitioned(conn, "meter_readings"):
        attached = "SELECT count(*) FROM pg_index i WHERE i.indrelid = c.oid"
    rows = conn.execute(
        f"SELECT c.relname, ({attached}) FROM pg_inherits p JOIN pg_class c ON c.oid = p.inhrelid "  # type: ignore[arg-type,unused-ignore]
        "WHERE p.inhparent = 'meter_readings'::regclass"
    ).fetchall()
    assert rows and all(n == 2 for _, n in rows), rows
    left = conn.execute("SELECT count(*) FROM pg_class WHERE relname LIKE 'bulk_load_%'").fetchone()
    assert left == (0,)


def test_fast_path_loads_empty_months_and_a_second_import_merges(
    conn: psycopg.Connection, tmp_path: Path, storage_backend: str
) -> None:
    from anju.hub.bulk import RejectWriter, import_file

    units = ["E01-1-0101", "E01-1-0102", "E01-1-0103"]
    with RejectWriter(tmp_path / "u.rejects.csv") as rejects:
        import_file(conn, "units", _units_file(tmp_path, units), rejects=rejects, tz=ESTATE_TZ,
                    progress=False)
    lines = _readings(units, range(24 * 40))  # Jan and Feb 2026 (UTC from 2025-12-31T16:00)
    first, refused = _import_readings(conn, tmp_path, "r1.csv", lines, block_bytes=20_000)
    assert refused == []
    assert (first.rows_read, first.rows_new, first.rows_known, first.rows_rejected) == (
        len(lines), len(lines), 0, 0)
    _partitions_ok(conn)
    parts = {r[0] for r in conn.execute("SELECT DISTINCT tableoid::regclass::text FROM meter_readings")}
    if storage_backend == "partitions":
        assert parts == {"meter_readings_p2025_12", "meter_readings_p2026_01", "meter_readings_p2026_02"}
    else:  # each month's load table attached as that month's chunk
        assert parts == {"meter_readings_m2025_12", "meter_readings_m2026_01", "meter_readings_m2026_02"}
    rows = _snapshot(conn)
    assert len(rows) == len(lines)
    # Values and instants are exactly what PostgreSQL makes of the text (it casts them itself).
    ts, unit, meter, value, quality, device, agent, seq = rows[1]
    assert (unit, meter, value, quality, device, agent, seq) == ("E01-1-0101", "electricity", 1000.125, "ok",
                                                                 None, "bulk-import", None)
    assert isinstance(ts, datetime) and ts.isoformat() == "2025-12-31T17:00:00+00:00"
    stale = conn.execute("SELECT min(day), max(day), count(*) FROM bulk_stale_days").fetchone()
    assert stale is not None
    # Each reading also touches the days of the intervals it ends and starts: the one at Jan 1's midnight
    # closes Dec 31's last hour, the last one (Feb 9, 23:00) opens what the next reading would close.
    assert (str(stale[0]), str(stale[1]), stale[2]) == ("2025-12-31", "2026-02-10", 42)

    again, refused = _import_readings(conn, tmp_path, "r2.csv", lines, block_bytes=20_000)
    assert refused == []
    assert (again.rows_new, again.rows_known) == (0, len(lines))
    assert _snapshot(conn) == rows
    _partitions_ok(conn)


def test_new_and_known_rows_mixed(conn: psycopg.Connection, tmp_path: Path) -> None:
    from anju.hub.bulk import RejectWriter, import_file

    units = ["E01-1-0101", "E01-1-0102"]
    with RejectWriter(tmp_path / "u.rejects.csv") as rejects:
        import_file(conn, "units", _units_file(tmp_path, units), rejects=rejects, tz=ESTATE_TZ,
                    progress=False)
    early = _readings(units[:1], range(0, 24 * 20))  # January only
    r1, _ = _import_readings(conn, tmp_path, "r1.csv", early)
    assert r1.rows_new == len(early)
    # Now: the same unit again plus its later days (into February, an empty month) and a second unit.
    both = _readings(units, range(0, 24 * 45))
    r2, refused = _import_readings(conn, tmp_path, "r2.csv", both, block_bytes=30_000)
    assert refused == []
    assert (r2.rows_new, r2.rows_known) == (len(both) - len(early), len(early))
    assert conn.execute("SELECT count(*) FROM meter_readings").fetchone() == (len(both),)
    _partitions_ok(conn)


def test_bad_and_unusual_lines_inside_a_big_block(conn: psycopg.Connection, tmp_path: Path) -> None:
    from anju.hub.bulk import RejectWriter, import_file

    units = ["E01-1-0101"]
    with RejectWriter(tmp_path / "u.rejects.csv") as rejects:
        import_file(conn, "units", _units_file(tmp_path, units), rejects=rejects, tz=ESTATE_TZ,
                    progress=False)
    lines = _readings(units, range(0, 24 * 10))
    lines[100] = lines[100].replace("+08:00", "")  # file line 102
    lines[250] = lines[250].replace("E01-1-0101", "E01-9-9999")  # line 252
    lines[300] = lines[300].rsplit(",", 1)[0] + ",NaN"  # line 302
    # Valid lines in spellings the client leaves to SQL: quoted fields, an exponent, a UTC 'Z'.
    lines[400] = '"' + lines[400].replace(",", '","') + '"'
    ts, unit, meter, _ = lines[401].split(",")
    lines[401] = f"{ts},{unit},{meter},1.00125e3"
    lines[402] = "2026-01-05T00:00:00.5Z," + ",".join(lines[402].split(",")[1:])
    result, refused = _import_readings(conn, tmp_path, "r.csv", lines)
    assert refused == [
        (102, "ts is not an ISO 8601 timestamp with a UTC offset"),
        (252, "unknown unit_id (not in units)"),
        (302, "value must be a finite cumulative register >= 0"),
    ]
    assert (result.rows_read, result.rows_new, result.rows_rejected) == (len(lines), len(lines) - 3, 3)
    assert conn.execute("SELECT value FROM meter_readings WHERE value = 1001.25").fetchone() == (1001.25,)
    fractional = conn.execute("SELECT count(*) FROM meter_readings WHERE ts = '2026-01-05T00:00:00.5Z'")
    assert fractional.fetchone() == (1,)
    _partitions_ok(conn)


def test_repeated_reading_in_the_file_keeps_the_first(conn: psycopg.Connection, tmp_path: Path) -> None:
    from anju.hub.bulk import RejectWriter, import_file

    units = ["E01-1-0101"]
    with RejectWriter(tmp_path / "u.rejects.csv") as rejects:
        import_file(conn, "units", _units_file(tmp_path, units), rejects=rejects, tz=ESTATE_TZ,
                    progress=False)
    lines = _readings(units, range(0, 48))
    lines.append(lines[5].rsplit(",", 1)[0] + ",99999")  # same unit, meter and instant, other value
    result, refused = _import_readings(conn, tmp_path, "r.csv", lines)
    assert refused == []
    assert (result.rows_new, result.rows_known) == (len(lines) - 1, 1)
    ts = lines[5].split(",")[0]
    kept = conn.execute(
        "SELECT value FROM meter_readings WHERE ts = %s::timestamptz AND meter = 'electricity'", (ts,))
    assert kept.fetchall() == [(float(lines[5].rsplit(",", 1)[1]),)]
    _partitions_ok(conn)


def test_month_written_to_during_the_import_is_merged(
    conn: psycopg.Connection, database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture,
    storage_backend: str,
) -> None:
    """Live ingest writes into a month the import is loading: the load is merged, nothing is lost."""
    from anju.hub.bulk import RejectWriter, import_file

    units = ["E01-1-0101"]
    with RejectWriter(tmp_path / "u.rejects.csv") as rejects:
        import_file(conn, "units", _units_file(tmp_path, units), rejects=rejects, tz=ESTATE_TZ,
                    progress=False)
    lines = _readings(units, range(24, 24 * 20))

    def live_row(_: int) -> None:
        with psycopg.connect(database_url, autocommit=True) as other:
            other.execute(
                "INSERT INTO meter_readings (ts, unit_id, meter, value, agent_id) VALUES "
                "('2026-01-10T00:30:00Z', 'E01-1-0101', 'water', 1.0, 'live') ON CONFLICT DO NOTHING")

    with caplog.at_level("INFO", logger="anju.hub.storage"):
        result, refused = _import_readings(conn, tmp_path, "r.csv", lines, block_bytes=5_000,
                                           on_block=live_row)
    if storage_backend == "partitions":
        assert "meter_readings_p2026_01 not swapped in" in caplog.text
    else:  # the live row made a chunk in January
        assert "meter_readings_m2026_01 not attached" in caplog.text
    assert refused == []
    assert result.rows_new == len(lines)
    assert conn.execute("SELECT count(*) FROM meter_readings").fetchone() == (len(lines) + 1,)
    _partitions_ok(conn)


def test_file_ordered_by_time_goes_as_csv_and_matches(conn: psycopg.Connection, tmp_path: Path) -> None:
    """Lines not grouped by series take the CSV form of the fast path; same rows as the grouped form."""
    from anju.hub.bulk import RejectWriter, import_file

    units = [f"E01-1-01{i:02d}" for i in range(1, 7)]
    with RejectWriter(tmp_path / "u.rejects.csv") as rejects:
        import_file(conn, "units", _units_file(tmp_path, units), rejects=rejects, tz=ESTATE_TZ,
                    progress=False)
    grouped = _readings(units, range(0, 24 * 5))
    by_time = sorted(grouped, key=lambda line: (line.split(",")[0], line))
    result, refused = _import_readings(conn, tmp_path, "t.csv", by_time)
    assert refused == [] and result.rows_new == len(by_time)
    rows = _snapshot(conn)
    conn.execute("TRUNCATE meter_readings")
    conn.commit()
    result, refused = _import_readings(conn, tmp_path, "g.csv", grouped)
    assert refused == [] and result.rows_new == len(grouped)
    assert _snapshot(conn) == rows
    _partitions_ok(conn)


@partitions_only
def test_busy_table_at_the_swap_falls_back_to_merging(
    conn: psycopg.Connection, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A reader that holds meter_readings past the swap's lock timeouts: the month is merged instead."""
    import anju.hub.bulk.load as load
    import anju.hub.storage.timeseries as timeseries
    from anju.hub.bulk import RejectWriter, import_file

    monkeypatch.setattr(load._ReadingsTarget, "lock_timeout_ms", 50)
    monkeypatch.setattr(load._ReadingsTarget, "lock_tries", 2)
    monkeypatch.setattr(timeseries.time, "sleep", lambda _: None)
    units = ["E01-1-0101"]
    with RejectWriter(tmp_path / "u.rejects.csv") as rejects:
        import_file(conn, "units", _units_file(tmp_path, units), rejects=rejects, tz=ESTATE_TZ,
                    progress=False)
    lines = _readings(units, range(24, 24 * 10))
    with psycopg.connect(database_url) as reader:

        def read_on(_: int) -> None:
            # After the first block (its partition exists by then), until after the import.
            if reader.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
                reader.execute("SELECT count(*) FROM meter_readings").fetchone()

        with caplog.at_level("INFO", logger="anju.hub.storage"):
            result, refused = _import_readings(conn, tmp_path, "r.csv", lines, on_block=read_on)
        assert "swap in meter_readings_p2026_01: table busy, try 1 of 2" in caplog.text
        assert "meter_readings_p2026_01 not swapped in" in caplog.text
        assert reader.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        reader.rollback()
    assert refused == [] and result.rows_new == len(lines)
    assert conn.execute("SELECT count(*) FROM meter_readings").fetchone() == (len(lines),)
    _partitions_ok(conn)


def test_without_partitions_to_swap_every_month_is_merged(
    conn: psycopg.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The TimescaleDB form has no partitions to swap: the fast path then merges, with the same results."""
    import anju.hub.bulk.load as load
    from anju.hub.bulk import RejectWriter, import_file

    original = load._ReadingsTarget.__init__

    def no_swap(self: load._ReadingsTarget, c: psycopg.Connection) -> None:
        original(self, c)
        self.swappable = False

    monkeypatch.setattr(load._ReadingsTarget, "__init__", no_swap)
    units = ["E01-1-0101", "E01-1-0102"]
    with RejectWriter(tmp_path / "u.rejects.csv") as rejects:
        import_file(conn, "units", _units_file(tmp_path, units), rejects=rejects, tz=ESTATE_TZ,
                    progress=False)
    lines = _readings(units, range(0, 24 * 35))
    lines[7] = lines[7].replace("+08:00", "")
    first, refused = _import_readings(conn, tmp_path, "r1.csv", lines, block_bytes=40_000)
    assert refused == [(9, "ts is not an ISO 8601 timestamp with a UTC offset")]
    assert (first.rows_new, first.rows_known, first.rows_rejected) == (len(lines) - 1, 0, 1)
    rows = _snapshot(conn)
    again, _ = _import_readings(conn, tmp_path, "r2.csv", lines, block_bytes=40_000)
    assert (again.rows_new, again.rows_known, again.rows_rejected) == (0, len(lines) - 1, 1)
    assert _snapshot(conn) == rows
    _partitions_ok(conn)


# --- quoted fields and encodings ---------------------------------------------------------------------

QUOTED_UNITS = """unit_id,estate_id,building,floor,area_m2,household_size,lease_start
"E01-1-0101","E01","1","3","45.5","2","2022-03-01"
E01-1-0102,E01,"Block 1, East",3,40,1,
"E01-1-0103",E01,"the ""old"" wing",,40,1,
E01-1-0104,E01,"unterminated,3,40,1,
E01-1-0105,E01,1"x",3,40,1,
"""
QUOTED_ACCESS = """ts,device_id,estate_id,building,floor,method,person_id,unit_id,stranger_track
"2026-03-01T07:42:13+08:00","E01-G1","E01","Block 1, East","","face","p-0123456789abcdef","E01-1-0101",""
"""


def test_quoted_fields_are_parsed_as_csv(conn: psycopg.Connection, tmp_path: Path) -> None:
    (tmp_path / "units.csv").write_text(QUOTED_UNITS, encoding="utf-8")
    (tmp_path / "access.csv").write_text(QUOTED_ACCESS, encoding="utf-8")
    (tmp_path / "readings.csv").write_text(
        'ts,unit_id,meter,value\n"2026-03-01T00:00:00+08:00","E01-1-0101","water","10.5"\n', encoding="utf-8")
    files = BulkImport(units=tmp_path / "units.csv", readings=tmp_path / "readings.csv",
                       access=tmp_path / "access.csv")
    results = import_all(conn, files, tz=ESTATE_TZ, rejects_path=tmp_path / "rej.csv", progress=False)
    assert [(r.kind, r.rows_new, r.rows_rejected) for r in results] == [
        ("units", 3, 2), ("readings", 1, 0), ("access", 1, 0)]
    units = conn.execute("SELECT unit_id, building, floor FROM units ORDER BY unit_id").fetchall()
    assert units == [("E01-1-0101", "1", 3), ("E01-1-0102", "Block 1, East", 3),
                     ("E01-1-0103", 'the "old" wing', None)]
    rows = conn.execute("SELECT building, person FROM access_events").fetchall()
    assert rows == [("Block 1, East", "p-0123456789abcdef")]
    assert conn.execute("SELECT value FROM meter_readings").fetchall() == [(10.5,)]
    with (tmp_path / "rej.csv").open(encoding="utf-8") as fh:
        refused = [(int(r["line"]), r["reason"]) for r in csv.DictReader(fh)]
    malformed = 'malformed quotes (quote a field whole; a quote inside it as "")'
    assert refused == [(5, malformed), (6, malformed)]


def test_utf8_with_bom_and_gb18030_files_import(conn: psycopg.Connection, tmp_path: Path) -> None:
    units = UNITS.replace("E01,1,1,45.5", "E01,一号楼,1,45.5")
    (tmp_path / "units.csv").write_bytes(b"\xef\xbb\xbf" + units.encode("utf-8"))
    results = import_all(conn, BulkImport(units=tmp_path / "units.csv"), rejects_path=tmp_path / "r1.csv",
                         tz=ESTATE_TZ, progress=False)
    assert [(r.rows_new, r.rows_rejected) for r in results] == [(2, 3)]
    # The same units from a Chinese spreadsheet (GB18030, a changed building): the registry is updated.
    (tmp_path / "units-gb.csv").write_bytes(units.replace("一号楼", "二号楼").encode("gb18030"))
    (tmp_path / "access-gb.csv").write_bytes(ACCESS.replace("E01,1,", "E01,二号楼,").encode("gbk"))
    results = import_all(conn, BulkImport(units=tmp_path / "units-gb.csv", access=tmp_path / "access-gb.csv"),
                         rejects_path=tmp_path / "r2.csv", tz=ESTATE_TZ, progress=False, encoding="gb18030")
    assert [(r.kind, r.rows_new, r.rows_rejected) for r in results] == [("units", 1, 3), ("access", 2, 4)]
    assert conn.execute("SELECT building FROM units WHERE unit_id = 'E01-1-0101'").fetchone() == ("二号楼",)
    assert {r[0] for r in conn.execute("SELECT building FROM access_events")} == {"二号楼"}


def test_a_file_not_in_the_encoding_is_refused_with_nothing_written(
    database_url: str, conn: psycopg.Connection, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = write(tmp_path)
    assert files.access is not None
    files.access.write_bytes(ACCESS.replace("E01,1,", "E01,一号楼,").encode("gbk"))  # said to be UTF-8
    rejects = tmp_path / "rej.csv"
    argv = ["import", "--units", str(files.units), "--readings", str(files.readings), "--access",
            str(files.access), "--rejects", str(rejects), "--database-url", database_url, "--no-progress"]
    assert main(argv) == 2
    _, err = capsys.readouterr()
    assert f"anju import: {files.access}: not utf-8 text: line 2 (byte " in err
    assert "--encoding gb18030" in err and "Traceback" not in err
    assert counts(conn) == (0, 0, 0)
    conn.rollback()  # the import below must not wait for this session's read
    assert not rejects.exists()
    assert main([*argv, "--encoding", "gbk"]) == 0
    assert counts(conn) == (2, 4, 2)


def test_gb18030_recoding_across_chunks_is_exact(tmp_path: Path) -> None:
    """Pure: characters cut by the recoder's chunk ends come out whole, and a bad byte is found by line."""
    from anju.hub.bulk.encoding import check_encoding, utf8_reader

    text = "".join(f"{i},楼{i}号,𠀀\r\n" for i in range(200_000))  # 𠀀: four bytes in GB18030
    path = tmp_path / "gb.csv"
    path.write_bytes(text.encode("gb18030"))
    check_encoding(path, "gb18030")
    with path.open("rb") as fh:
        assert utf8_reader(fh, "gb18030").read() == text.encode("utf-8")
    path.write_bytes(text.encode("gb18030") + b"1,\xff\n")
    with pytest.raises(BulkImportError, match=r"not gb18030 text: line 200001 \(byte "):
        check_encoding(path, "gb18030")


# --- time bounds -------------------------------------------------------------------------------------

def test_readings_and_events_outside_the_time_bounds_are_refused(
    conn: psycopg.Connection, tmp_path: Path
) -> None:
    from datetime import timedelta

    from anju.hub.bulk.checks import TS_FUTURE, TS_TOO_OLD
    from anju_wire import TimeBounds

    (tmp_path / "units.csv").write_text(UNITS, encoding="utf-8")
    (tmp_path / "readings.csv").write_text(
        "ts,unit_id,meter,value\n"
        "2026-03-09T23:00:00+08:00,E01-1-0101,water,1\n"  # inside
        "2026-03-11T01:00:00+08:00,E01-1-0101,water,2\n"  # 17 h ahead: inside the day of skew
        "2026-03-11T09:00:00+08:00,E01-1-0101,water,3\n"  # 1 day and 1 h ahead
        "2999-01-01T00:00:00Z,E01-1-0101,water,4\n"
        "2026-02-01T00:00:00Z,E01-1-0101,water,5\n"  # 37 days old
        "1901-01-01T00:00:00Z,E01-1-0101,water,6\n"
        "2026-02-08T00:00:01Z,E01-1-0101,water,7\n",  # just inside the 30 days
        encoding="utf-8")
    (tmp_path / "access.csv").write_text(
        ACCESS.splitlines()[0] + "\n"
        "2026-03-09T07:42:13+08:00,E01-G1,E01,1,,face,p-0123456789abcdef,E01-1-0101,\n"
        "9999-12-31T23:00:00-05:00,E01-G1,E01,1,,face,p-0123456789abcdef,E01-1-0101,\n"
        "2025-03-09T07:42:13+08:00,E01-G1,E01,1,,face,p-0123456789abcdef,E01-1-0101,\n", encoding="utf-8")
    files = BulkImport(units=tmp_path / "units.csv", readings=tmp_path / "readings.csv",
                       access=tmp_path / "access.csv")
    now = datetime(2026, 3, 10, 0, 0, tzinfo=UTC)
    bounds = TimeBounds(max_future=timedelta(days=1), max_age=timedelta(days=30))
    results = import_all(conn, files, tz=ESTATE_TZ, rejects_path=tmp_path / "rej.csv", progress=False,
                         bounds=bounds,
                         now=now)
    assert [(r.kind, r.rows_new, r.rows_rejected) for r in results] == [
        ("units", 2, 3), ("readings", 3, 4), ("access", 1, 2)]
    with (tmp_path / "rej.csv").open(encoding="utf-8") as fh:
        refused = [(r["file"], int(r["line"]), r["reason"]) for r in csv.DictReader(fh)
                   if r["file"] != "units.csv"]
    assert refused == [
        ("readings.csv", 4, TS_FUTURE), ("readings.csv", 5, TS_FUTURE), ("readings.csv", 6, TS_TOO_OLD),
        ("readings.csv", 7, TS_TOO_OLD), ("access.csv", 3, TS_FUTURE), ("access.csv", 4, TS_TOO_OLD),
    ]
    assert [r[0] for r in conn.execute("SELECT value FROM meter_readings ORDER BY value")] == [1, 2, 7]


def test_default_bounds_take_the_eval_scenarios(conn: psycopg.Connection, tmp_path: Path) -> None:
    """``anju eval`` imports scenarios from 2026-01-01 with the default bounds: nothing may be refused."""
    from anju.device_sims.scenarios import make_scenario, write_scenario

    files = write_scenario(make_scenario(n_units=3, days=90, seed=1), tmp_path / "csv")
    results = import_all(conn, BulkImport(units=files.units, readings=files.readings, access=files.access),
                         rejects_path=tmp_path / "rej.csv", tz=ESTATE_TZ, progress=False)
    assert [r.rows_rejected for r in results] == [0, 0, 0]
    assert all(r.rows_new == r.rows_read for r in results)


def test_split_readings_leaves_lines_outside_the_ts_range_to_sql() -> None:
    from anju.hub.bulk.parse import split_readings

    t0 = int(datetime(2026, 3, 1, tzinfo=UTC).timestamp())
    block = (b"2026-03-01T00:00:00Z,U1,water,1\n2026-03-01T00:00:01Z,U1,water,2\n"
             b"2026-02-28T23:59:59Z,U1,water,3\n")
    got = split_readings(block, {"U1"}, ts_range=(t0, t0))
    assert [n for n, _ in got.others] == [2, 3] and sum(got.fast_rows.values()) == 1
