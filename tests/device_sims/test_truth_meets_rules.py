"""The simulated truth is detectable: the rule detectors, fed the model's daily features, flag exactly it."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

import numpy as np

from anju.device_sims.household import LOCAL_TZ, EstateModel, make_estate
from anju.hub.storage.rollups import ACTIVE_STEP, ACTIVE_STEP_SHARE
from anju.models.features import DailyFeatures, StrangerTrack, UnitSeries
from anju.models.rules import Policy, VacancyRule
from anju.models.sublet import SubletRule
from tests.device_sims.factories import START


def _activity(hourly: np.ndarray, meter: str) -> tuple[np.ndarray, np.ndarray]:
    """Per day: use above the day's lowest hour, and hours at least one appliance event above it, as
    ``hub/storage/rollups.py`` derives them from the registers (tested there on real readings)."""
    days = hourly.reshape(-1, 24)
    above = days - days.min(axis=1, keepdims=True)
    step = np.maximum(ACTIVE_STEP[meter], ACTIVE_STEP_SHARE * days.min(axis=1, keepdims=True))
    return above.sum(axis=1), (above >= step).sum(axis=1)


def _series(model: EstateModel, as_of: date, policy: Policy) -> list[tuple[str, UnitSeries]]:
    first = START.date()
    entries: dict[tuple[str, date], int] = defaultdict(int)
    events: dict[tuple[str, date], int] = defaultdict(int)
    strangers: dict[tuple[str, date], set[str]] = defaultdict(set)
    seen: dict[tuple[str, str], set[date]] = defaultdict(set)
    for e in model.gate_events():
        day = e.ts.astimezone(LOCAL_TZ).date()
        events[e.building, day] += 1
        if e.room_no is not None:
            entries[e.room_no, day] += 1
        elif e.stranger_track is not None:
            strangers[e.building, day].add(e.stranger_track)
            seen[e.building, e.stranger_track].add(day)
    window_start = as_of - timedelta(days=policy.window_days - 1)
    out: list[tuple[str, UnitSeries]] = []
    for u in model.spec.units:
        elec, water = model.daily(u.unit_id, "electricity"), model.daily(u.unit_id, "water")
        elec_active, _ = _activity(model.hourly(u.unit_id, "electricity"), "electricity")
        _, water_hours = _activity(model.hourly(u.unit_id, "water"), "water")
        _, gas_hours = _activity(model.hourly(u.unit_id, "gas"), "gas")
        days = tuple(
            DailyFeatures(
                day=first + timedelta(days=i), elec_kwh=float(elec[i]), water_m3=float(water[i]),
                tenant_entries=entries[u.unit_id, first + timedelta(days=i)],
                strangers_building=len(strangers[u.building, first + timedelta(days=i)]),
                gate_events_building=events[u.building, first + timedelta(days=i)],
                elec_active_kwh=float(elec_active[i]), water_active_hours=int(water_hours[i]),
                gas_active_hours=int(gas_hours[i]),
                tenant_face_entries=entries[u.unit_id, first + timedelta(days=i)],
            )
            for i in range(model.spec.days)
        )
        tracks = []
        for (building, track), ds in seen.items():
            in_window = [d for d in ds if window_start <= d <= as_of]
            if building == u.building and len(in_window) >= policy.sublet.stranger_min_days:
                tracks.append(StrangerTrack(track, first_seen=min(ds), days_in_window=len(in_window),
                                            days_seen=len([d for d in ds if d <= as_of])))
        out.append((u.behaviour, UnitSeries(u.unit_id, u.estate_id, days, u.lease_start, tuple(tracks))))
    return out


def test_rules_flag_exactly_the_simulated_vacant_and_sublet_units() -> None:
    policy = Policy.load()
    vacancy, sublet = VacancyRule(policy), SubletRule(policy)
    model = EstateModel(make_estate("E01", n_units=12, days=70, start=START, seed=11))
    as_of = START.date() + timedelta(days=69)
    for behaviour, series in _series(model, as_of, policy):
        flagged = {
            "vacant": vacancy.evaluate(series, as_of=as_of).flagged,
            "sublet": sublet.evaluate(series, as_of=as_of).flagged,
        }
        assert flagged == {"vacant": behaviour == "vacant", "sublet": behaviour == "sublet"}, series.unit_id
