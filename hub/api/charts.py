"""Daily bar charts as plain geometry, drawn as inline SVG by the templates; pure, no I/O.

A day without data is drawn as a hatched gap, never as a zero bar: a meter or gate outage is unknown.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class Bar:
    """One day with a known value."""

    x: float
    y: float
    width: float
    height: float
    day: date
    value: float
    label: str


@dataclass(frozen=True)
class Gap:
    """One day without data."""

    x: float
    width: float
    day: date


@dataclass(frozen=True)
class Tick:
    """A horizontal grid line with its value label."""

    y: float
    label: str


@dataclass(frozen=True)
class XLabel:
    """A day label under the x axis."""

    x: float
    label: str


@dataclass(frozen=True)
class SeriesSpec:
    """Which evidence series to draw and how to call it."""

    key: str
    title_zh: str
    title_en: str
    unit: str
    color: str
    integer: bool = False
    unit_zh: str = ""

    def title(self, lang: str) -> str:
        """The series' name in ``lang`` (``zh`` or ``en``)."""
        return self.title_zh if lang == "zh" else self.title_en

    def unit_in(self, lang: str) -> str:
        """The unit in ``lang``."""
        return self.unit_zh or self.unit if lang == "zh" else self.unit


@dataclass(frozen=True)
class BarChart:
    """Everything a template needs to draw one series as an SVG bar chart."""

    key: str
    title_zh: str
    title_en: str
    unit: str
    color: str
    title: str  # in the page's language, as is ``unit``
    width: int
    height: int
    left: float
    top: float
    plot_width: float
    plot_height: float
    bars: tuple[Bar, ...]
    gaps: tuple[Gap, ...]
    ticks: tuple[Tick, ...]
    x_labels: tuple[XLabel, ...]
    mark_x: float | None = None  # where the alert's window starts: the reasons' figures are taken after it

    @property
    def baseline_y(self) -> float:
        """The y of the zero line."""
        return self.top + self.plot_height

    @property
    def missing_days(self) -> int:
        """How many days have no data."""
        return len(self.gaps)


EVIDENCE_SERIES: tuple[SeriesSpec, ...] = (
    SeriesSpec("electricity", "用电", "Electricity", "kWh/day", "#d97706", unit_zh="千瓦时/天"),
    SeriesSpec("water", "用水", "Water", "m³/day", "#2563eb", unit_zh="立方米/天"),
    SeriesSpec("gas", "用气", "Gas", "m³/day", "#dc2626", unit_zh="立方米/天"),
    SeriesSpec("tenant_entries", "登记住户进门", "Registered tenant entries", "per day", "#059669", True,
               "次/天"),
    SeriesSpec("strangers", "楼栋陌生人", "Strangers at the building", "per day", "#7c3aed", True, "人/天"),
    SeriesSpec("gate_events", "楼栋门禁事件", "All gate events at the building", "per day", "#6b7280", True,
               "次/天"),
)


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten that is at least ``value`` (1 for nothing)."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if step * power >= value * (1 - 1e-12):
            return step * power
    return 10.0 * power


def format_number(value: float, *, integer: bool = False) -> str:
    """A short human form of a value: integers without decimals, small values with more of them."""
    if integer or float(value).is_integer() or abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}"


def bar_chart(
    spec: SeriesSpec,
    *,
    days: Sequence[date],
    values: Sequence[float | None],
    width: int = 720,
    height: int = 150,
    lang: str = "zh",
    mark: date | None = None,
) -> BarChart:
    """Lay out one daily series: a bar per known day, a gap per unknown day, 3 grid lines, 3 day labels;
    its title, unit and bar labels in ``lang`` (``zh`` or ``en``); ``mark``: a day to draw a line before
    (the start of the alert's window), when it is after the first day shown."""
    unit = spec.unit_in(lang)
    left, right, top, bottom = 44.0, 8.0, 10.0, 22.0
    plot_w, plot_h = width - left - right, height - top - bottom
    n = len(days)
    padded = list(values)[:n] + [None] * max(0, n - len(values))
    known = [v for v in padded if v is not None]
    y_max = nice_ceiling(max(known, default=0.0))
    slot = plot_w / n if n else plot_w
    bar_w = max(slot * 0.8, 1.0)
    bars: list[Bar] = []
    gaps: list[Gap] = []
    for i, (day, value) in enumerate(zip(days, padded, strict=True)):
        x = left + i * slot
        if value is None:
            gaps.append(Gap(x=round(x, 2), width=round(slot, 2), day=day))
            continue
        h = plot_h * max(value, 0.0) / y_max
        # A true zero keeps a hairline so that it is visibly different from a gap.
        h = max(h, 1.0)
        label = f"{day.isoformat()}: {format_number(value, integer=spec.integer)} {unit}"
        bars.append(
            Bar(x=round(x + (slot - bar_w) / 2, 2), y=round(top + plot_h - h, 2), width=round(bar_w, 2),
                height=round(h, 2), day=day, value=value, label=label)
        )
    ticks = tuple(
        Tick(y=round(top + plot_h * (1 - f), 2), label=format_number(y_max * f))
        for f in (0.0, 0.5, 1.0)
    )
    label_at = sorted({0, n // 2, n - 1}) if n else []
    x_labels = tuple(
        XLabel(x=round(left + (i + 0.5) * slot, 2), label=days[i].strftime("%m-%d")) for i in label_at
    )
    return BarChart(
        key=spec.key, title_zh=spec.title_zh, title_en=spec.title_en, unit=unit, color=spec.color,
        title=spec.title(lang), width=width, height=height, left=left, top=top, plot_width=plot_w,
        plot_height=plot_h,
        bars=tuple(bars), gaps=tuple(gaps), ticks=ticks, x_labels=x_labels,
        mark_x=None if mark is None or mark not in days[1:] else round(left + days.index(mark) * slot, 2),
    )


def evidence_charts(
    series: dict[str, Sequence[float | None]], *, days: Sequence[date], lang: str = "zh",
    mark: date | None = None,
) -> list[BarChart]:
    """One chart per known evidence series that has at least one entry, labelled in ``lang``, with the
    window's start (``mark``) drawn."""
    return [
        bar_chart(spec, days=days, values=series[spec.key], lang=lang, mark=mark)
        for spec in EVIDENCE_SERIES
        if series.get(spec.key)
    ]
