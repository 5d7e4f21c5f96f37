"""Rule-based vacancy and sublet detectors: each verdict carries a score and plain-English reasons."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from statistics import median
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from anju.models.activity import ActivityPolicy, idle_run
from anju.models.features import (
    DailyFeatures,
    PeerStats,
    UnitSeries,
    WindowSummary,
    summarize,
    window_bounds,
)

POLICY_PATH = Path(__file__).with_name("policy.yaml")
RULE_VERSION = "rules-9"  # bump when the logic of a rule changes; threshold changes show in Policy.version


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class VacancyPolicy(_Frozen):
    """Thresholds of the vacancy rule."""

    max_entry_days: int = Field(ge=0)
    min_idle_days: int = Field(ge=1)
    leak_m3: float = Field(ge=0)


class SubletPolicy(_Frozen):
    """Thresholds of the sublet rule."""

    max_entry_days: int = Field(ge=0)
    min_gate_coverage: float = Field(gt=0, le=1)
    min_lived_share: float = Field(gt=0, le=1)
    min_presence_share_before: float = Field(ge=0, le=1)
    max_presence_share_after: float = Field(ge=0, le=1)
    min_absent_gate_days: int = Field(ge=1)
    lookback_days: int = Field(ge=1)
    stranger_min_days: int = Field(ge=1)
    min_resident_share: float = Field(ge=0, le=1)
    min_track_span_days: int = Field(ge=1)
    stranger_lead_days: int = Field(ge=0)
    alignment_days: int = Field(ge=1)
    min_card_days: int = Field(ge=1)
    max_face_days: int = Field(ge=0)
    min_face_share_before: float = Field(ge=0, le=1)
    max_face_share_after: float = Field(ge=0, le=1)
    max_face_change_chance: float = Field(gt=0, lt=1)
    lent_card_change_chance: float = Field(gt=0, lt=1)
    max_change_chance: float = Field(gt=0, lt=1)
    short_record_change_chance: float = Field(gt=0, lt=1)
    max_stranger_chance: float = Field(gt=0, le=1)
    crowding_ratio: float = Field(gt=1)
    crowding_ratio_present: float = Field(gt=1)
    crowding_min_peers: int = Field(ge=2)
    group_min_faces: int = Field(ge=2)
    group_days: int = Field(ge=1)
    group_water_ratio: float = Field(gt=1)
    group_min_stay_days: int = Field(ge=1)
    move_water_ratio: float = Field(gt=1)
    move_alone_ratio: float = Field(gt=1)
    move_gap_days: int = Field(ge=0)
    standing_min_record_days: int = Field(ge=1)


class ModelsPolicy(_Frozen):
    """Settings of the scikit-learn models that rank the rules' alerts."""

    anomaly_min_units: int = Field(ge=2)
    anomaly_min_estate_units: int = Field(ge=2)
    anomaly_weight: float = Field(ge=0, le=1)
    verdict_weight: float = Field(ge=0, le=1)
    min_verdicts: int = Field(ge=4)
    min_verdicts_per_class: int = Field(ge=2)


class Policy(_Frozen):
    """All detector thresholds, read from ``models/policy.yaml``."""

    legal_idle_horizon_days: int = Field(gt=0)
    window_days: int = Field(ge=7)
    baseline_days: int = Field(ge=7)
    min_baseline_known_days: int = Field(ge=1)
    min_coverage: float = Field(gt=0, le=1)
    new_lease_grace_days: int = Field(ge=0)
    history_days: int = Field(ge=30)
    activity: ActivityPolicy
    vacancy: VacancyPolicy
    sublet: SubletPolicy
    models: ModelsPolicy

    @classmethod
    def load(cls, path: Path | None = None) -> Policy:
        """Read and validate a policy file (default: the one shipped beside this module)."""
        data = yaml.safe_load((path or POLICY_PATH).read_text(encoding="utf-8"))
        return cls.model_validate(data)

    @cached_property
    def version(self) -> str:
        """``RULE_VERSION`` plus a digest of the thresholds, e.g. ``rules-1+p3f2a9c01``."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return f"{RULE_VERSION}+p{hashlib.sha256(canonical.encode()).hexdigest()[:8]}"


class Outcome(StrEnum):
    """What a rule concluded about one unit."""

    FLAGGED = "flagged"
    CLEAR = "clear"
    NO_VERDICT = "no_verdict"  # too little data, a new lease: nothing may be concluded


@dataclass(frozen=True, slots=True)
class Reason:
    """One signal behind a verdict, with its value against its baseline."""

    code: str
    text: str
    value: float | None = None
    baseline: float | None = None
    unit: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored in ``alerts.reasons``."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class RuleFinding:
    """What one rule found for one unit and window (an inspector's decision on a case is
    ``anju.hub.cases.schemas.InspectorVerdict``)."""

    kind: Literal["vacancy", "sublet"]
    unit_id: str
    outcome: Outcome
    score: float
    window_start: date
    window_end: date
    rule_version: str
    reasons: tuple[Reason, ...] = field(default=())

    @property
    def flagged(self) -> bool:
        """Whether this verdict should open or refresh an alert."""
        return self.outcome is Outcome.FLAGGED


@dataclass(frozen=True, slots=True)
class RuleContext:
    """The window and baseline summaries of one unit for one as-of day: what both rules read."""

    window: WindowSummary
    baseline: WindowSummary
    start: date
    end: date


def fmt(x: float | None, unit: str) -> str:
    return "unknown" if x is None else f"{x:.2f} {unit}"


def rule_context(series: UnitSeries, *, as_of: date, policy: Policy) -> RuleContext:
    """Summarise the unit's window and baseline once; pass it to each rule's ``evaluate``."""
    start, end = window_bounds(as_of, policy.window_days)
    window = summarize(series.days, start=start, end=end)
    b_end = start - timedelta(days=1)
    baseline = summarize(series.days, start=b_end - timedelta(days=policy.baseline_days - 1), end=b_end)
    return RuleContext(window=window, baseline=baseline, start=start, end=end)


def precheck(series: UnitSeries, ctx: RuleContext, *, policy: Policy) -> Reason | None:
    """A reason why no verdict may be given for this window, or None."""
    if series.lease_start is not None and series.lease_start > ctx.end - timedelta(
        days=policy.new_lease_grace_days
    ):
        return Reason("new_lease", f"Lease started on {series.lease_start.isoformat()}: too recent to judge.")
    if ctx.window.elec_coverage < policy.min_coverage:
        return Reason(
            "low_coverage",
            f"Electricity known on only {ctx.window.elec_known} of {ctx.window.n_days} days; "
            "missing days are unknown, not empty.",
            value=round(ctx.window.elec_coverage, 3),
            baseline=policy.min_coverage,
            unit="share of days",
        )
    return None


def _own_baseline(
    summary: WindowSummary, value: float | None, *, policy: Policy, water: bool
) -> float | None:
    known = summary.water_known if water else summary.elec_known
    return value if known >= policy.min_baseline_known_days else None


def window_median(days: tuple[DailyFeatures, ...], attr: str, *, start: date, end: date) -> float | None:
    values = [getattr(d, attr) for d in days if start <= d.day <= end and getattr(d, attr) is not None]
    return float(median(values)) if values else None


def entry_days_between(days: tuple[DailyFeatures, ...], *, start: date, end: date) -> int:
    return sum(1 for d in days if start <= d.day <= end and d.tenant_entries > 0)


def face_days_between(days: tuple[DailyFeatures, ...], *, start: date, end: date) -> int:
    return sum(1 for d in days if start <= d.day <= end and d.tenant_face_entries > 0)


class VacancyRule:
    """Vacant: for longer than any trip, the flat shows no life (no water events, no cooking, electricity
    on its floor) and registered tenants enter at most to drop by."""

    kind: Literal["vacancy"] = "vacancy"

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    def evaluate(
        self, series: UnitSeries, *, as_of: date, peers: PeerStats | None = None,
        context: RuleContext | None = None,
    ) -> RuleFinding:
        """Judge one unit for the window ending on ``as_of`` (``context``: its summaries, if made already)."""
        pol, p = self.policy, self.policy.vacancy
        ctx = context or rule_context(series, as_of=as_of, policy=pol)
        w = ctx.window

        def verdict(outcome: Outcome, score: float, reasons: list[Reason]) -> RuleFinding:
            return RuleFinding(
                kind=self.kind, unit_id=series.unit_id, outcome=outcome, score=round(score, 3),
                window_start=ctx.start, window_end=ctx.end, rule_version=pol.version,
                reasons=tuple(reasons),
            )

        blocked = precheck(series, ctx, policy=pol)
        if blocked is not None:
            return verdict(Outcome.NO_VERDICT, 0.0, [blocked])
        entry_days = entry_days_between(series.days, start=ctx.start, end=ctx.end)
        if entry_days > p.max_entry_days:
            return verdict(Outcome.CLEAR, 0.0, [])
        run = idle_run(series.days, end=ctx.end, policy=pol.activity)
        if run.idle_days < p.min_idle_days:
            reasons = []
            if run.idle_days > 0:
                # Travel and hospital stays of up to three weeks look exactly like this.
                reasons.append(Reason(
                    "idle_streak_short", f"No sign of life on {run.idle_days} observed days in a row, fewer "
                    f"than {p.min_idle_days}: could be travel.", value=run.idle_days,
                    baseline=p.min_idle_days, unit="days"))
            return verdict(Outcome.CLEAR, 0.0, reasons)

        days = series.days
        own_elec = _own_baseline(ctx.baseline, ctx.baseline.elec_median, policy=pol, water=False)
        elec = w.elec_median
        active = window_median(days, "elec_active_kwh", start=ctx.start, end=ctx.end)
        base_active = window_median(days, "elec_active_kwh", start=ctx.baseline.start, end=ctx.baseline.end)
        water_hours = window_median(days, "water_active_hours", start=ctx.start, end=ctx.end)
        base_water_hours = window_median(days, "water_active_hours", start=ctx.baseline.start,
                                          end=ctx.baseline.end)
        gate_known = w.gate_coverage >= pol.min_coverage
        reasons = [
            Reason(
                "no_tenant_entries",
                f"Registered tenants entered on {entry_days} of {w.n_days} days while the building's gate "
                f"was working on {w.gate_days} of them."
                + ("" if gate_known else " The gate was often silent: judged on the meters."),
                value=entry_days, baseline=ctx.baseline.tenant_entry_days if ctx.baseline.gate_days else None,
                unit="days",
            ),
            Reason(
                "electricity_base_load",
                f"Electricity stays on its floor: a median {fmt(active, 'kWh/day')} above the day's lowest "
                f"hourly use (total {fmt(elec, 'kWh/day')}: fridge and standby), against "
                f"{fmt(base_active, 'kWh/day')} before.",
                value=None if active is None else round(active, 3),
                baseline=None if base_active is None else round(base_active, 3), unit="kWh/day",
            ),
        ]
        if w.water_coverage < pol.min_coverage or water_hours is None:
            reasons.append(Reason(
                "water_unknown", "Water use is unknown on too many days to confirm; judged on electricity.",
                value=round(w.water_coverage, 3), baseline=pol.min_coverage, unit="share of days",
            ))
        else:
            reasons.append(Reason(
                "water_near_zero",
                f"Water used in a median {water_hours:.0f} hour(s) a day (a flush, a wash), against "
                f"{fmt(base_water_hours, 'hours/day')} before.",
                value=round(water_hours, 1), baseline=None if base_water_hours is None else round(
                    base_water_hours, 1), unit="hours/day",
            ))
            if w.water_median is not None and w.water_median >= p.leak_m3:
                reasons.append(Reason(
                    "water_constant_flow",
                    f"Water flows day and night at a constant {fmt(w.water_median, 'm³/day')} with no event "
                    "above it: a leak in an empty flat.",
                    value=round(w.water_median, 4), baseline=p.leak_m3, unit="m3/day",
                ))
        if peers is not None and peers.elec_median is not None and elec is not None:
            reasons.append(Reason(
                "peer_electricity",
                f"Other units of estate {peers.estate_id} use a median {peers.elec_median:.2f} kWh/day.",
                value=round(elec, 3), baseline=round(peers.elec_median, 3), unit="kWh/day",
            ))
        if run.visits:
            reasons.append(Reason(
                "drop_by_visits",
                f"{run.visits} short visit(s) (a little water and light, then nothing again) do not make the "
                "flat lived in.", value=run.visits, baseline=None, unit="days",
            ))
        reasons.append(Reason(
            "idle_streak",
            f"No sign of life on {run.idle_days} observed days in a row"
            + (f" (since {run.since.isoformat()})" if run.since else "")
            + f"; the legal threshold for returning the unit is {pol.legal_idle_horizon_days} consecutive "
            "days (Measures 2012, art. 27).",
            value=run.idle_days, baseline=pol.legal_idle_horizon_days, unit="days",
        ))
        del own_elec
        coverage = min(w.elec_coverage, 1.0) * (1.0 if w.water_coverage >= pol.min_coverage else 0.8)
        score = coverage * (0.6 + 0.4 * min(run.idle_days / pol.legal_idle_horizon_days, 1.0))
        return verdict(Outcome.FLAGGED, score, reasons)
