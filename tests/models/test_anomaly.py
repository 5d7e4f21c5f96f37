"""Peer-normalised anomaly scores on hand-made populations: who stands out, why, and who is not scored."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from anju.models.anomaly import MEASURE_NAMES, Baseline, describe, score_units, unit_measures
from anju.models.features import UnitSeries, summarize
from anju.models.rules import Policy
from tests.models.factories import AS_OF, START, series

POLICY = Policy.load()
WINDOW_START = AS_OF - timedelta(days=POLICY.window_days - 1)


def measures(s: UnitSeries, *, strangers: int = 0) -> list[float] | None:
    window = summarize(s.days, start=WINDOW_START, end=AS_OF)
    base = Baseline.of(summarize(s.days, start=START, end=WINDOW_START - timedelta(days=1)))
    return unit_measures(window, base, recurring_strangers=strangers,
                         min_known_days=POLICY.min_baseline_known_days, min_coverage=POLICY.min_coverage)


def household(rng: random.Random, unit_id: str, *, scale: float = 1.0) -> UnitSeries:
    """A lived-in flat whose use differs a little from its neighbours'."""
    elec, water = rng.uniform(5, 11) * scale, rng.uniform(0.2, 0.45)
    return series(unit_id=unit_id, change_from=START, elec=elec, water=water, entries=rng.randint(2, 5))


def population(
    n: int = 80, *, seed: int = 7, estate: str = "E01", scale: float = 1.0
) -> list[tuple[str, str, list[float]]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        m = measures(household(rng, f"{estate}-1-{i:04d}", scale=scale))
        assert m is not None
        rows.append((f"{estate}-1-{i:04d}", estate, m))
    return rows


def test_a_vacant_and_a_sublet_unit_stand_out_from_their_estate() -> None:
    rows = population()
    vacant = measures(series(unit_id="vacant", elec=0.6, water=0.0, entries=0))
    sublet = measures(series(unit_id="sublet", entries=0, elec=9.0, water=0.4), strangers=3)
    assert vacant is not None and sublet is not None
    rows += [("vacant", "E01", vacant), ("sublet", "E01", sublet)]
    scores = score_units(rows, min_units=50)
    assert scores is not None and len(scores) == 82
    v, s = scores.get("vacant"), scores.get("sublet")
    assert v is not None and s is not None
    assert v.percentile >= 0.97 and s.percentile >= 0.95
    normal = sorted(scores.percentiles()[u] for u, _, _ in rows[:80])
    assert normal[len(normal) // 2] < 0.6
    # The explanation names what is far from the estate's units, with values against their median.
    assert "elec_kwh" in v.furthest(3) and v.peer_z["presence"] < -3
    assert v.peer_z["elec_kwh"] < -3 and v.measures["elec_kwh"] == pytest.approx(0.6)
    assert v.peer_median["elec_kwh"] is not None and 6 < v.peer_median["elec_kwh"] < 10
    assert "recurring_strangers" in s.furthest(3) and s.peer_z["presence"] < -3
    text = describe(v)
    assert "units of estate E01" in text and "electricity 0.60 kWh/day against a median of" in text
    features = v.features()
    assert set(features["peer_z"]) == set(MEASURE_NAMES) and features["anomaly_percentile"] >= 0.97


def test_an_outage_is_not_scored_and_unknown_water_counts_as_typical() -> None:
    outage = series(unit_id="outage", elec=None, water=None, entries=0)
    assert measures(outage) is None  # too little known electricity: no score at all, never "empty"
    dry_meter = measures(series(unit_id="nowater", water=None))
    assert dry_meter is not None
    rows = [*population(), ("nowater", "E01", dry_meter)]
    scores = score_units(rows, min_units=50)
    assert scores is not None
    got = scores.get("nowater")
    assert got is not None
    assert got.measures["water_m3"] is None
    assert got.peer_z["water_m3"] == 0.0 and got.peer_z["water_vs_own"] == 0.0
    assert got.percentile < 0.9
    assert scores.get("outage") is None


def test_each_estate_is_its_own_reference_and_a_small_estate_is_compared_with_all() -> None:
    rows = population(60, estate="E01") + population(60, seed=8, estate="E02", scale=2.0)
    low_in_big_users = measures(series(unit_id="E02-x", change_from=START, elec=7.5))
    assert low_in_big_users is not None
    rows += [("E02-x", "E02", low_in_big_users)]
    tiny = measures(series(unit_id="E09-1", change_from=START))
    assert tiny is not None
    rows += [("E09-1", "E09", tiny)]
    scores = score_units(rows, min_units=50, min_estate_units=20)
    assert scores is not None
    same_use_e01 = scores.get("E01-1-0000")
    x, small = scores.get("E02-x"), scores.get("E09-1")
    assert same_use_e01 is not None and x is not None and small is not None
    # 7.5 kWh/day is ordinary in E01 but low among E02's heavy users.
    assert abs(same_use_e01.peer_z["elec_kwh"]) < 1.5 and x.peer_z["elec_kwh"] < -1.5
    assert x.peers_scope == "estate" and x.compared_with == 61
    assert small.peers_scope == "all" and small.compared_with == len(rows)


def test_too_few_units_give_no_score_and_the_same_data_gives_the_same_scores() -> None:
    assert score_units(population(30), min_units=50) is None
    a, b = score_units(population(), min_units=50), score_units(population(), min_units=50)
    assert a is not None and b is not None
    assert a.percentiles() == b.percentiles()
