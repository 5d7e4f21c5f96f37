"""A second labelled household model, built from appliances and people up, to evaluate detectors on.

Written independently of ``scenarios.py`` so that a detector tuned on one generator can be checked on
data it has never seen the like of. Households are simulated on a 10-minute grid (``appliance_people``
for who is home, ``appliance_loads`` for what runs), every parameter drawn per estate and per household
from wide ranges, then read out as hourly cumulative registers and gate records in the same CSV files
the bulk importer takes. Deterministic for a seed.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from anju.device_sims.appliance_loads import block_loads
from anju.device_sims.appliance_people import (
    METHODS,
    GateLog,
    Residents,
    TrackIds,
    build_residents,
    gate_log,
    visitor_log,
)
from anju.device_sims.scenarios import ScenarioFiles
from anju_wire.clock import ESTATE_TZ

LOCAL_TZ = ZoneInfo(ESTATE_TZ)
BLOCK = 50  # units simulated together (fixed, so the output does not depend on anything but the seed)
METERS = ("electricity", "water", "gas")
RESOLUTION = {"electricity": 100, "water": 1000, "gas": 1000}  # register steps per unit (0.01 kWh, 1 L)

# subtype -> (kind, share of units). Positive subtypes get >= 1.2 % so 2000 units give >= 20 of each.
SUBTYPES: dict[str, tuple[str, float]] = {
    "vacant_fridge_on": ("vacancy", 0.025),
    "vacant_water_heater_on": ("vacancy", 0.015),
    "vacant_breaker_off": ("vacancy", 0.015),
    "vacant_drop_by": ("vacancy", 0.015),
    "vacant_leak": ("vacancy", 0.012),
    "vacant_long": ("vacancy", 0.015),
    "sublet_plain": ("sublet", 0.025),
    "sublet_tenant_drops_by": ("sublet", 0.015),
    "group_rental": ("sublet", 0.012),
    "travel": ("normal", 0.06),
    "hospital": ("normal", 0.02),
    "night_shift": ("normal", 0.04),
    "elderly_single": ("normal", 0.05),
    "side_door": ("normal", 0.02),
    "meter_outage": ("normal", 0.03),
    "new_lease": ("normal", 0.02),
    "relatives_visit": ("normal", 0.03),
    "large_family": ("normal", 0.04),
}
ENROLLED_SHARE = (0.75, 0.98)  # an estate's share of households with faces enrolled at its gates
SIDE_DOOR_ALWAYS = 0.3  # share of side-door households that never used the recorded gate in the data
# Public holidays of 2026 (no work or school): New Year, Spring Festival, Qingming, Labour Day, Dragon Boat.
HOLIDAYS = (
    frozenset(date(2026, 1, 1) + timedelta(days=k) for k in (0, 1, 2))
    | frozenset(date(2026, 2, 15) + timedelta(days=k) for k in range(9))
    | frozenset(date(2026, 4, 4) + timedelta(days=k) for k in range(3))
    | frozenset(date(2026, 5, 1) + timedelta(days=k) for k in range(5))
    | frozenset(date(2026, 6, 19) + timedelta(days=k) for k in range(3))
)


@dataclass(frozen=True)
class Building:
    """One building's gate: how well it recognises faces, how often people tailgate, what else it has."""

    estate_id: str
    building: str
    floors: int
    recognition: float  # share of registered faces the gate recognises
    tailgating: float  # share of passages behind someone, with no record at all
    corridor: bool  # corridor cameras on every floor
    corridor_coverage: float  # share of passages a corridor camera catches
    visitors_per_day: float  # one-off strangers (visitors, couriers) at the gate
    outage: tuple[int, int] | None  # days [first, end) the building's gate records never arrived


@dataclass(frozen=True)
class Estate:
    """Estate-wide draws: when its gateway polls the meters, how often a poll is lost, its climate."""

    estate_id: str
    poll_slot: int  # readings are taken this many 10-minute slots after each full hour
    missing_rate: float
    warmth: float  # °C added to the city's temperature (estate microclimate)


@dataclass(frozen=True)
class ApplianceUnit:
    """One flat, its registered household and its truth label."""

    unit_id: str
    estate_id: str
    building: str
    floor: int
    area_m2: float
    household_size: int
    lease_start: date
    kind: str  # normal | vacancy | sublet
    subtype: str
    onset: date | None  # vacancy or sublet from this day (may be before the data starts)
    onset_day: int | None  # the same, as days since the start
    event_day: int | None  # hard negatives: side door from, meter outage from, new lease on (days)
    outage_days: int  # meter_outage: how many days the readings are missing
    outage_meters: tuple[str, ...]  # meter_outage: which meters go missing (all of them: the gateway)
    has_gas: bool
    building_index: int
    faces_enrolled: int = 0  # registered people with a face enrolled at the gates (0: card, code, QR only)


@dataclass(frozen=True)
class ApplianceScenario:
    """Estates, buildings and units of one generated scenario (the simulation runs in ``simulate``)."""

    start: datetime
    days: int
    seed: int
    units: tuple[ApplianceUnit, ...]
    estates: tuple[Estate, ...]
    buildings: tuple[Building, ...]

    @property
    def last_day(self) -> date:
        """The last simulated local date."""
        return self.start.date() + timedelta(days=self.days - 1)


def _onset(subtype: str, days: int, rng: np.random.Generator) -> int | None:
    """Days from the start to a vacancy's or sublet's onset: a few before the data, most within it."""
    if subtype == "vacant_long":
        return -int(rng.integers(1, 400))
    if rng.random() < 0.12:
        return -int(rng.integers(1, 60))
    return int(rng.integers(7, max(8, days - 45)))


def make_scenario(*, n_units: int, days: int, seed: int, start: datetime | None = None) -> ApplianceScenario:
    """Draw estates, buildings, units, labels and onsets (deterministic for a seed; no simulation yet)."""
    if start is None:
        start = datetime(2026, 1, 1, tzinfo=LOCAL_TZ)
    if n_units < 1 or days < 56:
        raise ValueError("a scenario needs at least 1 unit and 56 days")
    rng = np.random.default_rng([seed, 41])
    names = list(SUBTYPES)
    counts = {s: round(SUBTYPES[s][1] * n_units) for s in names}
    labels = [s for s in names for _ in range(counts[s])][:n_units]
    labels += ["normal"] * (n_units - len(labels))
    labels = [labels[k] for k in rng.permutation(n_units)]
    estates: list[Estate] = []
    buildings: list[Building] = []
    units: list[ApplianceUnit] = []
    while len(units) < n_units:
        e_id = f"A{len(estates) + 1:03d}"
        estates.append(
            Estate(
                e_id, int(rng.integers(0, 6)), float(rng.uniform(0.0005, 0.004)), float(rng.normal(0, 0.7))
            )
        )
        gas_share = float(rng.uniform(0.7, 1.0)) if rng.random() < 0.6 else 0.0  # piped gas, or none
        corridor_p = float(rng.uniform(0.2, 0.4))
        size = min(int(rng.integers(150, 401)), n_units - len(units))
        n_b = int(rng.integers(2, 7))
        b_first = len(buildings)
        for b in range(1, n_b + 1):
            outage = None
            if rng.random() < 0.08:
                first = int(rng.integers(0, days - 7))
                outage = (first, first + int(rng.integers(3, 22)))
            buildings.append(
                Building(
                    e_id,
                    str(b),
                    int(rng.integers(6, 34)),
                    float(rng.uniform(0.8, 0.97)),
                    float(rng.uniform(0.05, 0.3)),
                    bool(rng.random() < corridor_p),
                    float(rng.uniform(0.7, 0.95)),
                    float(rng.uniform(3, 20)),
                    outage,
                )
            )
        doors = int(rng.integers(4, 9))
        grid = [
            (b, f, d)
            for b in range(n_b)
            for f in range(1, buildings[b_first + b].floors + 1)
            for d in range(1, doors + 1)
        ]
        picks = sorted(rng.choice(len(grid), size=min(size, len(grid)), replace=False).tolist())
        for g in picks:
            b, floor, door = grid[g]
            subtype = labels[len(units)]
            kind = SUBTYPES[subtype][0] if subtype in SUBTYPES else "normal"
            onset_day = _onset(subtype, days, rng) if kind != "normal" else None
            size_hh = {
                "elderly_single": 1,
                "hospital": int(rng.integers(1, 3)),
                "large_family": int(rng.integers(5, 8)),
                "group_rental": int(rng.integers(1, 4)),
            }.get(subtype, int(rng.choice([1, 2, 3, 4, 5], p=[0.2, 0.3, 0.25, 0.17, 0.08])))
            event_day = {
                # Some households took to the side door before the data: never at the recorded gate.
                "side_door": (-int(rng.integers(1, 400)) if rng.random() < SIDE_DOOR_ALWAYS
                              else int(rng.integers(10, days - 30))),
                "meter_outage": int(rng.integers(5, days - 25)),
                "new_lease": int(rng.integers(10, days - 30)),
            }.get(subtype)
            lease = -int(rng.integers(180, 3000))
            if onset_day is not None:
                lease = min(lease, onset_day - 90)
            if subtype == "new_lease":
                lease = event_day or 0
            has_meter = rng.random()
            units.append(
                ApplianceUnit(
                    unit_id=f"{e_id}-{b + 1}-{floor:02d}{door:02d}",
                    estate_id=e_id,
                    building=str(b + 1),
                    floor=floor,
                    area_m2=round(float(rng.uniform(30, 60) + 12 * size_hh), 1),
                    household_size=size_hh,
                    lease_start=start.date() + timedelta(days=lease),
                    kind=kind,
                    subtype=subtype,
                    onset=None if onset_day is None else start.date() + timedelta(days=onset_day),
                    onset_day=onset_day,
                    event_day=event_day,
                    outage_days=int(rng.integers(3, 21)),
                    outage_meters=METERS
                    if rng.random() < 0.5
                    else (str(rng.choice(["electricity", "water"])),),
                    has_gas=bool(has_meter < gas_share),
                    building_index=b_first + b,
                )
            )
            if len(units) == n_units:
                break
    # Who enrolled a face at the gates: most households of an estate, not all (the elderly, the wary).
    # A stream of its own, so the rest of the scenario is the same with or without it.
    enrol = np.random.default_rng([seed, 0xE7])
    share = {e.estate_id: float(enrol.uniform(*ENROLLED_SHARE)) for e in estates}
    units = [
        replace(u, faces_enrolled=u.household_size if enrol.random() < share[u.estate_id] else 0)
        for u in units
    ]
    return ApplianceScenario(
        start=start,
        days=days,
        seed=seed,
        units=tuple(units),
        estates=tuple(estates),
        buildings=tuple(buildings),
    )


@dataclass(frozen=True)
class HourlyBlock:
    """A simulated block: consumption per unit and clock hour, missing readings, and gate records."""

    units: tuple[ApplianceUnit, ...]
    electricity: np.ndarray  # (units, hours) kWh
    water: np.ndarray  # (units, hours) m³
    gas: np.ndarray  # (units, hours) m³, zero where the unit has no gas meter
    registers: dict[str, np.ndarray]  # meter -> (units, hours) cumulative register read at each poll
    missing: dict[str, np.ndarray]  # meter -> (units, hours) True where no reading arrives
    residents: Residents
    gates: GateLog


def _temperatures(sc: ApplianceScenario) -> dict[str, np.ndarray]:
    """Daily mean outdoor temperature per estate: a subtropical seasonal curve plus shared weather."""
    rng = np.random.default_rng([sc.seed, 43])
    doy = np.array([(sc.start.date() + timedelta(days=d)).timetuple().tm_yday for d in range(sc.days)])
    anomaly = np.zeros(sc.days)
    for d in range(1, sc.days):
        anomaly[d] = 0.75 * anomaly[d - 1] + rng.normal(0, 1.8)  # weather fronts last a few days
    city = 16.7 - 11.9 * np.cos(2 * np.pi * (doy - 15) / 365) + anomaly
    return {e.estate_id: city + e.warmth for e in sc.estates}


def simulate(sc: ApplianceScenario) -> Iterator[HourlyBlock]:
    """Simulate the scenario block by block (a generator, so memory stays flat for any size)."""
    workday = np.array(
        [
            (sc.start.date() + timedelta(days=d)).weekday() < 5
            and sc.start.date() + timedelta(days=d) not in HOLIDAYS
            for d in range(sc.days)
        ]
    )
    temps = _temperatures(sc)
    estates = {e.estate_id: e for e in sc.estates}
    hours = sc.days * 24
    for k in range(0, len(sc.units), BLOCK):
        units = sc.units[k : k + BLOCK]
        rng = np.random.default_rng([sc.seed, 42, k])
        tracks = TrackIds(sc.seed, 10_000_000 * (k // BLOCK + 1))
        res = build_residents(sc, units, workday, tracks, rng)
        temp = np.array([temps[u.estate_id] for u in units])
        elec, water, gas = block_loads(sc, units, res, temp, rng)
        has_gas = np.array([u.has_gas for u in units])[:, None]
        per_meter = {"electricity": elec, "water": water, "gas": gas * has_gas}
        registers: dict[str, np.ndarray] = {}
        missing: dict[str, np.ndarray] = {}
        poll = np.array([estates[u.estate_id].poll_slot for u in units])
        rate = np.array([estates[u.estate_id].missing_rate for u in units])[:, None]
        at = np.arange(hours)[None, :] * 6 + poll[:, None]
        rows = np.arange(len(units))[:, None]
        for meter, series in per_meter.items():
            cum = np.zeros((len(units), series.shape[1] + 1))
            np.cumsum(series, axis=1, out=cum[:, 1:])
            start_value = rng.uniform(50, 20000 if meter == "electricity" else 3000, len(units))[:, None]
            step = RESOLUTION[meter]
            registers[meter] = np.floor((cum[rows, at] + start_value) * step) / step  # a register counts down
            gone = rng.random((len(units), hours)) < rate
            for i, u in enumerate(units):
                if u.subtype == "meter_outage" and meter in u.outage_meters and u.event_day is not None:
                    gone[i, u.event_day * 24 : (u.event_day + u.outage_days) * 24] = True
            missing[meter] = gone
        yield HourlyBlock(
            units=units,
            electricity=elec.reshape(len(units), hours, 6).sum(axis=2),
            water=water.reshape(len(units), hours, 6).sum(axis=2),
            gas=(gas * has_gas).reshape(len(units), hours, 6).sum(axis=2),
            registers=registers,
            missing=missing,
            residents=res,
            gates=gate_log(sc, units, res, tracks, rng),
        )


def _access_lines(sc: ApplianceScenario, log: GateLog, day_str: list[str], offset: str) -> str:
    """CSV lines of gate records (person and track are never both set; a floor means a corridor camera)."""
    gates = [f"{x.estate_id}-G{x.building},{x.estate_id},{x.building}," for x in sc.buildings]
    out = []
    for t, b, fl, meth, pers, unit, trk in zip(
        log.t.tolist(),
        log.building.tolist(),
        log.floor.tolist(),
        log.method.tolist(),
        log.person,
        log.unit,
        log.track,
        strict=True,
    ):
        s = t % 86400
        x = sc.buildings[b]
        where = (
            gates[b] if fl == 0 else f"{x.estate_id}-C{x.building}-{fl:02d},{x.estate_id},{x.building},{fl}"
        )
        out.append(
            f"{day_str[t // 86400]}T{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}{offset},{where},"
            f"{METHODS[meth]},{pers},{unit},{trk}\n"
        )
    return "".join(out)


def _reading_bytes(stamps: np.ndarray, mid: bytes, counts: np.ndarray, decimals: int) -> bytes:
    """CSV lines ``ts,unit,meter,value`` built as a byte matrix (Python string formatting is too slow).

    ``stamps`` (rows, 25) holds the timestamps' bytes, ``counts`` the register in steps of 10**-decimals.
    Leading zeros of the whole part are marked 0 and dropped with one mask at the end.
    """
    n = counts.size
    whole, frac = np.divmod(counts, 10**decimals)
    width = 9  # whole digits, enough for any register here
    digits = (whole[:, None] // 10 ** np.arange(width - 1, -1, -1)[None, :]) % 10
    lead = np.cumsum(digits, axis=1) == 0
    lead[:, -1] = False
    cols = 25 + len(mid) + width + 1 + decimals + 1
    m = np.empty((n, cols), np.uint8)
    m[:, :25] = stamps
    m[:, 25 : 25 + len(mid)] = np.frombuffer(mid, np.uint8)
    k = 25 + len(mid)
    m[:, k : k + width] = np.where(lead, 0, digits + 48)
    m[:, k + width] = 46
    m[:, k + width + 1 : k + width + 1 + decimals] = (
        frac[:, None] // 10 ** np.arange(decimals - 1, -1, -1)
    ) % 10 + 48
    m[:, -1] = 10
    flat = m.ravel()
    return flat[flat != 0].tobytes()


def write_scenario(sc: ApplianceScenario, directory: Path) -> ScenarioFiles:
    """Simulate the scenario and write ``units.csv``, ``readings.csv``, ``access.csv`` and ``truth.csv``."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {name: directory / f"{name}.csv" for name in ("units", "readings", "access", "truth")}
    offset = sc.start.isoformat()[-6:]
    day_str = [(sc.start + timedelta(days=d)).date().isoformat() for d in range(sc.days)]
    rng = np.random.default_rng([sc.seed, 44])
    stamps: dict[str, np.ndarray] = {}
    for e in sc.estates:  # the gateway polls all meters of an estate together, a few seconds apart
        jitter = rng.integers(0, 50, sc.days * 24).tolist()
        text = "".join(
            f"{day_str[h // 24]}T{h % 24:02d}:{e.poll_slot * 10:02d}:{j:02d}{offset}"
            for h, j in enumerate(jitter)
        )
        stamps[e.estate_id] = np.frombuffer(text.encode(), np.uint8).reshape(-1, 25)
    n_readings = n_access = 0
    with (
        paths["units"].open("w", newline="", encoding="utf-8") as fu,
        paths["truth"].open("w", newline="", encoding="utf-8") as ft,
        paths["readings"].open("wb") as fr,
        paths["access"].open("w", encoding="utf-8") as fa,
    ):
        wu, wt = csv.writer(fu, lineterminator="\n"), csv.writer(ft, lineterminator="\n")
        wu.writerow(
            ["unit_id", "estate_id", "building", "floor", "area_m2", "household_size", "lease_start",
             "faces_enrolled"]
        )
        wt.writerow(["unit_id", "kind", "subtype", "onset_date"])
        fr.write(b"ts,unit_id,meter,value\n")
        fa.write("ts,device_id,estate_id,building,floor,method,person_id,unit_id,stranger_track\n")
        for u in sc.units:
            wu.writerow(
                [
                    u.unit_id,
                    u.estate_id,
                    u.building,
                    u.floor,
                    u.area_m2,
                    u.household_size,
                    u.lease_start.isoformat(),
                    u.faces_enrolled,
                ]
            )
            wt.writerow([u.unit_id, u.kind, u.subtype, u.onset.isoformat() if u.onset else ""])
        for block in simulate(sc):
            for i, u in enumerate(block.units):
                for meter in METERS:
                    if meter == "gas" and not u.has_gas:
                        continue
                    keep = np.flatnonzero(~block.missing[meter][i])
                    step = RESOLUTION[meter]
                    counts = np.rint(block.registers[meter][i][keep] * step).astype(np.int64)
                    fr.write(
                        _reading_bytes(
                            stamps[u.estate_id][keep],
                            f",{u.unit_id},{meter},".encode(),
                            counts,
                            2 if meter == "electricity" else 3,
                        )
                    )
                    n_readings += keep.size
            fa.write(_access_lines(sc, block.gates, day_str, offset))
            n_access += block.gates.t.size
        visitors = visitor_log(sc, TrackIds(sc.seed, 0), np.random.default_rng([sc.seed, 45]))
        fa.write(_access_lines(sc, visitors, day_str, offset))
        n_access += visitors.t.size
    return ScenarioFiles(
        units=paths["units"],
        readings=paths["readings"],
        access=paths["access"],
        truth=paths["truth"],
        readings_rows=n_readings,
        access_rows=n_access,
    )
