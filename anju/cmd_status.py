"""``anju status``: the operator's view of a running anju, from its database (``anju.hub.status``)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(sub: Any, sim: Any) -> None:
    """Add ``anju status``."""
    from anju.cmd_data import add_database_option

    p = sub.add_parser(
        "status", help="agents online or lagging, dead letters per estate, filing queue, detection, disk use",
    )  # fmt: skip
    p.add_argument("--json", action="store_true", help="one JSON object instead of the text report")
    p.add_argument("--tables", type=int, default=15, help="how many of the largest tables to list")
    add_database_option(p)


def run(args: argparse.Namespace) -> int | None:
    """Run ``anju status``; None for any other command. Exit status 1 when an agent needs a look."""
    if args.command != "status":
        return None
    import psycopg

    from anju.db import database_url
    from anju.hub.status import format_status, operator_status

    try:
        with psycopg.connect(database_url(args.database_url)) as conn:
            status = operator_status(conn, tables=args.tables)
    except psycopg.Error as err:
        print(f"anju status: cannot read the hub's database: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(status.as_dict(), default=str, ensure_ascii=False))
    else:
        print(format_status(status))
    return 1 if any(a.problem for a in status.agents) else 0
