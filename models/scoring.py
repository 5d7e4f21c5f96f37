"""The models' part in a flagged verdict: reasons against peers and past verdicts, the ranked score (pure)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from models.anomaly import UnitAnomaly
from models.anomaly import describe as describe_anomaly
from models.rules import ModelsPolicy, Reason, Verdict
from models.verdict_model import VerdictModel, model_inputs
from models.verdict_model import describe as describe_model


def with_models(
    verdict: Verdict, *, anomaly: UnitAnomaly | None, model: VerdictModel | None, policy: ModelsPolicy,
) -> tuple[Verdict, dict[str, Any]]:
    """The flagged ``verdict`` with the models' reasons and score, and the features to keep with it.

    The rule decides whether there is an alert; the models only move its score (the queue's risk order)
    and say why: the anomaly percentile among peers, and, once inspectors have given enough verdicts,
    the probability that a visit confirms it. The features are kept with the alert and frozen in its
    case, so a later verdict can be learned from exactly what the detector saw.
    """
    features: dict[str, Any] = (
        anomaly.features() if anomaly is not None
        else {"measures": None, "peer_z": None, "anomaly_percentile": None}
    )
    features["rule_score"] = verdict.score
    reasons = list(verdict.reasons)
    score = verdict.score
    if anomaly is not None:
        reasons.append(Reason(
            "peer_anomaly", describe_anomaly(anomaly), value=round(anomaly.percentile, 3), baseline=0.5,
            unit="share of units less unusual",
        ))
        score *= 1 - policy.anomaly_weight + policy.anomaly_weight * anomaly.percentile
    if model is not None and model.kind == verdict.kind:
        x = model_inputs(features, rule_score=verdict.score)
        p = model.probability(x)
        reasons.append(Reason(
            "verdict_model", describe_model(model, x), value=round(p, 3),
            baseline=round(model.n_confirmed / model.n_verdicts, 3), unit="probability confirmed",
        ))
        score *= 1 - policy.verdict_weight + policy.verdict_weight * p
        features["verdict_model"] = {"id": model.model_id, "probability": round(p, 4)}
    return replace(verdict, score=round(score, 3), reasons=tuple(reasons)), features
