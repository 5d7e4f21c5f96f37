"""Shared fixtures: real PostgreSQL and real Mosquitto, started by the tests themselves."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.services import (
    ServiceUnavailable,
    create_database,
    drop_database,
    mosquitto_broker,
    pg15_server,
    postgres_server,
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


@pytest.fixture(scope="session")
def pg15_admin_url() -> Iterator[str]:
    """Admin URL of a PostgreSQL 15 for the whole session (see ``pg15_server``); skips where none can run."""
    with ExitStack() as stack:
        try:
            url = stack.enter_context(pg15_server())
        except ServiceUnavailable as err:
            pytest.skip(f"no PostgreSQL 15: {err}")
        yield url


@pytest.fixture(params=["main", "pg15"])
def database_url_each_server(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh database, once on the session's PostgreSQL (``pg_admin_url``) and once on a PostgreSQL 15.

    Test modules that must hold on every supported server version override ``database_url`` with this.
    """
    admin_url = request.getfixturevalue("pg_admin_url" if request.param == "main" else "pg15_admin_url")
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
