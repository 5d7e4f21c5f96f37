"""The estates' time zone is a setting (``estate_tz``, ``ANJU_ESTATE_TZ``): checked when the settings load,
known to the database before the hub starts, and the zone of the pages' times. Its effect on the days of
the features and of the importer's stale days: tests/hub/test_features.py, tests/hub/test_import_parity.py.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest
from pydantic import ValidationError

from anju.cli import main
from anju.hub.api.app import create_app
from anju.hub.bulk import stale_days
from anju.hub.detection.service import last_complete_day
from anju.hub.main import _check_zone
from anju.hub.settings import HubSettings
from anju.hub.storage.rollups import refresh_daily_features
from anju_wire.clock import ESTATE_TZ
from tests.hub.test_api import login, serve
from tests.hub.test_case_page_field import one_open_case
from tests.hub.test_features import add_readings, add_unit, prepare_schema
from tests.hub.test_import import write


def test_the_default_zone_is_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANJU_ESTATE_TZ", raising=False)
    assert HubSettings().estate_tz == ESTATE_TZ == "Asia/Shanghai"


def test_the_zone_comes_from_the_environment_or_the_settings_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ANJU_ESTATE_TZ", "Asia/Urumqi")
    assert HubSettings().estate_tz == "Asia/Urumqi"
    monkeypatch.delenv("ANJU_ESTATE_TZ")
    (tmp_path / "hub.yaml").write_text("estate_tz: Europe/Berlin\n", encoding="utf-8")
    assert HubSettings.load(tmp_path / "hub.yaml").estate_tz == "Europe/Berlin"


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "asia/shanghai", "UTC+8", "", "../../etc/passwd"])
def test_a_name_that_is_no_zone_is_refused_when_the_settings_load(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str
) -> None:
    monkeypatch.setenv("ANJU_ESTATE_TZ", name)
    with pytest.raises(ValidationError, match=r"estate_tz: .* is not a time zone name"):
        HubSettings()
    monkeypatch.delenv("ANJU_ESTATE_TZ")
    (tmp_path / "hub.yaml").write_text(f"estate_tz: '{name}'\n", encoding="utf-8")
    with pytest.raises(ValidationError, match="estate_tz"):
        HubSettings.load(tmp_path / "hub.yaml")


def test_the_hub_refuses_a_zone_its_database_does_not_know(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        _check_zone(conn, "Asia/Urumqi")
        with pytest.raises(SystemExit, match="does not know the time zone estate_tz='Mars/Olympus_Mons'"):
            _check_zone(conn, "Mars/Olympus_Mons")
        assert conn.execute("SELECT 1").fetchone() == (1,)  # left usable


def test_the_pages_show_times_in_the_apps_zone(database_url: str) -> None:
    alert, case = one_open_case(database_url)
    app = create_app(database_url=database_url, estate_tz="Asia/Urumqi")  # UTC+6 all year
    with serve(app) as url, httpx.Client(base_url=url, timeout=10) as http:
        sup, insp, aud = login(url, "sup1"), login(url, "insp1"), login(url, "aud")
        r = http.post(f"/api/cases/{case}/assign", json={"assignee": "insp1"}, headers=sup)
        assert r.status_code == 200
        page = http.get(f"/alerts/{alert}", headers=insp).text
        audit = http.get("/audit", params={"object_type": "case", "object_id": str(case)}, headers=aud).text
    assert "Asia/Urumqi (UTC+06:00)" in page and "北京时间" not in page
    assert "时间（Asia/Urumqi (UTC+06:00)）" in audit
    with psycopg.connect(database_url) as conn:
        ts = conn.execute("SELECT ts FROM audit_log WHERE action = 'case.assign'").fetchone()
    assert ts is not None
    local = ts[0].astimezone(ZoneInfo("Asia/Urumqi"))
    assert f'<span class="ts">{local:%Y-%m-%d %H:%M}</span>' in page
    row = re.search(r'<tr class="audit-row" data-seq="\d+" data-action="case.assign">(.*?)</tr>', audit,
                    re.S)
    assert row is not None
    assert f'<td class="ts">{local:%Y-%m-%d %H:%M:%S}</td>' in row.group(1)


@pytest.mark.parametrize(("tz", "last"), [(ESTATE_TZ, date(2026, 3, 2)), ("Europe/Berlin", date(2026, 3, 1))])
def test_detections_last_complete_day_is_a_day_of_the_zone(database_url: str, tz: str, last: date) -> None:
    """The newest reading, 03-02 20:00Z, is 03-03 04:00 in Shanghai (03-02 is over) but 21:00 on 03-02
    in Berlin (03-02 is not): detection's default day is the last one over in the zone it is given."""
    with psycopg.connect(database_url) as conn:
        prepare_schema(conn)
        add_unit(conn, "U1")
        t0 = datetime(2026, 3, 1, tzinfo=UTC)
        add_readings(conn, "U1", "electricity", [(t0 + timedelta(hours=h), float(h)) for h in range(45)])
        refresh_daily_features(conn, tz=tz)
        assert last_complete_day(conn, tz=tz) == last


_DAYS_IN = """
SELECT (ts AT TIME ZONE %(tz)s)::date FROM meter_readings UNION SELECT (ts AT TIME ZONE %(tz)s)::date
FROM access_events ORDER BY 1
"""


def test_anju_import_marks_the_days_of_the_configured_zone(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``anju import`` takes the zone of its stale days from the settings, as the hub's features do."""
    files = write(tmp_path)  # records of 2026-03-01 00:00 to 09:00 in UTC+8, and one of 04-01 04:00Z
    monkeypatch.setenv("ANJU_ESTATE_TZ", "Europe/Berlin")
    argv = ["import", "--units", str(files.units), "--readings", str(files.readings), "--access",
            str(files.access), "--rejects", str(tmp_path / "rej.csv"), "--database-url", database_url,
            "--no-progress"]
    assert main(argv) == 0
    with psycopg.connect(database_url) as conn:
        berlin = [d for (d,) in conn.execute(_DAYS_IN, {"tz": "Europe/Berlin"})]
        shanghai = [d for (d,) in conn.execute(_DAYS_IN, {"tz": ESTATE_TZ})]
        assert stale_days(conn) == berlin == [date(2026, 2, 28), date(2026, 3, 1), date(2026, 4, 1)]
    assert shanghai == [date(2026, 3, 1), date(2026, 4, 1)]
