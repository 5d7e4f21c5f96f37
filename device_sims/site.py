"""What a simulated estate looks like to the other parts: the edge agent's site file and the unit registry."""

from __future__ import annotations

from typing import Any

from anju.device_sims.gates import gate_topic
from anju.device_sims.household import EstateSpec
from anju.device_sims.registers import RegisterMap, map_for_meter
from anju_wire import AcceleratedClock, MeterKind

PSEUDONYM_SECRET_ENV = "ANJU_PSEUDONYM_SECRET"
OUTBOX_CAPACITY = 1_000_000


def site_config(
    spec: EstateSpec,
    *,
    agent_id: str,
    modbus_host: str,
    modbus_port: int,
    mqtt_url: str,
    outbox_path: str,
    clock: AcceleratedClock,
    poll_interval_s: float = 3600,
    local_mqtt_url: str | None = None,
    maps: dict[MeterKind, RegisterMap] | None = None,
) -> dict[str, Any]:
    """The agent's site file (as a dict ready for ``yaml.safe_dump``) for one simulated estate."""
    maps = maps or {kind: map_for_meter(kind) for kind in MeterKind}
    meters = [
        {
            "unit_id": unit.unit_id,
            "meter": kind.value,
            "host": modbus_host,
            "port": modbus_port,
            "device_id": unit.device_id(kind),
            "register_map": maps[kind].name,
            "poll_interval_s": poll_interval_s,
        }
        for unit in spec.units
        for kind in MeterKind
    ]
    gates = [
        {"device_id": g.device_id, "building": g.building, "source": "mqtt", "topic": gate_topic(g.device_id)}
        for g in spec.gates
    ]
    return {
        "agent_id": agent_id,
        "estate_id": spec.estate_id,
        "mqtt_url": mqtt_url,
        "local_mqtt_url": local_mqtt_url or mqtt_url,
        "outbox": {"path": outbox_path, "capacity": OUTBOX_CAPACITY},
        "pseudonym_secret_env": PSEUDONYM_SECRET_ENV,
        "clock": {
            "origin_wall": clock.origin_wall,
            "origin_sim": clock.origin_sim.isoformat(),
            "speed": clock.speed,
        },
        "publish": {"batch_max": 500, "ack_timeout_s": 5},
        "meters": meters,
        "gates": gates,
    }


def units_registry(spec: EstateSpec) -> list[dict[str, Any]]:
    """Rows for the hub's ``units`` table, as the city's tenancy register would list them."""
    return [
        {
            "unit_id": u.unit_id,
            "estate_id": u.estate_id,
            "building": u.building,
            "floor": u.floor,
            "area_m2": u.area_m2,
            "household_size": u.household_size,
            "lease_start": u.lease_start,
            "faces_enrolled": u.household_size,  # the simulated households all enrolled their faces
        }
        for u in spec.units
    ]
