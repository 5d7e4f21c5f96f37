"""The household's answer: its period, its reason from the inspectors' list, its photos' types and sizes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from anju.hub.cases.states import DISMISS_REASONS
from anju.hub.household.answers import ANSWER_REASONS, AnswerRefused, NotYours, photo_type, submit_answer
from anju.hub.household.policy import HouseholdPolicy
from anju.hub.household.signin import HouseholdPrincipal, member_principal
from tests.hub.household_fixtures import household_db
from tests.hub.test_household_pages import png

JPEG = b"\xff\xd8\xff\xe0" + b"\0" * 16
WEBP = b"RIFF\x10\0\0\0WEBPVP8 " + b"\0" * 8


def test_photo_types_by_their_bytes() -> None:
    assert photo_type(JPEG) == "image/jpeg"
    assert photo_type(png()) == "image/png"
    assert photo_type(WEBP) == "image/webp"
    for other in (b"GIF89a....", b"<svg xmlns=...>", b"%PDF-1.7", b"RIFF\0\0\0\0WAVEfmt ", b""):
        assert photo_type(other) is None
    assert tuple(DISMISS_REASONS) == ANSWER_REASONS  # the inspectors' list, one list


def test_answers_are_refused_outside_their_period_and_rules(database_url: str) -> None:
    policy = HouseholdPolicy(max_photos=2, max_photo_bytes=1024)
    with psycopg.connect(database_url) as conn:
        ids = household_db(conn)
        tenant = member_principal(conn, ids["tenant"])
        neighbour = member_principal(conn, ids["neighbour"])
        assert tenant is not None and neighbour is not None
        t0 = datetime.now(UTC)
        conn.execute("INSERT INTO household_notices (case_id, event, created_at, recipients, delivered_at,"
                     " answer_by) VALUES (%s, 'opened', %s, 2, %s, %s)",
                     (ids["home_case"], t0, t0, t0 + timedelta(days=14)))

        def answer(reason: str = "hospital", text: str = "", photos: tuple[bytes, ...] = (),
                   now: datetime = t0, who: HouseholdPrincipal = tenant) -> int:
            with conn.transaction():
                return submit_answer(conn, principal=who, case_id=ids["home_case"], reason=reason, text=text,
                                     photos=list(photos), now=now, policy=policy)

        refusals: list[tuple[Callable[[], int], str]] = [
            (lambda: answer(reason="not-a-reason"), "reason"),
            (lambda: answer(reason="other"), "text"),  # "other" needs words
            (lambda: answer(photos=(JPEG, JPEG, JPEG)), "too_many_photos"),
            (lambda: answer(photos=(JPEG + b"\0" * 2000,)), "photo_too_large"),
            (lambda: answer(photos=(b"GIF89a",)), "photo_type"),
            (lambda: answer(now=t0 + timedelta(days=14, seconds=1)), "period_over"),
        ]
        for attempt, code in refusals:
            with pytest.raises(AnswerRefused) as refused:
                attempt()
            assert str(refused.value) == code
        with pytest.raises(NotYours):
            answer(who=neighbour)
        assert answer(photos=(JPEG, WEBP), text="在医院", now=t0 + timedelta(days=13)) > 0
        assert conn.execute("SELECT count(*) FROM household_answer_photos").fetchone() == (2,)
