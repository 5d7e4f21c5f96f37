"""Electricity, water and gas of a block of flats, built appliance by appliance on a 10-minute grid.

Part of the second, independently written household generator (``appliances.py``). Loads follow from
who is home and awake (``appliance_people``), the weather and each household's own appliances and
habits, all drawn per household from wide ranges, so that a detector cannot learn one generator's
constants. What an empty flat uses depends only on what was left on: fridge and router, an electric
storage water heater reheating its standby losses, a leaking cistern, or nothing with the breaker off.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from anju.device_sims.appliance_people import DROP, FAR, SPD, Residents

if TYPE_CHECKING:
    from anju.device_sims.appliances import ApplianceScenario, ApplianceUnit

LIVED, FRIDGE, HEATER, OFF, IDLE = range(5)  # what runs in a flat: lived in, or empty with this left on
GAS_MJ_PER_M3 = 35.6  # natural gas, lower heating value
_EMPTY_MODES: dict[str, tuple[tuple[int, ...], tuple[float, ...]]] = {
    "vacant_fridge_on": ((FRIDGE,), (1.0,)),
    "vacant_water_heater_on": ((HEATER,), (1.0,)),
    "vacant_breaker_off": ((OFF,), (1.0,)),
    "vacant_drop_by": ((FRIDGE, OFF), (0.6, 0.4)),
    "vacant_leak": ((FRIDGE, OFF, HEATER), (0.5, 0.3, 0.2)),
    "vacant_long": ((FRIDGE, OFF, HEATER), (0.45, 0.35, 0.2)),
    "new_lease": ((OFF, IDLE), (0.6, 0.4)),
}
# Meals: usual time (slots, low-high), duration (slots, low-high), chance of cooking it (low-high).
_MEALS = (
    (40, 46, 1, 3, 0.2, 0.7),
    (68, 76, 2, 4, 0.2, 0.8),
    (105, 117, 2, 6, 0.55, 0.95),
    (140, 150, 1, 3, 0.0, 0.0),
)


def _add(arr: np.ndarray, u: np.ndarray, slot: np.ndarray, val: np.ndarray | float, dur: np.ndarray) -> None:
    """Add ``val`` to ``arr[u, slot + j]`` for each j below the event's duration (cut at the grid's end)."""
    t_len = arr.shape[1]
    val_arr = np.broadcast_to(np.asarray(val, float), u.shape)
    for j in range(int(dur.max(initial=0))):
        sel = (dur > j) & (slot + j < t_len)
        np.add.at(arr, (u[sel], slot[sel] + j), val_arr[sel])


def fridge_fraction(t_len: int, cycle_min: np.ndarray, phase: np.ndarray, duty: np.ndarray) -> np.ndarray:
    """Share of each 10-minute slot the compressor runs: a square wave of ``cycle_min`` at ``duty``."""
    x0 = (np.arange(t_len) * 10.0)[None, :] + phase[:, None]
    p = cycle_min[:, None]
    on = duty * p

    def run_time(x: np.ndarray) -> np.ndarray:
        return np.floor(x / p) * on + np.minimum(np.mod(x, p), on)

    return np.asarray((run_time(x0 + 10.0) - run_time(x0)) / 10.0)


def block_loads(
    sc: ApplianceScenario,
    units: tuple[ApplianceUnit, ...],
    res: Residents,
    temp: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Energy and water per unit and slot: (electricity kWh, water m³, gas m³), each (units, slots).

    ``temp`` is each unit's outdoor daily mean temperature (units, days), shared within an estate.
    """
    n, days = len(units), sc.days
    t_len = days * SPD
    first = np.searchsorted(res.unit, np.arange(n))
    counts = (res.role != DROP)[:, None]
    home_n = np.add.reduceat(res.present & counts, first, axis=0, dtype=np.int16)
    awake_n = np.add.reduceat(res.present & ~res.asleep & counts, first, axis=0, dtype=np.int16)
    asleep_n = home_n - awake_n
    drop_n = np.add.reduceat(res.present & ~counts, first, axis=0, dtype=np.int16)
    awake = awake_n > 0
    day_of = np.arange(t_len) // SPD
    hod = (np.arange(t_len) % SPD) / 6.0  # hour of day

    # What stays on when the flat is empty, and from when to when it is.
    mode = np.full(n, LIVED)
    empty_from, empty_to = np.full(n, FAR), np.full(n, FAR)
    for i, u in enumerate(units):
        spec = _EMPTY_MODES.get(u.subtype)
        if spec is not None:
            mode[i] = rng.choice(spec[0], p=spec[1])
        if u.kind == "vacancy" and u.onset_day is not None:
            empty_from[i] = u.onset_day * SPD + 100
        elif u.subtype == "new_lease":
            empty_from[i], empty_to[i] = -FAR, (u.event_day or 0) * SPD + 54
    slot = np.arange(t_len)[None, :]
    empty = (slot >= empty_from[:, None]) & (slot < empty_to[:, None])
    m = mode[:, None]
    breaker = ~empty | ((m != OFF) & (m != IDLE))
    heater_kind = np.array(
        [
            (rng.choice(3, p=[0.25, 0.05, 0.7]) if u.has_gas else rng.choice(3, p=[0.75, 0.25, 0]))
            for u in units
        ]
    )  # 0 storage, 1 instantaneous electric, 2 gas
    heater_kind[mode == HEATER] = 0
    elderly = np.array([u.subtype == "elderly_single" for u in units])
    group = np.array([u.subtype == "group_rental" for u in units])
    frugal = np.where(elderly, 0.3, 1.0)[:, None]

    # Always-on: router and fridge (an empty fridge cycles less; summer heat makes it run more).
    router_w = rng.uniform(8, 30, n)
    fridge_w = rng.uniform(70, 150, n) * ((rng.random(n) < 0.98) | (mode == FRIDGE) | (mode == HEATER))
    duty_empty = rng.uniform(0.22, 0.35, n)
    heat_day = np.clip((14.0 - temp) / 12.0, 0, 1.2)
    cool_day = np.clip((temp - 24.0) / 5.0, 0, 1.4)
    duty = duty_empty[:, None] + rng.uniform(0.05, 0.15, n)[:, None] * ~empty + 0.05 * cool_day[:, day_of]
    cycle = rng.uniform(25, 70, n)
    frac = fridge_fraction(t_len, cycle, rng.uniform(0, 70, n), np.minimum(duty, 0.6))
    idle_w = rng.uniform(2, 8, n)[:, None]
    watts = np.where(empty & (m == IDLE), idle_w, 0.0)
    watts += breaker * ~(empty & (m == IDLE)) * (router_w[:, None] + fridge_w[:, None] * frac)

    # Living: lights after dark, screens in the evening, plug loads, kettle, heating and cooling.
    angle = 2 * np.pi * (np.array([(sc.start.date().toordinal() + d) % 365 for d in range(days)]) + 10) / 365
    sunrise, sunset = 6.0 + 0.95 * np.cos(angle), 18.15 - 0.98 * np.cos(angle)
    dark = (hod < sunrise[day_of] + 0.3) | (hod > sunset[day_of] - 0.4)
    day_f = np.repeat(rng.lognormal(0, 0.15, (n, days)), SPD, axis=1)  # busier and quieter days
    light_w = rng.uniform(20, 80, n)[:, None] + rng.uniform(10, 40, n)[:, None] * np.minimum(awake_n, 12)
    watts += awake * dark * light_w * frugal * day_f
    watts += (drop_n > 0) * rng.uniform(40, 100, n)[:, None]  # the tenant dropping by switches on a light
    evening = np.where((hod >= 18) & (hod < 23.5), 1.0, np.where(hod < 6, 0.1, 0.25))
    tv_on = rng.random((n, t_len), dtype=np.float32) < (rng.uniform(0.3, 0.9, n)[:, None] * evening).astype(
        np.float32
    )
    watts += awake * tv_on * rng.uniform(60, 250, n)[:, None] * np.minimum(awake_n, 3) ** 0.7 * frugal
    watts += awake_n * rng.uniform(15, 60, n)[:, None] * frugal * day_f
    kettle = rng.random((n, t_len), dtype=np.float32) < (rng.uniform(0.1, 0.4, n)[:, None] / 6).astype(
        np.float32
    )
    watts += (kettle & awake) * 720.0  # 1.8 kW kettle for 4 minutes
    heat_w = rng.uniform(400, 1500, n) * (rng.random(n) < np.where(elderly, 0.25, 0.75))
    rooms = 1 + 0.25 * np.minimum(np.maximum(awake_n - 1, 0), 10)  # more rooms heated
    overnight = (rng.random(n) < 0.25)[:, None]
    watts += (
        heat_w[:, None] * heat_day[:, day_of] * (awake * rooms + 0.5 * overnight * (asleep_n > 0)) * frugal
    )
    cool_w = rng.uniform(500, 1500, n) * (rng.random(n) < np.where(elderly, 0.5, 0.9))
    afternoon = np.where((hod >= 12) & (hod < 18), 1.2, 0.8)
    watts += cool_w[:, None] * cool_day[:, day_of] * afternoon * (awake * rooms + 0.8 * (asleep_n > 0))

    elec = watts / 6000.0  # average watts over 10 minutes to kWh
    water = np.zeros((n, t_len))
    gas = np.zeros((n, t_len))
    has_gas = np.array([u.has_gas for u in units])
    cook_gas = has_gas & (rng.random(n) < 0.85)

    # Meals: cooked when someone is home and awake then.
    day_idx = np.arange(days)[None, :]
    for k, (lo, hi, d_lo, d_hi, p_lo, p_hi) in enumerate(_MEALS):
        when = rng.uniform(lo, hi, n)[:, None] + rng.normal(0, 2, (n, days))
        at = np.clip(day_idx * SPD + np.rint(when).astype(np.int64), 0, t_len - 1)
        p_cook = rng.uniform(p_lo, p_hi, n) if k < 3 else np.where(group, 0.5, 0.0)
        cooks = awake[np.arange(n)[:, None], at] & (rng.random((n, days)) < p_cook[:, None])
        uu, dd = np.nonzero(cooks)
        s, dur = at[uu, dd], rng.integers(d_lo, d_hi + 1, uu.size)
        g = cook_gas[uu]
        burner = rng.uniform(0.25, 0.45, n)[uu] * rng.uniform(0.6, 1.0, uu.size) / 6.0
        _add(gas, uu[g], s[g], burner[g], dur[g])
        hob = rng.uniform(1.2, 2.0, n)[uu] * rng.uniform(0.5, 0.9, uu.size) / 6.0
        _add(elec, uu[~g], s[~g], hob[~g], dur[~g])
        if k == 2:  # the rice cooker, and the washing-up
            rice = (rng.random(uu.size) < 0.7) & ~g
            _add(elec, uu[rice], s[rice], 0.1, np.full(rice.sum(), 3))
            _add(water, uu, np.minimum(s + dur, t_len - 1), rng.uniform(5, 15, uu.size), np.ones_like(dur))

    # Washing machine a few times a week, at a waking hour.
    per_week = rng.uniform(1, 2, n) + np.minimum(home_n.max(axis=1), 12) * rng.uniform(0.4, 0.9, n)
    at = np.clip(day_idx * SPD + rng.integers(42, 126, (n, days)), 0, t_len - 1)
    washes = (rng.random((n, days)) < np.minimum(per_week / 7, 0.95)[:, None]) & awake[
        np.arange(n)[:, None], at
    ]
    uu, dd = np.nonzero(washes)
    _add(elec, uu, at[uu, dd], rng.uniform(0.2, 1.0, n)[uu] / 6, np.full(uu.size, 6))
    vol = rng.uniform(40, 80, n)[uu] / 2
    _add(water, uu, at[uu, dd], vol, np.ones(uu.size, np.int64))
    _add(water, uu, np.minimum(at[uu, dd] + 4, t_len - 1), vol, np.ones(uu.size, np.int64))

    # Toilets, taps and showers; a leaking cistern runs day and night.
    flush_l = rng.uniform(3, 9, n)[:, None]
    flush_rate = (
        rng.uniform(0.25, 0.5, n)[:, None] * awake_n + rng.uniform(0.02, 0.08, n)[:, None] * asleep_n
    ) / 6
    water += rng.poisson(flush_rate) * flush_l
    tap_rate = rng.uniform(0.5, 1.5, n)[:, None] * np.where(elderly, 0.6, 1.0)[:, None] * awake_n / 6
    water += rng.poisson(tap_rate) * rng.uniform(1, 5, n)[:, None]
    leaving = (drop_n > 0) & (np.roll(drop_n, -1, axis=1) == 0)
    water += leaving * (flush_l + 2.0)
    su, ss = res.shower_unit, res.shower_slot
    litres = rng.uniform(30, 90, n)[su] * rng.uniform(0.7, 1.3, su.size)
    np.add.at(water, (su, ss), litres)
    t_in = np.clip(temp + 3.0, 6.0, 28.0)
    hot_kwh = litres * 4.186 * (40.0 - t_in[su, ss // SPD]) / 3600.0
    kind = heater_kind[su]
    np.add.at(gas, (su[kind == 2], ss[kind == 2]), hot_kwh[kind == 2] * 3.6 / GAS_MJ_PER_M3 / 0.88)
    np.add.at(elec, (su[kind == 1], ss[kind == 1]), hot_kwh[kind == 1] / 0.98)
    # Storage heater: its thermostat reheats in bursts whenever losses and draws reach its hysteresis.
    loss = rng.uniform(0.5, 1.4, n)
    base_empty = 24 * (router_w + fridge_w * duty_empty) / 1000
    loss = np.where(mode == HEATER, np.maximum(rng.uniform(1.5, 2.5, n) - base_empty, 0.35), loss)
    storage = (heater_kind == 0)[:, None]
    heater_on = storage & breaker & (~empty | (m == HEATER))
    demand = heater_on * (loss[:, None] / SPD)
    np.add.at(demand, (su[kind == 0], ss[kind == 0]), hot_kwh[kind == 0] / 0.95)
    hyst = rng.uniform(0.3, 0.8, n)[:, None]
    bursts = np.diff(np.floor(np.cumsum(demand, axis=1) / hyst), axis=1, prepend=0.0) * hyst
    elec += 0.6 * bursts
    elec[:, 1:] += 0.4 * bursts[:, :-1]
    leak = np.zeros(n)
    start = np.zeros(n, np.int64)
    for i, u in enumerate(units):
        if u.subtype == "vacant_leak":
            leak[i], start[i] = rng.uniform(1, 15), max(empty_from[i] - SPD * int(rng.integers(0, 20)), 0)
        elif u.kind == "normal" and rng.random() < 0.02:
            leak[i], start[i] = rng.uniform(0.5, 6), int(rng.integers(0, t_len))
    water += (slot >= start[:, None]) * (leak[:, None] / 6)
    return elec, water / 1000.0, gas
