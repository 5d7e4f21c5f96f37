"""Versioned schema migrations: each runs once, in its own transaction, recorded in ``schema_migrations``.

A migration is a name and its SQL: the time-series tables in the database's form, then every file of
``sql/`` in name order, then (TimescaleDB) the policies. The table keeps each one's name and a
checksum of its SQL. When every wanted migration is recorded with the same checksum, the schema is
current and nothing is run, not even a lock taken. Otherwise, under an advisory lock (hub processes
that start together wait for each other), each missing one runs and is recorded in one transaction. A
file changed after it ran (a new checksum) runs again: the files are written to run again safely (they
always were: the hub used to run them all at every start), so a database made before this table
existed is upgraded by recording what is already there.

Why not Alembic or yoyo: the schema is plain SQL files run through psycopg, which both could run, but
Alembic brings SQLAlchemy (the hub has no ORM) and yoyo a second connection layer and its own lock
tables, for what is here a table, a lock and a loop; and the time-series step differs by backend,
which neither expresses as a file.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

log = logging.getLogger(__name__)

VERSION_TABLE = """CREATE TABLE IF NOT EXISTS schema_migrations (
    name       text PRIMARY KEY,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""

# Serialises schema changes between hub processes that start together.
SCHEMA_LOCK = 0x616E6A75736368  # "anjusch"


@dataclass(frozen=True, slots=True)
class Migration:
    """One step of the schema: its name and its statements (each may hold several, as a file does)."""

    name: str
    statements: tuple[str, ...]

    @property
    def checksum(self) -> str:
        """Identifies this migration's SQL; a changed SQL runs again."""
        return hashlib.sha256("\n;\n".join(self.statements).encode()).hexdigest()[:32]


def applied(conn: psycopg.Connection) -> dict[str, str] | None:
    """Name -> checksum of the migrations recorded, or None when there is no version table yet."""
    row = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
    if not (row and row[0]):
        return None
    return {str(n): str(c) for n, c in conn.execute("SELECT name, checksum FROM schema_migrations")}


def pending(done: dict[str, str] | None, wanted: Sequence[Migration]) -> list[Migration]:
    """The wanted migrations not recorded with their current checksum, in order."""
    return [m for m in wanted if (done or {}).get(m.name) != m.checksum]


def run(conn: psycopg.Connection, migration: Migration, *, previous: str | None) -> None:
    """Run one migration and record it, in one transaction (a savepoint inside the caller's)."""
    if previous is not None:
        log.info("migration %s changed since it ran; running it again", migration.name)
    with conn.transaction():
        for stmt in migration.statements:
            conn.execute(stmt.encode())
        conn.execute(
            "INSERT INTO schema_migrations (name, checksum) VALUES (%s, %s) ON CONFLICT (name) "
            "DO UPDATE SET checksum = EXCLUDED.checksum, applied_at = now()",
            (migration.name, migration.checksum),
        )
    log.info("applied migration %s", migration.name)
