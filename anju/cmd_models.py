"""anju models: train the verdict models from inspectors' verdicts, and list the ones trained."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from anju.cmd_data import add_database_option, connect_database


def register(sub: Any, sim: Any) -> None:
    """Add this group's subcommands to the ``anju`` parser."""
    models = sub.add_parser("models", help="the scikit-learn verdict models: train from verdicts, list")
    msub = models.add_subparsers(dest="models_command", required=True)
    train = msub.add_parser("train", help="train a model per alert kind from the inspectors' verdicts")
    train.add_argument("--kind", choices=["vacancy", "sublet", "all"], default="all", help="model to train")
    add_database_option(train)
    lst = msub.add_parser("list", help="the models trained, newest first (detection uses each kind's newest)")
    add_database_option(lst)


def run(args: argparse.Namespace) -> int | None:
    """Run the command if it belongs to this group; None otherwise."""
    if args.command != "models":
        return None
    if args.models_command == "train":
        return _train(args)
    return _list(args)


def _train(args: argparse.Namespace) -> int:
    from anju.hub.detection.learned import NotEnoughVerdicts, train_verdict_model
    from anju.models.rules import Policy

    policy = Policy.load().models
    kinds = ("vacancy", "sublet") if args.kind == "all" else (args.kind,)
    trained = 0
    with connect_database(args.database_url) as conn:
        for kind in kinds:
            try:
                with conn.transaction():
                    model = train_verdict_model(conn, kind=kind, actor=f"system:cli:{getpass.getuser()}",
                                                policy=policy)
            except NotEnoughVerdicts as err:
                print(f"anju models train: not trained: {err}", file=sys.stderr)
                continue
            trained += 1
            auc = "-" if model.cv_auc is None else f"{model.cv_auc:.3f}"
            print(f"{kind}: model {model.model_id} trained on {model.n_verdicts} verdicts "
                  f"({model.n_confirmed} confirmed), cross-validated AUC {auc}")
    return 0 if trained else 1


def _list(args: argparse.Namespace) -> int:

    with connect_database(args.database_url) as conn:
        rows = conn.execute(
            "SELECT id, kind, trained_at, trained_by, n_verdicts, n_confirmed, cv_auc FROM verdict_models"
            " ORDER BY id DESC").fetchall()
    print("id,kind,trained_at,trained_by,n_verdicts,n_confirmed,cv_auc")
    for model_id, kind, at, by, n, confirmed, auc in rows:
        auc_text = "" if auc is None else f"{auc:.3f}"
        print(f"{model_id},{kind},{at.isoformat()},{by},{n},{confirmed},{auc_text}")
    return 0
