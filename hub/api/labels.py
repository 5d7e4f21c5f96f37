"""Bilingual labels (中文 first, English alongside) and plain-word phrasing for the inspector pages."""

from __future__ import annotations

from hub.api.charts import format_number
from hub.api.models import Reason

ALERT_KINDS: dict[str, tuple[str, str]] = {
    "vacancy": ("空置", "vacancy"),
    "sublet": ("转租", "sublet"),
    "group_rent": ("群租", "group renting"),
    "change_of_use": ("改变用途", "change of use"),
    "welfare": ("关怀探访", "welfare check"),
}

ALERT_STATUSES: dict[str, tuple[str, str]] = {
    "open": ("待处理", "open"),
    "closed": ("已关闭", "closed"),
}

CASE_STATUSES: dict[str, tuple[str, str]] = {
    "open": ("待分派", "open"),
    "assigned": ("已分派", "assigned"),
    "visit_scheduled": ("已约上门", "visit scheduled"),
    "confirmed": ("已核实", "confirmed"),
    "dismissed": ("已排除", "dismissed"),
    "filed": ("已报送", "filed"),
    "closed": ("已结案", "closed"),
}

FILING_STATES: dict[str, tuple[str, str]] = {
    "pending": ("待报送", "pending"),
    "sent": ("已报送", "sent"),
    "dead": ("报送失败", "failed, needs attention"),
}


def bilingual(table: dict[str, tuple[str, str]], key: str | None) -> str:
    """``中文 English`` for a known key, the key itself otherwise, a dash for nothing."""
    if not key:
        return "—"
    zh, en = table.get(key, ("", key))
    return f"{zh} {en}".strip()


def quantity(value: float | None, unit: str | None) -> str:
    """A value with its unit in plain words; ``unknown`` when there is no value."""
    if value is None:
        return "unknown 未知"
    text = format_number(value)
    return f"{text} {unit}" if unit else text


def reason_comparison(reason: Reason) -> str:
    """The reason's measured value against its baseline, e.g. ``0.8 kWh/day vs baseline 6.1 kWh/day``."""
    if reason.value is None and reason.baseline is None:
        return ""
    measured = quantity(reason.value, reason.unit)
    if reason.baseline is None:
        return measured
    return f"{measured} vs baseline 基线 {quantity(reason.baseline, reason.unit)}"
