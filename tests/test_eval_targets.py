"""Detection against both household models, at a small size: the figures must stay above the targets.

The two generators were written independently (``device_sims/scenarios.py`` and
``device_sims/appliances.py``); the rules were not fitted to either (the thresholds in
``models/policy.yaml`` are physical). This is the regression guard for what ``anju eval --cross`` reports
at full size (bench/README.md), in the mode that judges six months of history at once.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from anju.cmd_eval import run_scenario

pytestmark = pytest.mark.integration

# Per generator and kind: (min precision, min recall), the targets, except the appliance model's
# sublet recall, guarded one sublet below today's figure (seed 7 at this size: 21 of 21 since the water-shift
# attribution, the lent cards of rare face users and departures a week into the data; 17 of 21 before), so
# that it cannot get worse unseen. At full size the appliance model's sublet recall still falls short on its
# worst seed (bench/README.md).
FLOORS = {
    ("households", "vacancy"): (0.95, 0.95),
    ("households", "sublet"): (0.90, 0.85),
    ("appliances", "vacancy"): (0.95, 0.95),
    ("appliances", "sublet"): (0.90, 0.95),
}


@pytest.mark.parametrize("generator", ["households", "appliances"])
def test_history_import_and_one_detection_meet_the_floors(
    generator: str, database_url: str, tmp_path: Path
) -> None:
    run = run_scenario(generator=generator, units=400, days=150, seed=7, workdir=tmp_path,
                       database_url=database_url, modes=("once",), models=False, log=lambda _: None)
    report = run.reports["once"]
    for k in report.kinds:
        precision, recall = FLOORS[(generator, k.kind)]
        assert k.positives >= 10, (k.kind, k.positives)
        assert k.precision >= precision and k.recall >= recall, (generator, report.table())
        assert k.false_per_1000_unit_months <= 2.0, (generator, report.table())
