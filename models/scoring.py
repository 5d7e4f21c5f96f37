"""The models' part in a flagged verdict: reasons against peers and past verdicts, the ranked score (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

from anju.models.anomaly import UnitAnomaly
from anju.models.anomaly import describe as describe_anomaly
from anju.models.rules import ModelsPolicy, Reason, RuleFinding
from anju.models.verdict_model import VerdictModel, model_inputs
from anju.models.verdict_model import describe as describe_model

_REASON_FIELDS = tuple(f.name for f in fields(Reason))


@dataclass(frozen=True, slots=True)
class AtOpening:
    """What the models saw when the unit's open alert was opened: the features kept with it and its
    anomaly reason."""

    features: dict[str, Any]
    anomaly_reason: Reason | None

    @classmethod
    def of_alert(
        cls, features: Mapping[str, Any] | None, reasons: Sequence[Mapping[str, Any]]
    ) -> AtOpening | None:
        """From a stored alert's features and reasons; None when it was opened without an anomaly score."""
        if not features or features.get("anomaly_percentile") is None or features.get("rule_score") is None:
            return None
        peer = next((Reason(**{k: r[k] for k in _REASON_FIELDS if k in r}) for r in reasons
                     if r.get("code") == "peer_anomaly"), None)
        return cls({k: v for k, v in features.items() if k != "verdict_model"}, peer)


def with_models(
    verdict: RuleFinding, *, anomaly: UnitAnomaly | None, model: VerdictModel | None, policy: ModelsPolicy,
    at_opening: AtOpening | None = None,
) -> tuple[RuleFinding, dict[str, Any]]:
    """The flagged ``verdict`` with the models' reasons and score, and the features to keep with it.

    The rule decides whether there is an alert; the models only move its score (the queue's risk order)
    and say why: the anomaly percentile among peers, and, once inspectors have given enough verdicts,
    the probability that a visit confirms it. The features are kept with the alert and frozen in its
    case, so a later verdict can be learned from exactly what the detector saw.

    For an alert already open (``at_opening``) the models keep judging the unit as it was when the alert
    opened: later, the suspected change enters the unit's own history and its anomaly fades (a sublet
    months old looks like its own past), and the verdict model learned from features taken at opening,
    so it must be applied to those. The rule's part of the score is always today's.
    """
    reasons = list(verdict.reasons)
    score = verdict.score
    features: dict[str, Any]
    percentile: float | None
    anomaly_reason: Reason | None
    if at_opening is not None:
        features = dict(at_opening.features)
        percentile = float(features["anomaly_percentile"])
        anomaly_reason = at_opening.anomaly_reason
    else:
        features = (
            anomaly.features() if anomaly is not None
            else {"measures": None, "peer_z": None, "anomaly_percentile": None}
        )
        features["rule_score"] = verdict.score
        percentile = None if anomaly is None else anomaly.percentile
        anomaly_reason = None if anomaly is None else Reason(
            "peer_anomaly", describe_anomaly(anomaly), value=round(anomaly.percentile, 3), baseline=0.5,
            unit="share of units less unusual",
        )
    if anomaly_reason is not None:
        reasons.append(anomaly_reason)
    if percentile is not None:
        score *= 1 - policy.anomaly_weight + policy.anomaly_weight * percentile
    if model is not None and model.kind == verdict.kind:
        x = model_inputs(features, rule_score=float(features["rule_score"]))
        p = model.probability(x)
        reasons.append(Reason(
            "verdict_model", describe_model(model, x), value=round(p, 3),
            baseline=round(model.n_confirmed / model.n_verdicts, 3), unit="probability confirmed",
        ))
        score *= 1 - policy.verdict_weight + policy.verdict_weight * p
        features["verdict_model"] = {"id": model.model_id, "probability": round(p, 4)}
    return replace(verdict, score=round(score, 3), reasons=tuple(reasons)), features
