"""Site file: the documented example loads, bad fields are named, secrets come from the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from anju.edge_agent.errors import SiteConfigError
from anju.edge_agent.site import load_site, parse_site
from anju_wire import AcceleratedClock, WallClock
from tests.edge_agent.helpers import SECRET_ENV

DOC_EXAMPLE = """
agent_id: E01-gw1
estate_id: E01
mqtt_url: mqtt://127.0.0.1:1883
local_mqtt_url: mqtt://127.0.0.1:1884
outbox:
  path: ./E01-outbox.sqlite
  capacity: 1000000
pseudonym_secret_env: ANJU_TEST_PSEUDONYM_SECRET
clock:
  origin_wall: 1764300000.0
  origin_sim: "2026-01-01T00:00:00+08:00"
  speed: 43200
publish:
  batch_max: 500
  ack_timeout_s: 5
meters:
  - unit_id: E01-1-0101
    meter: electricity
    host: 127.0.0.1
    port: 15020
    device_id: 1
    register_map: eastron_sdm120
    poll_interval_s: 3600
  - unit_id: E01-1-0101
    meter: water
    host: 127.0.0.1
    port: 15020
    device_id: 101
    register_map: tuf_2000m
    poll_interval_s: 3600
gates:
  - device_id: E01-G1
    building: "1"
    source: mqtt
    topic: gates/E01-G1/events
"""
ENV = {SECRET_ENV: "s3cret"}


def _doc() -> dict[str, Any]:
    data = yaml.safe_load(DOC_EXAMPLE)
    assert isinstance(data, dict)
    return data


def test_documented_example_loads(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(DOC_EXAMPLE)
    site = load_site(path, environ=ENV)
    assert site.outbox.path == tmp_path / "E01-outbox.sqlite"
    assert site.gates_mqtt_url == "mqtt://127.0.0.1:1884"
    assert site.secret_bytes() == b"s3cret"
    assert "s3cret" not in repr(site)
    assert isinstance(site.make_clock(), AcceleratedClock)
    assert site.meters[0].device == "modbus-tcp://127.0.0.1:15020/1"


def test_without_clock_uses_wall_clock_and_env_overrides_broker() -> None:
    doc = _doc()
    del doc["clock"], doc["local_mqtt_url"]
    site = parse_site(doc, environ={**ENV, "ANJU_MQTT_URL": "mqtts://hub.example:8883"})
    assert isinstance(site.make_clock(), WallClock)
    assert site.mqtt_url == site.gates_mqtt_url == "mqtts://hub.example:8883"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["meters"][1].update(port=70000), r"^meters\.1\.port: "),
        (
            lambda d: d["meters"][0].update(register_map="nope"),
            r"^meters\.0\.register_map: .*unknown register map",
        ),
        (
            lambda d: d["meters"][0].update(register_map="tuf_2000m"),
            r"^meters\.0: .*for water, not electricity",
        ),
        (lambda d: d["meters"][1].update(meter="electricity", register_map="eastron_sdm120"), "twice"),
        (lambda d: d["gates"][0].update(topic="gates/+/events"), r"^gates\.0\.topic: "),
        (lambda d: d.update(agent_id="bad/id"), r"^agent_id: "),
        (lambda d: d["clock"].update(speed=0), r"^clock\.speed: "),
        (lambda d: d.update(mqtt_url="http://x"), r"^mqtt_url: "),
        (lambda d: d.update(surprise=1), r"^surprise: Extra inputs"),
        (lambda d: d.update(pseudonym_secret="inline"), r"^pseudonym_secret: keep the secret"),
        (lambda d: d.update(pseudonym_secret_env="MISSING_SECRET_VAR"), r"^pseudonym_secret_env: .*not set"),
        (lambda d: d["publish"].update(batch_max=0), r"^publish\.batch_max: "),
    ],
)
def test_bad_field_is_named(change: Any, message: str) -> None:
    doc = _doc()
    change(doc)
    with pytest.raises(SiteConfigError, match=message):
        parse_site(doc, environ=ENV)


def test_unreadable_and_non_yaml_files(tmp_path: Path) -> None:
    with pytest.raises(SiteConfigError, match="cannot read"):
        load_site(tmp_path / "absent.yaml", environ=ENV)
    bad = tmp_path / "bad.yaml"
    bad.write_text("agent_id: [")
    with pytest.raises(SiteConfigError, match="not valid YAML"):
        load_site(bad, environ=ENV)
    bad.write_text("- a list")
    with pytest.raises(SiteConfigError, match="must be a mapping"):
        load_site(bad, environ=ENV)
