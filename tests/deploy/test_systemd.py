"""The edge agent's systemd unit: valid for systemd, able to open RS-485 serial ports, and still hardened
(``systemd-analyze security`` exposure at most 2.0 of 10; the unit before serial access scored 5.6)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "deploy" / "systemd" / "anju-agent.service"


def settings() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in UNIT.read_text(encoding="utf-8").splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_the_agent_may_open_serial_ports_and_nothing_else_in_dev() -> None:
    s = settings()
    assert "dialout" in s["SupplementaryGroups"]
    assert s["DevicePolicy"] == ["closed"]
    assert {"char-ttyUSB rw", "char-ttyS rw", "char-ttyACM rw"} <= set(s["DeviceAllow"])
    assert s.get("PrivateDevices", ["no"]) == ["no"]  # it would hide /dev/ttyUSB0
    for hardening in ("NoNewPrivileges", "ProtectKernelTunables", "RestrictNamespaces", "LockPersonality"):
        assert s[hardening] == ["yes"], hardening
    assert s["CapabilityBoundingSet"] == [""]


@pytest.fixture
def checkable(tmp_path: Path) -> Path:
    """The unit with an ExecStart that exists here (verify checks the binary) and an optional env file."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (package systemd)")
    text = UNIT.read_text(encoding="utf-8").replace("/opt/anju/.venv/bin/anju", "/bin/true")
    path = tmp_path / "anju-agent.service"
    path.write_text(text.replace("EnvironmentFile=/", "EnvironmentFile=-/"), encoding="utf-8")
    return path


def test_systemd_analyze_verify(checkable: Path) -> None:
    done = subprocess.run(["systemd-analyze", "verify", str(checkable)], capture_output=True, text=True,
                          check=False)  # fmt: skip
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr


def test_systemd_analyze_security(checkable: Path) -> None:
    done = subprocess.run(["systemd-analyze", "security", "--offline=true", str(checkable)],
                          capture_output=True, text=True, check=False)  # fmt: skip
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d)", done.stdout)
    assert found, done.stdout + done.stderr
    assert float(found.group(1)) <= 2.0, done.stdout
