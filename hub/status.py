"""The operator's view of a running anju: agents online and lagging, dead letters per estate, the filing
queue, when detection last wrote, and disk use per table. Read from the database only, so ``anju status``
answers on the hub host whether or not the hub process is up (its in-process health is ``/api/health``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import psycopg

# An agent publishes its status every publish.status_interval_s (30 s by default) while it runs.
STALE_AFTER = timedelta(minutes=5)
BACKLOG = 10_000  # records waiting in an agent's outbox that mean its uplink is not keeping up


@dataclass(frozen=True, slots=True)
class AgentLine:
    """One agent's last status, and why it needs a look (empty: it does not)."""

    agent_id: str
    estate_id: str
    state: str
    updated_at: datetime
    outbox_depth: int | None
    devices_down: int
    problem: str


@dataclass(frozen=True, slots=True)
class DeadLetterLine:
    """Dead letters of one estate and reason code."""

    estate_id: str
    code: str
    total: int
    last_day: int
    last_at: datetime


@dataclass(frozen=True, slots=True)
class TableSize:
    """A table's size with its indexes, TOAST and partitions."""

    table: str
    bytes: int


@dataclass(slots=True)
class OperatorStatus:
    """Everything ``anju status`` shows."""

    now: datetime
    agents: list[AgentLine] = field(default_factory=list)
    dead_letters: list[DeadLetterLine] = field(default_factory=list)
    filings: dict[str, int] = field(default_factory=dict)
    oldest_pending_filing: datetime | None = None
    last_alert_write: datetime | None = None
    latest_feature_day: date | None = None
    tables: list[TableSize] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (datetimes stay objects: dump with ``default=str``)."""
        return asdict(self)


def _agent_problem(state: str, age: timedelta, payload: dict[str, Any], down: int) -> str:
    if state != "online":
        return "offline"
    problems = []
    if age > STALE_AFTER:
        problems.append(f"no status for {int(age.total_seconds() // 60)} min")
    if payload.get("outbox_full"):
        problems.append("outbox full")
    elif (payload.get("outbox_depth") or 0) > BACKLOG:
        problems.append(f"{payload['outbox_depth']} records waiting")
    if down:
        problems.append(f"{down} devices unavailable")
    return "; ".join(problems)


def operator_status(conn: psycopg.Connection[Any], *, tables: int = 15) -> OperatorStatus:
    """Read the status from the hub's database (read only)."""
    row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    now: datetime = row[0]
    status = OperatorStatus(now=now)
    for agent_id, estate_id, state, payload, updated_at in conn.execute(
        "SELECT agent_id, estate_id, state, payload, updated_at FROM agent_status"
        " ORDER BY estate_id, agent_id"
    ):
        payload = payload if isinstance(payload, dict) else {}
        devices = [d for d in payload.get("devices", []) if isinstance(d, dict)]
        down = sum(1 for d in devices if d.get("available") is False)
        status.agents.append(AgentLine(
            agent_id, estate_id, state, updated_at, payload.get("outbox_depth"), down,
            _agent_problem(state, now - updated_at, payload, down),
        ))  # fmt: skip
    status.dead_letters = [
        DeadLetterLine(*row)
        for row in conn.execute(
            "SELECT coalesce(estate_id, '-'), coalesce(code, '-'), count(*),"
            " count(*) FILTER (WHERE received_at > now() - interval '1 day'), max(received_at)"
            " FROM dead_letters GROUP BY 1, 2 ORDER BY 1, 2"
        )
    ]
    status.filings = {str(s): int(n) for s, n in conn.execute(
        "SELECT state, count(*) FROM tenancy_outbox GROUP BY state ORDER BY state")}  # fmt: skip
    row = conn.execute("SELECT min(next_attempt_at) FROM tenancy_outbox WHERE state = 'pending'").fetchone()
    status.oldest_pending_filing = row[0] if row else None
    row = conn.execute("SELECT max(updated_at) FROM alerts").fetchone()
    status.last_alert_write = row[0] if row else None
    row = conn.execute("SELECT max(day) FROM unit_daily").fetchone()
    status.latest_feature_day = row[0] if row else None
    # A partitioned table (or a TimescaleDB hypertable) holds nothing itself: add up its partitions (chunks),
    # which are its descendants in pg_inherits, wherever their schema.
    status.tables = [TableSize(name, int(size)) for name, size in conn.execute(
        """
        WITH RECURSIVE tree(root, relid) AS (
            SELECT c.oid, c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
              AND NOT EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid)
            UNION ALL
            SELECT t.root, i.inhrelid FROM tree t JOIN pg_inherits i ON i.inhparent = t.relid
        )
        SELECT (SELECT relname FROM pg_class WHERE oid = root), sum(pg_total_relation_size(relid)) AS size
        FROM tree GROUP BY root ORDER BY size DESC, 1 LIMIT %s
        """, (tables,))]  # fmt: skip
    return status


def _mb(n: int) -> str:
    return f"{n / 2**20:,.1f} MB"


def format_status(s: OperatorStatus) -> str:
    """The status as text for a terminal."""
    lines = [f"anju status at {s.now:%Y-%m-%d %H:%M:%S %Z}", "", "agents"]
    if not s.agents:
        lines.append("  none has reported")
    for a in s.agents:
        depth = "-" if a.outbox_depth is None else str(a.outbox_depth)
        lines.append(f"  {a.estate_id:<8} {a.agent_id:<20} {a.state:<8} last {a.updated_at:%m-%d %H:%M:%S} "
                     f"outbox {depth:>7}  {a.problem or 'ok'}")  # fmt: skip
    lines += ["", "dead letters (estate, code: total, last 24 h, last)"]
    if not s.dead_letters:
        lines.append("  none")
    for d in s.dead_letters:
        lines.append(f"  {d.estate_id:<8} {d.code:<24} {d.total:>8} {d.last_day:>8}  {d.last_at:%m-%d %H:%M}")
    pending = s.filings.get("pending", 0)
    oldest = f", oldest due {s.oldest_pending_filing:%m-%d %H:%M}" if s.oldest_pending_filing else ""
    lines += ["", f"filing queue: {pending} pending{oldest}, {s.filings.get('dead', 0)} dead "
              f"(need `anju filings requeue` once fixed), {s.filings.get('sent', 0)} sent"]  # fmt: skip
    wrote = f"{s.last_alert_write:%Y-%m-%d %H:%M}" if s.last_alert_write else "never"
    lines += [f"detection: last alert written {wrote}; features up to {s.latest_feature_day or '-'}", "",
              "disk use (largest tables, with indexes and partitions)"]  # fmt: skip
    lines += [f"  {t.table:<28} {_mb(t.bytes):>12}" for t in s.tables]
    return "\n".join(lines)
