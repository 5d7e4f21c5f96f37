"""The verdict models in the hub: trained from inspectors' verdicts, stored, audited, loaded for detection."""

from __future__ import annotations

from collections.abc import Sequence

import psycopg
from psycopg.types.json import Jsonb

from anju.hub.audit import record_audit
from anju.models.rules import ModelsPolicy
from anju.models.verdict_model import NotEnoughVerdicts, VerdictModel, model_inputs, train

__all__ = ["NotEnoughVerdicts", "latest_verdict_model", "train_verdict_model", "training_rows"]

# Each case's latest verdict with the features frozen in the case when it opened. Cases opened before
# detection kept features (or by hand) carry none and are left out.
_TRAINING_ROWS = """
SELECT DISTINCT ON (v.case_id) v.verdict, c.evidence->'features'
FROM case_verdicts v JOIN cases c ON c.id = v.case_id
WHERE v.kind = %s AND jsonb_typeof(c.evidence->'features') = 'object'
ORDER BY v.case_id, v.id DESC
"""


def training_rows(conn: psycopg.Connection, *, kind: str) -> list[tuple[list[float], bool]]:
    """The model inputs and verdict (confirmed or not) of every decided case of this kind."""
    rows = []
    for verdict, features in conn.execute(_TRAINING_ROWS, (kind,)):
        rule_score = features.get("rule_score")
        if rule_score is None:
            continue
        rows.append((model_inputs(features, rule_score=float(rule_score)), verdict == "confirmed"))
    return rows


def train_verdict_model(
    conn: psycopg.Connection, *, kind: str, actor: str, policy: ModelsPolicy,
    rows: Sequence[tuple[Sequence[float], bool]] | None = None,
) -> VerdictModel:
    """Train a model of ``kind`` from the stored verdicts (or ``rows``), store it and audit who trained it,
    in the caller's transaction; raise ``NotEnoughVerdicts`` when there are too few."""
    data = training_rows(conn, kind=kind) if rows is None else rows
    model = train(kind, data, min_verdicts=policy.min_verdicts, min_per_class=policy.min_verdicts_per_class)
    row = conn.execute(
        "INSERT INTO verdict_models (kind, trained_by, n_verdicts, n_confirmed, cv_auc, model)"
        " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
        (kind, actor, model.n_verdicts, model.n_confirmed, model.cv_auc, Jsonb(model.to_json())),
    ).fetchone()
    assert row is not None
    model_id = int(row[0])
    record_audit(conn, actor=actor, action="model.trained", object_type="verdict_model", object_id=model_id,
                 detail={"kind": kind, "n_verdicts": model.n_verdicts, "n_confirmed": model.n_confirmed,
                         "cv_auc": model.cv_auc})
    return VerdictModel.from_json({**model.to_json(), "model_id": model_id})


def latest_verdict_model(conn: psycopg.Connection, *, kind: str) -> VerdictModel | None:
    """The newest stored model of ``kind``, or None when none was trained."""
    row = conn.execute(
        "SELECT id, model FROM verdict_models WHERE kind = %s ORDER BY id DESC LIMIT 1", (kind,)
    ).fetchone()
    if row is None:
        return None
    return VerdictModel.from_json({**row[1], "model_id": int(row[0])})
