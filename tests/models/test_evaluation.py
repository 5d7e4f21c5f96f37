"""Pure scoring helpers of ``anju eval``."""

from __future__ import annotations

from anju.models.evaluation import ranking_auc


def test_ranking_auc_counts_pairs_and_ties() -> None:
    assert ranking_auc([(True, 0.9), (False, 0.1)]) == 1.0
    assert ranking_auc([(True, 0.1), (False, 0.9)]) == 0.0
    assert ranking_auc([(True, 0.5), (False, 0.5)]) == 0.5
    assert ranking_auc([(True, 0.9), (True, 0.4), (False, 0.5), (False, 0.1)]) == 0.75
    assert ranking_auc([(True, 0.9)]) is None
