"""Scoring alerts against a scenario's truth: precision, recall, F1, delay, false-alert rate (pure)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from statistics import median

KINDS = ("vacancy", "sublet")
MIN_ONSET_AGE_DAYS = 45  # units whose onset is more recent than this before as-of are not scored


@dataclass(frozen=True, slots=True)
class TruthRow:
    """What a unit really is (``kind`` normal, vacancy or sublet), its subtype and onset."""

    unit_id: str
    kind: str
    subtype: str
    onset: date | None


@dataclass(frozen=True, slots=True)
class AlertRow:
    """An alert as the hub raised it: the first day it was flagged."""

    unit_id: str
    kind: str
    first_flagged: date


@dataclass(frozen=True, slots=True)
class KindScore:
    """The figures of one alert kind."""

    kind: str
    positives: int
    tp: int
    fp: int
    fn: int
    median_days_to_alert: float | None
    false_per_1000_unit_months: float

    @property
    def precision(self) -> float:
        """TP / (TP + FP); 1.0 when nothing was flagged."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        """TP / (TP + FN); 1.0 when there was nothing to find."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall."""
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass(frozen=True, slots=True)
class EvalReport:
    """The scores per kind, the errors per subtype and how many units were scored or left out."""

    as_of: date
    scored_units: int
    excluded_units: int
    unit_months: float
    kinds: tuple[KindScore, ...]
    errors_by_subtype: dict[str, Counter[str]]
    units_by_subtype: Counter[str]

    def table(self) -> str:
        """The report as plain text tables."""
        lines = [
            f"as_of={self.as_of} scored_units={self.scored_units} "
            f"excluded_recent_onset={self.excluded_units} unit_months={self.unit_months:.0f}",
            "",
            f"{'kind':<8} {'pos':>5} {'tp':>5} {'fp':>5} {'fn':>5} {'precision':>9} {'recall':>7} {'f1':>6} "
            f"{'median_days':>11} {'false/1000um':>12}",
        ]
        for k in self.kinds:
            med = "-" if k.median_days_to_alert is None else f"{k.median_days_to_alert:.1f}"
            lines.append(
                f"{k.kind:<8} {k.positives:>5} {k.tp:>5} {k.fp:>5} {k.fn:>5} {k.precision:>9.3f} "
                f"{k.recall:>7.3f} {k.f1:>6.3f} {med:>11} {k.false_per_1000_unit_months:>12.2f}"
            )
        lines += ["", f"{'subtype':<26} {'units':>5}  errors"]
        for subtype in sorted(self.units_by_subtype):
            errs = self.errors_by_subtype.get(subtype, Counter())
            text = ", ".join(f"{k}={v}" for k, v in sorted(errs.items())) or "-"
            lines.append(f"{subtype:<26} {self.units_by_subtype[subtype]:>5}  {text}")
        return "\n".join(lines)


def evaluate(
    truth: Sequence[TruthRow], alerts: Iterable[AlertRow], *, as_of: date, observed_days: int,
    first_day: date | None = None,
) -> EvalReport:
    """Score alerts raised up to ``as_of`` against the truth; ``observed_days`` sizes the unit-months.

    The delay to a first alert counts from the onset, or from ``first_day`` (the first day of data) for
    an onset before the data starts: nothing could be seen before that.
    """
    scored = [t for t in truth if t.onset is None or (as_of - t.onset).days >= MIN_ONSET_AGE_DAYS]
    scored_ids = {t.unit_id: t for t in scored}
    first: dict[tuple[str, str], date] = {}
    for a in alerts:
        if a.first_flagged <= as_of and a.unit_id in scored_ids:
            key = (a.unit_id, a.kind)
            first[key] = min(first.get(key, a.first_flagged), a.first_flagged)
    unit_months = len(scored) * observed_days / 30.0
    kinds: list[KindScore] = []
    errors: dict[str, Counter[str]] = {}
    for kind in KINDS:
        positives = [t for t in scored if t.kind == kind]
        tp = fn = 0
        delays: list[float] = []
        for t in positives:
            flagged = first.get((t.unit_id, kind))
            if flagged is None:
                fn += 1
                errors.setdefault(t.subtype, Counter())[f"missed_{kind}"] += 1
            else:
                tp += 1
                if t.onset is not None:
                    since = t.onset if first_day is None else max(t.onset, first_day)
                    delays.append(float((flagged - since).days))
        fp = 0
        for t in scored:
            if t.kind != kind and (t.unit_id, kind) in first:
                fp += 1
                errors.setdefault(t.subtype, Counter())[f"false_{kind}"] += 1
        kinds.append(KindScore(
            kind=kind, positives=len(positives), tp=tp, fp=fp, fn=fn,
            median_days_to_alert=median(delays) if delays else None,
            false_per_1000_unit_months=1000.0 * fp / unit_months if unit_months else 0.0,
        ))
    return EvalReport(
        as_of=as_of, scored_units=len(scored), excluded_units=len(truth) - len(scored),
        unit_months=unit_months,
        kinds=tuple(kinds), errors_by_subtype=errors, units_by_subtype=Counter(t.subtype for t in scored),
    )


def ranking_auc(labelled: Iterable[tuple[bool, float]]) -> float | None:
    """ROC AUC of scores against labels: the chance a random positive outranks a random negative (ties
    count half); None without both a positive and a negative."""
    pairs = list(labelled)
    pos = [s for y, s in pairs if y]
    neg = [s for y, s in pairs if not y]
    if not pos or not neg:
        return None
    # Rank-sum (Mann-Whitney) form, with average ranks for ties.
    ordered = sorted((s, i) for i, (_, s) in enumerate(pairs))
    ranks = [0.0] * len(pairs)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1][0] == ordered[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[ordered[k][1]] = (i + j) / 2 + 1
        i = j + 1
    rank_sum = sum(r for r, (y, _) in zip(ranks, pairs, strict=True) if y)
    return (rank_sum - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))


def cross_table(runs: Sequence[tuple[str, int, EvalReport]]) -> str:
    """Per generator and kind: the mean over seeds and the worst seed of precision, recall, false alerts
    per 1,000 unit-months and the median delay, as a plain text table."""
    lines = [f"{'generator':<11} {'kind':<8} {'seeds':>5} {'P_mean':>7} {'P_worst':>7} {'R_mean':>7} "
             f"{'R_worst':>7} {'false/1000um_mean':>17} {'_worst':>6} {'delay_d_mean':>12} {'_worst':>6}"]
    for generator in sorted({g for g, _, _ in runs}):
        for kind in KINDS:
            scores = [next(k for k in r.kinds if k.kind == kind) for g, _, r in runs if g == generator]
            if not scores:
                continue
            p = [s.precision for s in scores]
            rc = [s.recall for s in scores]
            fa = [s.false_per_1000_unit_months for s in scores]
            dl = [s.median_days_to_alert for s in scores if s.median_days_to_alert is not None]
            lines.append(
                f"{generator:<11} {kind:<8} {len(scores):>5} {sum(p) / len(p):>7.3f} {min(p):>7.3f} "
                f"{sum(rc) / len(rc):>7.3f} {min(rc):>7.3f} {sum(fa) / len(fa):>17.2f} {max(fa):>6.2f} "
                + (f"{sum(dl) / len(dl):>12.1f} {max(dl):>6.1f}" if dl else f"{'-':>12} {'-':>6}"))
    return "\n".join(lines)
