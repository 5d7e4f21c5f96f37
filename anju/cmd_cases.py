"""anju case-work commands: ``users add``, ``audit verify``, ``audit export``."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from typing import Any

import psycopg


def register(sub: Any, sim: Any) -> None:
    """Add this group's subcommands to the ``anju`` parser and its ``sim`` group (none)."""
    users = sub.add_parser("users", help="people who use the inspector application")
    usub = users.add_subparsers(dest="users_command", required=True)
    add = usub.add_parser("add", help="add a user (password from ANJU_NEW_USER_PASSWORD or a prompt)")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=["inspector", "supervisor", "auditor", "admin"])
    add.add_argument("--estate", action="append", default=[],
                     help="an estate this inspector or supervisor works in (repeat for a district)")
    _add_db(add)

    audit = sub.add_parser("audit", help="the tamper-evident audit log")
    asub = audit.add_subparsers(dest="audit_command", required=True)
    ver = asub.add_parser("verify", help="walk the hash chain; exit 1 naming the first bad sequence number")
    _add_db(ver)
    exp = asub.add_parser("export", help="JSON on stdout: the whole log, or one household's case trail")
    exp.add_argument("--unit", default=None, help="a unit id: its alerts, cases, verdicts and audit rows")
    _add_db(exp)


def _add_db(p: argparse.ArgumentParser) -> None:
    p.add_argument("--database-url", default=None,
                   help="default: ANJU_DATABASE_URL, else the embedded PostgreSQL")


def _connect(explicit: str | None) -> psycopg.Connection:
    from hub.settings import HubSettings
    from hub.storage import ensure_schema
    from hub.storage.embedded import resolve_database_url

    settings = HubSettings()
    conn = psycopg.connect(explicit or resolve_database_url(settings.database_url, settings.home))
    ensure_schema(conn)
    conn.commit()
    return conn


def run(args: argparse.Namespace) -> int | None:
    """Run the command if it belongs to this group; None otherwise."""
    if args.command == "users" and args.users_command == "add":
        return _users_add(args)
    if args.command == "audit" and args.audit_command == "verify":
        return _audit_verify(args)
    if args.command == "audit" and args.audit_command == "export":
        return _audit_export(args)
    return None


def _users_add(args: argparse.Namespace) -> int:
    from hub.auth.errors import AuthError
    from hub.auth.service import add_user

    password = os.environ.get("ANJU_NEW_USER_PASSWORD")
    if not password:
        password = getpass.getpass(f"password for {args.name}: ")
        if password != getpass.getpass("again: "):
            print("anju users add: the passwords differ", file=sys.stderr)
            return 2
    with _connect(args.database_url) as conn:
        try:
            add_user(conn, name=args.name, role=args.role, password=password, estates=args.estate,
                     actor=f"system:cli:{getpass.getuser()}")
        except AuthError as err:
            print(f"anju users add: {err}", file=sys.stderr)
            return 2
        conn.commit()
    where = f" for {', '.join(args.estate)}" if args.estate else ""
    print(f"user {args.name} added as {args.role}{where}")
    return 0


def _audit_verify(args: argparse.Namespace) -> int:
    from hub.audit.errors import AuditKeyError
    from hub.audit.store import verify

    with _connect(args.database_url) as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        try:
            result = verify(conn)
        except AuditKeyError as err:
            print(f"anju audit verify: {err}", file=sys.stderr)
            return 2
        conn.rollback()
    if result.ok:
        print(f"audit chain ok: {result.rows} rows, head seq={result.head_seq} mac={result.head_mac}")
        return 0
    print(f"audit chain BROKEN at seq={result.bad_seq}: {result.problem} "
          f"({result.rows} rows verified before it)")
    return 1


def _audit_export(args: argparse.Namespace) -> int:
    from hub.api import queries

    with _connect(args.database_url) as conn:
        if args.unit:
            trail = queries.unit_trail(conn, unit_id=args.unit)
            if trail is None:
                print(f"anju audit export: no unit {args.unit}", file=sys.stderr)
                return 1
            sys.stdout.write(trail.model_dump_json(indent=2) + "\n")
            return 0
        with conn.cursor(name="audit_export") as cur:
            cur.execute("SELECT seq, ts, actor, action, object_type, object_id, detail, mac FROM audit_log"
                        " ORDER BY seq")
            for seq, ts, actor, action, otype, oid, detail, mac in cur:
                row = {"seq": seq, "ts": ts.isoformat(), "actor": actor, "action": action,
                       "object_type": otype, "object_id": oid, "detail": detail, "mac": mac}
                sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
        return 0
