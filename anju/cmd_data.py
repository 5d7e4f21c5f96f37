"""anju bulk data commands (import, detect, alerts export; eval is dispatched to ``anju.cmd_eval``)."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anju.db import database_url

if TYPE_CHECKING:  # imported where used: `anju agent` on a gateway has no PostgreSQL driver
    import psycopg


def register(sub: Any, sim: Any) -> None:
    """Add this group's subcommands to the ``anju`` parser and its ``sim`` group."""
    imp = sub.add_parser("import", help="bulk-import units, meter readings and access events from CSV")
    imp.add_argument("--units", type=Path, help="units.csv: unit_id,estate_id,building,floor,area_m2,...")
    imp.add_argument("--readings", type=Path, help="readings.csv: ts,unit_id,meter,value (cumulative)")
    imp.add_argument("--access", type=Path, help="access.csv: ts,device_id,estate_id,building,floor,...")
    imp.add_argument("--rejects", type=Path, default=Path("anju-import-rejects.csv"),
                     help="where refused lines go, with line number and reason")
    imp.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    imp.add_argument("--encoding", choices=["utf-8", "gb18030", "gbk"], default="utf-8",
                     help="the files' text encoding: utf-8 (with or without BOM, the default), or "
                          "gb18030/gbk as Chinese spreadsheets export; a file not in it is refused and "
                          "nothing is written")
    add_database_option(imp)

    det = sub.add_parser("detect", help="run detection on the data up to a day; opens or updates alerts")
    det.add_argument("--as-of", type=date.fromisoformat, default=None,
                     help="YYYY-MM-DD (default: the last complete day of data)")
    det.add_argument("--jobs", type=int, default=1,
                     help="worker processes, each judging a share of the estates on its own connection")
    add_database_option(det)

    alerts = sub.add_parser("alerts", help="alerts")
    asub = alerts.add_subparsers(dest="alerts_command", required=True)
    exp = asub.add_parser("export", help="alerts as CSV on stdout")
    exp.add_argument("--format", choices=["csv"], default="csv", help="output format")
    exp.add_argument("--status", choices=["open", "closed"], default=None, help="only these (default: all)")
    add_database_option(exp)

    ev = sub.add_parser("eval", help="generate a labelled scenario, import it, detect, and score")
    ev.add_argument("--generator", choices=["households", "appliances"], default="households",
                    help="which household model makes the scenario (two independently written ones)")
    ev.add_argument("--mode", choices=["daily", "once"], default="daily",
                    help="daily: detect every --cadence-days as the hub does; once: import the history and "
                         "detect once on its last day (a city switching anju on)")
    ev.add_argument("--cross", action="store_true",
                    help="both generators x --seeds seeds x both modes; prints the mean and worst seed per "
                         "kind (rules only, no models: slow at large sizes, see bench/README.md)")
    ev.add_argument("--seeds", type=int, default=5, help="with --cross: how many seeds of each generator")
    ev.add_argument("--first-seed", type=int, default=1,
                    help="with --cross: the first of the seeds (seeds nobody looked at make a held-out run)")
    ev.add_argument("--jobs", type=int, default=1,
                    help="with --cross: scenarios run in this many processes, each on a database of its own "
                         "beside the given one")
    ev.add_argument("--units", type=int, default=2000, help="simulated units")
    ev.add_argument("--days", type=int, default=180, help="simulated days")
    ev.add_argument("--seed", type=int, default=1, help="random seed of the simulation")
    ev.add_argument("--workdir", type=Path, default=None, help="where the CSV files go (default: a temp dir)")
    ev.add_argument("--cadence-days", type=int, default=1,
                    help="run detection every this many days (default 1: daily, as the hub does; a longer "
                         "cadence is faster but adds up to cadence-1 days to the time to first alert)")
    ev.add_argument("--database-url", default=None,
                    help="use this (empty) database; default: a fresh 'anju_eval' on the hub's server")
    ev.add_argument("--save-verdict-models", type=Path, default=None, metavar="FILE",
                    help="write the verdict models trained on this scenario's simulated verdicts (JSON)")
    ev.add_argument("--verdict-models", type=Path, default=None, metavar="FILE",
                    help="also score verdict models saved from another scenario (another seed) on this "
                         "scenario's verdicts: a held-out test")


def add_database_option(p: argparse.ArgumentParser) -> None:
    """The ``--database-url`` option of commands that work on the hub's database."""
    p.add_argument("--database-url", default=None,
                   help="default: ANJU_DATABASE_URL, else the embedded PostgreSQL")


def connect_database(explicit: str | None) -> psycopg.Connection:
    """A connection to the hub's database (given, from the environment, or embedded), schema ensured."""
    import psycopg

    from anju.hub.storage import ensure_schema

    conn = psycopg.connect(database_url(explicit))
    ensure_schema(conn)
    conn.commit()
    return conn


def run(args: argparse.Namespace) -> int | None:
    """Run the command if it belongs to this group; None otherwise."""
    if args.command == "import":
        return _import(args)
    if args.command == "detect":
        return _detect(args)
    if args.command == "alerts" and args.alerts_command == "export":
        return _export(args)
    if args.command == "eval":
        from anju.cmd_eval import run_eval

        return run_eval(args)
    return None


def _import(args: argparse.Namespace) -> int:
    from anju.hub.bulk import BulkImport, BulkImportError, import_all
    from anju.hub.settings import HubSettings

    if not (args.units or args.readings or args.access):
        print("anju import: give at least one of --units, --readings, --access", file=sys.stderr)
        return 2
    files = BulkImport(units=args.units, readings=args.readings, access=args.access)
    settings = HubSettings()
    with connect_database(args.database_url) as conn:
        try:
            results = import_all(conn, files, rejects_path=args.rejects, tz=settings.estate_tz,
                                 progress=not args.no_progress, encoding=args.encoding,
                                 bounds=settings.time_bounds())
        except BulkImportError as err:
            print(f"anju import: {err}", file=sys.stderr)
            return 2
    rejected = 0
    for r in results:
        rejected += r.rows_rejected
        print(f"{r.kind}: read={r.rows_read} new={r.rows_new} already_present={r.rows_known} "
              f"rejected={r.rows_rejected} seconds={r.seconds:.1f} rows_per_s={r.rows_per_s:,.0f}")
    print(f"rejects: {rejected} line(s) in {args.rejects}")
    if rejected:
        print(f"anju import: {rejected} line(s) refused; see {args.rejects}", file=sys.stderr)
    return 0


def _detect(args: argparse.Namespace) -> int:
    from anju.hub.detection.asof import detect_as_of
    from anju.hub.detection.service import last_complete_day
    from anju.hub.settings import HubSettings

    tz = HubSettings().estate_tz  # the days detection refreshes and judges: those the importer marked
    with connect_database(args.database_url) as conn:
        as_of = args.as_of or last_complete_day(conn, tz=tz)
        if as_of is None:
            print("anju detect: no data", file=sys.stderr)
            return 1
        r = detect_as_of(conn, as_of=as_of, tz=tz, jobs=args.jobs)
    print(f"as_of={r.as_of} units={r.units} flagged_vacancy={r.flagged_vacancy} "
          f"flagged_sublet={r.flagged_sublet} no_verdict={r.no_verdict} alerts_opened={r.alerts_opened} "
          f"alerts_updated={r.alerts_updated} cases_opened={r.cases_opened}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from anju.hub.bulk import export_alerts_csv

    with connect_database(args.database_url) as conn:
        export_alerts_csv(conn, sys.stdout, status=args.status)
    return 0
