"""Schemathesis against the inspector API's OpenAPI schema: no generated request may get a server error.

The app runs under uvicorn over a real PostgreSQL seeded with units, alerts and cases, and every request
carries an admin's bearer token, so the generated requests reach the queries and the case workflow
rather than stopping at 401. Bounded by a few examples per operation to stay well under a minute.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Iterator
from typing import Any, NamedTuple

import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from anju.hub.api.app import create_app
from tests.hub.test_api import add_users, create_schema, login, seed, serve
from tests.services import create_database, drop_database

pytestmark = pytest.mark.integration

# Signing out would end the admin session every other generated request uses.
SKIPPED = {("POST", "/api/auth/logout")}
MAX_EXAMPLES = 20
UNITS = ("E01-1-0101", "E01-1-0302", "E02-2-0501")
TALLY: collections.Counter[str] = collections.Counter()


class Served(NamedTuple):
    base: str
    bearer: dict[str, str]
    alert_ids: tuple[int, ...]
    case_ids: tuple[int, ...]


def point_at_seeded_rows(case: Any, served: Served) -> None:
    """Turn half of the generated ids into ids of seeded rows, deterministically from the generated value,
    so that lookups and workflow actions reach real objects as well as missing ones."""
    params = case.path_parameters or {}
    for name, pool in (("alert_id", served.alert_ids), ("case_id", served.case_ids), ("unit_id", UNITS)):
        value = params.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value % 2 == 0:
            params[name] = pool[value // 2 % len(pool)]
        elif isinstance(value, str) and len(value) % 2 == 0:
            params[name] = pool[len(value) // 2 % len(pool)]


@pytest.fixture(scope="module")
def served(pg_admin_url: str) -> Iterator[Served]:
    """The app over a seeded database, for the whole module: its URL, an admin's bearer header, the ids."""
    previous = os.environ.get("ANJU_AUDIT_KEY")
    os.environ["ANJU_AUDIT_KEY"] = "schemathesis-audit-key-" + "s" * 32
    url = create_database(pg_admin_url)
    try:
        with psycopg.connect(url) as conn:
            create_schema(conn)
            ids = seed(conn)
            add_users(conn)
        alerts = (ids["vacancy"], ids["sublet"], ids["other"])
        cases = (ids["filed_case"], ids["pending_case"])
        with serve(create_app(database_url=url)) as base:
            yield Served(base, login(base, "adm"), alerts, cases)
    finally:
        drop_database(pg_admin_url, url)
        if previous is None:
            os.environ.pop("ANJU_AUDIT_KEY", None)
        else:
            os.environ["ANJU_AUDIT_KEY"] = previous
        if TALLY:
            print(f"\nschemathesis: {sum(TALLY.values())} requests (operation -> status: count)")
            for label, n in sorted(TALLY.items()):
                print(f"  {n:4d}  {label}")


# The schema does not depend on the database: build the app (no connection is made until it starts)
# only to read its OpenAPI document, so each operation becomes its own test.
schema = schemathesis.openapi.from_dict(create_app(database_url="postgresql:///schema-only").openapi())


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: Any, served: Served) -> None:
    if (case.method.upper(), case.path) in SKIPPED:
        pytest.skip("would end the session the other requests use")
    point_at_seeded_rows(case, served)
    response = case.call_and_validate(base_url=served.base, headers=served.bearer,
                                      checks=[not_a_server_error])
    TALLY[f"{case.method.upper()} {case.path} -> {response.status_code}"] += 1
