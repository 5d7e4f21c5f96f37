"""Horizontal bar rows (one labelled bar per item) as plain geometry for inline SVG; pure, no I/O.

The labels and values are drawn as text beside the bars, so that nothing is known only from hovering.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from anju.hub.api.charts import format_number, nice_ceiling


@dataclass(frozen=True)
class RowBar:
    """One item: its label, value and the bar's geometry."""

    label: str
    value: float
    text: str  # the value as written beside the bar
    y: float
    width: float


@dataclass(frozen=True)
class RowChart:
    """Everything a template needs to draw labelled horizontal bars."""

    key: str
    title: str
    width: int
    height: int
    label_width: float
    bar_height: float
    color: str
    rows: tuple[RowBar, ...]


def row_chart(key: str, title: str, items: Sequence[tuple[str, float]], *, color: str = "#2563eb",
              width: int = 360, row: int = 26, suffix: str = "") -> RowChart:
    """One bar per ``(label, value)``, longest for the largest; the value (with ``suffix``) after it."""
    label_w, value_w = 110.0, 64.0
    top = max((v for _, v in items), default=0.0)
    scale = (width - label_w - value_w) / nice_ceiling(top)
    rows = tuple(
        RowBar(label=label, value=value, text=f"{format_number(value)}{suffix}", y=float(i * row),
               width=round(max(value, 0.0) * scale, 2))
        for i, (label, value) in enumerate(items)
    )
    return RowChart(key=key, title=title, width=width, height=max(row * len(items), row), label_width=label_w,
                    bar_height=row * 0.7, color=color, rows=rows)
