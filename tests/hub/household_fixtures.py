"""Shared set-up of the household tests: a schema, two units' leases, a case each, the SMS gateway."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import psycopg

from anju.device_sims.sms_gateway import create_app as gateway_app
from anju.hub.household.signin import add_member
from tests.hub.test_api import add_users, create_schema, seed, serve
from tests.hub.test_cases import new_case

# The lease of E01-3-0101: the tenant, an adult son, a child (no sign-in); E01-3-0102: one tenant.
HOME = "E01-3-0101"
NEIGHBOUR = "E01-3-0102"
TENANT_PHONE = "+8613800000001"
SON_PHONE = "+8613800000002"
CHILD_PHONE = "+8613800000003"
NEIGHBOUR_PHONE = "+8613900000009"


def household_db(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Schema, the API seed, users, the two leases and an open case on each unit; their ids."""
    create_schema(conn)
    ids = seed(conn)
    add_users(conn)
    conn.execute("INSERT INTO units (unit_id, estate_id) VALUES (%s, 'E01'), (%s, 'E01')", (HOME, NEIGHBOUR))
    with conn.transaction():
        ids["tenant"] = add_member(conn, unit_id=HOME, name="王芳", phone=TENANT_PHONE, relation="tenant",
                                   adult=True)
        ids["son"] = add_member(conn, unit_id=HOME, name="王磊", phone=SON_PHONE, relation="member",
                                adult=True)
        ids["child"] = add_member(conn, unit_id=HOME, name="王小", phone=CHILD_PHONE, relation="member",
                                  adult=False)
        ids["neighbour"] = add_member(conn, unit_id=NEIGHBOUR, name="李强", phone=NEIGHBOUR_PHONE,
                                      relation="tenant", adult=True)
    ids["home_alert"], ids["home_case"] = new_case(conn, HOME)
    ids["neighbour_alert"], ids["neighbour_case"] = new_case(conn, NEIGHBOUR, kind="sublet")
    conn.commit()
    return ids


@contextmanager
def sms_gateway() -> Iterator[tuple[str, httpx.Client]]:
    """The SMS gateway stand-in served on a free port: its URL and a client of its control API."""
    with serve(gateway_app()) as url, httpx.Client(base_url=url, timeout=10) as http:
        yield url, http


def messages(http: httpx.Client, to: str | None = None) -> list[dict[str, Any]]:
    """The gateway's outbox (to one number)."""
    params = {"to": to} if to else {}
    listed: list[dict[str, Any]] = http.get("/api/v1/messages", params=params).json()["messages"]
    return listed


def last_code(http: httpx.Client, phone: str) -> str:
    """The code in the latest message to ``phone``."""
    import re

    text = messages(http, phone)[-1]["text"]
    found = re.search(r"验证码是 (\d+)", text)
    assert found is not None, text
    return found.group(1)
