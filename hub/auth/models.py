"""Roles and the signed-in person (a principal), with the object-level scope checks everything uses."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """What a person may do: see and act on their estates, assign, read everything, or administer."""

    INSPECTOR = "inspector"
    SUPERVISOR = "supervisor"
    AUDITOR = "auditor"
    ADMIN = "admin"


# Roles whose view is limited to the estates listed for them (a supervisor's district is such a list).
SCOPED_ROLES = frozenset({Role.INSPECTOR, Role.SUPERVISOR})


@dataclass(frozen=True, slots=True)
class Principal:
    """A signed-in user: name, role and, for scoped roles, the estates they may see."""

    user_id: int
    name: str
    role: Role
    estates: frozenset[str]

    @property
    def actor(self) -> str:
        """The name the audit log records this person under."""
        return f"user:{self.name}"

    @property
    def scoped(self) -> bool:
        """Whether this person sees only their own estates."""
        return self.role in SCOPED_ROLES

    def sees(self, estate_id: str) -> bool:
        """Whether an object of this estate exists for this person (others answer 404)."""
        return not self.scoped or estate_id in self.estates

    def estate_filter(self) -> list[str] | None:
        """Estates to restrict queries to; None for everything."""
        return sorted(self.estates) if self.scoped else None
