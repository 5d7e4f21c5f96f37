"""Self-reporting MQTT meters: Tasmota energy plugs and an NB-IoT platform's water meters.

Driven from synchronous code (the fault tests): ``start`` connects every meter (paho's network thread
per client) and one plain thread publishes a round at each simulated interval boundary; ``stop`` ends it.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from anju.device_sims.fleet import fleet_energy_kwh, fleet_water_litres
from anju_mqtt import close_client, make_client, parse_broker_url
from anju_wire import AcceleratedClock, MeterKind
from anju_wire.clock import ESTATE_TZ


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
        local = ts.astimezone(ZoneInfo(ESTATE_TZ)).replace(tzinfo=None)  # Tasmota reports local time
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
