"""Grafana's role, made by the deploy's init SQL on a real PostgreSQL, reads the dashboards' views, no table.

The init SQL (``deploy/timescaledb/initdb/*.psql``) runs through the real ``psql`` with role and database
names of this test's own, so that it can share the session's server with other tests. Then the hub makes
its schema as its own role and ``anju audit protect`` hands the audit log on, as in production.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from anju.hub.audit.guard import protect_audit_log
from tests.hub.test_api import add_users, create_schema, seed
from tests.test_dashboards import DASHBOARDS, check_seeded_results, run_queries

INITDB = Path(__file__).resolve().parents[2] / "deploy" / "timescaledb" / "initdb"
PRIVATE_TABLES = ("users", "user_sessions", "audit_log", "login_throttle")
VIEWS = {"estates", "meter_readings", "access_events", "alerts", "cases", "tenancy_outbox", "dead_letters",
         "agent_status"}
# What a deployment set up by the init script before issue 13 granted (every table the hub makes).
OLD_GRANTS = """
GRANT CONNECT ON DATABASE {db} TO {reader};
GRANT USAGE ON SCHEMA public TO {reader};
ALTER DEFAULT PRIVILEGES FOR ROLE {hub} IN SCHEMA public GRANT SELECT ON TABLES TO {reader};
"""


@dataclass(frozen=True, slots=True)
class Deployment:
    """The database as the deploy leaves it: the hub's role, Grafana's role, and how to connect as each."""

    admin_url: str
    reader_url: str
    hub_role: str


def psql(conninfo: str, script: str, variables: dict[str, str]) -> None:
    """Run one of the init SQL files with ``psql``, stopping at the first error, as the init script does."""
    exe = shutil.which("psql")
    if exe is None:
        pytest.skip("no psql client on this machine")
    args = [exe, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", conninfo, "-f", str(INITDB / script)]
    for name, value in variables.items():
        args += ["-v", f"{name}={value}"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"psql -f {script}: {done.stderr}"


@pytest.fixture(params=["fresh", "upgraded"])
def deployment(request: pytest.FixtureRequest, pg_admin_url: str) -> Iterator[Deployment]:
    """``fresh``: the init SQL on a new server, then the hub. ``upgraded``: the old init grants and the hub
    first, then grafana-reader.psql run again as deploy/README.md tells operators to."""
    suffix = uuid.uuid4().hex[:10]
    hub, reader, db = f"t_anju_{suffix}", f"t_grafana_{suffix}", f"t_anju_{suffix}"
    reader_pw = secrets.token_hex(16)
    names = {"anju_role": hub, "grafana_role": reader, "anju_db": db}
    admin_url = make_conninfo(pg_admin_url, dbname=db)
    psql(pg_admin_url, "roles.psql", {**names, "anju_pw": secrets.token_hex(16), "grafana_pw": reader_pw})
    try:
        if request.param == "fresh":
            psql(admin_url, "grafana-reader.psql", names)
        with psycopg.connect(admin_url) as conn:
            if request.param == "upgraded":
                ids = {k: sql.Identifier(v) for k, v in (("db", db), ("reader", reader), ("hub", hub))}
                conn.execute(sql.SQL(OLD_GRANTS).format(**ids))
                conn.commit()
            # The hub starts: its tables and the grafana views, made as its own role.
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(hub)))
            create_schema(conn)
            seed(conn)
            add_users(conn)
            conn.execute("RESET ROLE")
            protect_audit_log(conn, runtime_role=hub)  # anju audit protect
            conn.commit()
        if request.param == "upgraded":
            psql(admin_url, "grafana-reader.psql", names)
        yield Deployment(admin_url=admin_url, hub_role=hub,
                         reader_url=make_conninfo(pg_admin_url, dbname=db, user=reader, password=reader_pw))
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db)))
            for role in (reader, hub):
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


@pytest.mark.parametrize("table", PRIVATE_TABLES)
def test_grafana_role_cannot_read_private_tables(deployment: Deployment, table: str) -> None:
    with psycopg.connect(deployment.admin_url) as conn:
        rows = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
    if table == "users":
        assert rows and rows[0] > 0  # there are password hashes to steal
    with (psycopg.connect(deployment.reader_url) as conn,
          pytest.raises(psycopg.errors.InsufficientPrivilege)):
        conn.execute(sql.SQL("SELECT * FROM {} LIMIT 1").format(sql.Identifier(table)))


def test_grafana_role_reads_only_the_grafana_views(deployment: Deployment) -> None:
    with psycopg.connect(deployment.reader_url) as conn:
        readable = conn.execute(
            "SELECT n.nspname, c.relname, c.relkind"
            " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')"
            "   AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
            # TimescaleDB's own catalogs, readable by everyone, when the server has it; chunks are not.
            "   AND n.nspname !~ '^(_timescaledb|timescaledb_)'"
            "   AND has_any_column_privilege(c.oid, 'SELECT')"
        ).fetchall()
        writable = conn.execute(
            "SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname IN ('public', 'grafana') AND c.relkind IN ('r', 'p', 'v')"
            "   AND (has_table_privilege(c.oid, 'INSERT') OR has_table_privilege(c.oid, 'UPDATE')"
            "        OR has_table_privilege(c.oid, 'DELETE') OR has_table_privilege(c.oid, 'TRUNCATE'))"
        ).fetchall()
    assert {(schema, kind) for schema, _, kind in readable} == {("grafana", "v")}
    assert {name for _, name, _ in readable} == VIEWS
    assert writable == []


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_dashboard_query_runs_as_grafana_role(deployment: Deployment, path: Path) -> None:
    with psycopg.connect(deployment.reader_url) as conn:
        results = run_queries(path, conn)
    if path.name == "anju_overview.json":
        check_seeded_results(results)


def test_hub_role_still_owns_the_views(deployment: Deployment) -> None:
    # A view reads its tables with its owner's rights: the views must be the hub's, not the superuser's.
    with psycopg.connect(deployment.admin_url) as conn:
        owners = conn.execute(
            "SELECT DISTINCT viewowner FROM pg_views WHERE schemaname = 'grafana'"
            " UNION SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'grafana'"
        ).fetchall()
    assert owners == [(deployment.hub_role,)]
