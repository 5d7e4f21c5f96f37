"""A supervised model of inspectors' verdicts: how likely a visit is to confirm an alert (pure, no I/O).

Trained from the features frozen in each case when it opened (the anomaly measures' peer z-scores, the
anomaly percentile, the rule's score) and the verdict an inspector later gave it. A logistic regression
(scikit-learn) on standardised inputs: small, stored as plain numbers (no pickle), and explainable, since
each input's pull on the answer is its coefficient times its standardised value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from anju.models.anomaly import MEASURES

INPUTS: tuple[str, ...] = (*(f"z_{m.name}" for m in MEASURES), "anomaly_percentile", "rule_score")
INPUT_LABELS: dict[str, str] = {
    **{f"z_{m.name}": m.label for m in MEASURES}, "anomaly_percentile": "how unusual among its peers",
    "rule_score": "the rule's score",
}


class NotEnoughVerdicts(ValueError):
    """Too few verdicts, or too few of one kind, to train on."""


def model_inputs(features: Mapping[str, Any], *, rule_score: float) -> list[float]:
    """The model's input vector from an alert's stored features; an unknown part counts as typical."""
    z = features.get("peer_z") or {}
    pct = features.get("anomaly_percentile")
    return [*(float(z.get(m.name) or 0.0) for m in MEASURES), 0.5 if pct is None else float(pct),
            float(rule_score)]


@dataclass(frozen=True, slots=True)
class VerdictModel:
    """A trained model: its standardisation, coefficients, and what it was trained on."""

    kind: str
    inputs: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    n_verdicts: int
    n_confirmed: int
    cv_auc: float | None  # cross-validated ROC AUC on the training verdicts; None when it cannot be measured
    model_id: int | None = None  # its row in the hub's verdict_models, once stored

    def _standard(self, x: Sequence[float]) -> np.ndarray:
        return (np.asarray(x, dtype=float) - np.asarray(self.mean)) / np.asarray(self.scale)

    def probability(self, x: Sequence[float]) -> float:
        """The chance that a visit confirms an alert with these inputs."""
        logit = float(np.dot(self._standard(x), self.coef)) + self.intercept
        return 1.0 / (1.0 + math.exp(-max(min(logit, 50.0), -50.0)))

    def pulls(self, x: Sequence[float], n: int = 3) -> list[tuple[str, float]]:
        """The ``n`` inputs that move this answer most, with their signed pull on the log-odds."""
        contrib = self._standard(x) * np.asarray(self.coef)
        order = np.argsort(-np.abs(contrib))[:n]
        return [(self.inputs[i], float(contrib[i])) for i in order if abs(contrib[i]) >= 0.05]

    def to_json(self) -> dict[str, Any]:
        """The stored form (plain numbers)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> VerdictModel:
        """Read a stored model back; refuse one trained on other inputs."""
        inputs = tuple(data["inputs"])
        if inputs != INPUTS:
            raise ValueError(f"stored model has inputs {inputs}, this version expects {INPUTS}")
        return cls(
            kind=str(data["kind"]), inputs=inputs, mean=tuple(data["mean"]), scale=tuple(data["scale"]),
            coef=tuple(data["coef"]), intercept=float(data["intercept"]), n_verdicts=int(data["n_verdicts"]),
            n_confirmed=int(data["n_confirmed"]),
            cv_auc=None if data.get("cv_auc") is None else float(data["cv_auc"]),
            model_id=None if data.get("model_id") is None else int(data["model_id"]),
        )


def train(
    kind: str, rows: Sequence[tuple[Sequence[float], bool]], *, min_verdicts: int, min_per_class: int,
    seed: int = 0,
) -> VerdictModel:
    """Fit on ``(inputs, confirmed)`` pairs; raise ``NotEnoughVerdicts`` when there are too few of either.

    Confirmed and dismissed verdicts are weighed equally whatever their numbers (class_weight balanced),
    so a model trained while most alerts are confirmed does not simply learn to say yes.
    """
    n = len(rows)
    confirmed = sum(1 for _, y in rows if y)
    dismissed = n - confirmed
    if n < min_verdicts or min(confirmed, dismissed) < min_per_class:
        raise NotEnoughVerdicts(
            f"{kind}: {n} verdicts ({confirmed} confirmed, {dismissed} dismissed); training needs at least "
            f"{min_verdicts}, with {min_per_class} of each")
    x = np.array([list(r[0]) for r in rows], dtype=float)
    y = np.array([bool(r[1]) for r in rows])
    if x.shape[1] != len(INPUTS):
        raise ValueError(f"expected {len(INPUTS)} inputs per verdict, got {x.shape[1]}")

    def pipeline() -> Any:
        logit = LogisticRegression(class_weight="balanced", C=1.0, max_iter=1000)
        return make_pipeline(StandardScaler(), logit)

    folds = min(5, confirmed, dismissed)
    cv_auc: float | None = None
    if folds >= 2:
        cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        proba = cross_val_predict(pipeline(), x, y, cv=cv, method="predict_proba")[:, 1]
        cv_auc = float(roc_auc_score(y, proba))
    fitted = pipeline().fit(x, y)
    scaler, logit = fitted.steps[0][1], fitted.steps[1][1]
    return VerdictModel(
        kind=kind, inputs=INPUTS, mean=tuple(float(v) for v in scaler.mean_),
        scale=tuple(float(v) for v in scaler.scale_), coef=tuple(float(v) for v in logit.coef_[0]),
        intercept=float(logit.intercept_[0]), n_verdicts=n, n_confirmed=confirmed, cv_auc=cv_auc,
    )


def describe(model: VerdictModel, x: Sequence[float]) -> str:
    """Plain words: the chance a visit confirms this alert, what the model was trained on, what weighs."""
    p = model.probability(x)
    auc = "not measured" if model.cv_auc is None else f"{model.cv_auc:.2f}"
    pulls = "; ".join(
        f"{INPUT_LABELS[name]} {'for' if v > 0 else 'against'} ({v:+.2f})" for name, v in model.pulls(x)
    )
    weighs = f"; weighing most: {pulls}" if pulls else ""
    return (f"Learned from {model.n_verdicts} inspector verdicts on {model.kind} alerts "
            f"({model.n_confirmed} confirmed; cross-validated AUC {auc}): a visit confirms an alert like "
            f"this one with probability {p:.0%}{weighs}.")
