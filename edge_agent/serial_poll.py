"""DL/T 645-2007 and CJ/T 188 meters: one poller per RS-485 bus (a serial port) or TCP gateway in front.

The master sends a request frame and waits for one answer frame; the bus carries one request at a time.
Scheduling, availability, rollover flags and the outbox commit are ``edge_agent.poller``'s, the same as for
Modbus. A meter that does not answer within ``timeout_s`` is unavailable (the port stays open: one dead
meter is no reason to reopen the bus); a port or connection that fails is closed and reopened on the next
poll. An adapter that echoes our request back (half-duplex RS-485 without echo suppression) is tolerated:
a frame equal to the request is skipped.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from typing import Any

import serial

from anju.edge_agent import cjt188, dlt645
from anju.edge_agent.framing import WAKE, DeviceError, FrameError, take_frame
from anju.edge_agent.outbox import Outbox
from anju.edge_agent.poller import EndpointPoller, MeterState, PollOutcome
from anju.edge_agent.site import MeterConfig
from anju_wire import Clock

_PARITY = {"N": serial.PARITY_NONE, "E": serial.PARITY_EVEN, "O": serial.PARITY_ODD}


class Link(ABC):
    """One request at a time to one bus; answers are whole, checksummed frames."""

    @abstractmethod
    async def _open(self) -> None: ...

    @abstractmethod
    async def _chunk(self) -> bytes:
        """The next bytes from the line (waits until some arrive)."""

    @abstractmethod
    async def _send(self, data: bytes) -> None: ...

    @abstractmethod
    def close(self) -> None:
        """Close the port or connection; the next transaction opens it again."""

    @property
    @abstractmethod
    def is_open(self) -> bool: ...

    async def transact(self, request: bytes, *, length_at: int, timeout: float) -> bytes:
        """Send ``request`` and return the first frame that is not its echo; TimeoutError when none comes."""
        if not self.is_open:
            await asyncio.wait_for(self._open(), timeout)
        await self._send(WAKE + request)
        buf = bytearray()
        deadline = time.monotonic() + timeout
        while True:
            frame, drop = take_frame(buf, length_at=length_at)
            del buf[:drop]
            if frame is not None and frame != request:
                return frame
            if frame is None:
                try:
                    buf += await asyncio.wait_for(self._chunk(), max(0.0, deadline - time.monotonic()))
                except TimeoutError:
                    raise TimeoutError(f"no answer within {timeout:g} s") from None


class SerialLink(Link):
    """A serial port driving an RS-485 bus (a USB adapter, or a pty in tests), read through the event loop."""

    def __init__(self, meter: MeterConfig) -> None:
        assert meter.serial_port is not None
        self.path = meter.serial_port
        self._settings = meter.line_settings
        self._port: serial.Serial | None = None

    @property
    def is_open(self) -> bool:
        return self._port is not None

    async def _open(self) -> None:
        baudrate, parity, stopbits, bytesize = self._settings
        self._port = serial.Serial(
            self.path, baudrate=baudrate, parity=_PARITY[parity], stopbits=stopbits, bytesize=bytesize,
            timeout=0, write_timeout=2,
        )  # fmt: skip

    async def _send(self, data: bytes) -> None:
        assert self._port is not None
        self._port.reset_input_buffer()  # a late answer to the previous request is not this one's
        self._port.write(data)

    async def _chunk(self) -> bytes:
        assert self._port is not None
        port = self._port
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        fd = port.fileno()

        def readable() -> None:
            if not ready.done():
                ready.set_result(None)

        loop.add_reader(fd, readable)
        try:
            await ready
        finally:
            loop.remove_reader(fd)
        data: bytes = port.read(4096)
        return data

    def close(self) -> None:
        if self._port is not None:
            self._port.close()
            self._port = None


class TcpLink(Link):
    """A TCP connection to a serial-to-Ethernet gateway in transparent mode (or a meter's own TCP port)."""

    def __init__(self, meter: MeterConfig) -> None:
        assert meter.host is not None
        self.host, self.port = meter.host, meter.port
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    @property
    def is_open(self) -> bool:
        return self._streams is not None

    async def _open(self) -> None:
        self._streams = await asyncio.open_connection(self.host, self.port)

    async def _send(self, data: bytes) -> None:
        assert self._streams is not None
        writer = self._streams[1]
        writer.write(data)
        await writer.drain()

    async def _chunk(self) -> bytes:
        assert self._streams is not None
        data = await self._streams[0].read(4096)
        if not data:
            raise ConnectionResetError("the gateway closed the connection")
        return data

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None


class FramePoller(EndpointPoller):
    """A poller for a request/answer frame protocol: subclasses build the request and read the answer."""

    length_at = 0

    def __init__(self, *, meters: list[MeterConfig], clock: Clock, outbox: Outbox) -> None:
        super().__init__(meters=meters, clock=clock, outbox=outbox)
        first = meters[0]
        self._link: Link = SerialLink(first) if first.transport == "rtu" else TcpLink(first)

    @abstractmethod
    def _request(self, meter: MeterConfig) -> bytes: ...

    @abstractmethod
    def _total(self, meter: MeterConfig, answer: bytes) -> float:
        """The total in the answer; FrameError (DeviceError: the meter reports a fault) otherwise."""

    async def _read(self, state: MeterState) -> PollOutcome:
        cfg = state.config
        try:
            answer = await self._link.transact(
                self._request(cfg), length_at=self.length_at, timeout=cfg.timeout_s
            )
        except TimeoutError as err:
            self.stats.transport_errors += 1
            return PollOutcome(None, f"transport: {err or 'no answer'}")
        except OSError as err:
            self.stats.transport_errors += 1
            self._link.close()
            return PollOutcome(None, f"transport: {type(err).__name__}: {err}")
        try:
            return PollOutcome(self._total(cfg, answer))
        except FrameError as err:
            if isinstance(err, DeviceError):
                self.stats.device_errors += 1
                return PollOutcome(None, f"device error: {err}")
            self.stats.decode_errors += 1
            return PollOutcome(None, f"bad answer: {err}")

    def close(self) -> None:
        """Close the serial port or gateway connection (``run`` does this on its way out)."""
        self._link.close()


class Dlt645Poller(FramePoller):
    """DL/T 645-2007 electricity meters: forward active energy (00 01 00 00), kWh."""

    protocol = "dlt645"
    length_at = dlt645.LENGTH_AT

    def _maximum(self, meter: MeterConfig, register_map: Any) -> float:
        return dlt645.ENERGY_MAX

    def _request(self, meter: MeterConfig) -> bytes:
        return dlt645.read_request(meter.station)

    def _total(self, meter: MeterConfig, answer: bytes) -> float:
        return dlt645.parse_energy(answer, address=meter.station)


class Cjt188Poller(FramePoller):
    """CJ/T 188 water and gas meters: the current cumulative flow (90 1F), m3."""

    protocol = "cjt188"
    length_at = cjt188.LENGTH_AT

    def _maximum(self, meter: MeterConfig, register_map: Any) -> float:
        return cjt188.FLOW_MAX

    def _request(self, meter: MeterConfig) -> bytes:
        return cjt188.read_request(cjt188.METER_TYPES[meter.meter], meter.station)

    def _total(self, meter: MeterConfig, answer: bytes) -> float:
        return cjt188.parse_flow(answer, meter_type=cjt188.METER_TYPES[meter.meter], address=meter.station)


POLLERS: dict[str, type[FramePoller]] = {"dlt645": Dlt645Poller, "cjt188": Cjt188Poller}
