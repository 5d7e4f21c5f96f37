"""The production compose file, read as data (no Docker here): production mode, the audit key as a secret
file, ``anju audit protect`` before the hub, and the same role names as the database init script."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def compose() -> dict[str, Any]:
    """deploy/docker-compose.yml as YAML."""
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text(encoding="utf-8"))
    return data


def db_user(url: str) -> str:
    """The user of a ``postgresql://user:password@host/db`` URL with compose variables in it."""
    found = re.match(r"postgresql://([^:@/]+)[:@]", url)
    assert found, url
    return found.group(1)


def init_names() -> dict[str, str]:
    """The role and database names the init script passes to its SQL (``-v name=value``)."""
    script = (DEPLOY / "timescaledb" / "initdb" / "10-anju-roles.sh").read_text(encoding="utf-8")
    line = next(ln for ln in script.splitlines() if ln.startswith("names=("))
    return dict(re.findall(r"-v (\w+)=(\w+)", line))


def test_hub_runs_in_production_with_the_audit_key_from_a_secret_file() -> None:
    doc = compose()
    hub = doc["services"]["hub"]
    env = hub["environment"]
    assert env["ANJU_ENVIRONMENT"] == "production"
    assert "ANJU_AUDIT_KEY" not in env  # a variable shows in `docker inspect`; a secret file does not
    (secret,) = hub["secrets"]
    assert env["ANJU_AUDIT_KEY_FILE"] == f"/run/secrets/{secret}"
    key_file = doc["secrets"][secret]["file"]
    # The key itself is never in the repository: its path is ignored by git.
    ignored = subprocess.run(["git", "check-ignore", "-q", key_file], cwd=DEPLOY, check=False)
    assert ignored.returncode == 0, f"{key_file} is not ignored by git"


def test_audit_protect_runs_as_superuser_for_the_hubs_role_before_the_hub() -> None:
    services = compose()["services"]
    hub, protect = services["hub"], services["audit-protect"]
    hub_role = db_user(hub["environment"]["ANJU_DATABASE_URL"])
    assert protect["command"] == ["anju", "audit", "protect", "--runtime-role", hub_role]
    assert db_user(protect["environment"]["ANJU_DATABASE_URL"]) == "postgres"
    assert protect["restart"] == "no"
    assert protect["image"] == hub["image"] and protect["build"] == hub["build"]
    assert hub["depends_on"]["audit-protect"] == {"condition": "service_completed_successfully"}


def test_roles_agree_between_init_script_compose_and_grafana() -> None:
    names = init_names()
    hub = compose()["services"]["hub"]
    assert db_user(hub["environment"]["ANJU_DATABASE_URL"]) == names["anju_role"]
    assert hub["environment"]["ANJU_DATABASE_URL"].endswith(f"/{names['anju_db']}")
    datasources = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "anju.yaml").read_text(encoding="utf-8"))
    (source,) = datasources["datasources"]
    assert source["user"] == names["grafana_role"]
    assert source["jsonData"]["database"] == names["anju_db"]
