"""Rule-based vacancy and sublet detectors: each verdict carries a score and plain-English reasons."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from models.features import (
    PeerStats,
    StrangerTrack,
    UnitSeries,
    WindowSummary,
    idle_streak,
    summarize,
    window_bounds,
)

POLICY_PATH = Path(__file__).with_name("policy.yaml")
RULE_VERSION = "rules-3"  # bump when the logic of a rule changes; threshold changes show in Policy.version


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class VacancyPolicy(_Frozen):
    """Thresholds of the vacancy rule."""

    max_tenant_entries: int = Field(ge=0)
    min_gate_coverage: float = Field(ge=0, le=1)
    base_load_kwh: float = Field(ge=0)
    base_load_share: float = Field(ge=0, le=1)
    max_water_m3: float = Field(ge=0)
    min_idle_days: int = Field(ge=1)
    visit_kwh: float = Field(ge=0)
    leak_night_share: float = Field(gt=0, le=1)
    min_leak_m3_h: float = Field(ge=0)


class SubletPolicy(_Frozen):
    """Thresholds of the sublet rule."""

    max_tenant_entries: int = Field(ge=0)
    min_gate_coverage: float = Field(gt=0, le=1)
    min_use_share: float = Field(gt=0, le=2)
    min_presence_share_before: float = Field(ge=0, le=1)
    stranger_min_days: int = Field(ge=1)
    max_presence_share_after: float = Field(ge=0, le=1)
    alignment_days: int = Field(ge=1)


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
class Verdict:
    """The outcome of one rule for one unit and window."""

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


def _fmt(x: float | None, unit: str) -> str:
    return "unknown" if x is None else f"{x:.2f} {unit}"


def rule_context(series: UnitSeries, *, as_of: date, policy: Policy) -> RuleContext:
    """Summarise the unit's window and baseline once; pass it to each rule's ``evaluate``."""
    start, end = window_bounds(as_of, policy.window_days)
    window = summarize(series.days, start=start, end=end)
    b_end = start - timedelta(days=1)
    baseline = summarize(series.days, start=b_end - timedelta(days=policy.baseline_days - 1), end=b_end)
    return RuleContext(window=window, baseline=baseline, start=start, end=end)


def _precheck(series: UnitSeries, ctx: RuleContext, *, policy: Policy) -> Reason | None:
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


class VacancyRule:
    """Vacant: in the trailing window tenants do not enter, electricity sits at base load, water near zero."""

    kind: Literal["vacancy"] = "vacancy"

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    def base_load_limit(self, own_baseline_kwh: float | None) -> float:
        """Daily electricity at or below which a unit is at base load."""
        p = self.policy.vacancy
        return max(p.base_load_kwh, p.base_load_share * own_baseline_kwh if own_baseline_kwh else 0.0)

    def evaluate(
        self, series: UnitSeries, *, as_of: date, peers: PeerStats | None = None,
        context: RuleContext | None = None,
    ) -> Verdict:
        """Judge one unit for the window ending on ``as_of`` (``context``: its summaries, if made already)."""
        pol, p = self.policy, self.policy.vacancy
        ctx = context or rule_context(series, as_of=as_of, policy=pol)
        w = ctx.window

        def verdict(outcome: Outcome, score: float, reasons: list[Reason]) -> Verdict:
            return Verdict(
                kind=self.kind, unit_id=series.unit_id, outcome=outcome, score=round(score, 3),
                window_start=ctx.start, window_end=ctx.end, rule_version=pol.version,
                reasons=tuple(reasons),
            )

        blocked = _precheck(series, ctx, policy=pol)
        if blocked is not None:
            return verdict(Outcome.NO_VERDICT, 0.0, [blocked])
        if w.gate_coverage < p.min_gate_coverage:
            return verdict(Outcome.NO_VERDICT, 0.0, [Reason(
                "gate_silent",
                f"The building's gate reported on only {w.gate_days} of {w.n_days} days, so the absence "
                "of tenant entries cannot be told from a gate outage.",
                value=round(w.gate_coverage, 3), baseline=p.min_gate_coverage, unit="share of days",
            )])

        own_elec = _own_baseline(ctx.baseline, ctx.baseline.elec_median, policy=pol, water=False)
        own_water = _own_baseline(ctx.baseline, ctx.baseline.water_median, policy=pol, water=True)
        limit = self.base_load_limit(own_elec)
        elec = w.elec_median
        assert elec is not None  # coverage > 0 guarantees a median
        absent = w.tenant_entries <= p.max_tenant_entries
        base_load = elec <= limit
        water_known = w.water_coverage >= pol.min_coverage and w.water_median is not None
        dry = water_known and w.water_median is not None and w.water_median <= p.max_water_m3
        # Water that keeps flowing at night at (nearly) its daytime rate is a leak, not a household:
        # people sleep, a cistern does not.
        night = w.water_night_median
        leak = (
            water_known and not dry and w.water_median is not None and night is not None
            and night >= p.min_leak_m3_h and night * 24 >= p.leak_night_share * w.water_median
        )
        if not (absent and base_load and (dry or leak or not water_known)):
            return verdict(Outcome.CLEAR, 0.0, [])

        streak = idle_streak(series.days, end=ctx.end, base_load_kwh=limit, visit_kwh=p.visit_kwh,
                             max_visit_entries=p.max_tenant_entries)
        if streak < p.min_idle_days:
            # Travel of up to three weeks looks exactly like this; only a longer unbroken idle run is
            # evidence of an empty flat.
            return verdict(Outcome.CLEAR, 0.0, [Reason(
                "idle_streak_short", f"Idle for {streak} observed days in a row, fewer than "
                f"{p.min_idle_days}: could be travel.", value=streak, baseline=p.min_idle_days, unit="days",
            )])
        reasons = [
            Reason(
                "no_tenant_entries",
                f"Registered tenants entered {w.tenant_entries} times in {w.n_days} days while the "
                f"building's gate was working on {w.gate_days} of them.",
                value=w.tenant_entries,
                baseline=ctx.baseline.tenant_entries if ctx.baseline.gate_days else None,
                unit="entries",
            ),
            Reason(
                "electricity_base_load",
                f"Median electricity {_fmt(elec, 'kWh/day')} is at base load (limit {limit:.2f} kWh/day); "
                f"the unit's own earlier median was {_fmt(own_elec, 'kWh/day')}.",
                value=round(elec, 3), baseline=None if own_elec is None else round(own_elec, 3),
                unit="kWh/day",
            ),
        ]
        if leak:
            reasons.append(Reason(
                "water_constant_flow",
                f"Water flows day and night: night-time minimum {_fmt(night, 'm³/h')} against a daily "
                f"median of {_fmt(w.water_median, 'm³/day')}, with nobody entering: a leak in an empty flat.",
                value=None if night is None else round(night, 5),
                baseline=None if w.water_median is None else round(w.water_median / 24, 5), unit="m3/h",
            ))
        elif water_known:
            reasons.append(Reason(
                "water_near_zero",
                f"Median water use {_fmt(w.water_median, 'm³/day')} (own earlier median "
                f"{_fmt(own_water, 'm³/day')}).",
                value=None if w.water_median is None else round(w.water_median, 4),
                baseline=None if own_water is None else round(own_water, 4), unit="m3/day",
            ))
        else:
            reasons.append(Reason(
                "water_unknown", "Water use is unknown on too many days to confirm; judged on electricity.",
                value=round(w.water_coverage, 3), baseline=pol.min_coverage, unit="share of days",
            ))
        if peers is not None and peers.elec_median is not None:
            reasons.append(Reason(
                "peer_electricity",
                f"Other units of estate {peers.estate_id} use a median {peers.elec_median:.2f} kWh/day.",
                value=round(elec, 3), baseline=round(peers.elec_median, 3), unit="kWh/day",
            ))
        reasons.append(Reason(
            "idle_streak",
            f"Idle for {streak} observed days in a row; the legal threshold for returning the unit is "
            f"{pol.legal_idle_horizon_days} consecutive days (Measures 2012, art. 27).",
            value=streak, baseline=pol.legal_idle_horizon_days, unit="days",
        ))
        # Score: coverage-weighted confidence, growing with the idle streak towards the legal horizon.
        coverage = min(w.elec_coverage, 1.0) * (1.0 if water_known else 0.8)
        score = coverage * (0.6 + 0.4 * min(streak / pol.legal_idle_horizon_days, 1.0))
        return verdict(Outcome.FLAGGED, score, reasons)


class SubletRule:
    """Sublet: registered tenants no longer enter (through a working gate) yet the unit is lived in."""

    kind: Literal["sublet"] = "sublet"

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    def _appeared_as_presence_ended(self, series: UnitSeries, track: StrangerTrack, *, end: date) -> bool:
        """Tenants entered regularly before the track first appeared, and (almost) never since."""
        p = self.policy.sublet
        first = track.first_seen
        # A short lookback: a subtenant moves in as the household moves out, whereas a face that turns up
        # weeks after a tenant started using another entrance is unrelated to that unit.
        lookback = timedelta(days=p.alignment_days)
        before = summarize(series.days, start=first - lookback, end=first - timedelta(days=1))
        after = summarize(series.days, start=first, end=end)
        return (
            before.gate_days > 0 and before.presence_share >= p.min_presence_share_before
            and after.gate_days > 0 and after.presence_share <= p.max_presence_share_after
        )

    def evaluate(
        self, series: UnitSeries, *, as_of: date, peers: PeerStats | None = None,
        context: RuleContext | None = None,
    ) -> Verdict:
        """Judge one unit for the window ending on ``as_of`` (``context``: its summaries, if made already)."""
        pol, p = self.policy, self.policy.sublet
        ctx = context or rule_context(series, as_of=as_of, policy=pol)
        w, b = ctx.window, ctx.baseline

        def verdict(outcome: Outcome, score: float, reasons: list[Reason]) -> Verdict:
            return Verdict(
                kind=self.kind, unit_id=series.unit_id, outcome=outcome, score=round(score, 3),
                window_start=ctx.start, window_end=ctx.end, rule_version=pol.version,
                reasons=tuple(reasons),
            )

        blocked = _precheck(series, ctx, policy=pol)
        if blocked is None and w.water_coverage < pol.min_coverage:
            blocked = Reason(
                "low_coverage", f"Water known on only {w.water_known} of {w.n_days} days.",
                value=round(w.water_coverage, 3), baseline=pol.min_coverage, unit="share of days",
            )
        if blocked is None and w.gate_coverage < p.min_gate_coverage:
            blocked = Reason(
                "gate_silent",
                f"The building's gate reported on only {w.gate_days} of {w.n_days} days: missing entries "
                "may be a gate outage.",
                value=round(w.gate_coverage, 3), baseline=p.min_gate_coverage, unit="share of days",
            )
        if blocked is not None:
            return verdict(Outcome.NO_VERDICT, 0.0, [blocked])
        if w.tenant_entries > p.max_tenant_entries:
            return verdict(Outcome.CLEAR, 0.0, [])

        own_elec = _own_baseline(b, b.elec_median, policy=pol, water=False)
        own_water = _own_baseline(b, b.water_median, policy=pol, water=True)
        vacancy_limit = VacancyRule(pol).base_load_limit(own_elec)
        elec, water = w.elec_median, w.water_median
        assert elec is not None and water is not None

        def lived_in(value: float, own: float | None, peer: float | None) -> tuple[bool, float | None]:
            refs = [r for r in (own, peer) if r is not None and r > 0]
            return any(value >= p.min_use_share * r for r in refs), (refs[0] if refs else None)

        elec_ok, elec_ref = lived_in(elec, own_elec, peers.elec_median if peers else None)
        water_ok, water_ref = lived_in(water, own_water, peers.water_median if peers else None)
        if not (elec_ok and water_ok and elec > vacancy_limit and water > pol.vacancy.max_water_m3):
            return verdict(Outcome.CLEAR, 0.0, [])

        presence_ended = b.gate_days > 0 and b.presence_share >= p.min_presence_share_before
        recurring = [s for s in series.strangers if s.days_in_window >= p.stranger_min_days]
        aligned = [s for s in recurring if self._appeared_as_presence_ended(series, s, end=ctx.end)]
        if not aligned:
            # Tenants who stop passing the gate (car-park door, side entrance) while still living there
            # look the same on the meters; only new recurring faces tell a new occupant apart.
            return verdict(Outcome.CLEAR, 0.0, [Reason(
                "no_new_faces", "Registered entries stopped or never happened, but no recurring stranger "
                "appeared as they stopped: likely another entrance, not a new occupant.",
            )])

        reasons = [
            Reason(
                "no_tenant_entries",
                f"Registered tenants entered {w.tenant_entries} times in {w.n_days} days although the "
                f"building's gate recorded events on {w.gate_days} of them.",
                value=w.tenant_entries, baseline=b.tenant_entries if b.gate_days else None, unit="entries",
            ),
            Reason(
                "electricity_in_use",
                f"Median electricity {elec:.2f} kWh/day: someone lives here "
                f"(reference {_fmt(elec_ref, 'kWh/day')}).",
                value=round(elec, 3), baseline=None if elec_ref is None else round(elec_ref, 3),
                unit="kWh/day",
            ),
            Reason(
                "water_in_use",
                f"Median water {water:.3f} m³/day (reference {_fmt(water_ref, 'm³/day')}).",
                value=round(water, 4), baseline=None if water_ref is None else round(water_ref, 4),
                unit="m3/day",
            ),
        ]
        if presence_ended:
            reasons.append(Reason(
                "tenant_presence_ended",
                f"Before the window tenants entered on {b.tenant_entry_days} of {b.gate_days} gate days; "
                f"last seen {b.last_tenant_entry.isoformat() if b.last_tenant_entry else 'never'}.",
                value=round(w.presence_share, 3), baseline=round(b.presence_share, 3),
                unit="share of gate days",
            ))
        if aligned:
            reasons.append(Reason(
                "recurring_strangers",
                f"{len(aligned)} unrecognised face(s) seen repeatedly at the unit's {series.strangers_scope} "
                "since about the time "
                "the registered tenants stopped appearing.",
                value=len(aligned), baseline=0, unit="tracks",
            ))
        score = 0.5 + (0.25 if presence_ended else 0.0) + (0.25 if aligned else 0.0)
        score *= min(w.elec_coverage, w.water_coverage, 1.0)
        return verdict(Outcome.FLAGGED, score, reasons)
