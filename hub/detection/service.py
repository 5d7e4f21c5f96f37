"""Run the vacancy and sublet rules over ``unit_daily`` and keep alerts and cases up to date."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from hub.audit import deferred_audit, record_audit
from hub.cases.service import DETECTOR, open_case
from hub.cases.suppression import may_flag
from hub.detection.learned import latest_verdict_model
from hub.features import LOCAL_TZ, local_midnight
from models.anomaly import AnomalyScores, Baseline, score_units, unit_measures
from models.features import (
    DailyFeatures,
    StrangerTrack,
    UnitSeries,
    WindowSummary,
    evidence_series,
    peer_stats,
    summarize,
    window_bounds,
)
from models.rules import (
    Outcome,
    Policy,
    RuleContext,
    SubletRule,
    VacancyRule,
    Verdict,
    attribute_strangers,
    rule_context,
)
from models.scoring import AtOpening, with_models


@dataclass(frozen=True, slots=True)
class DetectionResult:
    """What one detection run did."""

    as_of: date | None
    units: int = 0
    flagged_vacancy: int = 0
    flagged_sublet: int = 0
    no_verdict: int = 0
    alerts_opened: int = 0
    alerts_updated: int = 0
    cases_opened: int = 0


_LAST_COMPLETE_DAY = """
SELECT max(day) FROM unit_daily
WHERE day < (SELECT (max(ts) AT TIME ZONE %(tz)s)::date FROM meter_readings)
"""

# One row per unit with its days as arrays (binary transfer): a row per unit-day costs more in the
# client than the rules themselves at 100,000 units. A unit whose registered tenants entered more often
# in the window than either rule tolerates cannot be flagged, and neither rule reads its baseline days
# (both decide it from the window alone: no verdict or clear), so only its window days are loaded; at
# 100,000 units that is most of them, and building their day objects was most of the run. Every unit's
# baseline medians and presence come along as aggregates, for the anomaly score compares all units.
_DAILY = """
WITH win AS (
    SELECT unit_id, count(*) FILTER (WHERE tenant_entries > 0) AS entry_days,
           count(*) FILTER (WHERE tenant_face_entries > 0) AS face_days
    FROM unit_daily
    WHERE day BETWEEN %(window_start)s AND %(hi)s
    GROUP BY unit_id
), base AS (
    SELECT unit_id,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY elec_kwh) AS elec_median,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY water_m3) AS water_median,
           count(elec_kwh) AS elec_known, count(water_m3) AS water_known,
           count(*) FILTER (WHERE gate_events_building > 0) AS gate_days,
           count(*) FILTER (WHERE tenant_entries > 0) AS presence_days
    FROM unit_daily WHERE day BETWEEN %(base_start)s AND %(base_end)s
    GROUP BY unit_id
), faces AS (
    -- Units whose registered faces were seen earlier in the traced history.
    SELECT DISTINCT unit_id FROM unit_daily
    WHERE day BETWEEN %(lo)s AND %(base_end)s AND tenant_face_entries > 0
), busy AS (
    -- Entering often in the window, and not a household whose faces vanished while its card is used.
    SELECT w.unit_id FROM win w LEFT JOIN faces f USING (unit_id)
    WHERE w.entry_days > %(max_entries)s AND NOT (w.face_days <= %(max_entries)s AND f.unit_id IS NOT NULL)
)
SELECT d.unit_id, u.estate_id, u.building, u.floor, u.lease_start,
       array_agg(d.day ORDER BY d.day), array_agg(d.elec_kwh ORDER BY d.day),
       array_agg(d.water_m3 ORDER BY d.day), array_agg(d.gas_m3 ORDER BY d.day),
       array_agg(d.tenant_entries ORDER BY d.day), array_agg(d.strangers_building ORDER BY d.day),
       array_agg(d.gate_events_building ORDER BY d.day), array_agg(d.water_night_m3_h ORDER BY d.day),
       array_agg(d.elec_active_kwh ORDER BY d.day), array_agg(d.elec_active_hours ORDER BY d.day),
       array_agg(d.water_active_m3 ORDER BY d.day), array_agg(d.water_active_hours ORDER BY d.day),
       array_agg(d.gas_active_hours ORDER BY d.day), array_agg(d.tenant_face_entries ORDER BY d.day),
       min(s.elec_median), min(s.water_median), min(s.elec_known), min(s.water_known), min(s.gate_days),
       min(s.presence_days)
FROM unit_daily d JOIN units u USING (unit_id)
     LEFT JOIN busy b USING (unit_id) LEFT JOIN base s USING (unit_id)
WHERE d.day BETWEEN %(lo)s AND %(hi)s AND (b.unit_id IS NULL OR d.day >= %(window_start)s)
GROUP BY d.unit_id, u.estate_id, u.building, u.floor, u.lease_start
ORDER BY d.unit_id
"""

# Stranger tracks seen at a building on several days of the window, with the day each first appeared
# (as far back as the traced history goes), on how many days it was seen since, and the floor whose
# corridor camera saw it most (NULL: only building entrances saw it).
_STRANGERS = """
WITH s AS (
    SELECT estate_id, building, floor, stranger_track, (ts AT TIME ZONE %(tz)s)::date AS day
    FROM access_events
    WHERE stranger_track IS NOT NULL AND ts >= %(lo_ts)s AND ts < %(hi_ts)s
)
SELECT estate_id, building, stranger_track, min(day),
       count(DISTINCT day) FILTER (WHERE day >= %(window_start)s) AS window_days,
       mode() WITHIN GROUP (ORDER BY floor) FILTER (WHERE floor IS NOT NULL) AS floor,
       count(DISTINCT day), max(day)
FROM s
GROUP BY 1, 2, 3
HAVING count(DISTINCT day) FILTER (WHERE day >= %(window_start)s) >= %(min_days)s
"""


def last_complete_day(conn: psycopg.Connection) -> date | None:
    """The last day in ``unit_daily`` that ended before the newest meter reading."""
    row = conn.execute(_LAST_COMPLETE_DAY, {"tz": LOCAL_TZ}).fetchone()
    return row[0] if row else None


def _load_series(
    conn: psycopg.Connection, *, as_of: date, policy: Policy
) -> tuple[list[UnitSeries], dict[str, Baseline], date]:
    lo = history_start(as_of, policy)
    window_start, _ = window_bounds(as_of, policy.window_days)
    tracks: dict[tuple[str, str], list[StrangerTrack]] = defaultdict(list)
    for estate, building, track, first_seen, days, floor, seen, last in conn.execute(_STRANGERS, {
        "tz": LOCAL_TZ, "lo_ts": local_midnight(lo), "hi_ts": local_midnight(as_of + timedelta(days=1)),
        "window_start": window_start, "min_days": policy.sublet.stranger_min_days,
    }):
        tracks[(estate, building)].append(
            StrangerTrack(track, first_seen=first_seen, days_in_window=days, floor=floor, days_seen=seen,
                          last_seen=last))
    series = []
    baselines: dict[str, Baseline] = {}
    with conn.cursor(binary=True) as cur:
        for (unit_id, estate, building, floor, lease_start, days, elec, water, gas, entries, strangers, gate,
             water_night, elec_active, elec_hours, water_active, water_hours, gas_hours, faces,
             *base) in cur.execute(
                _DAILY, {
                "lo": lo, "hi": as_of, "window_start": window_start,
                "base_start": window_start - timedelta(days=policy.baseline_days),
                "base_end": window_start - timedelta(days=1), "max_entries": max_window_entries(policy)}):
            near, scope = strangers_near(tracks.get((estate, building), []) if building is not None else [],
                                         floor=floor)
            series.append(UnitSeries(
                unit_id=unit_id, estate_id=estate, lease_start=lease_start, strangers=near,
                strangers_scope=scope, building=building,
                days=tuple(map(DailyFeatures, days, elec, water, gas, entries, strangers, gate, water_night,
                               elec_active, elec_hours, water_active, water_hours, gas_hours, faces)),
            ))
            elec_median, water_median, elec_known, water_known, gate_days, presence_days = base
            baselines[unit_id] = Baseline(elec_median, water_median, elec_known or 0, water_known or 0,
                                          gate_days or 0, presence_days or 0)
    return series, baselines, lo


_NO_BASELINE = Baseline(None, None, 0, 0, 0, 0)


def _anomalies(
    all_series: list[UnitSeries], windows: dict[str, WindowSummary], baselines: dict[str, Baseline], *,
    policy: Policy,
) -> AnomalyScores | None:
    """Every unit's peer-normalised anomaly for this window (None when too few units can be scored)."""
    rows = []
    for s in all_series:
        measures = unit_measures(
            windows[s.unit_id], baselines.get(s.unit_id, _NO_BASELINE), recurring_strangers=len(s.strangers),
            min_known_days=policy.min_baseline_known_days, min_coverage=policy.min_coverage)
        if measures is not None:
            rows.append((s.unit_id, s.estate_id, measures))
    return score_units(rows, min_units=policy.models.anomaly_min_units,
                       min_estate_units=policy.models.anomaly_min_estate_units)


def anomaly_scores(conn: psycopg.Connection, *, as_of: date, policy: Policy) -> AnomalyScores | None:
    """The anomaly of every unit for the window ending on ``as_of``, as detection computes it."""
    all_series, baselines, _ = _load_series(conn, as_of=as_of, policy=policy)
    start, end = window_bounds(as_of, policy.window_days)
    windows = {s.unit_id: summarize(s.days, start=start, end=end) for s in all_series}
    return _anomalies(all_series, windows, baselines, policy=policy)


def max_window_entries(policy: Policy) -> int:
    """Days with registered-tenant entries in the window above which neither rule can flag a unit."""
    return max(policy.vacancy.max_entry_days, policy.sublet.max_entry_days)


def history_start(as_of: date, policy: Policy) -> date:
    """The first day loaded for a unit that may be flagged: its baseline, or the traced history."""
    return as_of - timedelta(days=max(policy.window_days + policy.baseline_days, policy.history_days) - 1)


def strangers_near(
    tracks: list[StrangerTrack], *, floor: int | None
) -> tuple[tuple[StrangerTrack, ...], str]:
    """The recurring strangers that bear on a unit, and whether they were placed on its floor.

    Where corridor cameras place strangers on floors, only those on the unit's own floor count: the
    subtenants of other units in the building say nothing about this one. Buildings with entrance gates
    only (no floor on any track) fall back to every recurring stranger of the building.
    """
    if floor is None or not any(t.floor is not None for t in tracks):
        return tuple(tracks), "building"
    return tuple(t for t in tracks if t.floor == floor), "floor"


def _summary(verdict: Verdict, unit_id: str) -> str:
    what = "vacancy" if verdict.kind == "vacancy" else "illegal subletting"
    signals = "; ".join(r.text for r in verdict.reasons[:3])
    return f"Suspected {what} of unit {unit_id} ({verdict.window_start} to {verdict.window_end}): {signals}"


def _upsert_alert(
    conn: psycopg.Connection, *, series: UnitSeries, verdict: Verdict, as_of: date, evidence: dict[str, Any]
) -> tuple[int, bool]:
    """Open or refresh the unit's open alert of this kind; return (alert id, whether it is new)."""
    reasons = [r.to_dict() for r in verdict.reasons]
    existing = conn.execute(
        "SELECT id, last_flagged FROM alerts WHERE unit_id = %s AND kind = %s AND status = 'open' FOR UPDATE",
        (series.unit_id, verdict.kind),
    ).fetchone()
    values = (verdict.score, Jsonb(reasons), Jsonb(evidence), verdict.rule_version, verdict.window_start,
              verdict.window_end)
    if existing is not None:
        alert_id, last_flagged = existing
        conn.execute(
            "UPDATE alerts SET score = %s, reasons = %s, evidence = %s, rule_version = %s, window_start = %s,"
            " window_end = %s, last_flagged = greatest(last_flagged, %s), updated_at = now() WHERE id = %s",
            (*values, as_of, alert_id),
        )
        if last_flagged is None or as_of > last_flagged:
            record_audit(
                conn, actor=DETECTOR, action="alert.reflagged", object_type="alert", object_id=alert_id,
                detail={"as_of": as_of.isoformat(), "score": verdict.score},
            )
        return int(alert_id), False
    row = conn.execute(
        "INSERT INTO alerts (unit_id, estate_id, kind, status, score, reasons, evidence, rule_version,"
        " window_start, window_end, first_flagged, last_flagged)"
        " VALUES (%s, %s, %s, 'open', %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (unit_id, kind) WHERE status = 'open' DO NOTHING RETURNING id",
        (series.unit_id, series.estate_id, verdict.kind, *values, as_of, as_of),
    ).fetchone()
    if row is None:  # another detector opened it between our SELECT and INSERT
        again = conn.execute(
            "SELECT id FROM alerts WHERE unit_id = %s AND kind = %s AND status = 'open'",
            (series.unit_id, verdict.kind),
        ).fetchone()
        assert again is not None
        return int(again[0]), False
    alert_id = int(row[0])
    record_audit(conn, actor=DETECTOR, action="alert.opened", object_type="alert", object_id=alert_id,
                 detail={"unit_id": series.unit_id, "kind": verdict.kind, "score": verdict.score,
                         "rule_version": verdict.rule_version, "as_of": as_of.isoformat()})
    return alert_id, True


def run_detection(
    conn: psycopg.Connection, *, as_of: date | None = None, policy: Policy | None = None,
    models: bool = True,
) -> DetectionResult:
    """Judge all units for the window ending on ``as_of`` (default: last complete day), in one transaction.

    Its audit rows are held back and appended at the end, so the audit chain's lock is not held for the
    whole run while inspectors act on cases. ``models=False`` leaves the scikit-learn models out (they
    only rank alerts, never open one): the evaluation's many runs use it.
    """
    policy = policy or Policy.load()
    with conn.transaction(), deferred_audit(conn):
        as_of = as_of or last_complete_day(conn)
        if as_of is None:
            return DetectionResult(as_of=None)
        all_series, baselines, lo = _load_series(conn, as_of=as_of, policy=policy)
        # Each unit's window and baseline summarised once, for the peers, the anomaly and both rules.
        contexts = {s.unit_id: rule_context(s, as_of=as_of, policy=policy) for s in all_series}
        windows = {u: c.window for u, c in contexts.items()}
        peers = peer_stats({s.unit_id: (s.estate_id, windows[s.unit_id]) for s in all_series})
        anomalies = _anomalies(all_series, windows, baselines, policy=policy) if models else None
        learned = {kind: latest_verdict_model(conn, kind=kind) if models else None
                   for kind in ("vacancy", "sublet")}
        opened = _open_alerts_at_opening(conn)
        vacancy, sublet = VacancyRule(policy), SubletRule(policy)
        claimed = _claimed_strangers(all_series, contexts, sublet)
        counts: dict[str, int] = defaultdict(int)
        for series in all_series:
            for rule in (vacancy, sublet):
                if rule is sublet:
                    verdict = sublet.evaluate(series, as_of=as_of, peers=peers.get(series.estate_id),
                                              context=contexts[series.unit_id],
                                              claimed=claimed.get(series.unit_id, ()))
                else:
                    verdict = vacancy.evaluate(series, as_of=as_of, peers=peers.get(series.estate_id),
                                               context=contexts[series.unit_id])
                if verdict.outcome is Outcome.NO_VERDICT:
                    counts["no_verdict"] += 1
                elif verdict.flagged:
                    counts[f"flagged_{verdict.kind}"] += 1
                    verdict, features = with_models(
                        verdict, anomaly=None if anomalies is None else anomalies.get(series.unit_id),
                        model=learned[verdict.kind], policy=policy.models,
                        at_opening=opened.get((series.unit_id, verdict.kind)))
                    # The chart series only for flagged units: building it for all would dominate the run.
                    evidence = evidence_series(series.days, start=lo, end=as_of)
                    done = _act_on(conn, series=series, verdict=verdict, as_of=as_of, series_json=evidence,
                                   features=features)
                    for key in done:
                        counts[key] += 1
        return DetectionResult(as_of=as_of, units=len(all_series), **counts)


def _claimed_strangers(
    all_series: list[UnitSeries], contexts: dict[str, RuleContext], rule: SubletRule,
) -> dict[str, tuple[StrangerTrack, ...]]:
    """Per unit, the new faces its building's attribution gives it (see ``attribute_strangers``)."""
    Claims = dict[str, tuple[date, tuple[StrangerTrack, ...]]]
    claims: dict[tuple[str, str | None], Claims] = defaultdict(dict)
    for s in all_series:
        if not s.strangers:
            continue
        ctx = contexts[s.unit_id]
        left = rule.departure(s, ctx)
        if left is not None:
            tracks = rule.aligned(s, left=left[0], end=ctx.end)
            claims[(s.estate_id, s.building)][s.unit_id] = (left[0], tracks)
    out: dict[str, tuple[StrangerTrack, ...]] = {}
    for building in claims.values():
        out.update(attribute_strangers(building))
    return out


def _open_alerts_at_opening(conn: psycopg.Connection) -> dict[tuple[str, str], AtOpening]:
    """What the models saw when each open alert was opened, by (unit, kind)."""
    found = {}
    for unit_id, kind, features, reasons in conn.execute(
            "SELECT unit_id, kind, evidence->'features', reasons FROM alerts WHERE status = 'open'"):
        at = AtOpening.of_alert(features, reasons)
        if at is not None:
            found[(unit_id, kind)] = at
    return found


def _act_on(
    conn: psycopg.Connection, *, series: UnitSeries, verdict: Verdict, as_of: date,
    series_json: dict[str, Any], features: dict[str, Any],
) -> list[str]:
    """Open or refresh the alert of a flagged verdict and, for a new alert, open its case."""
    if not may_flag(conn, unit_id=series.unit_id, kind=verdict.kind, window_start=verdict.window_start,
                    as_of=as_of):
        return []  # quiet after an inspector's decision until the evidence is new (hub/cases/suppression.py)
    evidence = {**series_json, "window_start": verdict.window_start.isoformat(),
                "window_end": verdict.window_end.isoformat()}
    alert_id, new = _upsert_alert(conn, series=series, verdict=verdict, as_of=as_of,
                                  evidence={**evidence, "features": features})
    if not new:
        return ["alerts_updated"]
    frozen = {
        "alert_id": alert_id, "unit_id": series.unit_id, "estate_id": series.estate_id, "kind": verdict.kind,
        "score": verdict.score, "rule_version": verdict.rule_version,
        "reasons": [r.to_dict() for r in verdict.reasons], "series": evidence, "features": features,
    }
    opened = open_case(
        conn, alert_id=alert_id, unit_id=series.unit_id, estate_id=series.estate_id, kind=verdict.kind,
        summary=_summary(verdict, series.unit_id), evidence=frozen,
    )
    return ["alerts_opened"] if opened is None else ["alerts_opened", "cases_opened"]
