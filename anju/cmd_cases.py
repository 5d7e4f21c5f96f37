"""anju case-work commands: ``users add|disable|enable|unlock|reset-password``, ``audit verify|export|
protect|checkpoint``."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: `anju agent` on a gateway has no PostgreSQL driver
    import psycopg


def register(sub: Any, sim: Any) -> None:
    """Add this group's subcommands to the ``anju`` parser and its ``sim`` group (none)."""
    users = sub.add_parser("users", help="people who use the inspector application")
    usub = users.add_subparsers(dest="users_command", required=True)
    add = usub.add_parser("add", help="add a user (password from ANJU_NEW_USER_PASSWORD or a prompt)")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=["inspector", "supervisor", "auditor", "admin"],
                     help="what the user may do")  # fmt: skip
    add.add_argument("--estate", action="append", default=[],
                     help="an estate this inspector or supervisor works in (repeat for a district)")
    _add_db(add)
    for name, text in (
        ("disable", "disable an account; its sessions end at once"),
        ("enable", "enable a disabled account again"),
        ("unlock", "lift a lockout after failed sign-ins"),
        ("reset-password",
         "set a new password (ANJU_NEW_USER_PASSWORD or a prompt); sessions end, lockout lifts"),
    ):
        one = usub.add_parser(name, help=text)
        one.add_argument("name")
        _add_db(one)

    audit = sub.add_parser("audit", help="the tamper-evident audit log")
    asub = audit.add_subparsers(dest="audit_command", required=True)
    ver = asub.add_parser("verify", help="walk the hash chain and check it against the latest checkpoint;"
                                         " exit 1 naming the first bad sequence number")
    ver.add_argument("--checkpoint", default=None, metavar="SEQ:MAC",
                     help="check against this head instead (e.g. the copy the tenancy system holds)")
    _add_db(ver)
    pro = asub.add_parser("protect", help="as the database superuser: give audit_log to a role the hub never"
                                          " logs in as; the hub's role may then only read and append")
    pro.add_argument("--runtime-role", required=True, help="the role the hub logs in as")
    _add_db(pro)
    chk = asub.add_parser("checkpoint", help="write the chain head to the checkpoint file now")
    _add_db(chk)
    exp = asub.add_parser("export", help="JSON on stdout: the whole log, or one household's case trail")
    exp.add_argument("--unit", default=None, help="a unit id: its alerts, cases, verdicts and audit rows")
    _add_db(exp)


def _add_db(p: argparse.ArgumentParser) -> None:
    p.add_argument("--database-url", default=None,
                   help="default: ANJU_DATABASE_URL, else the embedded PostgreSQL")


def _connect(explicit: str | None) -> psycopg.Connection:
    import psycopg

    from anju.hub.settings import HubSettings
    from anju.hub.storage import ensure_schema
    from anju.hub.storage.embedded import resolve_database_url

    settings = HubSettings()
    conn = psycopg.connect(explicit or resolve_database_url(settings.database_url, settings.home))
    ensure_schema(conn)
    conn.commit()
    return conn


def run(args: argparse.Namespace) -> int | None:
    """Run the command if it belongs to this group; None otherwise."""
    if args.command == "users" and args.users_command == "add":
        return _users_add(args)
    if args.command == "users":
        return _users_change(args)
    if args.command == "audit" and args.audit_command == "verify":
        return _audit_verify(args)
    if args.command == "audit" and args.audit_command == "protect":
        return _audit_protect(args)
    if args.command == "audit" and args.audit_command == "checkpoint":
        return _audit_checkpoint(args)
    if args.command == "audit" and args.audit_command == "export":
        return _audit_export(args)
    return None


def _users_add(args: argparse.Namespace) -> int:
    from anju.hub.auth.errors import AuthError
    from anju.hub.auth.service import add_user

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


def _users_change(args: argparse.Namespace) -> int:
    from anju.hub.auth.errors import AuthError
    from anju.hub.auth.service import disable_user, enable_user, reset_password, unlock_user

    actor = f"system:cli:{getpass.getuser()}"
    command = args.users_command
    password = ""
    if command == "reset-password":
        password = os.environ.get("ANJU_NEW_USER_PASSWORD") or ""
        if not password:
            password = getpass.getpass(f"new password for {args.name}: ")
            if password != getpass.getpass("again: "):
                print("anju users reset-password: the passwords differ", file=sys.stderr)
                return 2
    with _connect(args.database_url) as conn:
        try:
            if command == "disable":
                ended = disable_user(conn, name=args.name, actor=actor)
                said = f"user {args.name} disabled; {ended} session(s) ended"
            elif command == "enable":
                enable_user(conn, name=args.name, actor=actor)
                said = f"user {args.name} enabled"
            elif command == "unlock":
                was = unlock_user(conn, name=args.name, actor=actor)
                said = f"user {args.name} " + ("unlocked" if was else "was not locked; failures forgotten")
            else:
                ended = reset_password(conn, name=args.name, password=password, actor=actor)
                said = f"password of {args.name} reset; {ended} session(s) ended"
        except AuthError as err:
            print(f"anju users {command}: {err}", file=sys.stderr)
            return 2
        conn.commit()
    print(said)
    return 0


def _audit_verify(args: argparse.Namespace) -> int:
    from anju.hub.audit.chain import Checkpoint
    from anju.hub.audit.checkpoint import CheckpointError, CheckpointLog, parse_cli
    from anju.hub.audit.errors import AuditKeyError
    from anju.hub.audit.keys import AuditSettings
    from anju.hub.audit.store import current_key, verify

    settings = AuditSettings()
    checkpoint: Checkpoint | None
    try:
        key = current_key()
        if args.checkpoint:
            checkpoint = parse_cli(args.checkpoint)
            source = "the checkpoint given"
        else:
            checkpoint = CheckpointLog(settings.checkpoint_path()).latest(key)
            source = str(settings.checkpoint_path())
    except (AuditKeyError, CheckpointError) as err:
        print(f"anju audit verify: {err}", file=sys.stderr)
        return 2
    with _connect(args.database_url) as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        result = verify(conn, key=key, checkpoint=checkpoint)
        conn.rollback()
    if checkpoint is None:
        against = f"no checkpoint in {source}: rows deleted from the end would not show"
    else:
        against = f"against checkpoint seq={checkpoint.seq} of {checkpoint.ts.isoformat()} ({source})"
    if result.ok:
        print(f"audit chain ok: {result.rows} rows, head seq={result.head_seq} mac={result.head_mac};"
              f" {against}")
        return 0
    print(f"audit chain BROKEN at seq={result.bad_seq}: {result.problem} "
          f"({result.rows} rows verified before it)")
    return 1


def _audit_export(args: argparse.Namespace) -> int:
    from anju.hub.cases.queries import unit_trail

    with _connect(args.database_url) as conn:
        if args.unit:
            trail = unit_trail(conn, unit_id=args.unit)
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


def _audit_protect(args: argparse.Namespace) -> int:
    import psycopg
    from psycopg import sql

    from anju.hub.audit.guard import protect_audit_log
    from anju.hub.settings import HubSettings
    from anju.hub.storage import ensure_schema
    from anju.hub.storage.embedded import resolve_database_url

    settings = HubSettings()
    url = args.database_url or resolve_database_url(settings.database_url, settings.home)
    with psycopg.connect(url) as conn:
        # Tables are created as the runtime role (it owns everything else), then audit_log is handed on.
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(args.runtime_role)))
        ensure_schema(conn)
        conn.execute("RESET ROLE")
        try:
            protect_audit_log(conn, runtime_role=args.runtime_role)
        except psycopg.errors.InsufficientPrivilege as err:
            print(f"anju audit protect: run it as the database superuser ({err})", file=sys.stderr)
            return 2
        conn.commit()
    print(f"audit_log protected: {args.runtime_role} may read it and append through anju_audit_insert only")
    return 0


def _audit_checkpoint(args: argparse.Namespace) -> int:
    from anju.hub.audit.checkpoint import CheckpointError, CheckpointLog
    from anju.hub.audit.errors import AuditKeyError
    from anju.hub.audit.keys import AuditSettings
    from anju.hub.audit.store import current_key, take_checkpoint

    path = AuditSettings().checkpoint_path()
    try:
        key = current_key()
        with _connect(args.database_url) as conn:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            outcome = take_checkpoint(conn, CheckpointLog(path), key=key)
            conn.rollback()
    except (AuditKeyError, CheckpointError) as err:
        print(f"anju audit checkpoint: {err}", file=sys.stderr)
        return 2
    if outcome.problem:
        print(f"audit chain does not follow its last checkpoint, none written: {outcome.problem}")
        return 1
    cp = outcome.latest
    print(f"checkpoint {'written' if outcome.written else 'unchanged'}: "
          f"seq={cp.seq if cp else 0} in {path}")
    return 0
