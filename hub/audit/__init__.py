"""Tamper-evident audit log: rows chained with a keyed MAC, appended under a lock, verified end to end."""
