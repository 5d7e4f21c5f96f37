"""The edge agent process: pollers, gate subscriber and publisher as named tasks over one outbox."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING

from anju.edge_agent.errors import EdgeAgentError
from anju.edge_agent.gates import GateIntake, GateSubscriber
from anju.edge_agent.metrics import AgentMetrics, MetricsServer
from anju.edge_agent.mqtt_meters import MqttMeterSource
from anju.edge_agent.outbox import Outbox
from anju.edge_agent.poller import EndpointPoller
from anju.edge_agent.publisher import Publisher
from anju.edge_agent.serial_poll import POLLERS
from anju.edge_agent.site import GateConfig, MeterConfig, SiteConfig, load_site
from anju_wire.payloads import DeviceAvailability

if TYPE_CHECKING:  # the HTTP gate listener (uvicorn, Starlette: ~6 MB) is loaded only for http gates
    from anju.edge_agent.gate_http import HttpGateListener

log = logging.getLogger(__name__)


def build_gate_listeners(config: SiteConfig, intake: GateIntake) -> list[HttpGateListener]:
    """One HTTP listener per listen address of the site's ``source: http`` gates."""
    if not any(g.source == "http" for g in config.gates):
        return []
    from anju.edge_agent.gate_http import HttpGateListener

    by_address: dict[tuple[str, int], list[GateConfig]] = defaultdict(list)
    for g in config.gates:
        if g.source == "http":
            by_address[g.listener].append(g)
    return [HttpGateListener(host=h, port=p, gates=gs, intake=intake) for (h, p), gs in by_address.items()]


def build_pollers(config: SiteConfig, outbox: Outbox) -> list[EndpointPoller]:
    """One poller per polled endpoint in the site file: a TCP host:port, or a serial port (one RS-485 bus),
    speaking the protocol of its meters (Modbus, DL/T 645 or CJ/T 188: one per bus, the site file checks)."""
    clock = config.make_clock()
    by_endpoint: dict[tuple[str, ...], list[MeterConfig]] = defaultdict(list)
    for m in config.meters:
        if m.transport != "mqtt":
            by_endpoint[m.endpoint].append(m)
    pollers: list[EndpointPoller] = []
    for ms in by_endpoint.values():
        if ms[0].protocol == "modbus":
            from anju.edge_agent.modbus import (
                ModbusEndpointPoller,  # pymodbus (~10 MB) only for Modbus meters
            )

            pollers.append(ModbusEndpointPoller(meters=ms, clock=clock, outbox=outbox))
        else:
            pollers.append(POLLERS[ms[0].protocol](meters=ms, clock=clock, outbox=outbox))
    return pollers


def face_census(config: SiteConfig) -> Callable[[], dict[str, int] | None]:
    """What the status reports as ``faces_enrolled``: the gallery's census when the site asks, else None."""
    if not config.faces.report_enrolment:
        return lambda: None
    from anju.edge_agent.faces.census import FaceCensus  # the face store's libraries only when asked

    return FaceCensus(
        settings=config.faces, estate_id=config.estate_id, units=[m.unit_id for m in config.meters]
    )


async def _stop_when_drained(outbox: Outbox, stop: asyncio.Event, *, interval_s: float = 0.5) -> None:
    """Set ``stop`` once every record in the outbox has been acknowledged by the hub."""
    while not stop.is_set():
        if outbox.depth() == 0:
            log.info("outbox drained: every record is acknowledged")
            stop.set()
            return
        await asyncio.sleep(interval_s)


async def run_agent(config: SiteConfig, *, stop: asyncio.Event | None = None, drain: bool = False) -> None:
    """Run the agent until ``stop`` is set (forever when None); the outbox is closed on the way out.

    With ``drain``, read no device: only publish what the outbox holds and return once the hub has
    acknowledged all of it (for decommissioning a gateway, or ending a simulation).
    """
    stop = stop or asyncio.Event()
    outbox = Outbox(config.outbox.path, capacity=config.outbox.capacity)
    metrics_server: MetricsServer | None = None
    try:
        pollers = [] if drain else build_pollers(config, outbox)
        reporting = [m for m in config.meters if m.transport == "mqtt"]
        mqtt_meters = None
        if reporting and not drain:
            mqtt_meters = MqttMeterSource(
                url=config.gates_mqtt_url, agent_id=config.agent_id, meters=reporting,
                clock=config.make_clock(), outbox=outbox,
            )  # fmt: skip
        cameras = None
        if config.cameras and not drain:
            from anju.edge_agent.faces.service import build_cameras  # OpenCV and onnxruntime only when needed

            cameras = build_cameras(
                cameras=config.cameras, settings=config.faces, estate_id=config.estate_id,
                secret=config.secret_bytes(), outbox=outbox, clock=config.make_clock(),
            )  # fmt: skip
        metrics = AgentMetrics(
            agent_id=config.agent_id, outbox=outbox, pollers=pollers, mqtt_meters=mqtt_meters
        )
        if config.metrics is not None and not drain:
            metrics_server = MetricsServer(metrics, host=config.metrics.host, port=config.metrics.port)

        def devices() -> list[DeviceAvailability]:
            polled = [d for p in pollers for d in p.availability()]
            polled += cameras.availability() if cameras is not None else []
            return polled + (mqtt_meters.availability() if mqtt_meters is not None else [])

        publisher = Publisher(
            url=config.mqtt_url,
            agent_id=config.agent_id,
            estate_id=config.estate_id,
            outbox=outbox,
            clock=config.make_clock(),
            settings=config.publish,
            devices=devices,
            census=face_census(config),
        )
        metrics.publisher = publisher
        metrics.cameras = cameras
        log.info(
            "agent %s for estate %s: %d meters (%d polled endpoints), %d gates, outbox %s (%d waiting)",
            config.agent_id, config.estate_id, len(config.meters), len(pollers), len(config.gates),
            outbox.path, outbox.depth(),
        )  # fmt: skip
        async with asyncio.TaskGroup() as tg:
            tg.create_task(publisher.run(stop), name="publisher")
            if drain:
                tg.create_task(_stop_when_drained(outbox, stop), name="drain")
                return
            for p in pollers:
                tg.create_task(p.run(stop), name=f"{p.protocol} {p.name}")
            intake = GateIntake(estate_id=config.estate_id, secret=config.secret_bytes(), outbox=outbox)
            metrics.gates = intake
            if any(g.source == "mqtt" for g in config.gates):
                gates = GateSubscriber(
                    url=config.gates_mqtt_url, agent_id=config.agent_id, gates=config.gates, intake=intake
                )
                tg.create_task(gates.run(stop), name="gates")
            for listener in build_gate_listeners(config, intake):
                listener.bind()  # a taken port fails the start, not a task later
                tg.create_task(listener.run(stop), name=f"gates http {listener.host}:{listener.port}")
            if mqtt_meters is not None:
                tg.create_task(mqtt_meters.run(stop), name="mqtt meters")
            for reader in cameras.readers if cameras is not None else []:
                tg.create_task(reader.run(stop), name=reader.device)
    finally:
        if metrics_server is not None:
            metrics_server.close()
        outbox.close()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="anju agent", description="Run the anju edge agent for one estate.")
    parser.add_argument("--config", required=True, help="site YAML file")
    parser.add_argument("--drain", action="store_true", help="publish the outbox only, exit when empty")
    return parser


async def _serve(config: SiteConfig, *, drain: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await run_agent(config, stop=stop, drain=drain)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def main(argv: list[str] | None = None) -> int:
    """``anju agent --config site.yaml``: run until SIGINT/SIGTERM; 0 on a clean stop, 2 on a bad config."""
    args = _parser().parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_site(args.config)
    except EdgeAgentError as err:
        print(f"anju agent: bad site file {args.config}: {err}", file=sys.stderr)
        return 2
    status = 0
    try:
        asyncio.run(_serve(config, drain=args.drain))
    except* EdgeAgentError as group:
        for exc in group.exceptions:
            log.error("agent stopped: %s", exc)
        status = 1
    return status
