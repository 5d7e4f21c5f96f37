"""One simulated estate as a whole: its Modbus meters and its face gates, on one shared clock."""

from __future__ import annotations

import asyncio
import logging

from anju.device_sims.gates import run_gate_source
from anju.device_sims.household import EstateModel, EstateSpec
from anju.device_sims.meters import MeterServer
from anju_wire import Clock

log = logging.getLogger(__name__)


async def _serve_meters_until(server: MeterServer, stop: asyncio.Event) -> None:
    async with server:
        await stop.wait()


async def run_estate_sim(
    spec: EstateSpec,
    clock: Clock,
    *,
    modbus_host: str,
    modbus_port: int,
    mqtt_url: str,
    stop: asyncio.Event | None = None,
    silent: frozenset[int] = frozenset(),
    failing: frozenset[int] = frozenset(),
) -> None:
    """Serve the estate's meters and publish its gate events until ``stop`` is set (or cancelled).

    The gate source finishes on its own once every event is out; the meters keep answering until stop.
    """
    stop = stop or asyncio.Event()
    model = EstateModel(spec)
    server = MeterServer(model, clock, host=modbus_host, port=modbus_port, silent=silent, failing=failing)
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(_serve_meters_until(server, stop), name=f"meters-{spec.estate_id}")
        tasks.create_task(run_gate_source(model, clock, mqtt_url=mqtt_url, stop=stop),
                          name=f"gates-{spec.estate_id}")
    log.info("estate %s simulation stopped", spec.estate_id)
