"""Household behaviour model: what every unit of a simulated estate consumes and who passes its gates.

Pure and deterministic: the same ``EstateSpec`` always gives the same hourly consumption, register
values and gate events. The spec carries the ground truth (normal, vacant or sublet, and since when),
so every simulator driven by one model tells one consistent story that detectors can be scored against.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import numpy as np

from anju_wire import MeterKind
from anju_wire.clock import ESTATE_TZ

Behaviour = Literal["normal", "vacant", "sublet"]
VerifyMode = Literal["face", "card", "password", "qr"]

LOCAL_TZ = ZoneInfo(ESTATE_TZ)
MAX_UNITS = 46  # device ids i+1, 100+i+1 and 200+i+1 must stay within Modbus's 1..247
DOORS_PER_FLOOR = 4
ONSET_FIRST_DAY = 25
ONSET_LAST_DAY = 40

# Diurnal shapes (relative weight per local hour 0..23) of the active, non-base part of consumption.
_ELEC_SHAPE = np.array([0.20, 0.15, 0.10, 0.10, 0.10, 0.20, 0.80, 1.20, 1.00, 0.50, 0.40, 0.50,
                        0.70, 0.50, 0.40, 0.40, 0.50, 0.80, 1.40, 1.80, 1.90, 1.70, 1.20, 0.60])
_WATER_SHAPE = np.array([0.02, 0.00, 0.00, 0.00, 0.00, 0.10, 1.00, 1.60, 1.00, 0.40, 0.30, 0.50,
                         0.70, 0.30, 0.20, 0.20, 0.30, 0.60, 1.00, 1.20, 1.40, 1.30, 0.80, 0.30])
_GAS_SHAPE = np.array([0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.60, 1.00, 0.30, 0.00, 0.00, 0.80,
                       1.00, 0.20, 0.00, 0.00, 0.20, 1.00, 1.60, 0.80, 0.10, 0.00, 0.00, 0.00])
# Hours at which people pass the building gate (leaving for work, lunch, coming home).
_GATE_HOUR_WEIGHTS = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.1, 0.6, 1.5, 1.2, 0.5, 0.4, 0.6,
                               0.7, 0.5, 0.4, 0.4, 0.6, 1.2, 1.6, 1.3, 0.8, 0.5, 0.3, 0.1])
_METHODS: tuple[VerifyMode, ...] = ("face", "card", "password", "qr")
_METHOD_P = np.array([0.82, 0.10, 0.04, 0.04])


@dataclass(frozen=True, slots=True)
class UnitSpec:
    """One rental unit, its registered household, its meters and the truth about its occupancy."""

    unit_id: str
    estate_id: str
    building: str
    floor: int
    area_m2: float
    household_size: int
    behaviour: Behaviour
    onset_day: int | None
    persons: tuple[str, ...]
    elec_device_id: int
    water_device_id: int
    gas_device_id: int
    lease_start: date

    def device_id(self, meter: MeterKind | str) -> int:
        """The Modbus device id of this unit's meter of the given utility."""
        kind = MeterKind(meter)
        if kind is MeterKind.ELECTRICITY:
            return self.elec_device_id
        if kind is MeterKind.WATER:
            return self.water_device_id
        return self.gas_device_id


@dataclass(frozen=True, slots=True)
class GateSpec:
    """One building entrance gate."""

    device_id: str
    building: str


@dataclass(frozen=True, slots=True)
class EstateSpec:
    """A simulated estate: its units and gates over ``days`` days from local midnight ``start``."""

    estate_id: str
    start: datetime
    days: int
    seed: int
    units: tuple[UnitSpec, ...]
    gates: tuple[GateSpec, ...]

    @property
    def end(self) -> datetime:
        """The end of the simulated period (exclusive)."""
        return self.start + timedelta(days=self.days)

    def unit(self, unit_id: str) -> UnitSpec:
        """The unit with this id (``KeyError`` if there is none)."""
        for u in self.units:
            if u.unit_id == unit_id:
                return u
        raise KeyError(unit_id)


@dataclass(frozen=True, slots=True)
class GateEvent:
    """One passage through a face gate, in the fields of the vendor's JSON event."""

    serial_no: int
    ts: datetime
    device_id: str
    building: str
    verify_mode: VerifyMode
    employee_no: str | None = None
    room_no: str | None = None
    stranger_track: str | None = None
    floor: int | None = None
    event_type: str = "AccessControllerEvent"

    @property
    def date_time(self) -> str:
        """The vendor's ``dateTime``: local time to the second with its UTC offset."""
        return self.ts.astimezone(LOCAL_TZ).isoformat(timespec="seconds")

    def to_vendor_dict(self) -> dict[str, object]:
        """The vendor event as a JSON-ready dict, keys in the vendor's order."""
        return {
            "eventType": self.event_type,
            "serialNo": self.serial_no,
            "dateTime": self.date_time,
            "deviceID": self.device_id,
            "building": self.building,
            "floor": self.floor,
            "verifyMode": self.verify_mode,
            "employeeNo": self.employee_no,
            "roomNo": self.room_no,
            "strangerTrack": self.stranger_track,
        }

    def to_vendor_json(self) -> bytes:
        """The vendor event as UTF-8 JSON bytes."""
        return json.dumps(self.to_vendor_dict(), ensure_ascii=False, separators=(",", ":")).encode()


def gate_device_id(estate_id: str, building: str) -> str:
    """Device id of a building's entrance gate, e.g. ``E01-G1``."""
    return f"{estate_id}-G{building}"


def make_estate(
    estate_id: str,
    *,
    n_units: int = 40,
    days: int = 90,
    start: datetime,
    seed: int,
    n_vacant: int = 3,
    n_sublet: int = 3,
    buildings: int = 2,
) -> EstateSpec:
    """A deterministic estate: units spread over buildings, some turning vacant or sublet mid-period."""
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    if not 1 <= n_units <= MAX_UNITS:
        raise ValueError(f"n_units must be 1..{MAX_UNITS} (Modbus device ids per estate server)")
    if n_vacant < 0 or n_sublet < 0 or n_vacant + n_sublet > n_units:
        raise ValueError("n_vacant + n_sublet must be between 0 and n_units")
    if days < 1 or buildings < 1:
        raise ValueError("days and buildings must be positive")
    rng = np.random.default_rng([seed, 0])
    special = rng.choice(n_units, size=n_vacant + n_sublet, replace=False)
    behaviours: list[Behaviour] = ["normal"] * n_units
    for k, i in enumerate(special):
        behaviours[int(i)] = "vacant" if k < n_vacant else "sublet"
    onset_lo = min(ONSET_FIRST_DAY, days // 3)
    onset_hi = max(onset_lo, min(ONSET_LAST_DAY, days - 1))
    per_building = math.ceil(n_units / buildings)
    units: list[UnitSpec] = []
    for i in range(n_units):
        b, k = divmod(i, per_building)
        building = str(b + 1)
        floor, door = k // DOORS_PER_FLOOR + 1, k % DOORS_PER_FLOOR + 1
        unit_id = f"{estate_id}-{building}-{floor:02d}{door:02d}"
        size = int(rng.choice([1, 2, 3, 4, 5], p=[0.2, 0.3, 0.25, 0.15, 0.1]))
        area = round(float(np.clip(30 + 8 * size + rng.normal(0, 4), 30, 75)), 1)
        onset = int(rng.integers(onset_lo, onset_hi + 1)) if behaviours[i] != "normal" else None
        lease_years = int(rng.integers(1, 8))
        lease_start = (start.astimezone(LOCAL_TZ).date() - timedelta(days=365 * lease_years
                                                                     + int(rng.integers(0, 300))))
        units.append(UnitSpec(
            unit_id=unit_id, estate_id=estate_id, building=building, floor=floor, area_m2=area,
            household_size=size, behaviour=behaviours[i], onset_day=onset,
            persons=tuple(f"T-{unit_id}-{p + 1}" for p in range(size)),
            elec_device_id=i + 1, water_device_id=100 + i + 1, gas_device_id=200 + i + 1,
            lease_start=lease_start,
        ))
    used = sorted({u.building for u in units}, key=int)
    gates = tuple(GateSpec(gate_device_id(estate_id, b), b) for b in used)
    return EstateSpec(estate_id=estate_id, start=start, days=days, seed=seed, units=tuple(units), gates=gates)


@dataclass(frozen=True, slots=True)
class _Presence:
    """Per-day facts of one unit that consumption and gate events must agree on."""

    home: np.ndarray  # bool per day: the registered household lives here that day
    lived_in: np.ndarray  # bool per day: somebody (household or subtenants) lives here
    tenant_visits: np.ndarray  # bool per day: a registered tenant drops by once (vacant / sublet)


class EstateModel:
    """Hourly consumption, cumulative registers and gate events of every unit of one estate."""

    def __init__(self, spec: EstateSpec) -> None:
        self.spec = spec
        self._hours = spec.days * 24
        self._units = {u.unit_id: u for u in spec.units}
        self._hourly: dict[tuple[str, MeterKind], np.ndarray] = {}
        self._cum: dict[tuple[str, MeterKind], np.ndarray] = {}
        self._presence: dict[str, _Presence] = {}
        weekday = np.array([(spec.start + timedelta(days=d)).astimezone(LOCAL_TZ).weekday()
                            for d in range(spec.days)])
        self._weekend = weekday >= 5
        for index, unit in enumerate(spec.units):
            self._simulate_unit(index, unit)
        self._events: list[GateEvent] | None = None

    # -- consumption -------------------------------------------------------------------------------

    def _simulate_unit(self, index: int, unit: UnitSpec) -> None:
        rng = np.random.default_rng([self.spec.seed, 1, index])
        days = self.spec.days
        onset = unit.onset_day if unit.onset_day is not None else days
        after = np.arange(days) >= onset
        away = _away_days(rng, days)
        home = ~away & ~after
        lived_in = home.copy()
        visits = np.zeros(days, dtype=bool)
        if unit.behaviour == "sublet":
            lived_in = ~away | after
            visits = _rare_visits(rng, days, onset, first=(10, 35), gap=(30, 45))
        elif unit.behaviour == "vacant":
            visits = _rare_visits(rng, days, onset, first=(7, 30), gap=(24, 40))
        self._presence[unit.unit_id] = _Presence(home=home, lived_in=lived_in, tenant_visits=visits)

        size = unit.household_size
        elec_day = float(np.clip(2.4 + 1.3 * size + rng.uniform(-0.8, 1.5), 3.0, 10.0))
        water_day = size * float(rng.uniform(0.08, 0.15))
        gas_day = float(rng.uniform(0.2, 0.8))
        fridge = float(rng.uniform(0.03, 0.05))  # kWh per hour
        level = np.where(self._weekend, 1.15, 1.0)
        shift = np.zeros(days, dtype=int)
        if unit.behaviour == "sublet":
            # Subtenants live differently: another level and a later day (shift work, late evenings).
            level = np.where(after, level * rng.uniform(0.85, 1.25), level)
            shift = np.where(after, int(rng.integers(2, 5)), 0)
        active = lived_in.astype(float)

        elec = self._hourly_series(rng, _ELEC_SHAPE, (elec_day - 24 * fridge) * level * active, shift)
        base = fridge * rng.lognormal(0.0, 0.08, size=(days, 24))
        if unit.behaviour == "vacant":
            # A vacant flat keeps the fridge running, or the tenant switched the power off at the breaker.
            fridge_on = rng.random() < 0.7
            vacant_fridge = float(rng.uniform(0.7, 1.0)) / 24 if fridge_on else 0.0
            base[after] = vacant_fridge * rng.lognormal(0.0, 0.05, size=(int(after.sum()), 24))
        elec = elec + base
        water = self._hourly_series(rng, _WATER_SHAPE, water_day * level * active, shift)
        gas = self._hourly_series(rng, _GAS_SHAPE, gas_day * level * active, shift)

        offsets = {
            MeterKind.ELECTRICITY: float(rng.uniform(1000, 5000)),
            MeterKind.WATER: float(rng.uniform(50, 300)),
            MeterKind.GAS: float(rng.uniform(50, 300)),
        }
        for kind, series in ((MeterKind.ELECTRICITY, elec), (MeterKind.WATER, water), (MeterKind.GAS, gas)):
            flat = series.reshape(-1)
            self._hourly[unit.unit_id, kind] = flat
            cum = np.empty(flat.size + 1)
            cum[0] = offsets[kind]
            np.cumsum(flat, out=cum[1:])
            cum[1:] += offsets[kind]
            self._cum[unit.unit_id, kind] = cum

    def _hourly_series(
        self, rng: np.random.Generator, shape: np.ndarray, daily: np.ndarray, shift: np.ndarray
    ) -> np.ndarray:
        """Spread daily totals over hours by a diurnal shape, with day-to-day and hour-to-hour noise."""
        days = self.spec.days
        if shift.any():
            weights = np.stack([np.roll(shape, int(s)) for s in shift])
        else:
            weights = np.tile(shape, (days, 1))
        weights = weights * rng.lognormal(0.0, 0.35, size=(days, 24))
        weights = weights / weights.sum(axis=1, keepdims=True)
        totals = np.maximum(daily, 0.0) * rng.lognormal(0.0, 0.15, size=days)
        return weights * totals[:, None]

    def hourly(self, unit_id: str, meter: MeterKind | str) -> np.ndarray:
        """Consumption per simulated hour (read-only view, ``days * 24`` values)."""
        view = self._hourly[unit_id, MeterKind(meter)].view()
        view.flags.writeable = False
        return view

    def daily(self, unit_id: str, meter: MeterKind | str) -> np.ndarray:
        """Consumption per simulated day."""
        return self.hourly(unit_id, meter).reshape(self.spec.days, 24).sum(axis=1)

    def register_value(self, unit_id: str, meter: MeterKind | str, t: datetime) -> float:
        """The meter's cumulative register at ``t``: linear inside an hour, clamped outside the period."""
        key = (unit_id, MeterKind(meter))
        cum, hourly = self._cum[key], self._hourly[key]
        hours = (t - self.spec.start).total_seconds() / 3600.0
        if hours <= 0:
            return float(cum[0])
        if hours >= self._hours:
            return float(cum[-1])
        i = int(hours)
        return float(cum[i] + (hours - i) * hourly[i])

    # -- gate events -------------------------------------------------------------------------------

    def gate_events(self) -> list[GateEvent]:
        """Every gate passage of the period, sorted by time; serial numbers count per gate."""
        if self._events is None:
            self._events = self._simulate_gates()
        return list(self._events)

    def _simulate_gates(self) -> list[GateEvent]:
        spec = self.spec
        raw: list[tuple[datetime, str, VerifyMode, str | None, str | None, str | None]] = []
        gate_of = {g.building: g.device_id for g in spec.gates}
        for index, unit in enumerate(spec.units):
            rng = np.random.default_rng([spec.seed, 2, index])
            gate = gate_of[unit.building]
            presence = self._presence[unit.unit_id]
            for day in range(spec.days):
                if presence.home[day]:
                    for person in unit.persons:
                        for _ in range(int(rng.integers(1, 4))):
                            mode = _METHODS[int(rng.choice(4, p=_METHOD_P))]
                            raw.append((self._gate_time(rng, day), gate, mode, person, unit.unit_id, None))
                elif presence.tenant_visits[day]:
                    person = unit.persons[int(rng.integers(0, len(unit.persons)))]
                    raw.append((self._gate_time(rng, day), gate, "face", person, unit.unit_id, None))
            if unit.behaviour == "sublet" and unit.onset_day is not None:
                tracks = [f"{gate}-t{int(rng.integers(100000, 999999)):06d}"
                          for _ in range(int(rng.integers(1, 4)))]
                for day in range(unit.onset_day, spec.days):
                    for track in tracks:
                        if rng.random() < 0.9:
                            for _ in range(int(rng.integers(1, 3))):
                                raw.append((self._gate_time(rng, day), gate, "face", None, None, track))
        for b, gate_spec in enumerate(spec.gates):
            rng = np.random.default_rng([spec.seed, 3, b])
            counter = 0
            for day in range(spec.days):
                # Visitors and couriers: unknown faces seen once.
                for _ in range(int(rng.poisson(4))):
                    counter += 1
                    track = f"{gate_spec.device_id}-v{counter:06d}"
                    raw.append((self._gate_time(rng, day), gate_spec.device_id, "face", None, None, track))
        raw.sort(key=lambda r: (r[0], r[1], r[3] or "", r[5] or ""))
        serial = {g.device_id: 100000 * (b + 1) for b, g in enumerate(spec.gates)}
        building_of = {g.device_id: g.building for g in spec.gates}
        events: list[GateEvent] = []
        for ts, gate_id, mode, employee, room, stranger in raw:
            serial[gate_id] += 1
            events.append(GateEvent(
                serial_no=serial[gate_id], ts=ts, device_id=gate_id, building=building_of[gate_id],
                verify_mode=mode, employee_no=employee, room_no=room, stranger_track=stranger,
            ))
        return events

    def _gate_time(self, rng: np.random.Generator, day: int) -> datetime:
        hour = int(rng.choice(24, p=_GATE_HOUR_WEIGHTS / _GATE_HOUR_WEIGHTS.sum()))
        second = int(rng.integers(0, 3600))
        local_day = (self.spec.start + timedelta(days=day)).astimezone(LOCAL_TZ).date()
        return datetime.combine(local_day, time(hour), LOCAL_TZ) + timedelta(seconds=second)

    # -- truth -------------------------------------------------------------------------------------

    def ground_truth(self) -> list[dict[str, object]]:
        """What each unit really is, and from which day: the answer key for detectors."""
        rows: list[dict[str, object]] = []
        for u in self.spec.units:
            onset_date = None
            if u.onset_day is not None:
                onset_date = (self.spec.start + timedelta(days=u.onset_day)).astimezone(LOCAL_TZ).date()
            rows.append({
                "unit_id": u.unit_id,
                "estate_id": u.estate_id,
                "behaviour": u.behaviour,
                "onset_day": u.onset_day,
                "onset_date": onset_date.isoformat() if onset_date else None,
            })
        return rows


def _away_days(rng: np.random.Generator, days: int) -> np.ndarray:
    """Short trips (1-3 days) of a normal household: no entries, base-load consumption."""
    away = np.zeros(days, dtype=bool)
    day = 0
    while day < days:
        if rng.random() < 0.015:
            length = int(rng.integers(1, 4))
            away[day:day + length] = True
            day += length + 7
        else:
            day += 1
    return away


def _rare_visits(
    rng: np.random.Generator, days: int, onset: int, *, first: tuple[int, int], gap: tuple[int, int]
) -> np.ndarray:
    """Days after ``onset`` on which a registered tenant drops by once, never twice in 21 days."""
    visits = np.zeros(days, dtype=bool)
    day = onset + int(rng.integers(*first))
    while day < days:
        visits[day] = True
        day += int(rng.integers(*gap))
    return visits
