"""How likely a household keeping its habits is to show as few entries, or faces, as it did since a day.

A household's habit is known only from its record, so its share is taken as low as the record allows
(``habit_share``); the sublet rule asks its departure to be rare even so (``anju.models.sublet``).
"""

from __future__ import annotations

from datetime import date, timedelta

from anju.models.enrolment import binomial_cdf
from anju.models.features import DailyFeatures

HABIT_Z = 1.645  # one-sided 95%: a household's usual share is taken as low as its record allows


def habit_share(k: int, n: int, z: float = HABIT_Z) -> float:
    """The lower Wilson bound of a share seen as ``k`` of ``n`` days.

    A household's earlier habit is known only from its record, and the departure day is picked where the
    change looks least like chance, so the days just before it tend to be its busiest: taking the share at
    face value (11 of 21 face days, then a fortnight of card entries) calls a run of chance a change. The
    lower bound asks the change to be unlikely even for the most modest habit the record is consistent
    with.
    """
    if n <= 0:
        return 0.0
    phat = k / n
    centre = phat + z * z / (2 * n)
    spread = z * (phat * (1 - phat) / n + z * z / (4 * n * n)) ** 0.5
    return max(0.0, (centre - spread) / (1 + z * z / n))


def presence_change_chance(days: tuple[DailyFeatures, ...], *, left: date, end: date) -> float:
    """The chance that a household keeping its earlier habits enters on as few of the gate's working days
    since ``left`` as it did, when before ``left`` it entered on its usual share of them (a binomial tail;
    the share is ``habit_share`` of all its earlier days on record)."""
    gate = [d for d in days if d.day <= end and d.gate_working]
    before = [d for d in gate if d.day < left]
    after = [d for d in gate if d.day >= left]
    if not before:
        return 1.0
    share = habit_share(sum(1 for d in before if d.tenant_entries > 0), len(before))
    return binomial_cdf(sum(1 for d in after if d.tenant_entries > 0), len(after), share)


def face_change_chance(days: tuple[DailyFeatures, ...], *, left: date, end: date) -> float:
    """The chance that a household keeping its earlier habits shows no more face days than it did since
    ``left``: of its days with a registered entry (card, code or face) since then, as few with a face,
    when before ``left`` a face was recognised on its usual share of such days (a binomial tail; the share
    is ``habit_share`` of its earlier such days).
    """
    def counts(lo: date | None, hi: date) -> tuple[int, int]:
        entered = [d for d in days if (lo is None or lo <= d.day) and d.day <= hi and d.tenant_entries > 0]
        return len(entered), sum(1 for d in entered if d.tenant_face_entries > 0)

    n_before, k_before = counts(None, left - timedelta(days=1))
    n_after, k_after = counts(left, end)
    if n_before == 0:
        return 1.0
    return binomial_cdf(k_after, n_after, habit_share(k_before, n_before))
