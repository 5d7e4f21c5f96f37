"""Simulated meters: an estate's over Modbus TCP, a fleet of SDM120s (TCP or RTU), self-reporting MQTT ones.

Each meter is a pymodbus ``SimDevice`` at its unit's device id, laid out by the register map of its
utility. Register words are not stored: a device's read action computes them at the moment of the
request from the household model and the shared clock, so a poll at any simulated instant sees the
same total the ground truth holds for that instant. Faults are injected per device id: a silent
device does not answer at all (the client times out), a failing one answers with an exception response.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import threading
import time
import tty
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from types import TracebackType
from typing import Any, Literal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode
from pymodbus.constants import ExcCodes
from pymodbus.exceptions import NoSuchIdException
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimAction, SimData, SimDevice

from anju_mqtt import close_client, make_client, parse_broker_url
from anju_wire import AcceleratedClock, Clock, MeterKind
from device_sims.household import EstateModel
from device_sims.registers import RegisterMap, encode_value, map_for_meter

log = logging.getLogger(__name__)

_READS = frozenset({3, 4})


def _register_block(reg_map: RegisterMap) -> list[SimData]:
    """Read-only registers covering the map's parts (contents are filled in at read time)."""
    return [
        SimData(address=p.address, count=1, values=[0] * p.words, datatype=DataType.REGISTERS, readonly=True)
        for p in sorted(reg_map.total, key=lambda p: p.address)
    ]


def _blocks(reg_map: RegisterMap) -> tuple[list[SimData], list[SimData], list[SimData], list[SimData]]:
    """(coils, discrete inputs, holding, input): the map's registers in the table it names, nothing else."""
    bits = [SimData(address=0, values=[False] * 16, datatype=DataType.BITS, readonly=True)]
    empty = [SimData(address=0, datatype=DataType.INVALID)]
    regs = _register_block(reg_map)
    if reg_map.function == "input":
        return (bits, list(bits), empty, regs)
    return (bits, list(bits), regs, empty)


class MeterServer:
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
                    id=unit.device_id(kind), simdata=_blocks(reg_map),
                    action=self._action(unit.unit_id, kind, reg_map, unit.device_id(kind)),
                ))
        devices.append(SimDevice(id=0, simdata=_blocks(self.maps[MeterKind.ELECTRICITY]),
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
            if set_values is not None or function_code not in _READS:
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

    async def __aenter__(self) -> MeterServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


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


# --- A fleet of stand-alone electricity meters (``anju sim meters``) -----------------------------------

FLEET_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)  # fleet meters count from here
MAX_DEVICE_ID = 247  # Modbus unit ids 1..247 address devices; 0 is broadcast, 248..255 are reserved


def fleet_energy_kwh(unit: int, t: datetime) -> float:
    """Cumulative kWh of fleet unit ``unit`` (1-based) at ``t``: a closed-form, never-decreasing use curve.

    Each unit draws its own base load plus an evening peak; the integral is analytic, so any instant
    has one exact total, whoever asks and however often.
    """
    hours = (t - FLEET_EPOCH).total_seconds() / 3600.0
    base_kw = 0.08 + 0.03 * (unit % 11)  # 80 W .. 380 W
    peak_kw = 0.5 * base_kw
    # integral of base + peak * (1 - cos(2 pi h / 24)): never negative, so never decreasing
    diurnal = peak_kw * (hours - 24.0 / (2 * math.pi) * math.sin(2 * math.pi * hours / 24.0))
    return 1000.0 + 37.0 * unit + base_kw * hours + diurnal



def fleet_endpoint(unit: int, *, base_port: int) -> tuple[int, int]:
    """(port, device id) of fleet unit ``unit`` (1-based): 247 units per port, ports counted up from base."""
    if unit < 1:
        raise ValueError("fleet units are numbered from 1")
    return base_port + (unit - 1) // MAX_DEVICE_ID, (unit - 1) % MAX_DEVICE_ID + 1


class FleetMeterServer:
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
            if set_values is not None or function_code not in _READS:
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
                SimDevice(id=device_id, simdata=_blocks(self.reg_map), action=self._action(u))
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
            SimDevice(id=u, simdata=_blocks(self.reg_map), action=self._action(u))
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

    async def __aenter__(self) -> FleetMeterServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


@asynccontextmanager
async def pty_pair() -> AsyncIterator[tuple[str, str]]:
    """Two serial device paths wired to each other, like two USB RS-485 adapters on one pair of wires.

    Yields (one end, other end): a Modbus RTU server opens one, the agent (or any RTU client) the other.
    Bytes are relayed by the running event loop between the two pseudo-terminals' master sides; both
    lines are raw (no echo, no line discipline) from the start, so nothing is echoed into the bus
    before a client has opened its end.
    """
    loop = asyncio.get_running_loop()
    (ma, sa), (mb, sb) = os.openpty(), os.openpty()
    for fd in (sa, sb):
        tty.setraw(fd)
    for fd in (ma, mb):
        os.set_blocking(fd, False)

    def relay(src: int, dst: int) -> None:
        try:
            data = os.read(src, 4096)
        except BlockingIOError:
            return
        os.write(dst, data)

    loop.add_reader(ma, relay, ma, mb)
    loop.add_reader(mb, relay, mb, ma)
    try:
        yield os.ttyname(sa), os.ttyname(sb)
    finally:
        loop.remove_reader(ma)
        loop.remove_reader(mb)
        for fd in (ma, sa, mb, sb):
            os.close(fd)


# --- Self-reporting MQTT meters: Tasmota plugs and an NB-IoT platform's water meters -------------------


def fleet_water_litres(unit: int, t: datetime) -> int:
    """Cumulative litres of fleet unit ``unit``'s NB-IoT water meter at ``t``: closed form, never falling."""
    hours = (t - FLEET_EPOCH).total_seconds() / 3600.0
    base_lph = 3.0 + 1.5 * (unit % 7)  # a dripping cistern to a busy household
    peak_lph = 2.0 * base_lph
    diurnal = peak_lph * (hours - 24.0 / (2 * math.pi) * math.sin(2 * math.pi * hours / 24.0))
    return int(20_000 + 500 * unit + base_lph * hours + diurnal)


@dataclass(slots=True)
class ReportedReading:
    """One message a self-reporting meter produced, and what became of it at the broker.

    ``outcome``: ``dropped`` when the meter was not connected (it does not keep readings, as Tasmota's
    telemetry does not: the next message carries the total), ``sent`` when written to the broker and not
    yet acknowledged, ``acked`` once the broker's PUBACK came back.
    """

    unit: int
    meter: MeterKind
    topic: str
    ts: datetime
    value: float  # the total as the agent decodes it: kWh, or m3 (litres x 0.001)
    wall: float  # unix time of publication
    outcome: Literal["dropped", "sent", "acked"] = "dropped"


class ReportingMeterFleet:
    """Meters that publish their cumulative totals every ``interval_s`` (simulated) on their own.

    Each unit in ``plugs`` is a Tasmota energy plug with its own MQTT connection publishing
    ``tele/{prefix}-plug{unit}/SENSOR`` (``tasmota_energy`` payload map, kWh of ``fleet_energy_kwh``);
    the units in ``water`` are NB-IoT water meters whose readings one CTWing-style platform bridge
    publishes on ``nbiot/{prefix}/water`` with deviceId ``{prefix}-w{unit}`` (``nbiot_water_ctwing``,
    litres of ``fleet_water_litres``). Messages go at QoS 1 on each simulated interval boundary; a meter
    that is not connected then drops its reading. Every message is kept in ``readings`` with its outcome.
    """

    def __init__(
        self, url: str, clock: AcceleratedClock, *, prefix: str, plugs: Iterable[int], water: Iterable[int],
        interval_s: float = 3600.0,
    ) -> None:  # fmt: skip
        self.address = parse_broker_url(url)
        self.clock = clock
        self.prefix = prefix
        self.plugs = list(plugs)
        self.water = list(water)
        self.interval = timedelta(seconds=interval_s)
        self.readings: list[ReportedReading] = []
        # Never held while calling paho: its network thread calls ``on_publish`` holding its own lock.
        self.lock = threading.Lock()
        self._in_flight: dict[tuple[str, int], ReportedReading] = {}
        self._early_acks: set[tuple[str, int]] = set()
        self._clients: dict[str, mqtt.Client] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def plug_topic(self, unit: int) -> str:
        """The telemetry topic of a unit's plug."""
        return f"tele/{self.prefix}-plug{unit}/SENSOR"

    @property
    def water_topic(self) -> str:
        """The topic the platform bridge publishes every water meter's reports on."""
        return f"nbiot/{self.prefix}/water"

    def water_device(self, unit: int) -> str:
        """The platform's device id of a unit's water meter."""
        return f"{self.prefix}-w{unit}"

    def _client(self, name: str) -> mqtt.Client:
        # paho retries every 1-2 s, as Tasmota does (MqttRetry)
        client = make_client(self.address, client_id=f"{self.prefix}-{name}", reconnect=(1, 2))

        def acked(c: mqtt.Client, userdata: object, mid: int, reason: ReasonCode, props: object) -> None:
            with self.lock:
                reading = self._in_flight.pop((name, mid), None)
                if reading is None:  # the PUBACK beat ``_send`` to noting the mid
                    self._early_acks.add((name, mid))
                else:
                    reading.outcome = "acked"

        client.on_publish = acked
        client.connect(self.address.host, self.address.port, keepalive=5)
        client.loop_start()
        return client

    def start(self) -> None:
        """Connect every meter and start reporting from the next interval boundary."""
        if self._thread is not None:
            raise RuntimeError("reporting meters already started")
        try:
            for u in self.plugs:
                self._clients[f"plug{u}"] = self._client(f"plug{u}")
            if self.water:
                self._clients["ctwing"] = self._client("ctwing")
        except OSError:
            self.stop()
            raise
        self._thread = threading.Thread(target=self._report, name=f"{self.prefix} reporting meters")
        self._thread.start()

    def stop(self) -> None:
        """Stop reporting and disconnect."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        for client in self._clients.values():
            close_client(client)
        self._clients.clear()

    def _report(self) -> None:
        now = self.clock.now()
        origin = self.clock.origin_sim
        due = origin + self.interval * (math.floor((now - origin) / self.interval) + 1)
        while not self._stop.wait(max(0.0, self.clock.wall_at(due) - time.time())):
            self.publish_round(due)
            due += self.interval

    def publish_round(self, ts: datetime) -> None:
        """Every meter reports its total at ``ts``."""
        local = ts.astimezone(timezone(timedelta(hours=8))).replace(tzinfo=None)
        for u in self.plugs:
            kwh = round(fleet_energy_kwh(u, ts), 3)
            body: dict[str, Any] = {"Time": local.isoformat(timespec="seconds"), "ENERGY": {"Total": kwh}}
            plug = ReportedReading(u, MeterKind.ELECTRICITY, self.plug_topic(u), ts, kwh, 0.0)
            self._send(f"plug{u}", plug, body)
        for u in self.water:
            litres = fleet_water_litres(u, ts)
            body = {
                "messageType": "dataReport", "deviceId": self.water_device(u), "productId": "15012345",
                "timestamp": int(ts.timestamp() * 1000),
                "payload": {"serviceId": "WaterMeterData", "serviceData": {"totalFlow": litres}},
            }  # fmt: skip
            reading = ReportedReading(u, MeterKind.WATER, self.water_topic, ts, litres * 0.001, 0.0)
            self._send("ctwing", reading, body)

    def _send(self, name: str, reading: ReportedReading, body: dict[str, Any]) -> None:
        client = self._clients[name]
        with self.lock:
            reading.wall = time.time()
            self.readings.append(reading)
        if not client.is_connected():
            return  # dropped: the broker is not there
        info = client.publish(reading.topic, json.dumps(body).encode(), qos=1)
        # NO_CONN: the link fell just now; paho keeps the message and sends it once reconnected
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            return
        with self.lock:
            if (name, info.mid) in self._early_acks:
                self._early_acks.discard((name, info.mid))
                reading.outcome = "acked"
            else:
                reading.outcome = "sent"
                self._in_flight[(name, info.mid)] = reading
