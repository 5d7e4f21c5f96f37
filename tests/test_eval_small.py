"""``anju eval`` at a small size: generate, import, detect weekly, and print the scores."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from anju.cli import main
from anju.models.verdict_model import train
from tests.models.test_verdict_model import verdicts


def test_eval_prints_scores_per_kind_and_subtype(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A model "from another scenario" to score held out (made-up verdicts: the point is the plumbing).
    given = tmp_path / "given.json"
    given.write_text(json.dumps({"sublet": train("sublet", verdicts(), min_verdicts=30,
                                                  min_per_class=5).to_json()}), encoding="utf-8")
    saved = tmp_path / "saved.json"
    argv = ["eval", "--units", "80", "--days", "90", "--seed", "2", "--cadence-days", "7",
            "--workdir", str(tmp_path), "--database-url", database_url,
            "--verdict-models", str(given), "--save-verdict-models", str(saved)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "verdict model sublet trained elsewhere (60 verdicts), held out: ROC AUC" in out
    # 80 units give too few verdicts to train on: the file says so by being empty, and the output too.
    assert json.loads(saved.read_text(encoding="utf-8")) == {}
    assert f"verdict models saved to {saved}: none trained" in out
    assert "precision" in out and "median_days" in out and "false/1000um" in out
    lines = {line.split()[0]: line.split() for line in out.splitlines() if line.split()}
    assert lines["vacancy"][0] == "vacancy" and lines["sublet"][0] == "sublet"
    assert "subtype" in lines and "detection_runs=" in out
    # The simulated verdicts went through the case workflow, audited like a person's, not into the table.
    with psycopg.connect(database_url) as conn:
        verdicts_kept = conn.execute("SELECT count(*) FROM case_verdicts").fetchone()
        decided = conn.execute(
            "SELECT count(*) FROM audit_log WHERE action IN ('case.confirm', 'case.dismiss')"
            " AND actor = 'user:anju-eval'").fetchone()
    assert verdicts_kept is not None and decided is not None
    assert verdicts_kept[0] > 0 and decided[0] == verdicts_kept[0]


def test_eval_refuses_an_unreadable_verdict_model_file_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]", encoding="utf-8")
    assert main(["eval", "--units", "80", "--verdict-models", str(bad), "--workdir", str(tmp_path)]) == 2
    assert "cannot read verdict models" in capsys.readouterr().err
    bad.write_text('{"vacant": {}}', encoding="utf-8")
    assert main(["eval", "--units", "80", "--verdict-models", str(bad), "--workdir", str(tmp_path)]) == 2
    assert "unknown kind(s) vacant" in capsys.readouterr().err
    assert not (tmp_path / "readings.csv").exists()
