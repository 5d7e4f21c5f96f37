"""Tamper-evident audit log: rows chained with a keyed MAC, appended under a lock, verified end to end.

``record_audit`` is the one entry point every domain (auth, cases, detection, tenancy) writes through.
"""

from anju.hub.audit.record import deferred_audit, record_audit

__all__ = ["deferred_audit", "record_audit"]
