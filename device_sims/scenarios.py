"""Labelled scenarios at scale: thousands of units' hourly registers and gate logs, written as CSV.

The same household story as ``anju.device_sims.household`` (diurnal shapes, fridge base load, registered
tenants at the gate, subtenants as recurring unknown faces), vectorised with numpy over blocks of
units so that 2,000 units x 180 days take well under a minute to simulate. Every unit carries a kind
(normal, vacancy, sublet), a subtype saying which behaviour it plays (hard negatives included) and,
for vacancies and sublets, the onset day; ``truth.csv`` is the answer key.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Literal

import numpy as np

from anju.device_sims.appliance_people import pseudonym
from anju.device_sims.household import _ELEC_SHAPE, _GAS_SHAPE, _GATE_HOUR_WEIGHTS, _WATER_SHAPE, LOCAL_TZ

Kind = Literal["normal", "vacancy", "sublet"]

# Subtype -> (kind, share of units). What is left after these is plain "normal".
SUBTYPES: dict[str, tuple[Kind, float]] = {
    "vacant_sudden_fridge_on": ("vacancy", 0.025),
    "vacant_power_off": ("vacancy", 0.015),
    "vacant_gradual": ("vacancy", 0.015),
    "vacant_drop_by": ("vacancy", 0.015),
    "vacant_leak": ("vacancy", 0.01),
    "sublet_no_visits": ("sublet", 0.025),
    "sublet_tenant_visits": ("sublet", 0.02),
    "group_renting": ("sublet", 0.015),
    "travel": ("normal", 0.04),
    "night_shift": ("normal", 0.03),
    "elderly_single": ("normal", 0.04),
    "relatives_visit": ("normal", 0.03),
    "side_entrance": ("normal", 0.03),
    "meter_outage": ("normal", 0.03),
    "new_lease": ("normal", 0.02),
}
UNITS_PER_BUILDING = 40
BUILDINGS_PER_ESTATE = 4
SIDE_DOOR_ALWAYS = 0.3  # share of side-entrance households that never used the recorded gate
LIVE_IN_SHARE = 0.04  # share of households with someone living there on no lease (a face nobody registered)
TRAVEL_MAX_DAYS = 21  # "travel up to 3 weeks": the longest absence of a travelling household
SILENT_GATE_SHARE = 0.08  # of buildings: the gate goes silent for 2 to 5 weeks
BLOCK_UNITS = 6 * UNITS_PER_BUILDING  # whole buildings per block, so per-building events are made once
_METHODS = ("face", "card", "password", "qr")
_METHOD_P = np.array([0.82, 0.10, 0.04, 0.04])
ENROLLED_SHARE = (0.75, 0.98)  # an estate's share of households with faces enrolled at the gate


@dataclass(frozen=True, slots=True)
class ScenarioUnit:
    """One unit of a scenario with its label."""

    unit_id: str
    estate_id: str
    building: str
    floor: int
    area_m2: float
    household_size: int
    lease_start: date
    kind: Kind
    subtype: str
    onset_day: int | None
    faces_enrolled: int = 0  # registered people with a face enrolled at the gate (0: card, code, QR only)


@dataclass(frozen=True, slots=True)
class Scenario:
    """A labelled scenario: ``days`` days from local midnight ``start``."""

    start: datetime
    days: int
    seed: int
    units: tuple[ScenarioUnit, ...]
    silent_gates: dict[tuple[str, str], tuple[int, int]]  # (estate, building) -> [first, last) silent day

    def onset_date(self, unit: ScenarioUnit) -> date | None:
        """The local date of a unit's onset."""
        if unit.onset_day is None:
            return None
        return (self.start + timedelta(days=unit.onset_day)).date()

    @property
    def last_day(self) -> date:
        """The last simulated local day."""
        return (self.start + timedelta(days=self.days - 1)).date()


@dataclass(frozen=True, slots=True)
class ScenarioFiles:
    """Where a written scenario's CSV files are, and how many rows each got."""

    units: Path
    readings: Path
    access: Path
    truth: Path
    readings_rows: int
    access_rows: int


def make_scenario(*, n_units: int, days: int, seed: int, start: datetime | None = None) -> Scenario:
    """Draw the units, their labels, onsets and silent gates (deterministic for a seed)."""
    if start is None:
        start = datetime(2026, 1, 1, tzinfo=LOCAL_TZ)
    if n_units < 1 or days < 90:
        raise ValueError("a scenario needs at least 1 unit and 90 days")
    rng = np.random.default_rng([seed, 10])
    names = list(SUBTYPES)
    shares = np.array([SUBTYPES[s][1] for s in names])
    counts = np.floor(shares * n_units).astype(int)
    labels = [s for s, c in zip(names, counts, strict=True) for _ in range(c)]
    labels += ["normal"] * (n_units - len(labels))
    order = rng.permutation(n_units)
    units: list[ScenarioUnit] = []
    first_day = start.date()
    for i in range(n_units):
        subtype = labels[int(order[i])]
        kind: Kind = SUBTYPES[subtype][0] if subtype in SUBTYPES else "normal"
        b_global, k = divmod(i, UNITS_PER_BUILDING)
        estate = f"S{b_global // BUILDINGS_PER_ESTATE + 1:03d}"
        building = str(b_global % BUILDINGS_PER_ESTATE + 1)
        floor, door = k // 4 + 1, k % 4 + 1
        size = 1 if subtype == "elderly_single" else int(rng.choice([1, 2, 3, 4, 5],
                                                                    p=[0.2, 0.3, 0.25, 0.15, 0.1]))
        area = round(float(np.clip(30 + 8 * size + rng.normal(0, 4), 30, 75)), 1)
        onset: int | None = None
        if kind != "normal":
            # Most onsets early enough to be scored (>= 45 days before the last day); some later.
            onset = int(rng.integers(30, max(31, days - 20)))
        if subtype == "side_entrance":
            onset = None
        lease = first_day - timedelta(days=int(rng.integers(365, 365 * 6)))
        if subtype == "new_lease":
            lease = first_day + timedelta(days=int(rng.integers(40, days - 20)))
        units.append(ScenarioUnit(
            unit_id=f"{estate}-{building}-{floor:02d}{door:02d}", estate_id=estate, building=building,
            floor=floor, area_m2=area, household_size=size, lease_start=lease, kind=kind, subtype=subtype,
            onset_day=onset,
        ))
    # Who enrolled a face at the gate: most households of an estate (a share drawn per estate), not all.
    # A stream of its own, so the rest of the scenario is the same with or without it.
    enrol = np.random.default_rng([seed, 13])
    share = {e: float(enrol.uniform(*ENROLLED_SHARE)) for e in sorted({u.estate_id for u in units})}
    units = [replace(u, faces_enrolled=u.household_size if enrol.random() < share[u.estate_id] else 0)
             for u in units]
    buildings = sorted({(u.estate_id, u.building) for u in units})
    silent: dict[tuple[str, str], tuple[int, int]] = {}
    for key in buildings:
        if rng.random() < SILENT_GATE_SHARE:
            s = int(rng.integers(20, days - 40))
            silent[key] = (s, s + int(rng.integers(14, 36)))
    return Scenario(start=start, days=days, seed=seed, units=tuple(units), silent_gates=silent)


@dataclass
class _Block:
    """Daily arrays of a block of units, the hourly series derived from them, and gate entries."""

    elec: np.ndarray  # (n, hours) consumption per hour
    water: np.ndarray
    gas: np.ndarray
    has_gas: np.ndarray  # (n,)
    missing_elec: np.ndarray  # (n, hours) no reading at this hour
    missing_water: np.ndarray
    entries: np.ndarray  # (n, days) registered-tenant gate entries
    shift: np.ndarray  # (n,) hours the household's day is shifted by
    strangers: list[tuple[int, str, np.ndarray]]  # (unit index, track, per-day event counts)


def _season(days: int, start: date) -> np.ndarray:
    """Relative electricity level per day: winter heating, summer cooling, mild spring."""
    doy = np.array([(start + timedelta(days=d)).timetuple().tm_yday for d in range(days)])
    heating = 0.25 * np.clip((60 - doy) / 60, 0, 1)
    cooling = 0.35 * np.clip((doy - 150) / 60, 0, 1)
    return 1.0 + heating + cooling


def _spring_festival(days: int, start: date) -> np.ndarray:
    """Days of the 2026 Spring Festival holiday (15 to 23 February) as a boolean mask."""
    sf = date(2026, 2, 15)
    return np.array([0 <= ((start + timedelta(days=d)) - sf).days < 9 for d in range(days)])


def _simulate_block(sc: Scenario, units: tuple[ScenarioUnit, ...], block_index: int) -> _Block:
    rng = np.random.default_rng([sc.seed, 11, block_index])
    n, days = len(units), sc.days
    first = sc.start.date()
    d_idx = np.arange(days)
    weekend = np.array([(first + timedelta(days=int(d))).weekday() >= 5 for d in d_idx])
    season = _season(days, first)
    festival = _spring_festival(days, first)
    size = np.array([u.household_size for u in units], dtype=float)
    onset = np.array([u.onset_day if u.onset_day is not None else days for u in units])
    after = d_idx[None, :] >= onset[:, None]

    # Who lives here (activity level) and which registered tenants pass the gate.
    home = np.ones((n, days), dtype=bool)
    away_sf = (rng.random(n) < 0.3)[:, None] & festival[None, :]
    home &= ~away_sf
    short = rng.random((n, days)) < 0.01  # 1-day trips
    home &= ~short
    level = np.ones((n, days)) * np.where(weekend, 1.15, 1.0)[None, :] * season[None, :]
    shift = np.zeros(n, dtype=int)
    entry_rate = np.full(n, 0.0)
    entry_rate[:] = 0.8 * size + 0.7
    visits = np.zeros((n, days), dtype=bool)
    leak = np.zeros((n, days))
    fridge = rng.uniform(0.03, 0.05, n)  # kWh per hour
    base_day = np.tile(fridge[:, None] * 24, (1, days))
    occupants_level = np.ones((n, days))
    strangers: list[tuple[int, str, np.ndarray]] = []
    stop_gate = np.zeros((n, days), dtype=bool)

    live_in = rng.random(n) < LIVE_IN_SHARE
    for i, u in enumerate(units):
        a = after[i]
        if u.subtype == "travel":
            for _ in range(int(rng.integers(1, 3))):
                s = int(rng.integers(10, days - 25))
                home[i, s:s + int(rng.integers(7, 22))] = False
            # Two trips, a day trip or the Spring Festival next to a trip would make one longer absence:
            # back home by day 22, so the subtype stays what it is labelled (a hard negative).
            home[i] = cap_absences(home[i], TRAVEL_MAX_DAYS)
        elif u.subtype == "night_shift":
            shift[i] = int(rng.integers(8, 11))
        elif u.subtype == "elderly_single":
            level[i] *= rng.uniform(0.35, 0.5)
            entry_rate[i] = rng.uniform(0.25, 0.5)
        elif u.subtype == "relatives_visit":
            for k in range(int(rng.integers(1, 3))):
                dow = int(rng.integers(0, 7))
                per_day = ((d_idx % 7) == dow).astype(int) * (rng.random(days) < 0.85)
                strangers.append((i, f"{u.unit_id}-rel{k}", per_day))
        elif u.subtype == "side_entrance":
            # Some households took to the side door long ago: they never pass the recorded gate at all.
            s = 0 if rng.random() < SIDE_DOOR_ALWAYS else int(rng.integers(20, days - 30))
            stop_gate[i, s:] = True
        elif u.subtype == "new_lease":
            lease_day = (u.lease_start - first).days
            home[i, :lease_day] = False
        elif u.kind == "vacancy":
            home[i, a] = False
            if u.subtype == "vacant_power_off":
                base_day[i, a] = 0.0
            else:
                base_day[i, a] = rng.uniform(0.7, 1.0)
            if u.subtype == "vacant_gradual":
                o = int(onset[i])
                ramp = np.clip(np.arange(days) - (o - 21), 0, 21) / 21.0
                level[i] *= np.where(d_idx < o, 1.0 - 0.85 * ramp, 1.0)
                thin = (d_idx >= o - 21) & (d_idx < o) & (rng.random(days) < ramp * 0.8)
                home[i, thin] = False
            if u.subtype == "vacant_drop_by":
                visits[i] = _every(rng, days, int(onset[i]), (18, 35))
            if u.subtype == "vacant_leak":
                leak[i, a] = rng.uniform(0.08, 0.35)
        elif u.kind == "sublet":
            home[i, a] = False  # the registered household has moved out; others live here
            occupants = int(rng.integers(5, 11)) if u.subtype == "group_renting" else int(rng.integers(1, 4))
            occupants_level[i, a] = (rng.uniform(2.0, 3.0) if u.subtype == "group_renting"
                                     else rng.uniform(0.8, 1.25))
            shift[i] = 0  # the household's schedule before onset; subtenants get their own below
            if u.subtype == "sublet_tenant_visits":
                visits[i] = _every(rng, days, int(onset[i]), (25, 45))
            for k in range(occupants):
                per_day = np.where(a, (rng.random(days) < 0.85) * rng.integers(1, 3, days), 0)
                strangers.append((i, f"{u.unit_id}-x{k}", per_day))
        if u.kind == "normal" and live_in[i]:
            # Someone living with the household who is on no lease (a carer, a partner, a grandparent):
            # an unregistered face at the gate on most days the household is home, from the first day.
            strangers.append((i, f"{u.unit_id}-livein", home[i] * (rng.random(days) < 0.8)))

    lived = home.copy()
    for i, u in enumerate(units):
        if u.kind == "sublet":
            lived[i] = home[i] | after[i]
    activity = lived * level * occupants_level
    elec_day = np.clip(2.4 + 1.3 * size + rng.uniform(-0.8, 1.5, n), 3.0, 10.0) - 24 * fridge
    water_day = size * rng.uniform(0.08, 0.15, n)
    gas_day = rng.uniform(0.2, 0.8, n)
    has_gas = rng.random(n) < 0.4
    # Subtenants keep their own hours: shift the diurnal shape after onset.
    sub_shift = np.where([u.kind == "sublet" for u in units], rng.integers(2, 5, n), 0)
    shifts = np.where(after, sub_shift[:, None], 0) + shift[:, None]  # (n, days)

    def hourly(shape: np.ndarray, daily: np.ndarray, sigma_day: float = 0.15) -> np.ndarray:
        hours = (np.arange(24)[None, None, :] - shifts[:, :, None]) % 24
        w = shape[hours] * rng.lognormal(0.0, 0.35, (n, days, 24))
        w /= w.sum(axis=2, keepdims=True)
        totals = np.maximum(daily, 0.0) * rng.lognormal(0.0, sigma_day, (n, days))
        return w * totals[:, :, None]

    elec = hourly(_ELEC_SHAPE, elec_day[:, None] * activity)
    elec += (base_day / 24)[:, :, None] * rng.lognormal(0.0, 0.08, (n, days, 24))
    elec[visits] += 0.3 / 24
    water = hourly(_WATER_SHAPE, water_day[:, None] * activity)
    water[visits] += 0.02 / 24
    water += (leak / 24)[:, :, None] * rng.lognormal(0.0, 0.05, (n, days, 24))
    gas = hourly(_GAS_SHAPE, gas_day[:, None] * activity)

    hours = days * 24
    missing_elec = rng.random((n, hours)) < 0.002
    missing_water = rng.random((n, hours)) < 0.002
    for i, u in enumerate(units):
        if u.subtype == "meter_outage":
            s = int(rng.integers(20, days - 25)) * 24
            length = int(rng.integers(5, 21)) * 24
            which = int(rng.integers(0, 3))
            if which in (0, 2):
                missing_elec[i, s:s + length] = True
            if which in (1, 2):
                missing_water[i, s:s + length] = True

    at_home = home & ~stop_gate
    entries = np.where(at_home, rng.poisson(entry_rate[:, None] * np.ones((1, days))), 0)
    entries = entries + visits.astype(int)
    return _Block(
        elec=elec.reshape(n, hours), water=water.reshape(n, hours), gas=gas.reshape(n, hours),
        has_gas=has_gas, missing_elec=missing_elec, missing_water=missing_water, entries=entries,
        shift=shift, strangers=strangers,
    )


def cap_absences(home: np.ndarray, max_days: int) -> np.ndarray:
    """``home`` (a day mask) with every run of days away cut to its first ``max_days`` days."""
    out = home.copy()
    run = 0
    for d, here in enumerate(home):
        run = 0 if here else run + 1
        if run > max_days:
            out[d] = True
    return out


def _every(rng: np.random.Generator, days: int, onset: int, gap: tuple[int, int]) -> np.ndarray:
    """Days after ``onset`` on which the tenant drops by once, ``gap`` days apart."""
    out = np.zeros(days, dtype=bool)
    day = onset + int(rng.integers(*gap))
    while day < days:
        out[day] = True
        day += int(rng.integers(*gap))
    return out


def _blocks(sc: Scenario) -> Iterator[tuple[tuple[ScenarioUnit, ...], _Block]]:
    for b in range(math.ceil(len(sc.units) / BLOCK_UNITS)):
        units = sc.units[b * BLOCK_UNITS:(b + 1) * BLOCK_UNITS]
        yield units, _simulate_block(sc, units, b)


def write_scenario(sc: Scenario, directory: Path) -> ScenarioFiles:
    """Simulate the scenario and write ``units.csv``, ``readings.csv``, ``access.csv`` and ``truth.csv``."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {name: directory / f"{name}.csv" for name in ("units", "readings", "access", "truth")}
    hours = sc.days * 24
    ts = [(sc.start + timedelta(hours=h)).isoformat(timespec="seconds") for h in range(hours)]
    day_str = [(sc.start + timedelta(days=d)).date().isoformat() for d in range(sc.days)]
    offset = sc.start.isoformat()[-6:]
    gate_p = _GATE_HOUR_WEIGHTS / _GATE_HOUR_WEIGHTS.sum()
    rng = np.random.default_rng([sc.seed, 12])
    n_readings = n_access = 0
    with paths["units"].open("w", newline="", encoding="utf-8") as fu, \
            paths["truth"].open("w", newline="", encoding="utf-8") as ft, \
            paths["readings"].open("w", encoding="utf-8") as fr, \
            paths["access"].open("w", encoding="utf-8") as fa:
        wu, wt = csv.writer(fu, lineterminator="\n"), csv.writer(ft, lineterminator="\n")
        wu.writerow(["unit_id", "estate_id", "building", "floor", "area_m2", "household_size", "lease_start",
                     "faces_enrolled"])
        wt.writerow(["unit_id", "kind", "subtype", "onset_date"])
        fr.write("ts,unit_id,meter,value\n")
        fa.write("ts,device_id,estate_id,building,floor,method,person_id,unit_id,stranger_track\n")
        for u in sc.units:
            wu.writerow([u.unit_id, u.estate_id, u.building, u.floor, u.area_m2, u.household_size,
                         u.lease_start.isoformat(), u.faces_enrolled])
            onset = sc.onset_date(u)
            wt.writerow([u.unit_id, u.kind, u.subtype, onset.isoformat() if onset else ""])
        visitor_counter = 0
        for units, block in _blocks(sc):
            for i, u in enumerate(units):
                for meter, series, missing in (
                    ("electricity", block.elec[i], block.missing_elec[i]),
                    ("water", block.water[i], block.missing_water[i]),
                    ("gas", block.gas[i] if block.has_gas[i] else None, None),
                ):
                    if series is None:
                        continue
                    cum = np.empty(hours)
                    cum[0] = 0.0
                    np.cumsum(series[:-1], out=cum[1:])
                    cum += float(rng.uniform(50, 5000))
                    values = np.round(cum, 3).tolist()
                    keep = range(hours) if missing is None else np.flatnonzero(~missing).tolist()
                    fr.write("".join(f"{ts[k]},{u.unit_id},{meter},{values[k]}\n" for k in keep))
                    n_readings += len(keep)
            # Gate events of the block: registered entries, then recurring and one-off strangers.
            lines: list[str] = []
            for i, u in enumerate(units):
                silent = sc.silent_gates.get((u.estate_id, u.building))
                gate = f"{u.estate_id}-G{u.building}"
                ent = block.entries[i]
                day_idx = np.repeat(np.arange(sc.days), ent)
                if silent is not None:
                    day_idx = day_idx[(day_idx < silent[0]) | (day_idx >= silent[1])]
                if day_idx.size == 0:
                    continue
                hrs = (rng.choice(24, size=day_idx.size, p=gate_p) + block.shift[i]) % 24
                secs = rng.integers(0, 3600, day_idx.size)
                who = rng.integers(1, u.household_size + 1, day_idx.size)
                method = rng.choice(4, size=day_idx.size, p=_METHOD_P)
                if not u.faces_enrolled:
                    method[method == 0] = 1  # no face enrolled: the card instead
                person = [""] + [pseudonym(sc.seed, u.unit_id, k) for k in range(1, u.household_size + 1)]
                for d, h, s, p, m in zip(day_idx.tolist(), hrs.tolist(), secs.tolist(), who.tolist(),
                                         method.tolist(), strict=True):
                    lines.append(f"{day_str[d]}T{h:02d}:{s // 60:02d}:{s % 60:02d}{offset},{gate},"
                                 f"{u.estate_id},{u.building},,{_METHODS[m]},{person[p]},{u.unit_id},\n")
            for i, track, per_day in block.strangers:
                u = units[i]
                silent = sc.silent_gates.get((u.estate_id, u.building))
                day_idx = np.repeat(np.arange(sc.days), per_day)
                if silent is not None:
                    day_idx = day_idx[(day_idx < silent[0]) | (day_idx >= silent[1])]
                hrs = rng.choice(24, size=day_idx.size, p=gate_p)
                secs = rng.integers(0, 3600, day_idx.size)
                corridor = rng.random(day_idx.size) < 0.5
                for d, h, s, c in zip(day_idx.tolist(), hrs.tolist(), secs.tolist(), corridor.tolist(),
                                      strict=True):
                    device = (f"{u.estate_id}-C{u.building}-{u.floor:02d}" if c  # corridor camera
                              else f"{u.estate_id}-G{u.building}")
                    floor = str(u.floor) if c else ""
                    lines.append(f"{day_str[d]}T{h:02d}:{s // 60:02d}:{s % 60:02d}{offset},{device},"
                                 f"{u.estate_id},{u.building},{floor},face,,,{track}\n")
            for key in sorted({(u.estate_id, u.building) for u in units}):
                silent = sc.silent_gates.get(key)
                for d in range(sc.days):
                    if silent is not None and silent[0] <= d < silent[1]:
                        continue
                    for _ in range(int(rng.poisson(4))):
                        visitor_counter += 1
                        h, s = int(rng.choice(24, p=gate_p)), int(rng.integers(0, 3600))
                        lines.append(f"{day_str[d]}T{h:02d}:{s // 60:02d}:{s % 60:02d}{offset},"
                                     f"{key[0]}-G{key[1]},{key[0]},{key[1]},,face,,,v{visitor_counter:08d}\n")
            fa.write("".join(lines))
            n_access += len(lines)
    return ScenarioFiles(units=paths["units"], readings=paths["readings"], access=paths["access"],
                         truth=paths["truth"], readings_rows=n_readings, access_rows=n_access)
