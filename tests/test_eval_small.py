"""``anju eval`` at a small size: generate, import, detect weekly, and print the scores."""

from __future__ import annotations

from pathlib import Path

import pytest

from anju.cli import main


def test_eval_prints_scores_per_kind_and_subtype(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["eval", "--units", "80", "--days", "90", "--seed", "2", "--cadence-days", "7",
            "--workdir", str(tmp_path), "--database-url", database_url]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "precision" in out and "median_days" in out and "false/1000um" in out
    lines = {line.split()[0]: line.split() for line in out.splitlines() if line.split()}
    assert lines["vacancy"][0] == "vacancy" and lines["sublet"][0] == "sublet"
    assert "subtype" in lines and "detection_runs=" in out
