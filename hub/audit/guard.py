"""Hand ``audit_log`` to a role the hub never logs in as, leaving the runtime role read and append only.

Run once per database by someone with the database's superuser (``anju audit protect``): the hub's own
role creates and migrates every other table, so it cannot be the one to give this one away for good.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

AUDIT_OWNER = "anju_audit_owner"
INSERT_FN = "anju_audit_insert(bigint, timestamptz, text, text, text, text, jsonb, text)"


def protect_audit_log(conn: psycopg.Connection[Any], *, runtime_role: str) -> None:
    """Make ``AUDIT_OWNER`` (NOLOGIN) own audit_log, its triggers' function and the insert function;
    the runtime role keeps SELECT on the table and EXECUTE on the insert function, nothing more.
    Idempotent; the caller commits. Needs a superuser (or a role that may create roles and owns both)."""
    conn.execute(sql.SQL(
        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {owner}) THEN"
        " CREATE ROLE {role} NOLOGIN; END IF; END $$"
    ).format(owner=sql.Literal(AUDIT_OWNER), role=sql.Identifier(AUDIT_OWNER)))
    owner, runtime = sql.Identifier(AUDIT_OWNER), sql.Identifier(runtime_role)
    fn = sql.SQL(INSERT_FN)
    for stmt in (
        sql.SQL("ALTER TABLE audit_log OWNER TO {}").format(owner),
        sql.SQL("ALTER FUNCTION anju_audit_append_only() OWNER TO {}").format(owner),
        sql.SQL("ALTER FUNCTION {} OWNER TO {}").format(fn, owner),
        sql.SQL("REVOKE ALL ON audit_log FROM PUBLIC, {}").format(runtime),
        sql.SQL("GRANT SELECT ON audit_log TO {}").format(runtime),
        sql.SQL("REVOKE ALL ON FUNCTION {} FROM PUBLIC").format(fn),
        sql.SQL("GRANT EXECUTE ON FUNCTION {} TO {}").format(fn, runtime),
    ):
        conn.execute(stmt)


def runtime_role_owns_audit_log(conn: psycopg.Connection[Any]) -> bool:
    """Whether the connected role could rewrite audit_log (owner, member of the owner, or superuser)."""
    row = conn.execute(
        "SELECT pg_has_role(current_user, relowner, 'USAGE') FROM pg_class WHERE oid = 'audit_log'::regclass"
    ).fetchone()
    return bool(row and row[0])
