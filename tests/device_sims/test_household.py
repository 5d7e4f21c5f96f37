"""The household model: determinism, ids, plausible consumption, and behaviour that matches the truth."""

from __future__ import annotations

import itertools
import json
import re
from datetime import timedelta

import numpy as np
import pytest

from anju.device_sims.household import EstateModel, make_estate
from anju_wire import MeterKind
from tests.device_sims.factories import START, small_estate

UNIT_ID = re.compile(r"^E01-\d+-\d{4}$")


def test_same_seed_same_estate_and_events() -> None:
    a, b = EstateModel(small_estate(seed=3)), EstateModel(small_estate(seed=3))
    assert a.spec == b.spec
    assert a.gate_events() == b.gate_events()
    u = a.spec.units[0].unit_id
    assert np.array_equal(a.hourly(u, "electricity"), b.hourly(u, "electricity"))
    assert EstateModel(small_estate(seed=4)).gate_events() != a.gate_events()


def test_ids_devices_and_onsets() -> None:
    spec = make_estate("E01", n_units=46, days=90, start=START, seed=1)
    assert len(spec.units) == 46 and [g.device_id for g in spec.gates] == ["E01-G1", "E01-G2"]
    assert len({u.unit_id for u in spec.units}) == 46
    for i, u in enumerate(spec.units):
        assert UNIT_ID.match(u.unit_id) and u.unit_id.split("-")[1] == u.building
        assert (u.elec_device_id, u.water_device_id, u.gas_device_id) == (i + 1, 101 + i, 201 + i)
        assert u.persons == tuple(f"T-{u.unit_id}-{p + 1}" for p in range(u.household_size))
        assert 1 <= u.household_size <= 5
        assert u.unit_id == f"E01-{u.building}-{u.floor:02d}{u.unit_id[-2:]}"
        if u.behaviour == "normal":
            assert u.onset_day is None
        else:
            assert u.onset_day is not None and 25 <= u.onset_day <= 40
    kinds = [u.behaviour for u in spec.units]
    assert kinds.count("vacant") == 3 and kinds.count("sublet") == 3
    with pytest.raises(ValueError):
        make_estate("E01", n_units=47, start=START, seed=1)


def test_register_value_interpolates_and_clamps() -> None:
    model = EstateModel(small_estate())
    u = model.spec.units[0].unit_id
    hourly = model.hourly(u, MeterKind.ELECTRICITY)
    v0 = model.register_value(u, "electricity", START)
    assert 1000 <= v0 <= 5000
    assert model.register_value(u, "electricity", START - timedelta(days=3)) == v0
    half = model.register_value(u, "electricity", START + timedelta(minutes=30))
    assert half == pytest.approx(v0 + hourly[0] / 2)
    end = model.register_value(u, "electricity", model.spec.end + timedelta(days=1))
    assert end == pytest.approx(v0 + hourly.sum())
    ts = [START + timedelta(hours=h) for h in range(0, 60 * 24, 7)]
    for meter in MeterKind:
        values = [model.register_value(u, meter, t) for t in ts]
        assert all(b >= a for a, b in itertools.pairwise(values)), "registers never decrease"


def test_normal_consumption_is_plausible() -> None:
    model = EstateModel(make_estate("E01", n_units=30, days=60, start=START, seed=2))
    for u in model.spec.units:
        if u.behaviour != "normal":
            continue
        elec = float(np.median(model.daily(u.unit_id, "electricity")))
        water = float(np.median(model.daily(u.unit_id, "water")))
        gas = float(np.median(model.daily(u.unit_id, "gas")))
        assert 2.5 <= elec <= 12
        assert 0.06 * u.household_size <= water <= 0.2 * u.household_size
        assert 0.1 <= gas <= 1.0
        night = model.hourly(u.unit_id, "electricity").reshape(-1, 24)[:, 2:5]
        assert 0.02 <= float(np.median(night)) <= 0.2, "fridge base load at night"


def _entries(model: EstateModel, unit_id: str) -> np.ndarray:
    days = np.zeros(model.spec.days, dtype=int)
    for e in model.gate_events():
        if e.room_no == unit_id:
            days[(e.ts - model.spec.start).days] += 1
    return days


def test_vacant_and_sublet_units_behave_as_their_truth_says() -> None:
    model = EstateModel(make_estate("E01", n_units=20, days=80, start=START, seed=9))
    events = model.gate_events()
    for u in model.spec.units:
        entries = _entries(model, u.unit_id)
        elec = model.daily(u.unit_id, "electricity")
        water = model.daily(u.unit_id, "water")
        windows = [entries[d:d + 21].sum() for d in range(model.spec.days - 20)]
        if u.behaviour == "normal":
            assert min(windows) > 5
            continue
        assert u.onset_day is not None
        after = slice(u.onset_day, None)
        assert entries[: u.onset_day].sum() > u.onset_day // 2
        assert max(entries[d:d + 21].sum() for d in range(u.onset_day, model.spec.days - 20)) <= 1
        if u.behaviour == "vacant":
            assert elec[after].max() <= 1.1 and water[after].max() == 0
            assert model.daily(u.unit_id, "gas")[after].max() == 0
        else:
            assert np.median(elec[after]) >= 0.7 * np.median(elec[: u.onset_day])
            assert np.median(water[after]) >= 0.7 * np.median(water[: u.onset_day])
            gate = f"E01-G{u.building}"
            recurring = {
                e.stranger_track for e in events
                if e.device_id == gate and e.stranger_track and "-t" in e.stranger_track
            }
            assert recurring, "subtenants are recurring strangers at the building"


def test_gate_events_are_sorted_vendor_json() -> None:
    model = EstateModel(small_estate())
    events = model.gate_events()
    assert [e.ts for e in events] == sorted(e.ts for e in events)
    for gate in model.spec.gates:
        serials = [e.serial_no for e in events if e.device_id == gate.device_id]
        assert serials == sorted(serials) and len(set(serials)) == len(serials)
    doc = json.loads(events[0].to_vendor_json())
    assert list(doc) == ["eventType", "serialNo", "dateTime", "deviceID", "building", "floor",
                         "verifyMode", "employeeNo", "roomNo", "strangerTrack"]
    assert doc["dateTime"].endswith("+08:00")
    for e in events:
        assert (e.employee_no is None) != (e.stranger_track is None)
        assert (e.employee_no is None) == (e.room_no is None)
        if e.stranger_track is not None:
            assert e.verify_mode == "face"
        assert model.spec.start <= e.ts < model.spec.end


def test_ground_truth_lists_every_unit() -> None:
    model = EstateModel(small_estate())
    truth = model.ground_truth()
    assert [t["unit_id"] for t in truth] == [u.unit_id for u in model.spec.units]
    special = [t for t in truth if t["behaviour"] != "normal"]
    assert len(special) == 2
    for t in special:
        assert isinstance(t["onset_day"], int)
        assert t["onset_date"] == (START + timedelta(days=t["onset_day"])).date().isoformat()
