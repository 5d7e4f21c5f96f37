"""Household sign-in by one-time code and notices through the SMS gateway's outbox, exactly once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import psycopg

from anju.hub.household.gateway import SmsGateway
from anju.hub.household.notify import deliver_notifications, queue_case_notices
from anju.hub.household.pipeline import household_step
from anju.hub.household.policy import HouseholdPolicy
from anju.hub.household.signin import (
    deliver_code,
    household_session,
    open_household_session,
    request_code,
    verify_code,
)
from tests.hub.household_fixtures import (
    CHILD_PHONE,
    HOME,
    SON_PHONE,
    TENANT_PHONE,
    household_db,
    last_code,
    messages,
    sms_gateway,
)


def test_code_sign_in_limits_expiry_and_hashing(database_url: str) -> None:
    policy = HouseholdPolicy(code_gap_s=0, codes_per_phone_hour=3)
    t0 = datetime.now(UTC)
    with psycopg.connect(database_url) as conn, sms_gateway() as (url, http), SmsGateway(url) as gateway:
        ids = household_db(conn)
        with conn.transaction():
            asked = request_code(conn, phone="+86 138-0000-0001", address="10.0.0.1", now=t0, policy=policy)
        assert asked.refused is None and asked.member_id == ids["tenant"]
        assert deliver_code(gateway, asked)
        code = last_code(http, TENANT_PHONE)
        assert code == asked.code
        stored = conn.execute("SELECT code_mac FROM household_codes WHERE id = %s",
                              (asked.code_id,)).fetchone()
        assert stored is not None and code not in stored[0] and len(stored[0]) == 64  # a MAC, not the code

        # A wrong code counts; five wrong ones void the code even for the right one after.
        with conn.transaction():
            who, why = verify_code(conn, phone=TENANT_PHONE, code="000000" if code != "000000" else "111111",
                                   address="10.0.0.1", now=t0, policy=policy)
        assert who is None and why == "wrong"
        with conn.transaction():
            who, why = verify_code(conn, phone=TENANT_PHONE, code=code, address="10.0.0.1", now=t0,
                                   policy=policy)
        assert who is not None and who.unit_id == HOME and who.relation == "tenant"
        with conn.transaction():  # used once
            assert verify_code(conn, phone=TENANT_PHONE, code=code, address="10.0.0.1", now=t0,
                               policy=policy)[0] is None
            token = open_household_session(conn, principal=who, now=t0)
        assert household_session(conn, token) == who

        # Expired: a code entered after its lifetime is refused.
        with conn.transaction():
            again = request_code(conn, phone=SON_PHONE, address="10.0.0.2", now=t0, policy=policy)
        assert deliver_code(gateway, again)
        late = t0 + policy.code_ttl + timedelta(seconds=1)
        with conn.transaction():
            assert verify_code(conn, phone=SON_PHONE, code=last_code(http, SON_PHONE), address="10.0.0.2",
                               now=late, policy=policy)[0] is None

        # A child on the lease and a number on no lease: the same answer, nothing sent, nothing to enter.
        for phone in (CHILD_PHONE, "+8613011112222"):
            with conn.transaction():
                other = request_code(conn, phone=phone, address="10.0.0.3", now=t0, policy=policy)
            assert other.refused is None and other.code is None and deliver_code(gateway, other)
            assert messages(http, phone) == []

        # Rate limit: the fourth code to one number within the hour is refused.
        for i in range(2):
            with conn.transaction():
                assert request_code(conn, phone=TENANT_PHONE, address="10.0.0.4",
                                    now=t0 + timedelta(seconds=i + 1), policy=policy).refused is None
        with conn.transaction():
            assert request_code(conn, phone=TENANT_PHONE, address="10.0.0.4", now=t0 + timedelta(seconds=5),
                                policy=policy).refused == "limited"
        actions = [r[0] for r in conn.execute(
            "SELECT action FROM audit_log WHERE action LIKE 'household.%' ORDER BY seq").fetchall()]
        assert actions.count("household.login") == 1
        assert actions.count("household.login_failed") == 3
        assert "household.code_limited" in actions and actions.count("household.code_issued") >= 6


def test_notice_reaches_each_phone_exactly_once_under_gateway_faults(database_url: str) -> None:
    with (psycopg.connect(database_url) as conn, sms_gateway() as (url, http),
          SmsGateway(url, timeout=2) as gw):
        ids = household_db(conn)
        policy = HouseholdPolicy()
        # The seed's open case (a unit with nobody on record to text) and one case on each lease.
        assert queue_case_notices(conn, policy=policy) == 3
        assert queue_case_notices(conn, policy=policy) == 0  # once per event
        http.post("/_sim/faults", json={"fail_next": 2, "error_rate": 0.5, "reset_rate": 0.5})
        now = datetime.now(UTC)
        drains = 0
        pending = "SELECT count(*) FROM notification_outbox WHERE state = 'pending'"
        while conn.execute(pending).fetchone() != (0,):
            deliver_notifications(conn, gateway=gw, now=now, policy=policy)
            now += timedelta(hours=2)  # past any backoff
            drains += 1
            assert drains < 30
        sent = messages(http)
        stats = http.get("/_sim/stats").json()
        # The tenant and the adult son of HOME, the neighbour's tenant: three messages, each once.
        assert sorted(m["to"] for m in sent) == sorted([TENANT_PHONE, SON_PHONE, "+8613900000009"])
        assert len({m["idempotency_key"] for m in sent}) == len(sent) == 3
        assert stats["outage_503"] == 2 and stats["error_500"] >= 1 and stats["reset_after_send"] >= 1
        resent = sum(m["requests"] - 1 for m in sent)
        assert resent == stats["repeated"] >= 1  # the lost answers were sent again, and dropped as repeats
        states = conn.execute("SELECT state, count(*) FROM notification_outbox GROUP BY state").fetchall()
        assert states == [("sent", 3)]
        notice = conn.execute("SELECT delivered_at, answer_by FROM household_notices WHERE case_id = %s",
                              (ids["home_case"],)).fetchone()
        assert notice is not None and notice[1] - notice[0] == policy.answer_period
        print(f"notices: 3 messages sent exactly once in {drains} drains; faults injected: "
              f"{stats['outage_503']} x 503, {stats['error_500']} x 500, {stats['reset_after_send']} resets "
              f"after send; {resent} repeats dropped by the gateway")


def test_gateway_refuses_a_reused_key_with_another_text() -> None:
    with sms_gateway() as (_url, http):
        body = {"to": "+8613800000001", "text": "hello"}
        assert http.post("/api/v1/messages", json=body, headers={"Idempotency-Key": "k1"}).status_code == 201
        assert http.post("/api/v1/messages", json=body, headers={"Idempotency-Key": "k1"}).status_code == 200
        other = {**body, "text": "bye"}
        assert http.post("/api/v1/messages", json=other, headers={"Idempotency-Key": "k1"}).status_code == 409
        assert http.post("/api/v1/messages", json=body).status_code == 400
        assert len(messages(http)) == 1 and isinstance(http, httpx.Client)


def test_the_hub_loop_step_notifies_once_and_sweeps_welfare_signals(database_url: str) -> None:
    with psycopg.connect(database_url) as conn, sms_gateway() as (url, http), SmsGateway(url) as gateway:
        household_db(conn)
        now = datetime.now(UTC)
        http.post("/_sim/faults", json={"fail_next": 1})
        first = household_step(conn, gateway=gateway, now=now)
        assert (first.sent, first.retried) == (2, 1)  # the first text met an outage
        again = household_step(conn, gateway=gateway, now=now + timedelta(hours=2))
        assert (again.sent, again.retried) == (1, 0)
        assert household_step(conn, gateway=gateway, now=now + timedelta(hours=4)).sent == 0
        assert len(messages(http)) == 3
        with conn.transaction():
            request_code(conn, phone=TENANT_PHONE, address="10.0.0.9", now=now)
        household_step(conn, gateway=gateway, now=now + timedelta(hours=23))
        assert conn.execute("SELECT count(*) FROM household_codes").fetchone() == (1,)  # kept a day
        household_step(conn, gateway=gateway, now=now + timedelta(hours=25))
        assert conn.execute("SELECT count(*) FROM household_codes").fetchone() == (0,)
