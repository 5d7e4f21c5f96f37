"""Run the vacancy and sublet rules over ``unit_daily`` and keep alerts and cases up to date.

A run judges the city a batch of whole estates at a time (``judge``): the rules compare units only within
an estate or a building, so a batch gives each unit the verdict a load of the whole city would. The one
comparison across the city is the anomaly score that ranks flagged alerts (an isolation forest fitted on
every scored unit, percentiles among them all, small estates compared with every unit), so a batch keeps
only its units' eight raw measures (``Measures``) and its flagged verdicts; the city's scores are computed
once from the measures of every batch, and then the flagged verdicts are acted on (``act``). The same two
steps run in worker processes for ``jobs`` > 1 (``hub/detection/parallel.py``).
"""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from anju.hub.audit import deferred_audit, record_audit
from anju.hub.cases.service import DETECTOR, open_case
from anju.hub.cases.suppression import may_flag
from anju.hub.detection.buildings import claimed_strangers, explained_by_others, standing_alone
from anju.hub.detection.learned import latest_verdict_model
from anju.hub.detection.load import (
    Batch,
    days_of,
    estate_batches,
    history_start,
    load_series,
    watched_floors,
    with_record,
)
from anju.hub.tenancy.filing import FilingSettings
from anju.models.anomaly import AnomalyScores, Baseline, UnitAnomaly, score_units, unit_measures
from anju.models.features import (
    UnitSeries,
    WindowSummary,
    crowding,
    evidence_series,
    peer_stats,
    summarize,
    window_bounds,
)
from anju.models.rules import (
    Outcome,
    Policy,
    RuleFinding,
    VacancyRule,
    rule_context,
)
from anju.models.scoring import AtOpening, with_models
from anju.models.sublet import SubletRule
from anju.models.verdict_model import VerdictModel
from anju_wire.clock import ESTATE_TZ

# Units judged at a time (whole estates; a larger estate alone): about 300 MiB of a worker's memory.
BATCH_UNITS = 20_000


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

def last_complete_day(conn: psycopg.Connection, *, tz: str = ESTATE_TZ) -> date | None:
    """The last day in ``unit_daily`` that ended (in the estates' zone ``tz``) before the newest reading."""
    row = conn.execute(_LAST_COMPLETE_DAY, {"tz": tz}).fetchone()
    return row[0] if row else None


@dataclass(slots=True)
class Measures:
    """The anomaly score's raw measures of the units judged so far, gathered across batches and workers."""

    units: list[str] = field(default_factory=list)
    estates: list[str] = field(default_factory=list)
    raw: list[np.ndarray] = field(default_factory=list)  # one (units, measures) array per batch

    def add(self, other: Measures) -> None:
        """Take in another batch's (or worker's) measures."""
        self.units += other.units
        self.estates += other.estates
        self.raw += other.raw

    def scores(self, *, policy: Policy) -> AnomalyScores | None:
        """Every unit's anomaly among all units measured (None when too few can be scored).

        The rows go in unit order, as a load of the whole city gives them, so the isolation forest draws
        the same sample and the scores do not depend on how the city was batched or shared out.
        """
        if not self.units:
            return None
        order = sorted(range(len(self.units)), key=self.units.__getitem__)
        raw = np.concatenate(self.raw)[order].tolist()
        rows = [(self.units[i], self.estates[i], r) for i, r in zip(order, raw, strict=True)]
        return score_units(rows, min_units=policy.models.anomaly_min_units,
                           min_estate_units=policy.models.anomaly_min_estate_units)


def _measures(
    all_series: list[UnitSeries], windows: dict[str, WindowSummary], baselines: dict[str, Baseline], *,
    policy: Policy,
) -> Measures:
    """The raw anomaly measures of the units with enough data to be scored."""
    out = Measures()
    rows = []
    for s in all_series:
        measures = unit_measures(
            windows[s.unit_id], baselines[s.unit_id], recurring_strangers=len(s.strangers),
            min_known_days=policy.min_baseline_known_days, min_coverage=policy.min_coverage)
        if measures is not None:
            out.units.append(s.unit_id)
            out.estates.append(s.estate_id)
            rows.append(measures)
    if rows:
        out.raw.append(np.array(rows, dtype=float))
    return out


def anomaly_scores(
    conn: psycopg.Connection, *, as_of: date, policy: Policy, batch_units: int | None = BATCH_UNITS,
    tz: str = ESTATE_TZ,
) -> AnomalyScores | None:
    """The anomaly of every unit for the window ending on ``as_of``, as detection computes it."""
    start, end = window_bounds(as_of, policy.window_days)
    measures = Measures()
    for estates, _ in estate_batches(conn, max_units=batch_units):
        all_series, baselines, _ = load_series(conn, as_of=as_of, policy=policy, estates=estates, tz=tz)
        windows = {s.unit_id: summarize(s.days, start=start, end=end) for s in all_series}
        measures.add(_measures(all_series, windows, baselines, policy=policy))
    return measures.scores(policy=policy)


def _summary(verdict: RuleFinding, unit_id: str) -> str:
    what = "vacancy" if verdict.kind == "vacancy" else "illegal subletting"
    signals = "; ".join(r.text for r in verdict.reasons[:3])
    return f"Suspected {what} of unit {unit_id} ({verdict.window_start} to {verdict.window_end}): {signals}"


def _upsert_alert(
    conn: psycopg.Connection, *, unit: Flagged, verdict: RuleFinding, as_of: date,
    evidence: dict[str, Any],
) -> tuple[int, bool]:
    """Open or refresh the unit's open alert of this kind; return (alert id, whether it is new)."""
    reasons = [r.to_dict() for r in verdict.reasons]
    existing = conn.execute(
        "SELECT id, last_flagged FROM alerts WHERE unit_id = %s AND kind = %s AND status = 'open' FOR UPDATE",
        (unit.unit_id, verdict.kind),
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
        (unit.unit_id, unit.estate_id, verdict.kind, *values, as_of, as_of),
    ).fetchone()
    if row is None:  # another detector opened it between our SELECT and INSERT
        again = conn.execute(
            "SELECT id FROM alerts WHERE unit_id = %s AND kind = %s AND status = 'open'",
            (unit.unit_id, verdict.kind),
        ).fetchone()
        assert again is not None
        return int(again[0]), False
    alert_id = int(row[0])
    record_audit(conn, actor=DETECTOR, action="alert.opened", object_type="alert", object_id=alert_id,
                 detail={"unit_id": unit.unit_id, "kind": verdict.kind, "score": verdict.score,
                         "rule_version": verdict.rule_version, "as_of": as_of.isoformat()})
    return alert_id, True


@dataclass(frozen=True, slots=True)
class Flagged:
    """A flagged verdict of one unit, waiting for the models' score and its alert."""

    unit_id: str
    estate_id: str
    verdict: RuleFinding


@dataclass(slots=True)
class Judged:
    """What judging a batch of estates found: its units, verdict counts, flagged verdicts and measures."""

    units: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    flagged: list[Flagged] = field(default_factory=list)
    measures: Measures = field(default_factory=Measures)


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Python's cycle collector off for the block, back on after (where it was on).

    A batch builds millions of small tuples (each unit's days) that live until the batch ends and are
    freed by reference counting; the collector, run by allocations, walked them again and again: more
    than half of judging's CPU (3.2 s against 1.5 s for a batch of 20,000 units). Cycles made meanwhile
    are collected when it is back on.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def judge(
    conn: psycopg.Connection, *, as_of: date, policy: Policy, estates: Batch, models: bool = True,
    tz: str = ESTATE_TZ,
) -> Judged:
    """Both rules over every unit of a batch of whole estates (None: the city); nothing is written."""
    with _no_cycle_collection():
        return _judge(conn, as_of=as_of, policy=policy, estates=estates, models=models, tz=tz)


def _judge(
    conn: psycopg.Connection, *, as_of: date, policy: Policy, estates: Batch, models: bool, tz: str,
) -> Judged:
    all_series, baselines, lo = load_series(conn, as_of=as_of, policy=policy, estates=estates, tz=tz)
    # Each unit's window and baseline summarised once, for the peers, the anomaly and both rules.
    contexts = {s.unit_id: rule_context(s, as_of=as_of, policy=policy) for s in all_series}
    windows = {u: c.window for u, c in contexts.items()}
    peers = peer_stats({s.unit_id: (s.estate_id, windows[s.unit_id]) for s in all_series})
    vacancy, sublet = VacancyRule(policy), SubletRule(policy)
    crowds = crowding({s.unit_id: (s.estate_id, s.household_size, windows[s.unit_id].water_median,
                                   baselines[s.unit_id].water_median) for s in all_series},
                      min_peers=policy.sublet.crowding_min_peers)
    all_series = with_record(conn, all_series, contexts, crowds, lo=lo, as_of=as_of, policy=policy)
    claimed = claimed_strangers(all_series, contexts, sublet, crowds)
    standing = standing_alone(all_series, as_of=as_of, rule=sublet,
                              watched=lambda floors: watched_floors(conn, floors, lo=lo, as_of=as_of, tz=tz))
    explained = explained_by_others(all_series, claimed)
    out = Judged(units=len(all_series),
                 measures=_measures(all_series, windows, baselines, policy=policy) if models else Measures())
    for series in all_series:
        for rule in (vacancy, sublet):
            if rule is sublet:
                verdict = sublet.evaluate(series, as_of=as_of, peers=peers.get(series.estate_id),
                                          context=contexts[series.unit_id],
                                          claimed=claimed.get(series.unit_id, ()),
                                          crowd=crowds.get(series.unit_id),
                                          standing=standing.get(series.unit_id),
                                          explained=explained.get(series.unit_id, ()))
            else:
                verdict = vacancy.evaluate(series, as_of=as_of, peers=peers.get(series.estate_id),
                                           context=contexts[series.unit_id])
            if verdict.outcome is Outcome.NO_VERDICT:
                out.counts["no_verdict"] += 1
            elif verdict.flagged:
                out.counts[f"flagged_{verdict.kind}"] += 1
                out.flagged.append(Flagged(series.unit_id, series.estate_id, verdict))
    return out


Learned = Mapping[str, VerdictModel | None]


def learned_models(conn: psycopg.Connection, *, models: bool) -> Learned:
    """The latest verdict model of each kind (None without one, or without the models)."""
    return {kind: latest_verdict_model(conn, kind=kind) if models else None for kind in ("vacancy", "sublet")}


def act(
    conn: psycopg.Connection, *, flagged: Sequence[Flagged], as_of: date, policy: Policy,
    anomalies: Mapping[str, UnitAnomaly | None] | AnomalyScores | None, learned: Learned,
) -> Counter[str]:
    """Score the flagged verdicts with the models and open or refresh their alerts and cases."""
    counts: Counter[str] = Counter()
    if not flagged:
        return counts
    lo = history_start(as_of, policy)
    units = sorted({f.unit_id for f in flagged})
    days = days_of(conn, units, lo=lo, as_of=as_of)
    opened = _open_alerts_at_opening(conn, units=units)
    auto_file = FilingSettings().auto_file  # read once: settings per case cost a third of opening it
    with _planned_afresh(conn, flagged=len(flagged)):
        for f in flagged:
            verdict, features = with_models(
                f.verdict, anomaly=None if anomalies is None else anomalies.get(f.unit_id),
                model=learned[f.verdict.kind], policy=policy.models,
                at_opening=opened.get((f.unit_id, f.verdict.kind)))
            # The chart series only for flagged units: building it for all would dominate the run.
            evidence = evidence_series(days.get(f.unit_id, ()), start=lo, end=as_of)
            counts.update(_act_on(conn, unit=f, verdict=verdict, as_of=as_of, series_json=evidence,
                                  features=features, auto_file=auto_file))
    return counts


@contextmanager
def _planned_afresh(conn: psycopg.Connection, *, flagged: int) -> Iterator[None]:
    """The block's statements planned for the tables as they are, where the statistics of ``alerts`` or
    ``cases`` describe fewer rows than the ``flagged`` units acting will add (setting local to the
    caller's transaction; an error rolls it back with everything else).

    A prepared statement's generic plan is made once, on its sixth use: on tables analysed nearly empty (a
    city's first large run) it scans both for each flagged unit, so acting grew with the square of the
    flagged units (10,000 units: 0.96 ms a unit for the first 2,500, 2.9 ms for the last; planned afresh,
    1.1 ms throughout). Tables never analysed (-1) get index plans, and planning each statement afresh
    would double acting's cost there (0.51 against 1.05 ms a unit), so it is kept to the case it cures.
    """
    row = conn.execute("SELECT min(reltuples) FROM pg_class"
                       " WHERE oid IN ('alerts'::regclass, 'cases'::regclass) AND reltuples >= 0").fetchone()
    if row is None or row[0] is None or row[0] >= flagged:
        yield
        return
    before = conn.execute("SELECT current_setting('plan_cache_mode')").fetchone()
    conn.execute("SELECT set_config('plan_cache_mode', 'force_custom_plan', true)")
    yield
    conn.execute("SELECT set_config('plan_cache_mode', %s, true)", (before[0] if before else "auto",))


def detection_result(as_of: date, judged: Sequence[Judged], acted: Counter[str]) -> DetectionResult:
    """The run's counts from its batches' verdicts and what acting on them did."""
    counts = sum((j.counts for j in judged), Counter()) + acted
    return DetectionResult(as_of=as_of, units=sum(j.units for j in judged), **counts)


def run_detection(
    conn: psycopg.Connection, *, as_of: date | None = None, policy: Policy | None = None,
    models: bool = True, batch_units: int | None = BATCH_UNITS, tz: str = ESTATE_TZ,
) -> DetectionResult:
    """Judge all units for the window ending on ``as_of`` (default: last complete day), in one transaction.
    ``tz``: the estates' zone (the hub's ``estate_tz``), the zone of the days in ``unit_daily``.

    The estates are judged in batches of at most ``batch_units`` units (None: the whole city at once),
    which bounds memory by the largest batch and gives the same alerts. Its audit rows are held back and
    appended at the end, so the audit chain's lock is not held for the whole run while inspectors act on
    cases. ``models=False`` leaves the scikit-learn models out (they only rank alerts, never open one):
    the evaluation's many runs use it.
    """
    policy = policy or Policy.load()
    with conn.transaction(), deferred_audit(conn):
        as_of = as_of or last_complete_day(conn, tz=tz)
        if as_of is None:
            return DetectionResult(as_of=None)
        judged = []
        measures = Measures()
        for estates, _ in estate_batches(conn, max_units=batch_units):
            j = judge(conn, as_of=as_of, policy=policy, estates=estates, models=models, tz=tz)
            measures.add(j.measures)
            j.measures = Measures()
            judged.append(j)
        anomalies = measures.scores(policy=policy) if models else None
        del measures
        learned = learned_models(conn, models=models)
        acted: Counter[str] = Counter()
        for j in judged:
            acted += act(conn, flagged=j.flagged, as_of=as_of, policy=policy, anomalies=anomalies,
                         learned=learned)
        return detection_result(as_of, judged, acted)


def _open_alerts_at_opening(
    conn: psycopg.Connection, *, units: Sequence[str]
) -> dict[tuple[str, str], AtOpening]:
    """What the models saw when the units' open alerts were opened, by (unit, kind)."""
    found = {}
    for unit_id, kind, features, reasons in conn.execute(
            "SELECT unit_id, kind, evidence->'features', reasons FROM alerts"
            " WHERE status = 'open' AND unit_id = ANY(%s)", (list(units),)):
        at = AtOpening.of_alert(features, reasons)
        if at is not None:
            found[(unit_id, kind)] = at
    return found


def _act_on(
    conn: psycopg.Connection, *, unit: Flagged, verdict: RuleFinding, as_of: date,
    series_json: dict[str, Any], features: dict[str, Any], auto_file: bool,
) -> list[str]:
    """Open or refresh the alert of a flagged verdict and, for a new alert, open its case (filed at once
    with ``auto_file``)."""
    if not may_flag(conn, unit_id=unit.unit_id, kind=verdict.kind, window_start=verdict.window_start,
                    as_of=as_of):
        return []  # quiet after an inspector's decision until the evidence is new (hub/cases/suppression.py)
    evidence = {**series_json, "window_start": verdict.window_start.isoformat(),
                "window_end": verdict.window_end.isoformat()}
    alert_id, new = _upsert_alert(conn, unit=unit, verdict=verdict, as_of=as_of,
                                  evidence={**evidence, "features": features})
    if not new:
        return ["alerts_updated"]
    frozen = {
        "alert_id": alert_id, "unit_id": unit.unit_id, "estate_id": unit.estate_id, "kind": verdict.kind,
        "score": verdict.score, "rule_version": verdict.rule_version,
        "reasons": [r.to_dict() for r in verdict.reasons], "series": evidence, "features": features,
    }
    opened = open_case(
        conn, alert_id=alert_id, unit_id=unit.unit_id, estate_id=unit.estate_id, kind=verdict.kind,
        summary=_summary(verdict, unit.unit_id), evidence=frozen, auto_file=auto_file,
    )
    return ["alerts_opened"] if opened is None else ["alerts_opened", "cases_opened"]
