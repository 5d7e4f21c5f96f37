"""The queue's filters as one value read from a page's query string, shared by the queue page, the
visit list (CSV and printable) and the visit sheets; pure."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from starlette.datastructures import QueryParams

from anju.hub.auth.models import Principal
from anju.hub.cases.schemas import AlertSort
from anju.hub.cases.states import STATUSES

MAX_AGE_DAYS = 36_500
# The case states the queue filters on (the workflow's statuses, hub/cases/states.py).
CASE_STATES = STATUSES  # the workflow's statuses (hub/cases/states.py)


def form_days(text: str) -> int | None:
    """A number of days from a form field: None when blank or not a number, clamped to 0..100 years."""
    text = text.strip()[:16]
    if not text.isdecimal() or not text.isascii():
        return None
    return min(int(text), MAX_AGE_DAYS)


def form_id(text: str | None) -> int | None:
    """An alert id (a keyset cursor) from a query parameter, or None."""
    if text is None or not text.isascii() or not text.isdigit() or len(text) > 18:
        return None
    return int(text)


@dataclass(frozen=True, slots=True)
class QueueQuery:
    """What a person asked the queue for: the filters, the order and the page (keyset cursor)."""

    estate: str = ""
    kind: str = ""
    status: str = "open"
    min_age_days: int | None = None
    max_age_days: int | None = None
    sort: AlertSort = AlertSort.RISK
    mine: bool = False
    assignee: str = ""
    state: str = ""
    overdue: bool = False
    q: str = ""
    after: int | None = None
    before: int | None = None

    @classmethod
    def parse(cls, params: QueryParams) -> QueueQuery:
        """Read the query string leniently: an unknown value means "no filter", never an error page."""
        def text(name: str, default: str = "", size: int = 64) -> str:
            return params.get(name, default).strip()[:size]

        sort = text("sort", "risk", 16)
        state = text("state", "", 32)
        return cls(
            estate=text("estate"), kind=text("kind", "", 32), status=text("status", "open", 16),
            min_age_days=form_days(params.get("min_age_days", "")),
            max_age_days=form_days(params.get("max_age_days", "")),
            sort=AlertSort(sort) if sort in AlertSort.__members__.values() else AlertSort.RISK,
            mine=bool(params.get("mine")), assignee=text("assignee"),
            state=state if state in CASE_STATES else "", overdue=bool(params.get("overdue")),
            q=text("q"), after=form_id(params.get("after")), before=form_id(params.get("before")),
        )

    def query_args(self, user: Principal) -> dict[str, Any]:
        """Keyword arguments of ``list_alerts`` for this person (their estates, "mine" as their name)."""
        return {
            "estate": self.estate or None, "kind": self.kind or None,
            "status": None if self.status == "all" else self.status or None, "estates": user.estate_filter(),
            "min_age_days": self.min_age_days, "max_age_days": self.max_age_days, "sort": self.sort,
            "assignee": user.name if self.mine else self.assignee or None, "unit_search": self.q or None,
            "case_state": self.state or None, "overdue": self.overdue,
        }

    def form(self) -> dict[str, str]:
        """The filters as the form's fields show them (and as links carry them on), without the page."""
        values = asdict(self)
        del values["after"], values["before"]
        out = {k: "" if v is None or v is False else "1" if v is True else str(v) for k, v in values.items()}
        out["sort"] = self.sort.value
        return out

    def link_params(self, **extra: object) -> dict[str, str]:
        """The non-empty filters, for a link to another page of the queue or to the visit list."""
        return {k: v for k, v in {**self.form(), **{k: str(v) for k, v in extra.items()}}.items() if v}
