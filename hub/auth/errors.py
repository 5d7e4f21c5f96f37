"""Errors of the auth package."""

from __future__ import annotations


class AuthError(Exception):
    """Base of the auth package's errors."""


class UserExists(AuthError):
    """A user of that name exists already."""


class InvalidUser(AuthError):
    """A user definition that cannot be stored (unknown role, estate missing for a scoped role)."""


class UnknownUser(AuthError):
    """No user of that name."""
