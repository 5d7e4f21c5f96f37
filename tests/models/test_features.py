"""Window summaries, idle streaks, peer medians and evidence series on hand-made days."""

from __future__ import annotations

import json
from datetime import timedelta

from anju.models.evidence import canonical_json, evidence_sha256
from anju.models.features import idle_streak, peer_stats, summarize, window_bounds
from tests.models.factories import AS_OF, day, series


def test_unknown_days_are_not_empty_days() -> None:
    start, end = window_bounds(AS_OF, 21)
    days = [day(start + timedelta(days=i), elec=None if i % 2 else 9.0) for i in range(21)]
    s = summarize(days, start=start, end=end)
    assert s.n_days == 21 and s.elec_known == 11
    assert s.elec_median == 9.0  # unknown days are left out, not counted as 0
    assert round(s.elec_coverage, 3) == round(11 / 21, 3)


def test_missing_rows_count_as_unknown_and_gate_coverage() -> None:
    start, end = window_bounds(AS_OF, 10)
    days = [day(start, gate=0, entries=0), day(start + timedelta(days=1), entries=2)]
    s = summarize(days, start=start, end=end)
    assert s.n_days == 10 and s.elec_known == 2 and s.gate_days == 1
    assert s.tenant_entries == 2 and s.last_tenant_entry == start + timedelta(days=1)
    assert s.presence_share == 1.0


def test_idle_streak_skips_unknown_days_without_counting_them() -> None:
    d0 = AS_OF - timedelta(days=5)
    days = [day(d0, entries=1)] + [
        day(d0 + timedelta(days=i), elec=None if i in (2, 3) else 0.5, entries=0) for i in range(1, 6)
    ]
    assert idle_streak(days, end=AS_OF, base_load_kwh=1.2) == 3


def test_peer_stats_per_estate() -> None:
    start, end = window_bounds(AS_OF, 21)
    a = summarize(series(elec=2.0).days, start=start, end=end)
    b = summarize(series(elec=6.0).days, start=start, end=end)
    c = summarize(series(elec=10.0).days, start=start, end=end)
    peers = peer_stats({"u1": ("E01", a), "u2": ("E01", b), "u3": ("E02", c)})
    assert peers["E01"].elec_median == 4.0 and peers["E01"].units == 2
    assert peers["E02"].elec_median == 10.0


def test_evidence_series_has_every_day_and_nulls_for_gaps() -> None:
    from anju.models.features import evidence_series

    start = AS_OF - timedelta(days=2)
    out = evidence_series([day(start, elec=None), day(AS_OF, gate=0, entries=0)], start=start, end=AS_OF)
    assert out["days"] == [(start + timedelta(days=i)).isoformat() for i in range(3)]
    assert out["electricity"] == [None, None, 8.0]
    assert out["tenant_entries"] == [3, None, None]  # silent gate: entries unknown, not zero
    json.dumps(out)


def test_evidence_hash_is_canonical() -> None:
    assert canonical_json({"b": 1, "a": [1.5, None, "安居"]}) == '{"a":[1.5,null,"安居"],"b":1}'.encode()
    assert evidence_sha256({"a": 1, "b": 2}) == evidence_sha256({"b": 2, "a": 1})

