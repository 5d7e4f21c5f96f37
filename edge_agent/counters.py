"""Pure detection of counter rollover and meter replacement from a meter's previous and current totals.

A cumulative register only goes up. When a reading is lower than the last one kept for the meter, the
agent flags it instead of letting the hub see a huge negative (or, after wrapping arithmetic, huge
positive) delta: ``rollover`` when the old total sat near the register's maximum and the new one near
zero, ``replaced`` for any other drop (a new meter installed, or a meter reset by the utility).
"""

from __future__ import annotations

from dataclasses import dataclass

from anju.edge_agent.registers import RegisterMap, RegisterType
from anju_wire.payloads import CounterEvent

# Largest raw value of each integer register type.
_RAW_MAX = {
    RegisterType.UINT32: 2**32 - 1,
    RegisterType.INT32: 2**31 - 1,
    RegisterType.UINT16: 2**16 - 1,
    RegisterType.INT16: 2**15 - 1,
}
NEAR_FRACTION = 0.1  # "near the maximum" = top 10% of the range, "near zero" = bottom 10%


@dataclass(frozen=True, slots=True)
class LastTotal:
    """The last total the agent stored for one meter (kept in the outbox database across restarts)."""

    unit_id: str
    meter: str
    device: str
    total: float
    ts: str  # ISO 8601 time of the reading that carried it


def rollover_max(register_map: RegisterMap) -> float | None:
    """The total at which the meter wraps to zero, or None when its registers cannot wrap.

    A map may state it (``rollover_at``, e.g. a display limit of 99999.9 kWh). Otherwise it follows
    from the integer parts' types and scales: a float part next to an integer part is a fraction of one
    unit and does not widen the range; a map of float parts alone has no wrap point.
    """
    if register_map.rollover_at is not None:
        return register_map.rollover_at
    integer = [p for p in register_map.total if p.type in _RAW_MAX]
    if not integer:
        return None
    return sum(_RAW_MAX[p.type] * abs(p.scale) for p in integer)


def classify(previous: float | None, current: float | None, maximum: float | None) -> CounterEvent | None:
    """The event a new total shows against the previous one; None while it goes up or nothing is known."""
    if previous is None or current is None or current >= previous:
        return None
    if (
        maximum is not None
        and previous >= maximum * (1 - NEAR_FRACTION)
        and current <= maximum * NEAR_FRACTION
    ):
        return "rollover"
    return "replaced"


class CounterTracker:
    """The last stored total of each meter, in memory, seeded from the outbox when a source starts."""

    def __init__(self, last: dict[tuple[str, str], LastTotal] | None = None) -> None:
        self._last: dict[tuple[str, str], LastTotal] = dict(last or {})

    def last(self, unit_id: str, meter: str) -> LastTotal | None:
        """The last stored total of one meter, if any."""
        return self._last.get((unit_id, meter))

    def event(
        self, *, unit_id: str, meter: str, value: float | None, maximum: float | None
    ) -> CounterEvent | None:
        """What ``value`` shows against the meter's last stored total (see ``classify``)."""
        kept = self._last.get((unit_id, meter))
        return classify(None if kept is None else kept.total, value, maximum)

    def remember(self, totals: list[LastTotal]) -> None:
        """Take these totals as the last ones, once they are durably stored with their readings."""
        for t in totals:
            self._last[(t.unit_id, t.meter)] = t
