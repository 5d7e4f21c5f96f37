"""Errors of the audit package."""

from __future__ import annotations


class AuditError(Exception):
    """Base of the audit package's errors."""


class AuditKeyError(AuditError):
    """No usable MAC key: missing outside development, a placeholder, or too short."""
