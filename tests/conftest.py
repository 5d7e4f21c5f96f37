"""Shared fixtures: real PostgreSQL and real Mosquitto, started by the tests themselves."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import NoReturn

import psycopg
import pytest

from tests.services import (
    ServiceUnavailable,
    create_database,
    drop_database,
    mosquitto_broker,
    pg15_server,
    postgres_server,
    timescaledb_installed,
)


@pytest.fixture(scope="session", autouse=True)
def _private_anju_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep everything anju writes under ANJU_HOME (e.g. the development audit key) out of the user's home."""
    previous = os.environ.get("ANJU_HOME")
    os.environ["ANJU_HOME"] = str(tmp_path_factory.mktemp("anju-home-session"))
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("ANJU_HOME", None)
        else:
            os.environ["ANJU_HOME"] = previous


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Admin URL of a PostgreSQL for the whole session."""
    with postgres_server(tmp_path_factory.mktemp("pg")) as url:
        yield url


@pytest.fixture
def database_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh, empty database for one test."""
    url = create_database(pg_admin_url)
    try:
        yield url
    finally:
        drop_database(pg_admin_url, url)


# CI sets this (.ci/run): there a missing PostgreSQL 15 or TimescaleDB fails the tests instead of skipping.
REQUIRE_TIMESCALEDB = os.environ.get("ANJU_REQUIRE_TIMESCALEDB") == "1"
BUILD_HINT = ("build and install it with scripts/timescaledb.sh ../shared/vendor/timescaledb-2.28.3.tar.gz "
              "(make install-test does when the archive is there)")


def _unavailable(what: str) -> NoReturn:
    """Skip, saying why; or fail where ANJU_REQUIRE_TIMESCALEDB=1 (CI never skips these tests)."""
    if REQUIRE_TIMESCALEDB:
        pytest.fail(f"ANJU_REQUIRE_TIMESCALEDB=1 but {what}", pytrace=False)
    pytest.skip(what)


@pytest.fixture(scope="session")
def pg15_admin_url() -> Iterator[str]:
    """Admin URL of a PostgreSQL 15 for the whole session (see ``pg15_server``); skips where none can run.

    When TimescaleDB is installed for PostgreSQL 15, the throwaway server preloads it.
    """
    with ExitStack() as stack:
        try:
            url = stack.enter_context(pg15_server())
        except ServiceUnavailable as err:
            _unavailable(f"no PostgreSQL 15: {err}")
        yield url


def _timescale_missing(url: str) -> str | None:
    """Why the server at ``url`` cannot serve TimescaleDB's hypertables, or None when it can."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT (SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb'), "
            "current_setting('shared_preload_libraries')").fetchone()
    assert row is not None
    if row[0] is None:
        return f"no TimescaleDB on the PostgreSQL at {url}: {BUILD_HINT}"
    if "timescaledb" not in str(row[1]):
        return f"TimescaleDB is installed but not in shared_preload_libraries at {url}"
    return None


@pytest.fixture(scope="session")
def timescale_admin_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """Admin URL of a PostgreSQL 15 that preloads TimescaleDB; skips (or fails in CI) without one.

    ``ANJU_TEST_TIMESCALE_URL`` when set; else the session's PostgreSQL 15 (``pg15_admin_url``), or,
    when that is a given server (``ANJU_TEST_PG15_URL``, such as the machine's own) that does not
    preload it, a throwaway one that does.
    """
    url = os.environ.get("ANJU_TEST_TIMESCALE_URL") or request.getfixturevalue("pg15_admin_url")
    why = _timescale_missing(url)
    with ExitStack() as stack:
        if why and not os.environ.get("ANJU_TEST_TIMESCALE_URL") and os.environ.get("ANJU_TEST_PG15_URL") \
                and timescaledb_installed():
            try:
                url = stack.enter_context(pg15_server(preload_timescaledb=True))
            except ServiceUnavailable as err:
                _unavailable(f"{why}; and no PostgreSQL 15 that preloads it could start: {err}")
            why = _timescale_missing(url)
        if why:
            _unavailable(why)
        yield url


@pytest.fixture(scope="session")
def pg15_not_preloaded_url() -> Iterator[str]:
    """Admin URL of a PostgreSQL 15 with TimescaleDB installed but not in shared_preload_libraries."""
    if not timescaledb_installed():
        _unavailable(f"no TimescaleDB installed for PostgreSQL 15: {BUILD_HINT}")
    with ExitStack() as stack:
        try:
            url = stack.enter_context(pg15_server(preload_timescaledb=False))
        except ServiceUnavailable as err:
            _unavailable(f"no PostgreSQL 15: {err}")
        yield url


@pytest.fixture(params=["partitions", "timescaledb"])
def storage_backend(request: pytest.FixtureRequest) -> str:
    """The time-series form a test's database takes; a test may narrow it with parametrize."""
    return str(request.param)


@pytest.fixture
def database_url_each_backend(storage_backend: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh database, once per ``storage_backend``: monthly partitions on the session's PostgreSQL
    (``pg_admin_url``) and TimescaleDB hypertables on PostgreSQL 15 (``timescale_admin_url``).

    Test modules that must hold on both forms override ``database_url`` with this.
    """
    admin_url = request.getfixturevalue(
        "pg_admin_url" if storage_backend == "partitions" else "timescale_admin_url")
    url = create_database(admin_url)
    try:
        yield url
    finally:
        drop_database(admin_url, url)


@pytest.fixture(scope="session")
def mqtt_url() -> Iterator[str]:
    """URL of a Mosquitto for the whole session: ``ANJU_TEST_MQTT_URL`` or a private one on a free port."""
    url = os.environ.get("ANJU_TEST_MQTT_URL")
    if url:
        yield url
        return
    with mosquitto_broker() as started:
        yield started


@pytest.fixture
def anju_home(tmp_path: Path) -> Path:
    """A private ANJU_HOME for one test."""
    home = tmp_path / "anju-home"
    home.mkdir()
    return home
