"""``anju eval``: labelled scenarios from either household model, imported, detected and scored.

Two independently written generators (``anju.device_sims.scenarios``, "households", and
``anju.device_sims.appliances``, "appliances") make the scenarios, so that a detector can be reported on data
it was not tuned on. ``--cross`` runs both over several seeds in both modes (history import plus one
detection on the last day, and the hub's daily cadence) and prints the mean and the worst seed per kind.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import json
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psycopg

# The generators simulate households in the default estate zone and date their truth in it, so the
# evaluation rolls up and judges days of that zone too, not of the hub's ANJU_ESTATE_TZ setting.
from anju_wire.clock import ESTATE_TZ

GENERATORS = {"households": "anju.device_sims.scenarios", "appliances": "anju.device_sims.appliances"}
MODES = ("once", "daily")


@dataclass(frozen=True, slots=True)
class ScenarioRun:
    """One generated, imported and detected scenario: its reports per mode and what it cost."""

    generator: str
    seed: int
    reports: dict[str, Any]  # mode -> models.evaluation.EvalReport
    timings: dict[str, float]
    detection_runs: int
    model_lines: list[str]


def _eval_database(explicit: str | None, name: str = "anju_eval") -> str:
    """The given database, or a freshly made one on the server the hub would use."""
    from anju.db import database_url, recreate_database

    return explicit or recreate_database(database_url(None), name)


def _fresh_database(url: str) -> None:
    """Empty the scenario tables of a database reused between the runs of ``--cross``."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


def _truth(path: Path) -> list[Any]:
    from anju.models.evaluation import TruthRow

    with path.open(encoding="utf-8") as fh:
        return [TruthRow(r["unit_id"], r["kind"], r["subtype"],
                         date.fromisoformat(r["onset_date"]) if r["onset_date"] else None)
                for r in csv.DictReader(fh)]


def run_scenario(
    *, generator: str, units: int, days: int, seed: int, workdir: Path, database_url: str,
    modes: tuple[str, ...], cadence_days: int = 1, models: bool = True,
    models_step: Callable[[psycopg.Connection, list[Any], date], list[str]] | None = None,
    log: Callable[[str], None] = lambda s: print(s, file=sys.stderr),
) -> ScenarioRun:
    """Generate a scenario, import it into ``database_url`` (empty), detect in each mode and score it.

    "once" judges the whole history in one detection on the last day, as a city switching anju on with
    six months of records would; "daily" detects every ``cadence_days`` as the hub does. Both read the
    same imported data; "once" is rolled back before "daily" runs, so neither sees the other's alerts.
    """
    from anju.hub.bulk import BulkImport, import_all
    from anju.hub.detection.asof import detect_as_of
    from anju.hub.storage import ensure_schema
    from anju.hub.storage.rollups import refresh_daily_features
    from anju.models.evaluation import AlertRow, evaluate
    from anju.models.rules import Policy

    module = importlib.import_module(GENERATORS[generator])
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    scenario = module.make_scenario(n_units=units, days=days, seed=seed)
    files = module.write_scenario(scenario, workdir)
    timings["generate"] = time.monotonic() - t0
    first_day, last = scenario.start.date(), scenario.last_day
    log(f"scenario: generator={generator} units={units} days={days} seed={seed} "
        f"readings={files.readings_rows} access_events={files.access_rows} in {workdir}")
    truth = _truth(files.truth)
    reports: dict[str, Any] = {}
    runs = 0
    model_lines: list[str] = []
    with psycopg.connect(database_url) as conn:
        ensure_schema(conn)
        conn.commit()
        t0 = time.monotonic()
        files_in = BulkImport(units=files.units, readings=files.readings, access=files.access)
        results = import_all(conn, files_in, rejects_path=workdir / "rejects.csv", tz=ESTATE_TZ,
                             progress=sys.stderr.isatty())
        timings["import"] = time.monotonic() - t0
        log(f"import: {timings['import']:.0f} s")
        rejected = sum(r.rows_rejected for r in results)
        if rejected:
            log(f"anju eval: {rejected} generated line(s) were refused; see {workdir / 'rejects.csv'}")
        t0 = time.monotonic()
        refresh_daily_features(conn, tz=ESTATE_TZ)
        conn.execute("TRUNCATE bulk_stale_days")
        conn.commit()
        timings["features"] = time.monotonic() - t0
        log(f"features: {timings['features']:.0f} s")
        policy = Policy.load()

        def alerts() -> list[AlertRow]:
            return [AlertRow(u, k, f) for u, k, f in conn.execute(
                "SELECT unit_id, kind, first_flagged FROM alerts")]

        if "once" in modes:
            t0 = time.monotonic()
            conn.execute("SELECT 1")  # an outer transaction: the run's own commits become a savepoint
            detect_as_of(conn, as_of=last, tz=ESTATE_TZ, policy=policy, refresh="none", models=models)
            reports["once"] = evaluate(truth, alerts(), as_of=last, observed_days=days, first_day=first_day)
            conn.rollback()
            timings["detect_once"] = time.monotonic() - t0
        if "daily" in modes:
            first_as_of = first_day + timedelta(days=policy.window_days + 6)
            cadence = [last - timedelta(days=k * cadence_days)
                       for k in range(((last - first_as_of).days // cadence_days) + 1)]
            t0 = time.monotonic()
            for done, as_of in enumerate(sorted(cadence), start=1):
                detect_as_of(conn, as_of=as_of, tz=ESTATE_TZ, policy=policy, refresh="none", models=models)
                conn.commit()
                if done % 10 == 0 or done == len(cadence):  # progress: the longest phase
                    elapsed = time.monotonic() - t0
                    log(f"daily detection: {done}/{len(cadence)} (as of {as_of}, {elapsed:.0f} s)")
            runs = len(cadence)
            timings["detect_daily"] = time.monotonic() - t0
            reports["daily"] = evaluate(truth, alerts(), as_of=last, observed_days=days, first_day=first_day)
            if models_step is not None:
                t0 = time.monotonic()
                model_lines = models_step(conn, truth, last)
                conn.commit()
                timings["models"] = time.monotonic() - t0
    return ScenarioRun(generator=generator, seed=seed, reports=reports, timings=timings,
                       detection_runs=runs, model_lines=model_lines)


def run_eval(args: argparse.Namespace) -> int:
    """``anju eval``: one scenario (``--generator``, ``--mode``), or ``--cross``."""
    if args.cross:
        return _cross(args)
    try:
        held_out = _load_verdict_models(args.verdict_models) if args.verdict_models else {}
    except (OSError, ValueError, KeyError, TypeError) as err:
        print(f"anju eval: cannot read verdict models from {args.verdict_models}: {err}", file=sys.stderr)
        return 2
    from anju.models.rules import Policy

    policy = Policy.load()

    def models_step(conn: psycopg.Connection, truth: list[Any], as_of: date) -> list[str]:
        return _eval_models(conn, truth, as_of=as_of, policy=policy, held_out=held_out,
                            save_to=args.save_verdict_models)

    with tempfile.TemporaryDirectory(prefix="anju-eval-") as tmp:
        run = run_scenario(
            generator=args.generator, units=args.units, days=args.days, seed=args.seed,
            workdir=args.workdir or Path(tmp), database_url=_eval_database(args.database_url),
            modes=(args.mode,), cadence_days=args.cadence_days,
            models_step=models_step if args.mode == "daily" else None)
    report = run.reports[args.mode]
    print(f"generator={args.generator} mode={args.mode}")
    print(report.table())
    if run.model_lines:
        print("")
        print("\n".join(run.model_lines))
    print("")
    print("timings_s: " + " ".join(f"{k}={v:.1f}" for k, v in run.timings.items())
          + (f" detection_runs={run.detection_runs} (every {args.cadence_days} days)"
             if args.mode == "daily" else " detection_runs=1 (on the last day)"))
    return 0


def _job_database(url: str, suffix: str) -> str:
    """A fresh database beside ``url``'s, for one of ``--cross``'s parallel jobs."""
    from anju.db import recreate_database

    base = psycopg.conninfo.conninfo_to_dict(url).get("dbname") or "anju_eval"
    return recreate_database(url, f"{base}_{suffix}")


def _cross_one(generator: str, seed: int, url: str, units: int, days: int, cadence_days: int) -> ScenarioRun:
    """One scenario of ``--cross`` on an emptied database (a process of its own with ``--jobs``)."""
    _fresh_database(url)
    with tempfile.TemporaryDirectory(prefix="anju-eval-") as tmp:
        run = run_scenario(generator=generator, units=units, days=days, seed=seed, workdir=Path(tmp),
                           database_url=url, modes=MODES, cadence_days=cadence_days, models=False)
    for mode in MODES:
        k = {s.kind: s for s in run.reports[mode].kinds}
        figures = "  ".join(f"{kind}: P={s.precision:.3f} R={s.recall:.3f} fp={s.fp} fn={s.fn}"
                            for kind, s in k.items())
        print(f"[{generator} seed={seed} {mode}] {figures}", file=sys.stderr, flush=True)
    return run


def _cross(args: argparse.Namespace) -> int:
    """Both generators x N seeds x both modes, rules as shipped; the mean and worst seed per kind."""
    from anju.models.evaluation import cross_table

    url = _eval_database(args.database_url, name="anju_eval_cross")
    started = time.monotonic()
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    jobs = [(g, seed) for g in GENERATORS for seed in seeds]
    if args.jobs <= 1:
        runs = [_cross_one(g, seed, url, args.units, args.days, args.cadence_days) for g, seed in jobs]
    else:
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            futures = [pool.submit(_cross_one, g, seed, _job_database(url, f"{g}_{seed}"), args.units,
                                   args.days, args.cadence_days) for g, seed in jobs]
            runs = [f.result() for f in futures]
    for mode in MODES:
        what = "history import, one detection on the last day" if mode == "once" else "daily cadence"
        print(f"mode={mode} ({what}; {args.units} units x {args.days} days, seeds {seeds[0]}..{seeds[-1]})")
        print(cross_table([(r.generator, r.seed, r.reports[mode]) for r in runs]))
        print("")
    print(f"wall_s={time.monotonic() - started:.0f}")
    return 0


def _load_verdict_models(path: Path) -> dict[str, Any]:
    """Verdict models saved by ``--save-verdict-models``, by kind."""
    from anju.models.verdict_model import VerdictModel

    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object of models by kind")
    unknown = set(data) - {"vacancy", "sublet"}
    if unknown:
        raise ValueError(f"unknown kind(s) {', '.join(sorted(unknown))}; expected vacancy or sublet")
    return {kind: VerdictModel.from_json(m) for kind, m in data.items()}


def _simulate_verdicts(conn: psycopg.Connection, by_unit: dict[str, Any]) -> None:
    """An inspector's verdict on every case, from the scenario's truth: confirmed where the unit really is
    of the case's kind since before it was flagged, else dismissed. They go through the case workflow
    (assigned, then decided), audited under a name that says they were simulated, like a person's."""
    from anju.hub.auth.models import Principal, Role
    from anju.hub.auth.service import add_user
    from anju.hub.cases.service import transition
    from anju.hub.cases.states import Action

    # An inspector for every estate of this throwaway database, who takes each case and decides it.
    name = "anju-eval"
    estates = [e for (e,) in conn.execute("SELECT DISTINCT estate_id FROM units")]
    user_id = add_user(conn, name=name, role="inspector", password=secrets.token_urlsafe(24), estates=estates,
                       actor="system:anju-eval")
    inspector = Principal(user_id=user_id, name=name, role=Role.INSPECTOR, estates=frozenset(estates))
    dispatcher = Principal(user_id=0, name="anju-eval-dispatch", role=Role.ADMIN, estates=frozenset())
    note = "simulated from the scenario truth"
    cases = conn.execute(
        "SELECT c.id, c.unit_id, c.kind, a.first_flagged FROM cases c JOIN alerts a ON a.id = c.alert_id"
        " WHERE c.status = 'open' ORDER BY c.id").fetchall()
    for case_id, unit_id, kind, flagged in cases:
        t = by_unit.get(unit_id)
        if t is not None and t.kind == kind and (t.onset is None or t.onset <= flagged):
            transition(conn, case_id=case_id, action=Action.ASSIGN, principal=dispatcher, assignee=name,
                       note=note)
            transition(conn, case_id=case_id, action=Action.CONFIRM, principal=inspector, note=note)
        else:
            transition(conn, case_id=case_id, action=Action.DISMISS, principal=inspector, reason="other",
                       note=note)


def _eval_models(
    conn: psycopg.Connection, truth: list[Any], *, as_of: date, policy: Any,
    held_out: dict[str, Any] | None = None, save_to: Path | None = None,
) -> list[str]:
    """How well the scikit-learn models rank, against the scenario's truth: the anomaly percentile over
    all units, the alert scores over the alerts, and a verdict model trained on verdicts simulated from
    the truth (one per case: confirmed where the unit really is of the case's kind since before it was
    flagged, else dismissed), scored by cross-validation."""
    from anju.hub.detection.learned import NotEnoughVerdicts, train_verdict_model, training_rows
    from anju.hub.detection.service import anomaly_scores
    from anju.models.evaluation import KINDS, MIN_ONSET_AGE_DAYS, ranking_auc

    def fmt(x: float | None) -> str:
        return "-" if x is None else f"{x:.3f}"

    by_unit = {t.unit_id: t for t in truth}
    scored = {t.unit_id: t for t in truth
              if t.onset is None or (as_of - t.onset).days >= MIN_ONSET_AGE_DAYS}
    lines = ["models (scikit-learn; they rank and explain the rules' alerts, the rules decide what is "
             "flagged)"]
    scores = anomaly_scores(conn, as_of=as_of, tz=ESTATE_TZ, policy=policy)
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
    _simulate_verdicts(conn, by_unit)
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
