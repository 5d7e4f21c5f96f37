"""The importer's SQL checks and the wire contract give the same verdict on the same record.

``anju.hub.bulk.checks`` builds its access and reading rules from ``anju_wire.payloads``; this runs lines
through both, on a real PostgreSQL, and compares. The one deliberate difference: an imported access
line may leave ``building`` empty (older gate registers have none), where the wire requires one; the
wire side is given a building for such lines.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pydantic import TypeAdapter, ValidationError

from anju.hub.bulk import BulkImport, checks, import_all, stale_days
from anju.hub.bulk.parse import split_readings
from anju.hub.storage import ensure_schema
from anju.hub.storage.rollups import refresh_daily_features
from anju_wire.clock import ESTATE_TZ
from anju_wire.payloads import AccessEvent, Ident, MeterKind, MeterReading

TS = "2026-03-01T07:42:13+08:00"
P16 = "p-0123456789abcdef"
BASE = {"device_id": "E01-G1", "estate_id": "E01", "building": "1", "floor": "", "method": "face",
        "person": P16, "unit_id": "E01-1-0101", "stranger_track": ""}
STRANGER = {"person": "", "unit_id": "", "stranger_track": "E01-G1-t000001"}
ACCESS_FIELDS = [
    "device_id", "estate_id", "building", "floor", "method", "person", "unit_id", "stranger_track"
]  # fmt: skip

ACCESS_CASES: list[dict[str, str]] = [
    {},
    STRANGER,
    {**STRANGER, "method": "card"},  # only a face can be unknown
    {**STRANGER, "method": "qr"},
    {**STRANGER, "method": "password"},
    {"method": "card"}, {"method": "qr"}, {"method": "password"}, {"method": "palm"}, {"method": "FACE"},
    {"person": "p-1"},  # not a pseudonym
    {"person": "p-0123456789ABCDEF"},
    {"person": "p-" + "a" * 15}, {"person": "p-" + "a" * 64}, {"person": "p-" + "a" * 65},
    {"person": "x-0123456789abcdef"}, {"person": "p_0123456789abcdef"}, {"person": P16 + "g"},
    {"stranger_track": "E01-G1-t1"},  # both
    {"person": "", "unit_id": ""},  # neither
    {"unit_id": ""},  # a person without their unit
    {**STRANGER, "unit_id": "E01-1-0101"},  # a stranger with a unit
    {"device_id": "bad id"}, {"device_id": "-G1"}, {"device_id": "G" * 64}, {"device_id": "G" * 65},
    {"device_id": "é1"}, {"device_id": "E01:G1.a_b-c"},
    {"estate_id": "E 1"}, {"estate_id": "E01/2"},
    {"unit_id": "U/1"}, {"unit_id": "_U1"},
    {**STRANGER, "stranger_track": "t 1"}, {**STRANGER, "stranger_track": "t" * 65},
    {"building": "B" * 32}, {"building": "B" * 33}, {"building": "二号楼"}, {"building": ""},
    {"floor": "-200"}, {"floor": "-201"}, {"floor": "1000"}, {"floor": "1001"}, {"floor": "0"},
]

READING_CASES: list[tuple[str, str]] = [
    *[(m.value, "12.5") for m in MeterKind],
    ("heat", "1"), ("Electricity", "1"), ("water", "0"), ("water", "-0.1"), ("gas", "NaN"),
    ("gas", "Infinity"), ("gas", "1e3"),
]


def access_line(case: dict[str, str]) -> str:
    fields = {**BASE, **case}
    return ",".join([TS, *(fields[k] for k in ACCESS_FIELDS)])


def wire_accepts_access(case: dict[str, str]) -> bool:
    f = {**BASE, **case}
    event: dict[str, Any] = {
        "seq": 1, "event_id": "e1", "ts": TS, "device_id": f["device_id"], "building": f["building"] or "-",
        "floor": int(f["floor"]) if f["floor"] else None, "method": f["method"],
        "person": f["person"] or None,
        "unit_id": f["unit_id"] or None, "stranger_track": f["stranger_track"] or None,
    }  # fmt: skip
    try:
        AccessEvent.model_validate(event)
        TypeAdapter(Ident).validate_python(f["estate_id"])
    except ValidationError:
        return False
    return True


def wire_accepts_reading(meter: str, value: str) -> bool:
    try:
        MeterReading.model_validate({"seq": 1, "unit_id": "E01-1-0101", "meter": meter, "device": "d",
                                     "ts": TS, "value": float(value)})
    except ValidationError:
        return False
    return True


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url) as c:
        ensure_schema(c, prefer="partitions")
        c.execute("INSERT INTO units (unit_id, estate_id) VALUES ('E01-1-0101', 'E01')")
        c.commit()
        yield c


def sql_reasons(conn: psycopg.Connection, kind: checks.Kind, lines: list[str]) -> list[str | None]:
    version = conn.info.server_version
    conn.execute(checks.stage_sql(version))
    with conn.cursor().copy(checks.COPY_STAGE) as copy:
        copy.write("".join(line + "\n" for line in lines).encode())
    conn.execute(checks.check_sql(kind, version))
    reasons = [r for (r,) in conn.execute("SELECT reason FROM bulk_checked ORDER BY n")]
    conn.rollback()
    return reasons


def test_access_checks_give_the_wire_contracts_verdicts(conn: psycopg.Connection) -> None:
    reasons = sql_reasons(conn, "access", [access_line(c) for c in ACCESS_CASES])
    disagree = [
        (case, reason) for case, reason in zip(ACCESS_CASES, reasons, strict=True)
        if (reason is None) != wire_accepts_access(case)
    ]  # fmt: skip
    assert disagree == []
    assert sum(r is None for r in reasons) >= 10 and sum(r is not None for r in reasons) >= 25  # both sides


def test_the_two_rules_the_importer_lacked_are_named(conn: psycopg.Connection) -> None:
    lines = [access_line({**STRANGER, "method": "card"}), access_line({"person": "p-1"})]
    assert sql_reasons(conn, "access", lines) == [
        "stranger_track with method card (only a face can be unknown)",
        "person_id is not a pseudonym (p- and 16 to 64 lowercase hex digits)",
    ]


def test_reading_checks_give_the_wire_contracts_verdicts(conn: psycopg.Connection) -> None:
    lines = [f"{TS},E01-1-0101,{meter},{value}" for meter, value in READING_CASES]
    reasons = sql_reasons(conn, "readings", lines)
    verdicts = [
        (case, reason is None, wire_accepts_reading(*case))
        for case, reason in zip(READING_CASES, reasons, strict=True)
    ]
    assert [v for v in verdicts if v[1] != v[2]] == []
    assert reasons[len(MeterKind)] == "meter must be electricity, water or gas"


# Records around the midnights of two zones: an import marks as stale the days of the zone it is given.
STALE_CASES = {
    "fast": "2026-03-01T16:30:00+00:00",  # a canonical reading: the client's fast path (STALE_HOURS)
    "sql": "2026-03-02T23:30:00.000+00:00",  # not canonical (fractions): checked in SQL (STALE)
    "access": "2026-03-04T16:10:00+00:00",  # access events are all checked in SQL (STALE)
}
# Per zone: the days the records roll up into, and the day before or after that a reading within 90 minutes
# of a midnight also marks (its interval, or the next reading's, may lie across it).
STALE_DAYS = {
    # Asia/Shanghai, UTC+8: the fast reading is 00:30 on 03-02, so 03-01 too
    ESTATE_TZ: ({date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 5)}, {date(2026, 3, 1)}),
    # UTC+1: the SQL-checked reading is 00:30 on 03-03, so 03-02 too
    "Europe/Berlin": ({date(2026, 3, 1), date(2026, 3, 3), date(2026, 3, 4)}, {date(2026, 3, 2)}),
}


@pytest.mark.parametrize("tz", sorted(STALE_DAYS))
def test_the_importers_stale_days_are_the_features_days(
    conn: psycopg.Connection, tmp_path: Path, tz: str
) -> None:
    """Every day the daily features roll an import's records up into is a day the import marks stale, when
    both are given the same zone (the hub's estate_tz): by either route of a reading, and for an access
    event; besides those, only the neighbouring day of a reading near a midnight."""
    readings = "".join(f"{STALE_CASES[k]},E01-1-0101,electricity,{v}\n" for k, v in (("fast", 1), ("sql", 2)))
    block = split_readings(readings.encode(), {"E01-1-0101"})
    assert len(block.hours) == 1 and len(block.others) == 1  # one line by each route
    (tmp_path / "readings.csv").write_text("ts,unit_id,meter,value\n" + readings, encoding="utf-8")
    access = access_line({}).replace(TS, STALE_CASES["access"])
    (tmp_path / "access.csv").write_text(",".join(["ts", *ACCESS_FIELDS]).replace("person", "person_id")
                                         + "\n" + access + "\n", encoding="utf-8")
    files = BulkImport(readings=tmp_path / "readings.csv", access=tmp_path / "access.csv")
    results = import_all(conn, files, rejects_path=tmp_path / "rejects.csv", tz=tz, progress=False)
    assert [(r.rows_new, r.rows_rejected) for r in results] == [(2, 0), (1, 0)]
    stale = set(stale_days(conn))
    refresh_daily_features(conn, tz=tz)
    rolled_up = {day for (day,) in conn.execute(
        "SELECT day FROM meter_daily UNION SELECT day FROM unit_daily WHERE tenant_entries > 0")}
    days, neighbours = STALE_DAYS[tz]
    assert rolled_up == days and stale == days | neighbours
