"""A fleet of DL/T 645-2007 electricity meters or CJ/T 188 water meters on one RS-485 line or TCP gateway.

Unit ``u`` (1-based) answers at address ``u`` written in 12 (DL/T 645) or 14 (CJ/T 188) decimal digits. Its
total follows the same closed-form curves as the Modbus fleet (``device_sims.fleet``), so any instant has one
exact total. ``silent`` units never answer, ``failing`` ones answer with an error frame, ``slow`` ones after
``slow_s`` seconds (holding the line, as a slow meter does); ``totals`` pins a unit's total (a rollover or a
replaced meter in tests). All may be changed while serving. Over TCP the fleet is a transparent
serial-to-Ethernet gateway: every connection reaches the whole bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Literal

import serial

from anju.device_sims.fleet import fleet_energy_kwh, fleet_water_litres
from anju.device_sims.serving import Served
from anju.edge_agent import cjt188, dlt645
from anju.edge_agent.framing import FrameError, take_frame
from anju_wire import Clock
from anju_wire.payloads import MeterKind

log = logging.getLogger(__name__)
Protocol = Literal["dlt645", "cjt188"]
WATER = cjt188.METER_TYPES[MeterKind.WATER]


def unit_address(protocol: Protocol, unit: int) -> str:
    """The address of fleet unit ``unit`` on its bus."""
    return f"{unit:012d}" if protocol == "dlt645" else f"{unit:014d}"


class FrameMeterFleet(Served):
    """``units`` meters speaking ``protocol`` on ``serial_port`` (a device or pty) or TCP ``host:port``."""

    def __init__(
        self,
        clock: Clock,
        *,
        protocol: Protocol,
        units: int,
        serial_port: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        baudrate: int = 2400,
        parity: Literal["N", "E", "O"] = "E",  # DL/T 645's usual 2400 8E1
        silent: Iterable[int] = frozenset(),
        failing: Iterable[int] = frozenset(),
        slow: Iterable[int] = frozenset(),
        slow_s: float = 2.0,
    ) -> None:
        if units < 1:
            raise ValueError("a fleet needs at least one unit")
        self.clock = clock
        self.protocol: Protocol = protocol
        self.units = units
        self.serial_port = serial_port
        self.host, self.port = host, port
        self.baudrate, self.parity = baudrate, parity
        self.silent: set[int] = set(silent)
        self.failing: set[int] = set(failing)
        self.slow: set[int] = set(slow)
        self.slow_s = slow_s
        self.totals: dict[int, float] = {}
        self.reads = 0
        self._by_address = {unit_address(protocol, u): u for u in range(1, units + 1)}
        self._length_at = dlt645.LENGTH_AT if protocol == "dlt645" else cjt188.LENGTH_AT
        self._serial: serial.Serial | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def value(self, unit: int) -> float:
        """The total the meter of ``unit`` shows now (kWh or m3)."""
        if unit in self.totals:
            return self.totals[unit]
        now = self.clock.now()
        if self.protocol == "dlt645":
            return fleet_energy_kwh(unit, now)
        return fleet_water_litres(unit, now) / 1000

    def _unit_of(self, address: str) -> int | None:
        if address in (dlt645.WILDCARD, cjt188.WILDCARD) and self.units == 1:
            return 1
        return self._by_address.get(address)

    def _parse(self, request: bytes) -> tuple[str, bool, int, int]:
        """(address asked, whether it is a read of the total we serve, CJ/T 188 sequence number and meter
        type: a unit's CJ/T 188 meter answers as the type it is asked for, water or gas)."""
        if self.protocol == "dlt645":
            frame = dlt645.decode(request)
            total = dlt645.di_bytes(dlt645.FORWARD_ACTIVE_TOTAL)
            return frame.address, frame.control == dlt645.READ and frame.data == total, 0, WATER
        cframe = cjt188.decode(request)
        ser = cframe.data[2] if len(cframe.data) == 3 else 0
        ok = cframe.control == cjt188.READ and cframe.data[:2] == cjt188.READ_DATA
        return cframe.address, ok, ser, cframe.meter_type

    async def answer(self, request: bytes) -> bytes | None:
        """This fleet's answer to one request frame (None: no meter answers it)."""
        try:
            address, ok, ser, kind = self._parse(request)
        except FrameError:
            return None
        unit = self._unit_of(address)
        if unit is None or unit in self.silent:
            return None
        if unit in self.slow:
            await asyncio.sleep(self.slow_s)
        self.reads += 1
        own = unit_address(self.protocol, unit)
        if self.protocol == "dlt645":
            if unit in self.failing or not ok:
                return dlt645.error_reply(own)
            return dlt645.energy_reply(own, self.value(unit))
        if unit in self.failing or not ok:
            return cjt188.error_reply(kind, own, ser)
        return cjt188.flow_reply(kind, own, self.value(unit), self.clock.now(), ser)

    async def _serve_bytes(self, buf: bytearray, reply: asyncio.StreamWriter | serial.Serial) -> None:
        while True:
            frame, drop = take_frame(buf, length_at=self._length_at)
            del buf[:drop]
            if frame is None:
                return
            answer = await self.answer(frame)
            if answer is not None:
                reply.write(answer)

    async def start(self) -> None:
        """Open the serial line or bind the TCP port, and answer in the background."""
        if self.serial_port is not None:
            self._serial = serial.Serial(
                self.serial_port, baudrate=self.baudrate, parity=self.parity, timeout=0, write_timeout=2
            )
            buf = bytearray()
            port = self._serial
            loop = asyncio.get_running_loop()
            lock = asyncio.Lock()

            async def drain() -> None:
                async with lock:  # one answer at a time: the line is half duplex
                    await self._serve_bytes(buf, port)

            def readable() -> None:
                buf.extend(port.read(4096))
                task = loop.create_task(drain())
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

            loop.add_reader(port.fileno(), readable)
            log.info("serving %d %s meters on %s", self.units, self.protocol, self.serial_port)
            return

        async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            buf = bytearray()
            with contextlib.closing(writer):
                while data := await reader.read(4096):
                    buf += data
                    await self._serve_bytes(buf, writer)

        self._server = await asyncio.start_server(client, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("serving %d %s meters on %s:%d", self.units, self.protocol, self.host, self.port)

    async def stop(self) -> None:
        """Close the line or the port."""
        if self._serial is not None:
            with contextlib.suppress(ValueError, OSError):  # already closed under us
                asyncio.get_running_loop().remove_reader(self._serial.fileno())
            self._serial.close()
            self._serial = None
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
