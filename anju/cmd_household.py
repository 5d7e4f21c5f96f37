"""anju household-side commands: ``household add|remove|list`` (the people on a unit's lease who may
sign in), ``welfare list|visited`` (the welfare office's queue), and ``sim sms`` (the SMS gateway
stand-in)."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from anju.cmd_cases import _add_db, _connect


def register(sub: Any, sim: Any) -> None:
    """Add this group's subcommands to the ``anju`` parser and its ``sim`` group."""
    house = sub.add_parser("household", help="the people on a unit's lease who may sign in to /home")
    hsub = house.add_subparsers(dest="household_command", required=True)
    add = hsub.add_parser("add", help="put a person of a unit's lease on record")
    add.add_argument("unit", help="unit id, e.g. E01-1-0101")
    add.add_argument("--name", required=True, help="the person's name")
    add.add_argument("--phone", required=True, help="mobile number their sign-in codes go to")
    add.add_argument("--relation", required=True, choices=["tenant", "member"],
                     help="tenant of record, or a household member listed on the lease")
    add.add_argument("--adult", action="store_true", help="an adult member (only adults sign in)")
    _add_db(add)
    rem = hsub.add_parser("remove", help="take a person off the lease; their sessions end")
    rem.add_argument("--phone", required=True, help="the mobile number to take off the lease")
    _add_db(rem)
    lst = hsub.add_parser("list", help="JSON: the people on a unit's lease (phones masked)")
    lst.add_argument("unit", help="unit id, e.g. E01-1-0101")
    _add_db(lst)
    welfare = sub.add_parser("welfare", help="the welfare visits (关怀探访), kept apart from enforcement")
    wsub = welfare.add_subparsers(dest="welfare_command", required=True)
    wl = wsub.add_parser("list", help="JSON: the open welfare visits")
    wl.add_argument("--estate", action="append", default=None, help="only these estates (repeat)")
    _add_db(wl)
    wv = wsub.add_parser("visited", help="record a welfare visit as made")
    wv.add_argument("id", type=int, help="the visit's id, from anju welfare list")
    _add_db(wv)
    sms = sim.add_parser("sms", help="the SMS gateway stand-in (an outbox of text messages)")
    sms.add_argument("--host", default="127.0.0.1", help="address to listen on")
    sms.add_argument("--port", type=int, default=8091, help="port to listen on")


def run(args: argparse.Namespace) -> int | None:
    """Run the command if it belongs to this group; None otherwise."""
    if args.command == "sim" and args.sim_command == "sms":
        from anju.device_sims.sms_gateway import run_sms_gateway

        run_sms_gateway(args.host, args.port)
        return 0
    if args.command == "household":
        return _household(args)
    if args.command == "welfare":
        return _welfare(args)
    return None


def _household(args: argparse.Namespace) -> int:
    from anju.hub.household.signin import HouseholdError, add_member, lease_members, remove_member

    actor = f"system:cli:{getpass.getuser()}"
    with _connect(args.database_url) as conn:
        if args.household_command == "list":
            print(json.dumps(lease_members(conn, unit_id=args.unit), ensure_ascii=False, indent=1))
            return 0
        if args.household_command == "remove":
            with conn.transaction():
                removed = remove_member(conn, phone=args.phone, actor=actor)
            print("removed" if removed else "no one active has that number")
            return 0 if removed else 1
        try:
            with conn.transaction():
                member_id = add_member(conn, unit_id=args.unit, name=args.name, phone=args.phone,
                                       relation=args.relation, adult=args.adult, actor=actor)
        except HouseholdError as err:
            print(f"anju household add: {err}", file=sys.stderr)
            return 2
    print(f"{args.name} ({args.relation}) on the lease of {args.unit}: member {member_id}")
    return 0


def _welfare(args: argparse.Namespace) -> int:
    from anju.hub.household.welfare import mark_visited, welfare_queue

    with _connect(args.database_url) as conn:
        if args.welfare_command == "visited":
            with conn.transaction():
                done = mark_visited(conn, welfare_id=args.id, actor=f"system:cli:{getpass.getuser()}")
            print("recorded" if done else "no open welfare visit has that id")
            return 0 if done else 1
        rows = welfare_queue(conn, estates=args.estate)
    print(json.dumps([{"id": w.id, "unit_id": w.unit_id, "estate_id": w.estate_id, "source": w.source,
                       "note": w.note, "created_at": w.created_at.isoformat()} for w in rows],
                     ensure_ascii=False, indent=1))
    return 0
