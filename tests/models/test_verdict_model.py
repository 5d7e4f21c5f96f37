"""The verdict model on made-up verdicts, and what the models add to a flagged verdict."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from anju.models.anomaly import MEASURES, UnitAnomaly
from anju.models.rules import Outcome, Policy, Reason, RuleFinding
from anju.models.scoring import AtOpening, with_models
from anju.models.verdict_model import INPUTS, NotEnoughVerdicts, VerdictModel, describe, model_inputs, train
from tests.models.factories import AS_OF

POLICY = Policy.load().models


def verdicts(n: int = 60, *, seed: int = 3) -> list[tuple[list[float], bool]]:
    """Confirmed alerts are the very unusual ones with no electricity; dismissed ones look ordinary."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        confirmed = i % 3 != 0
        z = [rng.gauss(-4 if confirmed else -0.5, 1.0)] + [rng.gauss(0, 1) for _ in MEASURES[1:]]
        pct = rng.uniform(0.9, 1.0) if confirmed else rng.uniform(0.3, 0.95)
        rows.append(([*z, pct, rng.uniform(0.6, 0.8)], confirmed))
    return rows


def test_learns_which_alerts_inspectors_confirm_and_says_why() -> None:
    model = train("vacancy", verdicts(), min_verdicts=30, min_per_class=5)
    assert model.n_verdicts == 60 and model.n_confirmed == 40 and model.inputs == INPUTS
    assert model.cv_auc is not None and model.cv_auc > 0.85
    likely = [-5.0, *[0.0] * (len(MEASURES) - 1), 0.99, 0.7]
    unlikely = [0.0, *[0.0] * (len(MEASURES) - 1), 0.5, 0.7]
    assert model.probability(likely) > 0.8 > 0.2 > model.probability(unlikely)
    assert model.pulls(likely)[0][0] in ("z_elec_kwh", "anomaly_percentile")
    assert "Learned from 60 inspector verdicts" in describe(model, likely)
    # Stored as plain numbers and read back to the same answers; a model of other inputs is refused.
    again = VerdictModel.from_json({**model.to_json(), "model_id": 7})
    assert again.model_id == 7 and again.probability(likely) == pytest.approx(model.probability(likely))
    with pytest.raises(ValueError, match="inputs"):
        VerdictModel.from_json({**model.to_json(), "inputs": ["rule_score"]})


def test_refuses_to_train_on_too_few_verdicts_or_only_one_kind() -> None:
    with pytest.raises(NotEnoughVerdicts, match="12 verdicts"):
        train("sublet", verdicts(12), min_verdicts=30, min_per_class=5)
    only_confirmed = [(x, True) for x, _ in verdicts(40)]
    with pytest.raises(NotEnoughVerdicts, match="0 dismissed"):
        train("sublet", only_confirmed, min_verdicts=30, min_per_class=5)


def flagged(score: float = 0.7) -> RuleFinding:
    return RuleFinding(kind="vacancy", unit_id="E01-1-0101", outcome=Outcome.FLAGGED, score=score,
                   window_start=AS_OF - timedelta(days=20), window_end=AS_OF, rule_version="rules-3+p0",
                   reasons=(Reason("idle_streak", "Idle for 30 days", 30, 180, "days"),))


def anomaly(percentile: float) -> UnitAnomaly:
    names = [m.name for m in MEASURES]
    return UnitAnomaly(
        unit_id="E01-1-0101", estate_id="E01", percentile=percentile, raw_score=0.7,
        measures=dict.fromkeys(names, 1.0), peer_z={n: (-5.0 if n == "elec_kwh" else 0.0) for n in names},
        peer_median=dict.fromkeys(names, 1.0), compared_with=80, peers_scope="estate",
    )


def test_models_add_reasons_and_move_the_score_but_never_the_outcome() -> None:
    plain, features = with_models(flagged(), anomaly=None, model=None, policy=POLICY)
    assert plain == flagged() and features == {"measures": None, "peer_z": None, "anomaly_percentile": None,
                                               "rule_score": 0.7}
    high, f_high = with_models(flagged(), anomaly=anomaly(0.99), model=None, policy=POLICY)
    low, _ = with_models(flagged(), anomaly=anomaly(0.2), model=None, policy=POLICY)
    assert high.outcome is Outcome.FLAGGED and low.outcome is Outcome.FLAGGED
    assert flagged().score >= high.score > low.score
    peer = high.reasons[-1]
    assert (peer.code, peer.value, peer.baseline) == ("peer_anomaly", 0.99, 0.5)
    assert f_high["anomaly_percentile"] == 0.99 and f_high["rule_score"] == 0.7

    model = train("vacancy", verdicts(), min_verdicts=30, min_per_class=5)
    judged, f_judged = with_models(flagged(), anomaly=anomaly(0.99), model=model, policy=POLICY)
    last = judged.reasons[-1]
    assert last.code == "verdict_model" and last.baseline == pytest.approx(40 / 60, abs=1e-3)
    p = model.probability(model_inputs(f_high, rule_score=0.7))
    assert last.value == round(p, 3) and f_judged["verdict_model"]["probability"] == round(p, 4)
    expected = high.score * (1 - POLICY.verdict_weight + POLICY.verdict_weight * p)
    assert judged.score == pytest.approx(expected, abs=2e-3)
    # A model of the other kind says nothing about this alert.
    sublet_model = train("sublet", verdicts(), min_verdicts=30, min_per_class=5)
    other, _ = with_models(flagged(), anomaly=anomaly(0.99), model=sublet_model, policy=POLICY)
    assert other == high


def test_an_open_alert_is_judged_on_the_features_it_opened_with() -> None:
    opened, f_opened = with_models(flagged(0.6), anomaly=anomaly(0.99), model=None, policy=POLICY)
    stored = [r.to_dict() for r in opened.reasons]
    at = AtOpening.of_alert(f_opened, stored)
    assert at is not None and at.features == f_opened and at.anomaly_reason == opened.reasons[-1]
    # Today the rule scores 0.8 and a fresh anomaly would say 0.2: the rule's part moves, the models' not.
    today, f_today = with_models(flagged(0.8), anomaly=anomaly(0.2), model=None, policy=POLICY, at_opening=at)
    assert f_today == f_opened and today.reasons[-1] == opened.reasons[-1]
    assert today.score == round(0.8 * (1 - POLICY.anomaly_weight + POLICY.anomaly_weight * 0.99), 3)
    # The verdict model reads the opening features, the rule score at opening included.
    model = train("vacancy", verdicts(), min_verdicts=30, min_per_class=5)
    _, f_model = with_models(flagged(0.8), anomaly=anomaly(0.2), model=model, policy=POLICY, at_opening=at)
    p = model.probability(model_inputs(f_opened, rule_score=0.6))
    assert f_model["verdict_model"]["probability"] == round(p, 4)
    # An alert opened before the models, or when too few units could be scored, gets today's view.
    assert AtOpening.of_alert(None, stored) is None
    assert AtOpening.of_alert({**f_opened, "anomaly_percentile": None}, stored) is None
