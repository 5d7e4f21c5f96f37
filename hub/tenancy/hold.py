"""The household's answer period: how long it holds a confirmed case back from enforcement.

The tenancy filing seam owns whether (and from when) a confirmed case may go out (``filing_eligibility``
in ``filing.py``), so the hold it applies lives here, beside it: a confirmed case is not filed before its
household's answer period ends (the latest notice's ``answer_by``). An undelivered notice holds it,
provisionally for a whole period from now; its delivery moves the filing to the period's real end
(``anju.hub.household.answers.push_filing``). This holds for every unit with someone on its lease on
record (``household_members``); a unit with nobody on record has nobody to tell or to sign in. A
supervisor's recorded reason (``filing_overrides``) releases the case at once.

The household side (notices, answers, sign-in) builds on this module; this module imports nothing of it,
so the case workflow can queue filings without reaching up into the household's pages and services.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg
from pydantic_settings import BaseSettings, SettingsConfigDict


class AnswerPeriod(BaseSettings):
    """``ANJU_HOUSEHOLD_ANSWER_DAYS``: how long a household may answer a notice (from its delivery);
    ``ANJU_HOUSEHOLD_NOTIFY_ON_CONFIRM``: notify again (and open a new answer period) on confirmation.

    The part of the household's policy (``anju.hub.household.policy.HouseholdPolicy`` extends it) that
    the filing hold reads."""

    model_config = SettingsConfigDict(env_prefix="ANJU_HOUSEHOLD_", env_file=None, extra="ignore")

    answer_days: int = 14
    notify_on_confirm: bool = True

    @property
    def answer_period(self) -> timedelta:
        """How long a household may answer, from the delivery of the notice."""
        return timedelta(days=self.answer_days)


def answer_deadline(conn: psycopg.Connection[Any], *, case_id: int) -> tuple[datetime | None, bool]:
    """The end of the case's answer period (the latest notice's), and whether a notice still waits to be
    delivered (its period not yet begun)."""
    row = conn.execute(
        "SELECT max(answer_by), bool_or(answer_by IS NULL) FROM household_notices WHERE case_id = %s",
        (case_id,),
    ).fetchone()
    return (row[0], bool(row[1])) if row else (None, False)


def on_record(conn: psycopg.Connection[Any], case_id: int) -> bool:
    """Whether anyone on the case's unit's lease is on record to be told and to sign in: a unit with
    nobody registered here has no household side to wait for (register the lease to give it one)."""
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM cases c JOIN household_members m ON m.unit_id = c.unit_id"
        " WHERE c.id = %s AND m.active AND (m.relation = 'tenant' OR m.adult))", (case_id,),
    ).fetchone()
    return bool(row and row[0])


def answer_hold(
    conn: psycopg.Connection[Any], *, case_id: int, now: datetime, policy: AnswerPeriod | None = None,
) -> datetime | None:
    """Until when a confirmed case's filing waits for its household's answer period, or None (not held:
    not confirmed, period over, or a supervisor recorded why it must go now)."""
    policy = policy or AnswerPeriod()
    row = conn.execute(
        "SELECT c.status, EXISTS (SELECT 1 FROM filing_overrides o WHERE o.case_id = c.id),"
        " EXISTS (SELECT 1 FROM household_notices n WHERE n.case_id = c.id AND n.event = 'confirmed')"
        " FROM cases c WHERE c.id = %s", (case_id,),
    ).fetchone()
    if row is None or row[0] != "confirmed" or row[1] or not on_record(conn, case_id):
        return None
    deadline, waiting = answer_deadline(conn, case_id=case_id)
    ends = [deadline] if deadline else []
    # A notice not yet delivered (or, by policy, the confirmation's notice not yet written) holds the case
    # for a whole period from now; its delivery then moves the filing to the period's real end.
    if waiting or deadline is None or (policy.notify_on_confirm and not row[2]):
        ends.append(now + policy.answer_period)
    until = max(ends)
    return until if until > now else None
