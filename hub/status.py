"""The operator's view of a running anju: agents online and lagging, dead letters per estate, the filing
queue, the last detection and retention runs, and disk use per table. Read from the database only, so
``anju status`` answers on the hub host whether or not the hub process is up (its in-process health is
``/api/health``), and the hub's status page (``/status``, ``/api/status``) shows the same figures.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import psycopg

from anju.hub.storage.timeseries import table_exists

# An agent publishes its status every publish.status_interval_s (30 s by default) while it runs.
STALE_AFTER = timedelta(minutes=5)
BACKLOG = 10_000  # records waiting in an agent's outbox that mean its uplink is not keeping up
REASON_CHARS = 200  # a dead letter's or a filing's last error is cut to this for the report


@dataclass(frozen=True, slots=True)
class AgentLine:
    """One agent's last status, and why it needs a look (empty: it does not)."""

    agent_id: str
    estate_id: str
    state: str
    updated_at: datetime
    outbox_depth: int | None
    devices_down: int
    problem: str  # the issues in English ("" when there is none)
    seen_s: int = 0  # seconds from its last status to the report
    issues: tuple[tuple[str, int], ...] = ()  # (code, number): see AGENT_ISSUES_EN


@dataclass(frozen=True, slots=True)
class DeadLetterLine:
    """Dead letters of one estate and reason code."""

    estate_id: str
    code: str
    total: int
    last_day: int
    last_at: datetime


@dataclass(frozen=True, slots=True)
class EstateDeadLetters:
    """Dead letters of one estate, with the latest one's code and reason."""

    estate_id: str
    total: int
    last_day: int
    last_at: datetime
    last_code: str
    last_reason: str


@dataclass(frozen=True, slots=True)
class DetectionRun:
    """The last detection run, as it recorded itself (``detection_last_run``: when it finished, how many
    units it flagged and how many alerts it opened, a run that flagged nothing included).

    On a database where no run has recorded itself yet (one written by an older anju), it is read back
    from the alerts the last run that flagged a unit wrote: they share its transaction's time.
    """

    at: datetime | None
    alerts: int  # units that run flagged (each an alert opened or refreshed)
    opened: int  # of them, new
    open_alerts: int  # open alerts now
    feature_day: date | None  # the latest day with daily features
    units: int  # units with features on that day


@dataclass(frozen=True, slots=True)
class RetentionLine:
    """The last retention run: the pipeline's (audited) on monthly partitions, TimescaleDB's job per table."""

    source: str  # "audit" (the pipeline's run on partitions) or "timescaledb" (a retention job)
    tables: str
    at: datetime | None  # None: has not run yet
    status: str
    horizon: str
    dropped: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TableSize:
    """A table's size with its indexes, TOAST and partitions."""

    table: str
    bytes: int


@dataclass(slots=True)
class OperatorStatus:
    """Everything ``anju status`` and the status page show."""

    now: datetime
    agents: list[AgentLine] = field(default_factory=list)
    dead_letters: list[DeadLetterLine] = field(default_factory=list)
    dead_letter_estates: list[EstateDeadLetters] = field(default_factory=list)
    filings: dict[str, int] = field(default_factory=dict)
    filings_retrying: int = 0  # pending filings that failed at least once
    oldest_pending_filing: datetime | None = None
    last_filing_error: str | None = None  # a dead filing's last error, else a retrying one's
    last_alert_write: datetime | None = None
    latest_feature_day: date | None = None
    detection: DetectionRun | None = None
    retention: list[RetentionLine] = field(default_factory=list)
    tables: list[TableSize] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (datetimes stay objects: dump with ``default=str``)."""
        return asdict(self)

    @property
    def agents_online(self) -> int:
        """Agents whose last status says online."""
        return sum(1 for a in self.agents if a.state == "online")

    @property
    def agents_needing_a_look(self) -> int:
        """Agents offline, silent, backed up or with devices down."""
        return sum(1 for a in self.agents if a.problem)


# Why an agent needs a look, as codes with a number, so each report words them in its own language.
AGENT_ISSUES_EN = {
    "offline": "offline",
    "silent": "no status for {n} min",
    "outbox_full": "outbox full",
    "backlog": "{n} records waiting",
    "devices_down": "{n} devices unavailable",
}


Issue = tuple[str, int]


def agent_issues(state: str, age: timedelta, payload: dict[str, Any], down: int) -> tuple[Issue, ...]:
    """(code, number) for each reason an agent needs a look; empty when it does not."""
    if state != "online":
        return (("offline", 0),)
    issues = []
    if age > STALE_AFTER:
        issues.append(("silent", int(age.total_seconds() // 60)))
    if payload.get("outbox_full"):
        issues.append(("outbox_full", 0))
    elif (payload.get("outbox_depth") or 0) > BACKLOG:
        issues.append(("backlog", int(payload["outbox_depth"])))
    if down:
        issues.append(("devices_down", down))
    return tuple(issues)


def _agents(conn: psycopg.Connection[Any], now: datetime) -> list[AgentLine]:
    out = []
    for agent_id, estate_id, state, payload, updated_at in conn.execute(
        "SELECT agent_id, estate_id, state, payload, updated_at FROM agent_status"
        " ORDER BY estate_id, agent_id"
    ):
        payload = payload if isinstance(payload, dict) else {}
        devices = [d for d in payload.get("devices", []) if isinstance(d, dict)]
        down = sum(1 for d in devices if d.get("available") is False)
        age = now - updated_at
        issues = agent_issues(state, age, payload, down)
        problem = "; ".join(AGENT_ISSUES_EN[code].format(n=n) for code, n in issues)
        out.append(AgentLine(agent_id, estate_id, state, updated_at, payload.get("outbox_depth"), down,
                             problem, max(0, int(age.total_seconds())), issues))
    return out


def _dead_letters(conn: psycopg.Connection[Any], status: OperatorStatus) -> None:
    status.dead_letters = [
        DeadLetterLine(*row)
        for row in conn.execute(
            "SELECT coalesce(estate_id, '-'), coalesce(code, '-'), count(*),"
            " count(*) FILTER (WHERE received_at > now() - interval '1 day'), max(received_at)"
            " FROM dead_letters GROUP BY 1, 2 ORDER BY 1, 2"
        )
    ]
    status.dead_letter_estates = [
        EstateDeadLetters(*row)
        for row in conn.execute(
            "SELECT coalesce(estate_id, '-'), count(*),"
            " count(*) FILTER (WHERE received_at > now() - interval '1 day'), max(received_at),"
            " (array_agg(coalesce(code, '-') ORDER BY received_at DESC, id DESC))[1],"
            " (array_agg(left(reason, %s) ORDER BY received_at DESC, id DESC))[1]"
            " FROM dead_letters GROUP BY 1 ORDER BY 1", (REASON_CHARS,),
        )
    ]


def _filings(conn: psycopg.Connection[Any], status: OperatorStatus) -> None:
    status.filings = {str(s): int(n) for s, n in conn.execute(
        "SELECT state, count(*) FROM tenancy_outbox GROUP BY state ORDER BY state")}  # fmt: skip
    row = conn.execute(
        "SELECT min(next_attempt_at), count(*) FILTER (WHERE attempts > 0) FROM tenancy_outbox"
        " WHERE state = 'pending'"
    ).fetchone()
    assert row is not None
    status.oldest_pending_filing, status.filings_retrying = row[0], int(row[1])
    # What went wrong: a dead filing's last error first (it waits for an operator), else a retrying one's.
    row = conn.execute(
        "SELECT left(last_error, %s) FROM tenancy_outbox WHERE state IN ('pending', 'dead')"
        " AND last_error IS NOT NULL ORDER BY state = 'dead' DESC, next_attempt_at DESC, id DESC LIMIT 1",
        (REASON_CHARS,),
    ).fetchone()
    status.last_filing_error = row[0] if row else None


def _detection(conn: psycopg.Connection[Any], status: OperatorStatus) -> None:
    row = conn.execute("SELECT max(updated_at) FROM alerts").fetchone()
    status.last_alert_write = row[0] if row else None
    row = conn.execute(
        "WITH run AS (SELECT max(updated_at) AS at FROM alerts WHERE status = 'open')"
        " SELECT run.at, count(*) FILTER (WHERE a.updated_at = run.at),"
        " count(*) FILTER (WHERE a.created_at = run.at), count(a.id)"
        " FROM run LEFT JOIN alerts a ON a.status = 'open' GROUP BY run.at"
    ).fetchone()
    assert row is not None
    day = conn.execute(
        "SELECT d.day, (SELECT count(*) FROM unit_daily u WHERE u.day = d.day)"
        " FROM (SELECT max(day) AS day FROM unit_daily) d"
    ).fetchone()
    assert day is not None
    status.latest_feature_day = day[0]
    at, flagged, opened = row[0], int(row[1]), int(row[2])
    last = conn.execute(
        "SELECT finished_at, flagged, opened FROM detection_last_run"
    ).fetchone() if table_exists(conn, "detection_last_run") else None
    if last is not None:
        at, flagged, opened = last[0], int(last[1]), int(last[2])
    status.detection = DetectionRun(at=at, alerts=flagged, opened=opened,
                                    open_alerts=int(row[3]), feature_day=day[0], units=int(day[1]))



def _retention(conn: psycopg.Connection[Any]) -> list[RetentionLine]:
    """TimescaleDB's retention jobs where its hypertables hold the readings, else the pipeline's last run."""
    hypertables = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')"
    ).fetchone()
    if hypertables is not None and hypertables[0]:
        jobs = [RetentionLine("timescaledb", table, at, status or "scheduled", str(horizon or "-"))
                for table, at, status, horizon in conn.execute(
            "SELECT j.hypertable_name,"
            " CASE WHEN isfinite(s.last_run_started_at) THEN s.last_run_started_at END,"
            " s.last_run_status, j.config->>'drop_after'"
            " FROM timescaledb_information.jobs j"
            " LEFT JOIN timescaledb_information.job_stats s ON s.job_id = j.job_id"
            " WHERE j.proc_name = 'policy_retention' ORDER BY 1")]  # fmt: skip
        if jobs:
            return jobs
    row = conn.execute(
        "SELECT ts, object_id, detail FROM audit_log WHERE object_type = 'storage' AND action = 'retention'"
        " ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    if row is None:
        return []
    at, tables, detail = row
    detail = detail if isinstance(detail, dict) else {}
    dropped = tuple(str(d) for d in detail.get("dropped") or ())
    return [RetentionLine("audit", str(tables), at, "ok", f"{detail.get('horizon_days', '-')} days", dropped)]


def _table_sizes(conn: psycopg.Connection[Any], limit: int) -> list[TableSize]:
    # A partitioned table (or a TimescaleDB hypertable) holds nothing itself: add up its partitions (chunks),
    # which are its descendants in pg_inherits, wherever their schema.
    return [TableSize(name, int(size)) for name, size in conn.execute(
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
        """, (limit,))]  # fmt: skip


def operator_status(conn: psycopg.Connection[Any], *, tables: int = 15) -> OperatorStatus:
    """Read the status from the hub's database (read only)."""
    row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    status = OperatorStatus(now=row[0])
    status.agents = _agents(conn, status.now)
    _dead_letters(conn, status)
    _filings(conn, status)
    _detection(conn, status)
    status.retention = _retention(conn)
    status.tables = _table_sizes(conn, tables)
    return status


def _mb(n: int) -> str:
    return f"{n / 2**20:,.1f} MB"


def _when(at: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return format(at, fmt) if at is not None else "never"


def format_status(s: OperatorStatus) -> str:
    """The status as text for a terminal."""
    lines = [f"anju status at {s.now:%Y-%m-%d %H:%M:%S %Z}", "",
             f"agents: {s.agents_online} of {len(s.agents)} online, {s.agents_needing_a_look} need a look"]
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
    for e in s.dead_letter_estates:
        lines.append(f"  {e.estate_id:<8} latest: {e.last_code}: {e.last_reason}")
    pending = s.filings.get("pending", 0)
    oldest = f", oldest due {s.oldest_pending_filing:%m-%d %H:%M}" if s.oldest_pending_filing else ""
    lines += ["", f"filing queue: {pending} pending ({s.filings_retrying} retrying){oldest}, "
              f"{s.filings.get('dead', 0)} dead (need `anju filings requeue` once fixed), "
              f"{s.filings.get('sent', 0)} sent"]  # fmt: skip
    if s.last_filing_error:
        lines.append(f"  last error: {s.last_filing_error}")
    lines.append(f"detection: last alert written {_when(s.last_alert_write)}; "
                 f"features up to {s.latest_feature_day or '-'}")
    if s.detection is not None and s.detection.at is not None:
        run = s.detection
        lines.append(f"  last run: {_when(run.at)}, {run.alerts} units flagged ({run.opened} new alerts); "
                     f"{run.open_alerts} open; {run.units} units with features on {run.feature_day or '-'}")
    if not s.retention:
        lines.append("retention: never run")
    for r in s.retention:
        dropped = f", dropped {', '.join(r.dropped)}" if r.dropped else ""
        lines.append(f"retention ({r.source}, {r.tables}): last {_when(r.at)} {r.status}, "
                     f"horizon {r.horizon}{dropped}")
    lines += ["", "disk use (largest tables, with indexes and partitions)"]
    lines += [f"  {t.table:<28} {_mb(t.bytes):>12}" for t in s.tables]
    return "\n".join(lines)
