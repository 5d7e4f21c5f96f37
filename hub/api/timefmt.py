"""Times on the pages in the estate's civil time zone, with the zone named; audit details as plain text.

The database keeps UTC. An inspector reads local time: every time a page shows is converted to the
estate's zone (the hub's ``estate_tz`` setting, handed to ``create_app``; one zone for every estate today,
looked up per estate so that a city spanning zones needs only ``estate_zone`` to change) and the page says
which zone it is. Pure.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from zoneinfo import ZoneInfo

# What the audit log's objects are, for its filter: (中文, English).
AUDIT_OBJECTS: dict[str, tuple[str, str]] = {
    "case": ("案件", "case"),
    "alert": ("线索", "alert"),
    "unit": ("单元", "unit"),
    "user": ("用户", "user"),
    "verdict_model": ("核查结论模型", "verdict model"),
    "phone": ("住户手机", "household phone"),
    "storage": ("存储", "storage"),
}

# The zone's name in words, per language; others are shown by their IANA name.
ZONE_NAMES: dict[str, tuple[str, str]] = {"Asia/Shanghai": ("北京时间", "China Standard Time")}


@cache
def estate_zone(estate_id: str | None, tz: str) -> ZoneInfo:
    """The civil time zone of an estate: the hub's zone ``tz`` (every estate's today)."""
    del estate_id
    return ZoneInfo(tz)


def local_time(
    ts: datetime | None, estate_id: str | None = None, fmt: str = "%Y-%m-%d %H:%M", *, tz: str
) -> str:
    """``ts`` in the estate's zone (a naive time is taken as UTC); a dash for none. ``tz``: the hub's zone."""
    if ts is None:
        return "—"
    aware = ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)
    return aware.astimezone(estate_zone(estate_id, tz)).strftime(fmt)


def zone_label(estate_id: str | None, lang: str, *, tz: str) -> str:
    """The zone as a page names it, e.g. ``北京时间 (UTC+08:00)``. ``tz``: the hub's zone."""
    zone = estate_zone(estate_id, tz)
    offset = datetime.now(zone).strftime("%z")
    names = ZONE_NAMES.get(str(zone.key))
    name = (names[0] if lang == "zh" else names[1]) if names else str(zone.key)
    return f"{name} (UTC{offset[:3]}:{offset[3:]})"


def detail_text(detail: Mapping[str, object] | None, labels: Mapping[str, str] | None = None) -> str:
    """An audit row's detail as plain text (``key: value`` pairs; Chinese as itself, never ``\\uXXXX``),
    keys named by ``labels`` where known."""
    if not detail:
        return ""
    parts = []
    for key, value in detail.items():
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        parts.append(f"{(labels or {}).get(key, key)}: {shown}")
    return " · ".join(parts)
