"""Export of alerts as CSV: ``unit_id,kind,score,first_flagged,status,reasons``."""

from __future__ import annotations

import csv
from typing import IO

import psycopg

EXPORT_COLUMNS = ("unit_id", "kind", "score", "first_flagged", "status", "reasons")


def _reasons_text(reasons: object) -> str:
    """Reason codes with their values, e.g. ``no_tenant_entries=0 (baseline 41); ...``."""
    if not isinstance(reasons, list):
        return ""
    parts = []
    for r in reasons:
        if not isinstance(r, dict):
            continue
        part = str(r.get("code", ""))
        if r.get("value") is not None:
            part += f"={r['value']}"
            if r.get("baseline") is not None:
                part += f" (baseline {r['baseline']})"
        parts.append(part)
    return "; ".join(parts)


def export_alerts_csv(conn: psycopg.Connection, out: IO[str], *, status: str | None = None) -> int:
    """Write every alert (or those with ``status``) as CSV to ``out``; return the number of rows."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    rows = conn.execute(
        "SELECT unit_id, kind, score, first_flagged, status, reasons FROM alerts"
        " WHERE %(status)s::text IS NULL OR status = %(status)s ORDER BY unit_id, kind, first_flagged",
        {"status": status},
    ).fetchall()
    for unit_id, kind, score, first, st, reasons in rows:
        writer.writerow([unit_id, kind, f"{score:.3f}", first.isoformat(), st, _reasons_text(reasons)])
    return len(rows)
