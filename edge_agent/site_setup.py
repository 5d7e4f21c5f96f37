"""Gateway set-up: a site file for a whole estate from its unit list and a wiring template, the line of the
site file a problem is on, and one probe of every polled meter before go-live.

The wiring template (YAML) holds the site file's fixed part under ``site:`` and, under ``buildings:``, how
each building's meters are wired, per meter kind (``"*"`` matches any building not listed)::

    site: {agent_id: E01-gw1, estate_id: E01, mqtt_url: ..., outbox: {path: ...}, pseudonym_secret_env: ...}
    buildings:
      "1":
        electricity: {protocol: dlt645, transport: rtu, serial_port: /dev/ttyUSB0, first_address: 1}
        water: {protocol: cjt188, transport: rtu, serial_port: /dev/ttyUSB1, first_address: 1}
      "*":
        electricity: {host: 10.20.1.11, port: 502, register_map: eastron_sdm120, first_address: 1}

A building's units get consecutive addresses from ``first_address`` in the order of the unit list (the
Modbus device id, or the DL/T 645 / CJ/T 188 address in 12 / 14 digits); ``per_bus`` with ``serial_ports``
(or ``hosts``) spreads them over several buses. A unit list column ``electricity_address``,
``water_address`` or ``gas_address`` gives a meter's printed address instead. Every other key of a wiring
entry is copied onto the meter as it is.
"""

from __future__ import annotations

import asyncio
import csv
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from anju.edge_agent.errors import SiteConfigError
from anju.edge_agent.site import ADDRESS_DIGITS, SiteConfig

KINDS = ("electricity", "water", "gas")
_TEMPLATE_ONLY = {"first_address", "per_bus", "serial_ports", "hosts"}


def read_units(path: Path, *, estate_id: str | None = None) -> list[dict[str, str]]:
    """The rows of a unit list (``unit_id`` and ``building`` required), for one estate when given."""
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        missing = {"unit_id", "building"} - set(reader.fieldnames or [])
        if missing:
            raise SiteConfigError(f"{path}: the unit list needs columns {', '.join(sorted(missing))}")
        rows = [r for r in reader if estate_id is None or r.get("estate_id", estate_id) == estate_id]
    if not rows:
        raise SiteConfigError(f"{path}: no units" + (f" of estate {estate_id}" if estate_id else ""))
    return rows


def _station(protocol: str, number: int) -> dict[str, Any]:
    if protocol == "modbus":
        return {"device_id": number}
    return {"address": f"{number:0{ADDRESS_DIGITS[protocol]}d}"}


def _wired(kind: str, wiring: dict[str, Any], index: int, printed: str | None) -> dict[str, Any]:
    """The site entry's wiring of the ``index``-th unit of its building (0-based)."""
    meter = {k: v for k, v in wiring.items() if k not in _TEMPLATE_ONLY}
    protocol = str(meter.get("protocol", "modbus"))
    per_bus = int(wiring.get("per_bus", 0)) or None
    bus, slot = divmod(index, per_bus) if per_bus else (0, index)
    for many, one in (("serial_ports", "serial_port"), ("hosts", "host")):
        if many in wiring:
            choices = list(wiring[many])
            if bus >= len(choices):
                raise SiteConfigError(f"{kind}: {len(choices)} {many} of {per_bus} meters are too few")
            meter[one] = choices[bus]
    if "serial_port" in meter:
        meter.setdefault("transport", "rtu")  # a meter on a serial port is on an RS-485 bus
    if printed:
        return {**meter, **({"device_id": int(printed)} if protocol == "modbus" else {"address": printed})}
    return {**meter, **_station(protocol, int(wiring.get("first_address", 1)) + slot)}


def generate_site(units: list[dict[str, str]], template: dict[str, Any]) -> dict[str, Any]:
    """The site document for ``units`` wired as ``template`` says (validated by the caller)."""
    if not isinstance(template.get("site"), dict) or not isinstance(template.get("buildings"), dict):
        raise SiteConfigError("the wiring template needs a 'site' and a 'buildings' mapping")
    buildings: dict[str, Any] = {str(k): v for k, v in template["buildings"].items()}
    counts: dict[tuple[str, str], int] = {}
    meters: list[dict[str, Any]] = []
    for row in units:
        building = row["building"]
        wiring = buildings.get(building, buildings.get("*"))
        if wiring is None:
            raise SiteConfigError(f"unit {row['unit_id']}: building {building!r} is not in the template")
        for kind in KINDS:
            if kind not in wiring:
                continue
            index = counts.get((building, kind), 0)
            counts[(building, kind)] = index + 1
            printed = (row.get(f"{kind}_address") or "").strip() or None
            entry = _wired(kind, dict(wiring[kind]), index, printed)
            meters.append({"unit_id": row["unit_id"], "meter": kind, **entry})
    return {**template["site"], "meters": meters}


# --- line numbers --------------------------------------------------------------------------------------


def _child(node: yaml.Node, key: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if str(k.value) == key:
                return v
    if isinstance(node, yaml.SequenceNode) and key.isdigit() and int(key) < len(node.value):
        child: yaml.Node = node.value[int(key)]
        return child
    return None


def line_of(text: str, path: str) -> int | None:
    """The 1-based line of ``path`` (``meters.3.address``) in the YAML ``text``: the deepest part found."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return None
    if node is None:
        return None
    line = None
    for part in path.split("."):
        found = _child(node, part)
        if found is None:
            break
        node = found
        line = node.start_mark.line + 1
    return line


def _line_of_unit_named_in(text: str, message: str) -> int | None:
    """The line of the first meter entry whose unit_id the message names (for whole-file problems)."""
    try:
        meters = yaml.safe_load(text).get("meters") or []
    except (yaml.YAMLError, AttributeError):
        return None
    for i, meter in enumerate(meters):
        if isinstance(meter, dict) and str(meter.get("unit_id")) in message:
            return line_of(text, f"meters.{i}")
    return None


def with_lines(text: str, err: SiteConfigError) -> list[str]:
    """Each problem of ``err`` (``path: message; ...``) prefixed with its line in ``text``."""
    out = []
    for problem in str(err).split("; "):
        path = problem.split(":", 1)[0].strip()
        line = line_of(text, path) if " " not in path and path != "<root>" else None
        if path == "<root>":
            line = _line_of_unit_named_in(text, problem)
        out.append(f"line {line}: {problem}" if line else problem)
    return out


# --- probing ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProbeRow:
    """One meter's answer to the probe."""

    unit_id: str
    meter: str
    protocol: str
    address: str
    value: float | None
    status: str


async def probe(config: SiteConfig) -> list[ProbeRow]:
    """Poll every polled meter of the site once (buses in parallel, meters on a bus in turn).

    Readings go to a throw-away outbox: the site's own outbox, and the totals it remembers, are not
    touched. Self-reporting (MQTT) meters are listed, not probed.
    """
    from anju.edge_agent.agent import build_pollers
    from anju.edge_agent.outbox import Outbox

    rows: list[ProbeRow] = []
    with (
        tempfile.TemporaryDirectory(prefix="anju-check-") as tmp,
        Outbox(Path(tmp) / "probe.sqlite", capacity=10**7) as outbox,
    ):
        pollers = build_pollers(config, outbox)
        try:
            rounds = await asyncio.gather(*(p.poll_round() for p in pollers))
        finally:
            for p in pollers:
                p.close()
        for poller, records in zip(pollers, rounds, strict=True):
            for state, record in zip(poller.meters, records, strict=True):
                cfg = state.config
                status = "ok" if record.value is not None else f"FAIL {state.last_problem}"
                rows.append(
                    ProbeRow(cfg.unit_id, cfg.meter.value, cfg.protocol, cfg.device, record.value, status)
                )
    for m in config.meters:
        if m.transport == "mqtt":
            unprobed = "reports on MQTT: not probed"
            rows.append(ProbeRow(m.unit_id, m.meter.value, "mqtt", m.device, None, unprobed))
    return rows


def format_table(rows: list[ProbeRow]) -> str:
    """The probe as an aligned text table."""
    head = ("unit", "meter", "protocol", "address", "value", "status")
    body = [
        (r.unit_id, r.meter, r.protocol, r.address, "-" if r.value is None else f"{r.value:.2f}", r.status)
        for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=True)]
    return "\n".join("  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=True)).rstrip()
                     for line in (head, *body))  # fmt: skip


def load_template(path: Path) -> dict[str, Any]:
    """A wiring template file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise SiteConfigError(f"{path}: {err}") from err
    if not isinstance(data, dict):
        raise SiteConfigError(f"{path}: the wiring template must be a mapping")
    return data
