"""anju filing commands: ``filings requeue`` puts dead-lettered tenancy filings and updates back in the
queue, audited under the operator's name."""

from __future__ import annotations

import argparse
import getpass
from typing import Any


def register(sub: Any, sim: Any) -> None:
    """Add this group's subcommands to the ``anju`` parser and its ``sim`` group (none)."""
    filings = sub.add_parser("filings", help="filings and updates queued for the city tenancy system")
    fsub = filings.add_subparsers(dest="filings_command", required=True)
    req = fsub.add_parser("requeue", help="put dead filings and updates back in the queue (each audited);"
                                          " the hub sends them on its next round")
    which = req.add_mutually_exclusive_group(required=True)
    which.add_argument("--case", type=int, action="append", dest="cases", metavar="CASE_ID",
                       help="a case whose dead rows to requeue (repeat for several)")
    which.add_argument("--all", action="store_true", help="every dead row")
    req.add_argument("--database-url", default=None,
                     help="default: ANJU_DATABASE_URL, else the embedded PostgreSQL")


def run(args: argparse.Namespace) -> int | None:
    """Run the command if it belongs to this group; None otherwise."""
    if args.command != "filings" or args.filings_command != "requeue":
        return None
    from anju.cmd_cases import _connect
    from anju.hub.tenancy.outbox import requeue_dead

    with _connect(args.database_url) as conn, conn.transaction():
        done = requeue_dead(conn, actor=f"system:cli:{getpass.getuser()}",
                            case_ids=None if args.all else args.cases)
    for row in done:
        print(f"case {row.case_id}: {row.kind} requeued (outbox row {row.outbox_id}; it died of:"
              f" {row.last_error or 'unknown'})")
    print(f"{len(done)} row(s) requeued")
    return 0
