"""anju bulk data commands (import, detect, alerts export, eval)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    ev.add_argument("--seeds", type=int, default=5, help="with --cross: seeds 1..N of each generator")
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


def _database_url(explicit: str | None) -> str:
    from hub.settings import HubSettings
    from hub.storage.embedded import resolve_database_url

    settings = HubSettings()
    return explicit or resolve_database_url(settings.database_url, settings.home)


def connect_database(explicit: str | None) -> psycopg.Connection:
    """A connection to the hub's database (given, from the environment, or embedded), schema ensured."""
    import psycopg

    from hub.storage import ensure_schema

    conn = psycopg.connect(_database_url(explicit))
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
    from hub.bulk import BulkImport, BulkImportError, import_all
    from hub.settings import HubSettings

    if not (args.units or args.readings or args.access):
        print("anju import: give at least one of --units, --readings, --access", file=sys.stderr)
        return 2
    files = BulkImport(units=args.units, readings=args.readings, access=args.access)
    with connect_database(args.database_url) as conn:
        try:
            results = import_all(conn, files, rejects_path=args.rejects, progress=not args.no_progress,
                                 encoding=args.encoding, bounds=HubSettings().time_bounds())
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
    from hub.detection.asof import detect_as_of
    from hub.detection.service import last_complete_day

    with connect_database(args.database_url) as conn:
        as_of = args.as_of or last_complete_day(conn)
        if as_of is None:
            print("anju detect: no data", file=sys.stderr)
            return 1
        r = detect_as_of(conn, as_of=as_of)
    print(f"as_of={r.as_of} units={r.units} flagged_vacancy={r.flagged_vacancy} "
          f"flagged_sublet={r.flagged_sublet} no_verdict={r.no_verdict} alerts_opened={r.alerts_opened} "
          f"alerts_updated={r.alerts_updated} cases_opened={r.cases_opened}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from hub.bulk import export_alerts_csv

    with connect_database(args.database_url) as conn:
        export_alerts_csv(conn, sys.stdout, status=args.status)
    return 0



def _load_verdict_models(path: Path) -> dict[str, Any]:
    """Verdict models saved by ``--save-verdict-models``, by kind."""
    from models.verdict_model import VerdictModel

    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object of models by kind")
    unknown = set(data) - {"vacancy", "sublet"}
    if unknown:
        raise ValueError(f"unknown kind(s) {', '.join(sorted(unknown))}; expected vacancy or sublet")
    return {kind: VerdictModel.from_json(m) for kind, m in data.items()}


def _eval_models(
    conn: psycopg.Connection, truth: list[Any], *, as_of: date, policy: Any,
    held_out: dict[str, Any] | None = None, save_to: Path | None = None,
) -> list[str]:
    """How well the scikit-learn models rank, against the scenario's truth: the anomaly percentile over
    all units, the alert scores over the alerts, and a verdict model trained on verdicts simulated from
    the truth (one per case: confirmed where the unit really is of the case's kind since before it was
    flagged, else dismissed), scored by cross-validation."""
    from hub.detection.learned import NotEnoughVerdicts, train_verdict_model, training_rows
    from hub.detection.service import anomaly_scores
    from models.evaluation import KINDS, MIN_ONSET_AGE_DAYS, ranking_auc

    def fmt(x: float | None) -> str:
        return "-" if x is None else f"{x:.3f}"

    by_unit = {t.unit_id: t for t in truth}
    scored = {t.unit_id: t for t in truth
              if t.onset is None or (as_of - t.onset).days >= MIN_ONSET_AGE_DAYS}
    lines = ["models (scikit-learn; they rank and explain the rules' alerts, the rules decide what is "
             "flagged)"]
    scores = anomaly_scores(conn, as_of=as_of, policy=policy)
    if scores is None:
        lines.append("anomaly: too few units with enough data to compare")
    else:
        pct = scores.percentiles()
        aucs = []
        for kind in KINDS:
            auc = ranking_auc((t.kind == kind, pct[u]) for u, t in scored.items()
                              if u in pct and t.kind in (kind, "normal"))
            aucs.append(f"{kind}-vs-normal {fmt(auc)}")
        lines.append(f"anomaly percentile on {as_of}, ROC AUC: {', '.join(aucs)} "
                     f"({len(pct)} of {len(truth)} units scored; the rest had too little data)")
        by_subtype: dict[str, list[float]] = {}
        for u, t in scored.items():
            if u in pct:
                by_subtype.setdefault(t.subtype, []).append(pct[u])
        lines.append("median anomaly percentile by subtype: " + ", ".join(
            f"{k}={sorted(v)[len(v) // 2]:.2f}" for k, v in sorted(by_subtype.items())))
    rows = conn.execute(
        "SELECT unit_id, kind, score, (evidence->'features'->>'rule_score')::float8,"
        " (evidence->'features'->>'anomaly_percentile')::float8 FROM alerts").fetchall()
    for kind in KINDS:
        mine = [(scored[u].kind == kind, s, r, a) for u, k, s, r, a in rows if k == kind and u in scored]
        true = sum(1 for y, *_ in mine if y)
        by_rule = ranking_auc((y, r) for y, _, r, _ in mine if r is not None)
        by_anomaly = ranking_auc((y, a) for y, _, _, a in mine if a is not None)
        by_score = ranking_auc((y, s) for y, s, _, _ in mine)
        lines.append(f"{kind} alerts: {len(mine)} ({true} true, {len(mine) - true} false); ROC AUC "
                     f"true-vs-false by rule score at opening {fmt(by_rule)}, by anomaly percentile at "
                     f"opening {fmt(by_anomaly)}, by alert score (last run) {fmt(by_score)}")
    cases = conn.execute(
        "SELECT c.id, c.alert_id, c.unit_id, c.estate_id, c.kind, a.first_flagged FROM cases c"
        " JOIN alerts a ON a.id = c.alert_id").fetchall()
    verdicts = []
    for case_id, alert_id, unit_id, estate_id, kind, flagged in cases:
        t = by_unit.get(unit_id)
        right = t is not None and t.kind == kind and (t.onset is None or t.onset <= flagged)
        verdicts.append((case_id, alert_id, unit_id, estate_id, kind, "confirmed" if right else "dismissed"))
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO case_verdicts (case_id, alert_id, unit_id, estate_id, kind, verdict, note,"
            " decided_by) VALUES (%s, %s, %s, %s, %s, %s, 'simulated from the scenario truth',"
            " 'anju-eval:truth')",
            verdicts)
    trained: dict[str, Any] = {}
    for kind in KINDS:
        data = training_rows(conn, kind=kind)
        given = (held_out or {}).get(kind)
        if given is not None:
            auc = ranking_auc((y, given.probability(x)) for x, y in data)
            lines.append(f"verdict model {kind} trained elsewhere ({given.n_verdicts} verdicts), held out: "
                         f"ROC AUC {fmt(auc)} on this scenario's {len(data)} simulated verdicts "
                         f"({sum(1 for _, y in data if y)} confirmed)")
        try:
            with conn.transaction():
                model = train_verdict_model(conn, kind=kind, actor="system:anju-eval", policy=policy.models,
                                            rows=data)
        except NotEnoughVerdicts as err:
            lines.append(f"verdict model: not trained: {err}")
            continue
        trained[kind] = model.to_json()
        alone = {name: ranking_auc((y, x[model.inputs.index(name)]) for x, y in data)
                 for name in ("rule_score", "anomaly_percentile")}
        lines.append(f"verdict model {kind}: {model.n_verdicts} simulated verdicts ({model.n_confirmed} "
                     f"confirmed); cross-validated ROC AUC {fmt(model.cv_auc)} (on the same cases: rule "
                     f"score alone {fmt(alone['rule_score'])}, anomaly percentile alone "
                     f"{fmt(alone['anomaly_percentile'])})")
    if save_to is not None:
        save_to.write_text(json.dumps(trained, indent=1), encoding="utf-8")
        lines.append(f"verdict models saved to {save_to}: {', '.join(sorted(trained)) or 'none trained'}")
    return lines
