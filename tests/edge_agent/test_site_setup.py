"""A new estate from a unit list to verified readings in two commands: ``anju agent site generate``, then
``anju agent check`` against simulated DL/T 645 and CJ/T 188 meters (a pty bus and a TCP gateway)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from anju.cli import main
from anju.edge_agent.errors import SiteConfigError
from anju.edge_agent.site import load_site, parse_site
from anju.edge_agent.site_setup import generate_site, line_of, read_units, with_lines
from tests.services import free_port

UNITS = """unit_id,estate_id,building,floor,area_m2,electricity_address
E01-1-0101,E01,1,1,45,
E01-1-0102,E01,1,1,45,
E01-1-0201,E01,1,2,45,000000000042
E01-2-0101,E01,2,1,60,
E01-2-0102,E01,2,1,60,
E01-2-0103,E01,2,1,60,
E02-1-0101,E02,1,1,60,
"""


def template(*, bus: str = "/dev/ttyUSB0", gateway_port: int = 8899) -> dict[str, object]:
    return {
        "site": {"agent_id": "E01-gw1", "estate_id": "E01", "mqtt_url": "mqtts://hub.example:8883",
                 "outbox": {"path": "outbox.sqlite"}, "pseudonym_secret_env": "ANJU_PSEUDONYM_SECRET"},
        "buildings": {
            "1": {"electricity": {"protocol": "dlt645", "serial_port": bus, "first_address": 1,
                                  "baudrate": 2400, "parity": "E", "timeout_s": 0.5},
                  "water": {"protocol": "cjt188", "host": "127.0.0.1", "port": gateway_port,
                            "first_address": 1, "timeout_s": 0.5}},
            "*": {"electricity": {"register_map": "eastron_sdm120", "hosts": ["10.0.2.1", "10.0.2.2"],
                                  "per_bus": 2, "first_address": 1}},
        },
    }  # fmt: skip


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_generate_wires_each_building_from_the_template(tmp_path: Path) -> None:
    units = read_units(write(tmp_path, "units.csv", UNITS), estate_id="E01")
    doc = generate_site(units, template())
    site = parse_site(doc, environ={"ANJU_PSEUDONYM_SECRET": "x"}, base_dir=tmp_path)
    got = [(m.unit_id, m.meter.value, m.protocol, m.station, m.host or m.serial_port) for m in site.meters]
    assert got == [
        ("E01-1-0101", "electricity", "dlt645", "000000000001", "/dev/ttyUSB0"),
        ("E01-1-0101", "water", "cjt188", "00000000000001", "127.0.0.1"),
        ("E01-1-0102", "electricity", "dlt645", "000000000002", "/dev/ttyUSB0"),
        ("E01-1-0102", "water", "cjt188", "00000000000002", "127.0.0.1"),
        ("E01-1-0201", "electricity", "dlt645", "000000000042", "/dev/ttyUSB0"),  # printed on the meter
        ("E01-1-0201", "water", "cjt188", "00000000000003", "127.0.0.1"),
        ("E01-2-0101", "electricity", "modbus", "1", "10.0.2.1"),
        ("E01-2-0102", "electricity", "modbus", "2", "10.0.2.1"),
        ("E01-2-0103", "electricity", "modbus", "1", "10.0.2.2"),  # per_bus: 2 -> the next gateway
    ]
    assert site.meters[0].transport == "rtu" and site.meters[1].transport == "tcp"


def test_generate_refuses_what_it_cannot_wire(tmp_path: Path) -> None:
    units = read_units(write(tmp_path, "units.csv", UNITS), estate_id="E01")
    with pytest.raises(SiteConfigError, match="building '2' is not in the template"):
        generate_site(units, {**template(), "buildings": {"1": template()["buildings"]["1"]}})  # type: ignore[index]
    with pytest.raises(SiteConfigError, match="needs columns building"):
        read_units(write(tmp_path, "bad.csv", "unit_id,floor\nU1,1\n"))


def test_line_numbers_point_at_the_entry() -> None:
    text = "agent_id: a\nmeters:\n  - unit_id: U1\n    meter: water\n  - unit_id: U2\n    address: '12'\n"
    assert line_of(text, "meters.1.address") == 6
    assert line_of(text, "meters.1") == 5
    assert line_of(text, "meters.7.address") == 3  # the deepest part that exists: the list


@contextmanager
def sim(*args: str) -> Iterator[str]:
    """``anju sim meters ...`` in a child process; yields its 'serving ...' line."""
    proc = subprocess.Popen([sys.executable, "-m", "anju.cli", "sim", "meters", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("serving"), line
        yield line
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def test_two_commands_from_a_unit_list_to_verified_readings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    with (
        sim("--protocol", "dlt645", "--rtu-pty", "--units", "2", "--silent", "2") as bus_line,
        sim("--protocol", "cjt188", "--listen", f"127.0.0.1:{port}", "--units", "3") as _,
    ):
        agent_end = bus_line.rsplit("agent serial_port: ", 1)[1].strip()
        wiring = template(bus=agent_end, gateway_port=port)
        wiring["buildings"] = {"1": wiring["buildings"]["1"]}  # type: ignore[index]
        units = write(tmp_path, "units.csv", "unit_id,building\nE01-1-0101,1\nE01-1-0102,1\n")
        tpl = write(tmp_path, "wiring.yaml", yaml.safe_dump(wiring))
        site = tmp_path / "site.yaml"
        assert main(["agent", "site", "generate", "--units", str(units), "--template", str(tpl),
                     "--output", str(site)]) == 0  # fmt: skip
        env = write(tmp_path, "agent.env", "ANJU_PSEUDONYM_SECRET='s3cret'\n")
        monkeypatch.delenv("ANJU_PSEUDONYM_SECRET", raising=False)
        status = main(["agent", "check", "--config", str(site), "--env-file", str(env)])
    out = capsys.readouterr().out
    assert status == 1, out  # the silent meter fails the check
    lines = out.splitlines()
    assert lines[1].split() == ["unit", "meter", "protocol", "address", "value", "status"]
    rows = {(ln.split()[0], ln.split()[1]): ln for ln in lines[2:6]}
    assert rows[("E01-1-0101", "electricity")].split()[-1] == "ok"
    assert "FAIL transport: no answer" in rows[("E01-1-0102", "electricity")]
    assert rows[("E01-1-0101", "water")].endswith("ok") and rows[("E01-1-0102", "water")].endswith("ok")
    assert lines[-1] == "3 of 4 meters ok, 1 failed"


def test_check_reports_problems_with_their_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = """agent_id: E01-gw1
estate_id: E01
mqtt_url: mqtt://127.0.0.1:1883
outbox: {path: o.sqlite}
pseudonym_secret_env: S
meters:
  - unit_id: E01-1-0101
    meter: electricity
    protocol: dlt645
    serial_port: /dev/ttyUSB0
    transport: rtu
    address: "0001"
"""
    site = write(tmp_path, "site.yaml", bad)
    env = write(tmp_path, "agent.env", "S=x\n")
    assert main(["agent", "check", "--config", str(site), "--env-file", str(env), "--no-probe"]) == 2
    err = capsys.readouterr().err
    assert f"{site}: line 12: meters.0.address" in err


def test_the_installer_guides_wiring_template_generates_a_valid_site(tmp_path: Path) -> None:
    docs = Path(__file__).resolve().parents[2] / "docs"
    for page in ("gateway-installer.md", "zh-CN/gateway-installer.md"):
        text = (docs / page).read_text(encoding="utf-8")
        block = text.split("```yaml\n", 1)[1].split("```", 1)[0]
        units = read_units(write(tmp_path, "units.csv", UNITS), estate_id="E01")
        site = parse_site(generate_site(units, yaml.safe_load(block)), environ={"ANJU_PSEUDONYM_SECRET": "x"})
        assert [m.protocol for m in site.meters[:2]] == ["dlt645", "cjt188"], page
        assert site.meters[-1].host == "10.20.2.11" and site.meters[-1].device_id == 3, page


def test_a_whole_file_problem_points_at_the_unit_it_names() -> None:
    text = "meters:\n  - unit_id: U1\n    meter: water\n  - unit_id: U2\n    meter: water\n"
    problem = SiteConfigError("<root>: Value error, U2: one bus or gateway speaks one protocol")
    (line,) = with_lines(text, problem)
    assert line.startswith("line 4: <root>")


def test_register_and_payload_maps_from_the_operators_folder(tmp_path: Path) -> None:
    shipped = Path(__file__).resolve().parents[2] / "edge_agent"
    maps = tmp_path / "maps"
    maps.mkdir()
    (maps / "my_meter.yaml").write_text((shipped / "maps" / "eastron_sdm120.yaml").read_text())
    (maps / "my_plug.yaml").write_text((shipped / "payload_maps" / "tasmota_energy.yaml").read_text())
    meters = [{"unit_id": "U1", "meter": "electricity", "host": "10.0.0.1", "register_map": "my_meter"},
              {"unit_id": "U2", "meter": "electricity", "transport": "mqtt", "topic": "tele/p/SENSOR",
               "payload_map": "my_plug"}]  # fmt: skip
    doc: dict[str, Any] = {**template()["site"], "meters": meters}  # type: ignore[dict-item]
    with pytest.raises(SiteConfigError, match="unknown register map 'my_meter'"):
        parse_site(doc, environ={"ANJU_PSEUDONYM_SECRET": "x"}, base_dir=tmp_path)
    doc.update(register_maps_dir="maps", payload_maps_dir="maps")  # relative to the site file
    site = parse_site(doc, environ={"ANJU_PSEUDONYM_SECRET": "x"}, base_dir=tmp_path)
    assert site.meters[0].load_map().name == "my_meter"
    assert site.meters[1].load_payload_map().name == "my_plug"
    with pytest.raises(SiteConfigError, match=r"register_maps_dir: .* is not a directory"):
        parse_site({**doc, "register_maps_dir": "nowhere"}, environ={"ANJU_PSEUDONYM_SECRET": "x"},
                   base_dir=tmp_path)  # fmt: skip


def test_the_example_site_file_is_valid() -> None:
    example = Path(__file__).resolve().parents[2] / "deploy" / "site.example.yaml"
    site = load_site(example, environ={"ANJU_PSEUDONYM_SECRET": "x", "ANJU_GATE_TOKEN": "t"})
    assert {m.protocol for m in site.meters} == {"modbus", "dlt645", "cjt188"}
