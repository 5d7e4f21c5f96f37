"""The case workflow's refusals: each carries a code from one catalogue and its parameters.

The pages word a refusal from its code (``hub/api/labels.py`` and the ``refused.<code>`` messages of
``hub/api/i18n.py``, in 中文 and English); the English text here is what logs and the JSON API's
``detail`` say. A test holds the catalogue and the pages' messages to the same set of codes.
"""

from __future__ import annotations

from enum import StrEnum


class Refusal(StrEnum):
    """Why the workflow refused an action: the one catalogue of refusal codes."""

    NOT_FOUND = "not_found"  # no such case, or another estate's (404)
    ROLE = "role"  # this role never takes this action (403): role, action
    ASSIGNED = "assigned"  # the case is someone else's (403): name
    STATUS = "status"  # the action does not apply in the case's status (409): action, status
    ASSIGNEE = "assignee"  # not an inspector of the case's estate (409): name, estate
    VISIT_DATE = "visit_date"  # scheduling a visit needs a date (409)
    DISMISS_REASON = "dismiss_reason"  # a dismissal needs a reason from the list (409)
    OTHER_NOTE = "other_note"  # a dismissal for "other" needs a note (409)
    NOT_OVERDUE = "not_overdue"  # escalation (督办) is for a case past its deadline (409): due
    NOTE_REQUIRED = "note_required"  # this action needs a note saying why (409): action


# English wording of each code, filled with its parameters.
ENGLISH: dict[Refusal, str] = {
    Refusal.NOT_FOUND: "case {case_id} not found",
    Refusal.ROLE: "a {role} may not {action} a case",
    Refusal.ASSIGNED: "case {case_id} is assigned to {name}",
    Refusal.STATUS: "cannot {action} a case that is {status}",
    Refusal.ASSIGNEE: "{name!r} is not an inspector of estate {estate}",
    Refusal.VISIT_DATE: "a visit needs a date",
    Refusal.DISMISS_REASON: "dismissal reason must be one of {choices}",
    Refusal.OTHER_NOTE: "dismissal for 'other' needs a note",
    Refusal.NOT_OVERDUE: "case {case_id} is not overdue (due {due})",
    Refusal.NOTE_REQUIRED: "{action} needs a note saying why",
}


class CaseError(Exception):
    """Base of the case workflow's errors: ``code`` (a ``Refusal``) and ``params`` say why."""

    def __init__(self, code: Refusal, **params: object) -> None:
        self.code = code
        self.params = params
        super().__init__(ENGLISH[code].format(**params))


class CaseNotFound(CaseError):
    """No such case, or not one this person may see (both answer 404)."""

    def __init__(self, case_id: int) -> None:
        super().__init__(Refusal.NOT_FOUND, case_id=case_id)


class ActionForbidden(CaseError):
    """This person's role may not take this action, or the case is assigned to someone else (403)."""


class TransitionRefused(CaseError):
    """The action does not apply to the case's current status, or its input is wrong (409)."""
