"""A fleet of stand-alone SDM120 electricity meters over Modbus TCP or RTU (``anju sim meters``)."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterable
from typing import Literal

from pymodbus.constants import ExcCodes
from pymodbus.exceptions import NoSuchIdException
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import SimAction, SimDevice

from anju.device_sims.fleet import fleet_energy_kwh
from anju.device_sims.meters import READ_FUNCTIONS, sim_blocks
from anju.device_sims.registers import RegisterMap, encode_value, map_for_meter
from anju.device_sims.serving import Served
from anju_wire import Clock, MeterKind

log = logging.getLogger(__name__)

MAX_DEVICE_ID = 247  # Modbus unit ids 1..247 address devices; 0 is broadcast, 248..255 are reserved


def fleet_endpoint(unit: int, *, base_port: int) -> tuple[int, int]:
    """(port, device id) of fleet unit ``unit`` (1-based): 247 units per port, ports counted up from base."""
    if unit < 1:
        raise ValueError("fleet units are numbered from 1")
    return base_port + (unit - 1) // MAX_DEVICE_ID, (unit - 1) % MAX_DEVICE_ID + 1


class FleetMeterServer(Served):
    """``units`` Eastron SDM120 electricity meters over Modbus TCP, 247 per port from ``port`` upwards,
    or over Modbus RTU on one serial line (``serial_port``; at most 247 units, device ids 1..N).

    Over TCP unit ``u`` answers at ``fleet_endpoint(u)``: with up to 247 units that is device ids 1..N on
    one port. ``slow`` units answer after ``slow_s`` seconds (on RTU they hold the bus meanwhile, as a slow
    meter does), ``silent`` ones never, ``failing`` ones with exception code 4 (server device failure).
    The fault sets hold unit numbers and may be changed while serving.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        units: int,
        host: str = "127.0.0.1",
        port: int = 0,
        serial_port: str | None = None,
        baudrate: int = 9600,
        parity: Literal["N", "E", "O"] = "N",
        slow: Iterable[int] = frozenset(),
        silent: Iterable[int] = frozenset(),
        failing: Iterable[int] = frozenset(),
        slow_s: float = 2.0,
        reg_map: RegisterMap | None = None,
    ) -> None:
        if units < 1:
            raise ValueError("a fleet needs at least one unit")
        if serial_port is None and port < 1:
            raise ValueError("a fleet needs a fixed base port (it serves on port, port+1, ...)")
        if serial_port is not None and units > MAX_DEVICE_ID:
            raise ValueError(f"one RTU line addresses at most {MAX_DEVICE_ID} meters (device ids 1..247)")
        self.serial_port = serial_port
        self.baudrate = baudrate
        self.parity = parity
        self.clock = clock
        self.units = units
        self.host = host
        self.base_port = port
        self.slow: set[int] = set(slow)
        self.silent: set[int] = set(silent)
        self.failing: set[int] = set(failing)
        self.slow_s = slow_s
        self.reg_map = reg_map or map_for_meter(MeterKind.ELECTRICITY)
        if self.reg_map.meter is not MeterKind.ELECTRICITY:
            raise ValueError(f"{self.reg_map.name} is not an electricity map")
        self.reads = 0
        self._servers: list[ModbusTcpServer | ModbusSerialServer] = []

    @property
    def ports(self) -> list[int]:
        """Every TCP port served, lowest first (none over RTU)."""
        if self.serial_port is not None:
            return []
        return sorted({fleet_endpoint(u, base_port=self.base_port)[0] for u in range(1, self.units + 1)})

    def value(self, unit: int) -> float:
        """The total the meter of ``unit`` shows now."""
        return fleet_energy_kwh(unit, self.clock.now())

    def _action(self, unit: int) -> SimAction:
        async def on_access(
            function_code: int, start_address: int, address: int, count: int,
            registers: list[int], set_values: list[int] | list[bool] | None,
        ) -> ExcCodes | None:
            if unit in self.silent:
                raise NoSuchIdException(f"unit {unit} is silent")
            if unit in self.slow:
                await asyncio.sleep(self.slow_s)
            if unit in self.failing:
                return ExcCodes.DEVICE_FAILURE
            if set_values is not None or function_code not in READ_FUNCTIONS:
                return ExcCodes.ILLEGAL_FUNCTION
            self.reads += 1
            for reg_address, word in encode_value(self.reg_map, self.value(unit)).items():
                registers[reg_address - start_address] = word
            return None

        return on_access

    async def start(self) -> None:
        """Bind every port (or open the serial line) and serve in the background."""
        if self._servers:
            raise RuntimeError("fleet already started")
        if self.serial_port is not None:
            await self._start_rtu(self.serial_port)
            return
        by_port: dict[int, list[SimDevice]] = {}
        for u in range(1, self.units + 1):
            port, device_id = fleet_endpoint(u, base_port=self.base_port)
            by_port.setdefault(port, []).append(
                SimDevice(id=device_id, simdata=sim_blocks(self.reg_map), action=self._action(u))
            )
        try:
            for port, devices in sorted(by_port.items()):
                server = ModbusTcpServer(devices, address=(self.host, port), ignore_missing_devices=True)
                await server.serve_forever(background=True)
                self._servers.append(server)
        except BaseException:
            await self.stop()
            raise
        log.info("serving %d SDM120 meters on %s ports %s", self.units, self.host, self.ports)

    async def _start_rtu(self, path: str) -> None:
        try:  # pymodbus only logs an unopenable port and retries; an operator needs the reason now
            os.close(os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK))
        except OSError as err:
            raise OSError(err.errno, f"cannot open serial port {path}: {err.strerror}") from err
        devices = [
            SimDevice(id=u, simdata=sim_blocks(self.reg_map), action=self._action(u))
            for u in range(1, self.units + 1)
        ]
        server = ModbusSerialServer(
            devices, port=path, baudrate=self.baudrate, parity=self.parity, ignore_missing_devices=True
        )
        await server.serve_forever(background=True)
        self._servers.append(server)
        log.info("serving %d SDM120 meters over Modbus RTU on %s (%d 8%s1)",
                 self.units, path, self.baudrate, self.parity)  # fmt: skip

    async def stop(self) -> None:
        """Stop every port."""
        servers, self._servers = self._servers, []
        for server in servers:
            await server.shutdown()
