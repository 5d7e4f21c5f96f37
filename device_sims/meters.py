"""Simulated meters of an estate over Modbus TCP, and what every simulated Modbus meter is made of.

Each meter is a pymodbus ``SimDevice`` at its unit's device id, laid out by the register map of its
utility. Register words are not stored: a device's read action computes them at the moment of the
request from the household model and the shared clock, so a poll at any simulated instant sees the
same total the ground truth holds for that instant. Faults are injected per device id: a silent
device does not answer at all (the client times out), a failing one answers with an exception response.

The other meter simulators each have their module: ``anju.device_sims.fleet_meters`` (a fleet of SDM120s
over TCP or RTU), ``device_sims.reporting_meters`` (self-reporting MQTT meters), ``device_sims.dlt645_sim``
(DL/T 645 and CJ/T 188 meters); ``anju.device_sims.fleet`` holds the totals the fleets share.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from pymodbus.constants import ExcCodes
from pymodbus.exceptions import NoSuchIdException
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimAction, SimData, SimDevice

from anju.device_sims.household import EstateModel
from anju.device_sims.registers import RegisterMap, encode_value, map_for_meter
from anju.device_sims.serving import Served
from anju_wire import Clock, MeterKind

log = logging.getLogger(__name__)

READ_FUNCTIONS = frozenset({3, 4})  # read holding registers, read input registers


def _register_block(reg_map: RegisterMap) -> list[SimData]:
    """Read-only registers covering the map's parts (contents are filled in at read time)."""
    return [
        SimData(address=p.address, count=1, values=[0] * p.words, datatype=DataType.REGISTERS, readonly=True)
        for p in sorted(reg_map.total, key=lambda p: p.address)
    ]


def sim_blocks(reg_map: RegisterMap) -> tuple[list[SimData], list[SimData], list[SimData], list[SimData]]:
    """(coils, discrete inputs, holding, input): the map's registers in the table it names, nothing else."""
    bits = [SimData(address=0, values=[False] * 16, datatype=DataType.BITS, readonly=True)]
    empty = [SimData(address=0, datatype=DataType.INVALID)]
    regs = _register_block(reg_map)
    if reg_map.function == "input":
        return (bits, list(bits), empty, regs)
    return (bits, list(bits), regs, empty)


class MeterServer(Served):
    """One Modbus TCP endpoint serving an estate's meters; use ``async with`` or ``start``/``stop``."""

    def __init__(
        self,
        model: EstateModel,
        clock: Clock,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        silent: Iterable[int] = frozenset(),
        failing: Iterable[int] = frozenset(),
        maps: dict[MeterKind, RegisterMap] | None = None,
    ) -> None:
        self.model = model
        self.clock = clock
        self.host = host
        self._port = port
        self.silent: set[int] = set(silent)  # mutable on purpose: tests switch faults while serving
        self.failing: set[int] = set(failing)
        self.maps = maps or {kind: map_for_meter(kind) for kind in MeterKind}
        self._server: ModbusTcpServer | None = None

    def devices(self) -> list[SimDevice]:
        """One ``SimDevice`` per unit and utility, plus a catch-all for ids that no meter has."""
        devices = []
        for unit in self.model.spec.units:
            for kind in MeterKind:
                reg_map = self.maps[kind]
                devices.append(SimDevice(
                    id=unit.device_id(kind), simdata=sim_blocks(reg_map),
                    action=self._action(unit.unit_id, kind, reg_map, unit.device_id(kind)),
                ))
        devices.append(SimDevice(id=0, simdata=sim_blocks(self.maps[MeterKind.ELECTRICITY]),
                                 action=self._absent))
        return devices

    def _action(self, unit_id: str, kind: MeterKind, reg_map: RegisterMap, device_id: int) -> SimAction:
        async def on_access(
            function_code: int, start_address: int, address: int, count: int,
            registers: list[int], set_values: list[int] | list[bool] | None,
        ) -> ExcCodes | None:
            if device_id in self.silent:
                # The request handler drops the request without an answer (ignore_missing_devices).
                raise NoSuchIdException(f"device {device_id} is silent")
            if device_id in self.failing:
                return ExcCodes.DEVICE_FAILURE
            if set_values is not None or function_code not in READ_FUNCTIONS:
                return ExcCodes.ILLEGAL_FUNCTION
            value = self.model.register_value(unit_id, kind, self.clock.now())
            for reg_address, word in encode_value(reg_map, value).items():
                registers[reg_address - start_address] = word
            return None

        return on_access

    async def _absent(
        self, function_code: int, start_address: int, address: int, count: int,
        registers: list[int], set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        # Like a Modbus TCP gateway whose serial line has no device at this id.
        return ExcCodes.GATEWAY_NO_RESPONSE

    @property
    def port(self) -> int:
        """The bound TCP port (useful when constructed with port 0)."""
        server = self._server
        sockets = getattr(server.transport, "sockets", None) if server is not None else None
        if sockets:
            return int(sockets[0].getsockname()[1])
        return self._port

    async def start(self) -> None:
        """Bind and start serving in the background."""
        if self._server is not None:
            raise RuntimeError("meter server already started")
        server = ModbusTcpServer(self.devices(), address=(self.host, self._port), ignore_missing_devices=True)
        await server.serve_forever(background=True)
        self._server = server
        log.info("serving %d meters of estate %s on %s:%d", 3 * len(self.model.spec.units),
                 self.model.spec.estate_id, self.host, self.port)

    async def stop(self) -> None:
        """Stop listening and close every client connection."""
        server, self._server = self._server, None
        if server is not None:
            await server.shutdown()


async def serve_meters(
    model: EstateModel,
    clock: Clock,
    *,
    host: str,
    port: int,
    silent: frozenset[int] = frozenset(),
    failing: frozenset[int] = frozenset(),
) -> None:
    """Serve the estate's meters until cancelled."""
    async with MeterServer(model, clock, host=host, port=port, silent=silent, failing=failing):
        await asyncio.Event().wait()
