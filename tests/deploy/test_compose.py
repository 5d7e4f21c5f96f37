"""The production compose file, read as data (no Docker here): production mode, the audit key as a secret
file, ``anju audit protect`` before the hub, and the same role names as the database init script."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from psycopg.conninfo import conninfo_to_dict

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
    secret = env["ANJU_AUDIT_KEY_FILE"].removeprefix("/run/secrets/")
    assert secret in hub["secrets"]
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


def test_every_long_running_service_has_a_healthcheck_and_the_hub_waits_for_them() -> None:
    services = compose()["services"]
    for name in ("timescaledb", "mosquitto", "hub", "grafana"):
        check = services[name]["healthcheck"]
        assert check["test"][0] in ("CMD", "CMD-SHELL") and check["retries"] >= 3, name
    assert "/api/health" in " ".join(services["hub"]["healthcheck"]["test"])
    assert services["hub"]["depends_on"]["mosquitto"] == {"condition": "service_healthy"}


SECRET_WORDS = ("PASSWORD", "TOKEN", "KEY", "SECRET")


def test_secrets_reach_the_containers_only_as_files() -> None:
    doc = compose()
    declared = doc["secrets"]
    for name, service in doc["services"].items():
        env = service.get("environment", {})
        for var, value in env.items():
            if any(word in var for word in SECRET_WORDS):
                # a *_FILE variable naming a secret this service mounts, never the secret itself
                assert var.endswith("_FILE") or var.endswith("__FILE"), f"{name}: {var} holds a secret"
                secret = str(value).removeprefix("/run/secrets/")
                assert secret in service["secrets"] and secret in declared, f"{name}: {var}"
            assert "${" not in str(value) or var == "ANJU_TENANCY_URL", f"{name}: {var} from the environment"
            assert not re.search(r"://[^/@]+:[^/@]+@", str(value)), f"{name}: {var} has a password in a URL"
    for name, secret in declared.items():
        path = (DEPLOY / secret["file"]).resolve()
        assert path.parent == DEPLOY / "secrets", name
        ignored = subprocess.run(["git", "check-ignore", "-q", secret["file"]], cwd=DEPLOY, check=False)
        assert ignored.returncode == 0, f"{secret['file']} is not ignored by git"
    datasource = DEPLOY / "grafana" / "provisioning" / "datasources" / "anju.yaml"
    assert "$__file{/run/secrets/grafana_db_password}" in datasource.read_text(encoding="utf-8")


def test_the_hub_reads_its_secrets_from_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from anju.hub.settings import HubSettings

    for name, value in (("db", "pw with spaces"), ("mqtt", "mq"), ("token", "tk")):
        (tmp_path / name).write_text(value + "\n", encoding="utf-8")
    hub = compose()["services"]["hub"]["environment"]
    monkeypatch.setenv("ANJU_DATABASE_URL", hub["ANJU_DATABASE_URL"])
    monkeypatch.setenv("ANJU_DATABASE_PASSWORD_FILE", str(tmp_path / "db"))
    monkeypatch.setenv("ANJU_MQTT_PASSWORD_FILE", str(tmp_path / "mqtt"))
    monkeypatch.setenv("ANJU_TENANCY_TOKEN_FILE", str(tmp_path / "token"))
    settings = HubSettings()
    assert settings.mqtt_password is not None and settings.mqtt_password.get_secret_value() == "mq"
    assert settings.tenancy_token is not None and settings.tenancy_token.get_secret_value() == "tk"
    assert settings.database_url is not None
    assert conninfo_to_dict(settings.database_url) == {
        "user": "anju", "password": "pw with spaces", "host": "timescaledb", "port": "5432", "dbname": "anju"}
    monkeypatch.setenv("ANJU_MQTT_PASSWORD_FILE", str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="ANJU_MQTT_PASSWORD_FILE: cannot read"):
        HubSettings()


def test_the_image_installs_the_hub_extra_at_pinned_versions_from_an_ignore_listed_context() -> None:
    dockerfile = (DEPLOY / "hub" / "Dockerfile").read_text(encoding="utf-8")
    assert 'pip install -c constraints.txt ".[hub]"' in dockerfile
    assert "HEALTHCHECK" in dockerfile
    ignore = (DEPLOY.parent / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert "*" in ignore  # everything is out unless let in
    let_in = {line[1:] for line in ignore if line.startswith("!")}
    for copied in re.findall(r"^COPY (\S+)", dockerfile, re.M):
        if copied != "pyproject.toml" and copied != "README.md":
            assert copied.rstrip("/") in {p.rstrip("/") for p in let_in}, copied
    assert not any("secret" in p for p in let_in)
    assert {p for p in let_in if p.startswith("deploy/")} == {"deploy/constraints.txt"}
    pins = (DEPLOY / "constraints.txt").read_text(encoding="utf-8")
    assert re.search(r"^psycopg==\d", pins, re.M) and re.search(r"^fastapi==\d", pins, re.M)
