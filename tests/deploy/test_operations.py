"""What an operator meets first: ``anju --version``, help with defaults for every option, one log line per
event as text or JSON, and no library hex dumps."""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
from collections.abc import Iterator

import pytest

from anju.cli import _build_parser
from anju.logs import configure_logging

# Options of groups whose owners are still writing them (their help is theirs to add).
PENDING = {("agent", "faces"), ("sim", "camera")}


Option = tuple[str, argparse.Action]


def options(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[Option]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                if (*path[-1:], name) not in PENDING:
                    yield from options(child, (*path, name))
        elif action.option_strings:
            yield " ".join(("anju", *path, action.option_strings[-1])), action


def test_every_option_has_help_and_shows_its_default() -> None:
    parser = _build_parser()
    missing = [name for name, action in options(parser) if not action.help]
    assert not missing
    done = subprocess.run([sys.executable, "-m", "anju.cli", "eval", "--help"], capture_output=True,
                          text=True, check=True)  # fmt: skip
    assert "simulated units (default: 2000)" in " ".join(done.stdout.split())


def test_version() -> None:
    done = subprocess.run([sys.executable, "-m", "anju.cli", "--version"], capture_output=True, text=True,
                          check=True)  # fmt: skip
    assert done.stdout.startswith("anju ") and done.stdout.split()[1][0].isdigit()


def test_json_log_lines(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure_logging(fmt="json")
        poller = logging.getLogger("anju.edge_agent.poller")
        poller.warning("modbus-tcp://10.0.0.1:502/3 is unavailable: %s", "timeout")
        logging.getLogger("pymodbus.logging").error("No response received after 0 retries")
        logging.getLogger("pymodbus.logging").debug("send: 0x3 0x4 0x1 0x56")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1  # pymodbus says nothing: the poller's own line is the one line per failure
    doc = json.loads(lines[0])
    assert doc["level"] == "WARNING" and doc["logger"] == "anju.edge_agent.poller"
    assert doc["message"].endswith("is unavailable: timeout") and doc["ts"].endswith("+00:00")


def test_unknown_log_format_is_refused() -> None:
    with pytest.raises(ValueError, match="not one of text, json"):
        configure_logging(fmt="xml")
