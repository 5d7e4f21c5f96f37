"""Reasons as the pages show them: each number taken from the same daily series the chart beside it
draws, and the reasons that describe the flat rather than argue for the lead marked as context; pure.

The detector's own figure can measure something the charts do not draw (electricity above the day's
lowest hour, water-use hours): shown beside a chart of daily totals it would contradict it. So for a
reason about a charted series the page states the series' median over the alert's window against its
median over the days before the window (or, for tenant entries, on how many days anyone entered), and
the chart marks where the window starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from statistics import median

from anju.hub.cases.schemas import Evidence, Reason

# The reasons that describe the flat or the data rather than argue for the lead: shown apart, as context.
CONTEXT_CODES = frozenset({
    "electricity_in_use", "water_in_use", "flat_lived_in", "drop_by_visits", "water_unknown", "new_lease",
    "low_coverage", "gate_silent", "idle_streak_short", "no_new_faces", "no_presence_change",
})

# Reason code -> (evidence series it speaks of, how its figure is taken: "median" of the daily values or
# "days" with any entry, unit of the figure).
CHARTED: dict[str, tuple[str, str, str]] = {
    "electricity_base_load": ("electricity", "median", "kWh/day"),
    "electricity_in_use": ("electricity", "median", "kWh/day"),
    "water_near_zero": ("water", "median", "m3/day"),
    "water_in_use": ("water", "median", "m3/day"),
    "no_tenant_entries": ("tenant_entries", "days", "days"),
    "tenant_presence_ended": ("tenant_entries", "days", "days"),
    "recurring_strangers": ("strangers", "median", "strangers/day"),
}


@dataclass(frozen=True, slots=True)
class Figure:
    """A reason's figure from its series: over the window, and over the days before it."""

    series: str
    how: str
    value: float | None
    baseline: float | None
    days: int  # known days in the window
    days_before: int  # known days before it


def _known(values: Sequence[float | None]) -> list[float]:
    return [float(v) for v in values if v is not None]


def figure(code: str, evidence: Evidence, *, window_start: date | None) -> Figure | None:
    """The figure of reason ``code`` from the evidence series the chart draws; None for a reason about
    no charted series, or when the series is absent."""
    known = CHARTED.get(code)
    if known is None:
        return None
    key, how, _ = known
    values: Sequence[float | None] = getattr(evidence, key, None) or []
    if not values or not evidence.days:
        return None
    start = window_start or evidence.days[0]
    inside = _known([v for d, v in zip(evidence.days, values, strict=False) if d >= start])
    before = _known([v for d, v in zip(evidence.days, values, strict=False) if d < start])

    def take(vals: list[float]) -> float | None:
        if not vals:
            return None
        return float(sum(1 for v in vals if v > 0)) if how == "days" else round(float(median(vals)), 3)

    return Figure(series=key, how=how, value=take(inside), baseline=take(before), days=len(inside),
                  days_before=len(before))


def shown_reason(reason: Reason, evidence: Evidence, *, window_start: date | None) -> Reason:
    """The reason with its value and baseline taken from the charted series (unchanged when it speaks of
    no charted series); a day count carries the days it is out of (``days_of``, ``days_of_before``)."""
    fig = figure(reason.code, evidence, window_start=window_start)
    if fig is None:
        return reason
    unit = CHARTED[reason.code][2]
    extra: dict[str, object] = {"series": fig.series}
    if fig.how == "days":
        extra.update(days_of=fig.days, days_of_before=fig.days_before)
    return reason.model_copy(update={"value": fig.value, "baseline": fig.baseline, "unit": unit, **extra})


@dataclass(frozen=True, slots=True)
class ShownReasons:
    """An alert's reasons as a page shows them: the evidence for the lead, then the context."""

    evidence: list[Reason]
    context: list[Reason]

    @property
    def top(self) -> list[Reason]:
        """The first reason that argues for the lead (the queue's one line), else the first at all."""
        return (self.evidence or self.context)[:1]

    @property
    def more(self) -> int:
        """How many reasons the queue's line leaves out."""
        return len(self.evidence) + len(self.context) - len(self.top)


def shown_reasons(reasons: Sequence[Reason], evidence: Evidence | None, *,
                  window_start: date | None) -> ShownReasons:
    """The reasons, figures from the charted series when the evidence is there, split into evidence
    and context (each in the detector's order)."""
    out = [r if evidence is None else shown_reason(r, evidence, window_start=window_start) for r in reasons]
    return ShownReasons(evidence=[r for r in out if r.code not in CONTEXT_CODES],
                        context=[r for r in out if r.code in CONTEXT_CODES])
