"""The appliance household model: deterministic, labelled as stated, physically sane, importable as is."""

from __future__ import annotations

import csv
from collections import Counter
from datetime import timedelta
from pathlib import Path

import numpy as np
import psycopg
import pytest

from anju.device_sims.appliance_people import METHODS, _log
from anju.device_sims.appliances import SUBTYPES, HourlyBlock, make_scenario, simulate, write_scenario
from anju.hub.bulk import BulkImport, import_all
from anju_wire.clock import ESTATE_TZ
from tests.hub.test_features import prepare_schema

DAYS = 60


@pytest.fixture(scope="module")
def blocks() -> list[HourlyBlock]:
    """300 units over 60 days, simulated once for the module."""
    return list(simulate(make_scenario(n_units=300, days=DAYS, seed=11)))


def per_unit(blocks: list[HourlyBlock], subtype: str) -> list[tuple[HourlyBlock, int]]:
    return [(b, i) for b in blocks for i, u in enumerate(b.units) if u.subtype == subtype]


def test_same_seed_same_files_other_seed_other_files(tmp_path: Path) -> None:
    a = write_scenario(make_scenario(n_units=40, days=DAYS, seed=3), tmp_path / "a")
    b = write_scenario(make_scenario(n_units=40, days=DAYS, seed=3), tmp_path / "b")
    c = write_scenario(make_scenario(n_units=40, days=DAYS, seed=4), tmp_path / "c")
    for name in ("units", "readings", "access", "truth"):
        assert getattr(a, name).read_bytes() == getattr(b, name).read_bytes()
    assert a.readings.read_bytes() != c.readings.read_bytes()


def test_truth_shares_and_onsets() -> None:
    sc = make_scenario(n_units=2000, days=180, seed=1)
    got = Counter(u.subtype for u in sc.units)
    for subtype, (kind, share) in SUBTYPES.items():
        assert got[subtype] == round(share * 2000)
        if kind != "normal":
            assert got[subtype] >= 20
    assert len({u.unit_id for u in sc.units}) == 2000
    positives = [u for u in sc.units if u.kind != "normal"]
    assert all(u.onset is not None and u.onset <= sc.last_day - timedelta(days=45) for u in positives)
    before = [u for u in positives if u.onset is not None and u.onset < sc.start.date()]
    assert all(
        u.onset is not None and u.onset < sc.start.date() for u in positives if u.subtype == "vacant_long"
    )
    assert 0.1 * len(positives) < len(before) < 0.4 * len(positives)
    assert all(u.onset is None for u in sc.units if u.kind == "normal")
    assert all(u.lease_start < u.onset for u in positives if u.onset is not None)


def test_empty_flats_use_only_what_was_left_on(blocks: list[HourlyBlock]) -> None:
    expected = {
        "vacant_fridge_on": (0.5, 2.5),
        "vacant_water_heater_on": (1.5, 2.6),
        "vacant_breaker_off": (0, 0),
    }
    for subtype, (lo, hi) in expected.items():
        assert per_unit(blocks, subtype)
        for b, i in per_unit(blocks, subtype):
            first = max(b.units[i].onset_day or 0, 0) + 2
            kwh = b.electricity[i].reshape(DAYS, 24).sum(axis=1)[first:]
            # A storage heater reheats in bursts, so single days vary; the mean is what was left on.
            assert lo <= kwh.mean() <= hi + 1e-9, (subtype, kwh.mean())
            if subtype == "vacant_fridge_on":
                assert lo <= kwh.min() and kwh.max() <= hi
            assert b.water[i, first * 24 :].sum() == 0
            assert b.gas[i, first * 24 :].sum() == 0


def test_lived_in_flats_peak_in_the_evening_and_sleep_at_night(blocks: list[HourlyBlock]) -> None:
    elec, water = [], []
    for b, i in per_unit(blocks, "normal"):
        elec.append(b.electricity[i].reshape(DAYS, 24).mean(axis=0))
        water.append(b.water[i].reshape(DAYS, 24).mean(axis=0))
    e, w = np.mean(elec, axis=0), np.mean(water, axis=0)
    assert e[18:23].mean() > 1.5 * e[2:5].mean()
    assert e[18:23].mean() > e[9:16].mean()
    assert (w > 0.25 * w.max()).sum() >= 8  # water in many hours of the day
    assert w[2:5].mean() < 0.15 * w.max()
    used = [(b.water[i].reshape(DAYS, 24).sum(axis=0) > 0).sum() for b, i in per_unit(blocks, "normal")]
    assert np.median(used) >= 12


def test_a_leak_flows_at_night(blocks: list[HourlyBlock]) -> None:
    for b, i in per_unit(blocks, "vacant_leak"):
        first = max(b.units[i].onset_day or 0, 0) + 1
        night = b.water[i].reshape(DAYS, 24)[first:, 2:5]
        assert (night > 0).all()


def test_outages_leave_readings_out_never_zero(blocks: list[HourlyBlock]) -> None:
    units = per_unit(blocks, "meter_outage")
    assert units
    for b, i in units:
        u = b.units[i]
        assert u.event_day is not None
        for meter in u.outage_meters:
            gone = b.missing[meter][i]
            assert gone[u.event_day * 24 : (u.event_day + u.outage_days) * 24].all()
            reg = b.registers[meter][i]
            assert (np.diff(reg) >= 0).all() and reg.min() > 0  # the register keeps counting meanwhile
    share = np.mean(
        [
            b.missing["water"][i].mean()
            for b in blocks
            for i, u in enumerate(b.units)
            if u.subtype != "meter_outage"
        ]
    )
    assert 0 < share < 0.01


def test_gates_tailgating_recognition_and_methods(blocks: list[HourlyBlock]) -> None:
    sc = make_scenario(n_units=300, days=DAYS, seed=11)
    entries = np.sum([b.gates.entries for b in blocks], axis=0)
    tail = np.sum([b.gates.tailgated for b in blocks], axis=0)
    tries = np.sum([b.gates.face_tries for b in blocks], axis=0)
    failed = np.sum([b.gates.face_failed for b in blocks], axis=0)
    want_tail = sum(entries[k] * x.tailgating for k, x in enumerate(sc.buildings)) / entries.sum()
    want_fail = sum(tries[k] * (1 - x.recognition) for k, x in enumerate(sc.buildings)) / tries.sum()
    assert abs(tail.sum() / entries.sum() - want_tail) < 0.02
    assert abs(failed.sum() / tries.sum() - want_fail) < 0.02
    methods = Counter(METHODS[m] for b in blocks for m in b.gates.method.tolist())
    assert set(methods) == set(METHODS)
    for b in blocks:
        for person, unit, track, m in zip(
            b.gates.person, b.gates.unit, b.gates.track, b.gates.method.tolist(), strict=True
        ):
            assert bool(person) != bool(track) and bool(person) == bool(unit)
            assert not track or METHODS[m] == "face"
            assert not person or person.startswith("p-")


def test_a_household_that_enrolled_no_face_enters_without_one(blocks: list[HourlyBlock]) -> None:
    """Most households of an estate enrolled their faces at the gate, not all; those that did not come in
    by card, code or QR, and their faces are never recognised (the subtenants' use of a card is theirs)."""
    units = [u for b in blocks for u in b.units]
    enrolled = sum(1 for u in units if u.faces_enrolled)
    assert 0.6 * len(units) < enrolled < len(units)
    assert all(u.faces_enrolled in (0, u.household_size) for u in units)
    none = {u.unit_id for u in units if not u.faces_enrolled}
    entries = Counter()
    for b in blocks:
        for unit, m in zip(b.gates.unit, b.gates.method.tolist(), strict=True):
            if unit in none:
                entries[METHODS[m]] += 1
    assert entries["face"] == 0 and entries["card"] > 100


def test_files_have_the_importers_headers(tmp_path: Path) -> None:
    files = write_scenario(make_scenario(n_units=20, days=DAYS, seed=2), tmp_path)
    heads = {
        p.name: p.read_text(encoding="utf-8").splitlines()[0]
        for p in (files.units, files.readings, files.access, files.truth)
    }
    assert heads == {
        "units.csv": "unit_id,estate_id,building,floor,area_m2,household_size,lease_start,faces_enrolled",
        "readings.csv": "ts,unit_id,meter,value",
        "access.csv": "ts,device_id,estate_id,building,floor,method,person_id,unit_id,stranger_track",
        "truth.csv": "unit_id,kind,subtype,onset_date",
    }
    with files.readings.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == files.readings_rows
    assert all(r["ts"].endswith("+08:00") for r in rows[:1000])


@pytest.mark.integration
def test_the_importer_rejects_nothing(database_url: str, tmp_path: Path) -> None:
    files = write_scenario(make_scenario(n_units=30, days=DAYS, seed=5), tmp_path)
    with psycopg.connect(database_url) as conn:
        prepare_schema(conn)
        results = import_all(
            conn,
            BulkImport(units=files.units, readings=files.readings, access=files.access),
            rejects_path=tmp_path / "rejects.csv",
            tz=ESTATE_TZ,
            progress=False,
        )
    assert [r.rows_rejected for r in results] == [0, 0, 0]
    assert [r.rows_new for r in results] == [30, files.readings_rows, files.access_rows]


def test_no_gate_record_falls_after_the_last_day() -> None:
    """A corridor camera sees someone who came home in the period's last minutes a minute or two later:
    past its end, a record the scenario's files cannot hold (appliance seed 67 at 300 units failed to write
    its access file so). Records after the last day are not part of the scenario."""
    sc = make_scenario(n_units=20, days=56, seed=1)
    end = sc.days * 86400
    log = _log(sc, np.array([end - 30, end + 50]), np.array([0, 0]), np.array([0, 1]), np.array([0, 0]),
               ["", ""], ["", ""], ["t-1", "t-1"], np.zeros((4, len(sc.buildings)), np.int64))
    assert log.t.tolist() == [end - 30]
