"""Labelled scenarios: deterministic, every subtype present, the truth matches what the files show."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from anju.device_sims.scenarios import SUBTYPES, cap_absences, make_scenario, write_scenario


def test_scenario_is_seeded_and_labels_every_subtype(tmp_path: Path) -> None:
    a = make_scenario(n_units=120, days=90, seed=5)
    assert a == make_scenario(n_units=120, days=90, seed=5)
    assert {u.subtype for u in a.units} >= set(SUBTYPES)
    assert all((u.onset_day is None) == (u.kind == "normal") for u in a.units)


def test_files_agree_with_the_truth(tmp_path: Path) -> None:
    sc = make_scenario(n_units=120, days=90, seed=5)
    files = write_scenario(sc, tmp_path)
    with files.readings.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == files.readings_rows
    by_unit: dict[str, list[float]] = {}
    for r in rows:
        if r["meter"] == "electricity":
            by_unit.setdefault(r["unit_id"], []).append(float(r["value"]))
    power_off = next(u for u in sc.units if u.subtype == "vacant_power_off")
    assert power_off.onset_day is not None
    series = by_unit[power_off.unit_id]
    # Register flat after the breaker went off (hourly readings, a few missing at random).
    assert series[-1] - series[-24 * 5] < 0.01
    normal = next(u for u in sc.units if u.subtype == "normal")
    assert by_unit[normal.unit_id][-1] - by_unit[normal.unit_id][-24 * 5] > 5.0
    with files.access.open(encoding="utf-8") as fh:
        events = list(csv.DictReader(fh))
    sublet = next(u for u in sc.units if u.subtype == "sublet_no_visits")
    assert sublet.onset_day is not None
    onset = sc.onset_date(sublet)
    assert onset is not None
    late = [e for e in events if e["unit_id"] == sublet.unit_id and e["ts"][:10] >= onset.isoformat()]
    assert late == []
    assert any(e["stranger_track"].startswith(sublet.unit_id) for e in events)


def test_absences_are_cut_to_their_longest() -> None:
    home = np.array([True] + [False] * 30 + [True] * 2 + [False] * 5 + [True])
    capped = cap_absences(home, 21)
    assert capped.tolist() == [True] + [False] * 21 + [True] * 11 + [False] * 5 + [True]
    assert cap_absences(home, 40).tolist() == home.tolist()


def test_households_without_an_enrolled_face_enter_by_card(tmp_path: Path) -> None:
    """units.csv says who enrolled a face; those who did not never show one at the gate."""
    sc = make_scenario(n_units=120, days=90, seed=5)
    files = write_scenario(sc, tmp_path)
    with files.units.open(encoding="utf-8") as fh:
        enrolled = {r["unit_id"]: int(r["faces_enrolled"]) for r in csv.DictReader(fh)}
    assert enrolled == {u.unit_id: u.faces_enrolled for u in sc.units}
    assert 0 < sum(1 for n in enrolled.values() if n == 0) < 0.4 * len(enrolled)
    with files.access.open(encoding="utf-8") as fh:
        methods = {(e["unit_id"], e["method"]) for e in csv.DictReader(fh) if e["unit_id"]}
    assert not {(u, m) for u, m in methods if m == "face" and enrolled[u] == 0}
    assert {(u, m) for u, m in methods if m == "card" and enrolled[u] == 0}
