"""The site file of one estate gateway: typed, validated, loaded with its secrets from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from anju.edge_agent.errors import RegisterMapError, SiteConfigError
from anju.edge_agent.faces.settings import CameraConfig, FacesSettings
from anju.edge_agent.meter_payloads import PayloadMap, load_payload_map
from anju.edge_agent.registers import RegisterMap, load_map
from anju_mqtt import parse_broker_url
from anju_wire import AcceleratedClock, Clock, WallClock
from anju_wire.payloads import MAX_BATCH, Ident, MeterKind
from anju_wire.topics import check_id

MQTT_URL_ENV = "ANJU_MQTT_URL"


def _broker_url(url: str) -> str:
    parse_broker_url(url)  # the same schemes, ports and credentials the link accepts
    return url


BrokerUrl = Annotated[str, AfterValidator(_broker_url)]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OutboxSettings(_Section):
    """Where the durable outbox lives and how many records it may hold."""

    path: Path
    capacity: Annotated[int, Field(ge=1)] = 1_000_000


class ClockSettings(_Section):
    """An accelerated clock shared with the simulators (same meaning as ``anju_wire.AcceleratedClock``)."""

    origin_wall: float
    origin_sim: AwareDatetime
    speed: Annotated[float, Field(gt=0)]

    def build(self) -> AcceleratedClock:
        """The clock these settings describe."""
        return AcceleratedClock(origin_wall=self.origin_wall, origin_sim=self.origin_sim, speed=self.speed)


class PublishSettings(_Section):
    """How the publisher drains the outbox."""

    batch_max: Annotated[int, Field(ge=1, le=MAX_BATCH)] = 500
    ack_timeout_s: Annotated[float, Field(gt=0)] = 5.0
    status_interval_s: Annotated[float, Field(gt=0)] = 30.0
    max_inflight: Annotated[int, Field(ge=1)] = 8


class MetricsSettings(_Section):
    """Where the agent serves Prometheus metrics (``/metrics``); absent = no metrics endpoint."""

    host: Annotated[str, Field(min_length=1)] = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 9108


class MeterConfig(_Section):
    """One meter of one unit: polled over TCP (``host``) or a serial line (``rtu``), or reporting on MQTT.

    A polled meter speaks ``protocol``: Modbus (``device_id``, ``register_map``), DL/T 645-2007
    (electricity, ``address`` of 12 digits) or CJ/T 188 (water or gas, ``address`` of 14 digits); over
    ``tcp`` the host is the meter or a serial-to-TCP gateway in front of its bus.

    RTU meters sharing one ``serial_port`` are one RS-485 bus: they are polled one at a time, staggered
    over the interval, and must agree on the line settings. An ``mqtt`` meter publishes on its own to
    ``topic`` on the estate broker, in the layout of ``payload_map``; ``poll_interval_s`` is then its
    expected reporting interval, and ``silence_intervals`` of them without a message make it unavailable.
    """

    unit_id: Ident
    meter: MeterKind
    transport: Literal["tcp", "rtu", "mqtt"] = "tcp"
    protocol: Literal["modbus", "dlt645", "cjt188"] = "modbus"
    address: Annotated[str, Field(pattern=r"^(\d{12}|\d{14})$")] | None = None
    host: Annotated[str, Field(min_length=1)] | None = None
    port: Annotated[int, Field(ge=1, le=65535)] = 502
    serial_port: Annotated[str, Field(min_length=1, max_length=150, pattern=r"^[^\x00\s]+$")] | None = None
    baudrate: Literal[1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200] = 9600
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8
    device_id: Annotated[int, Field(ge=0, le=255)] = 1
    # The operator's own map folders (the site file's register_maps_dir / payload_maps_dir, set on every
    # meter by parse_site): a map found there is used before a shipped one of the same name.
    register_maps_dir: Path | None = Field(None, exclude=True)
    register_map: str | None = None
    topic: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    payload_maps_dir: Path | None = Field(None, exclude=True)
    payload_map: str | None = None
    payload_device: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    silence_intervals: Annotated[float, Field(ge=1)] = 3.0
    poll_interval_s: Annotated[float, Field(gt=0)] = 3600.0
    timeout_s: Annotated[float, Field(gt=0)] = 3.0

    @model_validator(mode="after")
    def _transport_fields(self) -> Self:
        if self.transport == "mqtt":
            if self.topic is None or self.payload_map is None:
                raise ValueError("an mqtt meter needs topic and payload_map")
            if any(c in self.topic for c in "+#\x00"):
                raise ValueError("an mqtt meter topic must be concrete (no wildcards)")
            if self.host is not None or self.serial_port is not None or self.register_map is not None:
                raise ValueError("host, serial_port and register_map are for Modbus meters")
            if self.protocol != "modbus" or self.address is not None:
                raise ValueError("protocol and address are for polled meters")
            return self
        _check_protocol(self)
        if self.topic is not None or self.payload_map is not None or self.payload_device is not None:
            raise ValueError("topic, payload_map and payload_device are for transport: mqtt")
        if self.transport == "tcp":
            if self.host is None:
                raise ValueError("a tcp meter needs host")
            if self.serial_port is not None:
                raise ValueError("serial_port is for transport: rtu")
        else:
            if self.serial_port is None:
                raise ValueError("an rtu meter needs serial_port (e.g. /dev/ttyUSB0)")
            if self.host is not None:
                raise ValueError("host is for transport: tcp")
            if self.protocol == "modbus" and not 1 <= self.device_id <= 247:
                raise ValueError("an rtu device_id must be 1..247 (0 is broadcast)")
        return self

    @property
    def endpoint(self) -> tuple[str, ...]:
        """What one poller owns: ``("tcp", host, port)``, ``("rtu", serial_port)`` or ``("mqtt", topic)``."""
        if self.transport == "mqtt":
            assert self.topic is not None
            return ("mqtt", self.topic)
        if self.transport == "rtu":
            assert self.serial_port is not None
            return ("rtu", self.serial_port)
        assert self.host is not None
        return ("tcp", self.host, str(self.port))

    @property
    def line_settings(self) -> tuple[int, str, int, int]:
        """(baudrate, parity, stopbits, bytesize) of an RTU meter's serial line."""
        return (self.baudrate, self.parity, self.stopbits, self.bytesize)

    @field_validator("register_map")
    @classmethod
    def _map_exists(cls, name: str | None, info: ValidationInfo) -> str | None:
        if name is not None:
            try:
                load_map(name, info.data.get("register_maps_dir"))
            except RegisterMapError as err:
                raise ValueError(str(err)) from err
        return name

    @field_validator("payload_map")
    @classmethod
    def _payload_map_exists(cls, name: str | None, info: ValidationInfo) -> str | None:
        if name is not None:
            try:
                load_payload_map(name, info.data.get("payload_maps_dir"))
            except RegisterMapError as err:
                raise ValueError(str(err)) from err
        return name

    @model_validator(mode="after")
    def _map_fits_meter(self) -> Self:
        if self.register_map is not None and self.load_map().meter != self.meter:
            raise ValueError(
                f"register map {self.register_map!r} is for {self.load_map().meter}, not {self.meter}"
            )
        if self.payload_map is not None and self.load_payload_map().meter != self.meter:
            raise ValueError(
                f"payload map {self.payload_map!r} is for {self.load_payload_map().meter}, not {self.meter}"
            )
        return self

    def load_map(self) -> RegisterMap:
        """The register map of this Modbus meter's model."""
        if self.register_map is None:
            raise RegisterMapError(f"{self.unit_id} {self.meter} is an mqtt meter: it has no register map")
        return load_map(self.register_map, self.register_maps_dir)

    def load_payload_map(self) -> PayloadMap:
        """The payload map of this MQTT meter's message layout."""
        if self.payload_map is None:
            raise RegisterMapError(f"{self.unit_id} {self.meter} is a Modbus meter: it has no payload map")
        return load_payload_map(self.payload_map, self.payload_maps_dir)

    @property
    def device(self) -> str:
        """The device in readings: ``modbus-tcp://host:port/id``, ``modbus-rtu:///dev/ttyUSB0/id`` or
        ``mqtt://topic[#payload_device]``."""
        if self.transport == "mqtt":
            return f"mqtt://{self.topic}" + (f"#{self.payload_device}" if self.payload_device else "")
        station = self.device_id if self.protocol == "modbus" else self.address
        if self.transport == "rtu":
            return f"{self.protocol}-rtu://{self.serial_port}/{station}"
        return f"{self.protocol}-tcp://{self.host}:{self.port}/{station}"

    @property
    def station(self) -> str:
        """The meter's address on its bus: the Modbus device id, or the DL/T 645 / CJ/T 188 address."""
        return str(self.device_id) if self.protocol == "modbus" else str(self.address)


ADDRESS_DIGITS = {"dlt645": 12, "cjt188": 14}
PROTOCOL_METERS = {"dlt645": {MeterKind.ELECTRICITY}, "cjt188": {MeterKind.WATER, MeterKind.GAS}}


def _check_protocol(meter: MeterConfig) -> None:
    """A polled meter has what its protocol needs: a register map (Modbus), or an address of its size."""
    if meter.protocol == "modbus":
        if meter.register_map is None:
            raise ValueError("a Modbus meter needs register_map")
        if meter.address is not None:
            raise ValueError("address is for dlt645 and cjt188 meters (Modbus uses device_id)")
        return
    if meter.register_map is not None:
        raise ValueError(f"register_map is for Modbus meters, not {meter.protocol}")
    digits = ADDRESS_DIGITS[meter.protocol]
    if meter.address is None or len(meter.address) != digits:
        raise ValueError(f"a {meter.protocol} meter needs address: {digits} digits, as printed on the meter")
    if meter.meter not in PROTOCOL_METERS[meter.protocol]:
        raise ValueError(f"{meter.protocol} is not a protocol of {meter.meter} meters")


class GateConfig(_Section):
    """One gate (or corridor camera): vendor events on the estate broker (``mqtt``) or POSTed (``http``).

    An ``http`` gate is configured on the device as an HTTP event host: it POSTs each event as JSON to
    ``http://<listen_host>:<listen_port><path>``. Gates sharing host and port share one listener. With
    ``token_env``, every request must carry ``Authorization: Bearer <token>`` (token from that variable).
    """

    device_id: Ident
    building: Annotated[str, Field(min_length=1, max_length=32)]
    source: Literal["mqtt", "http"] = "mqtt"
    topic: Annotated[str, Field(min_length=1)] | None = None
    listen_host: Annotated[str, Field(min_length=1)] = "0.0.0.0"
    listen_port: Annotated[int, Field(ge=1, le=65535)] = 8099
    path: Annotated[str, Field(pattern=r"^/[A-Za-z0-9_./-]*$", max_length=200)] | None = None
    token_env: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] | None = None
    token: SecretStr | None = Field(None, exclude=True)

    @field_validator("topic")
    @classmethod
    def _concrete_topic(cls, topic: str | None) -> str | None:
        if topic is not None and any(c in topic for c in "+#\x00"):
            raise ValueError("a gate topic must be concrete (no wildcards)")
        return topic

    @model_validator(mode="after")
    def _source_fields(self) -> Self:
        if self.source == "mqtt":
            if self.topic is None:
                raise ValueError("an mqtt gate needs topic")
            if self.path is not None or self.token_env is not None:
                raise ValueError("path and token_env are for source: http")
        else:
            if self.path is None:
                raise ValueError("an http gate needs path (e.g. /gates/E01-G1)")
            if self.topic is not None:
                raise ValueError("topic is for source: mqtt")
        return self

    @property
    def listener(self) -> tuple[str, int]:
        """The (host, port) an http gate posts to."""
        return (self.listen_host, self.listen_port)


class SiteConfig(_Section):
    """Everything one edge agent needs to know about its estate."""

    agent_id: Ident
    estate_id: Ident
    mqtt_url: BrokerUrl
    local_mqtt_url: BrokerUrl | None = None
    outbox: OutboxSettings
    pseudonym_secret_env: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
    pseudonym_secret: SecretStr = Field(exclude=True)
    clock: ClockSettings | None = None
    publish: PublishSettings = PublishSettings()
    metrics: MetricsSettings | None = None
    register_maps_dir: Path | None = None  # the operator's register maps (<name>.yaml), before shipped ones
    payload_maps_dir: Path | None = None  # the operator's payload maps, likewise
    meters: list[MeterConfig] = Field(default_factory=list)
    gates: list[GateConfig] = Field(default_factory=list)
    cameras: list[CameraConfig] = Field(default_factory=list)
    faces: FacesSettings = FacesSettings()

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        check_id(self.agent_id, "agent")
        check_id(self.estate_id, "estate")
        seen: set[tuple[str, MeterKind]] = set()
        for m in self.meters:
            if (m.unit_id, m.meter) in seen:
                raise ValueError(f"unit {m.unit_id} lists its {m.meter} meter twice")
            seen.add((m.unit_id, m.meter))
        protocols: dict[tuple[str, ...], str] = {}
        for m in self.meters:
            if protocols.setdefault(m.endpoint, m.protocol) != m.protocol:
                where = "/".join(m.endpoint)
                raise ValueError(f"{m.unit_id}: one bus or gateway speaks one protocol ({where})")
        buses: dict[str, MeterConfig] = {}
        ids: set[tuple[str, str]] = set()
        for m in self.meters:
            if m.serial_port is None:
                continue
            first = buses.setdefault(m.serial_port, m)
            if first.line_settings != m.line_settings:
                raise ValueError(
                    f"meters on {m.serial_port} disagree on baudrate/parity/stopbits/bytesize "
                    f"({first.unit_id} {first.line_settings}, {m.unit_id} {m.line_settings})"
                )
            if (m.serial_port, m.station) in ids:
                what = "device_id" if m.protocol == "modbus" else "address"
                raise ValueError(f"two meters on {m.serial_port} share {what} {m.station}")
            ids.add((m.serial_port, m.station))
        topics = [g.topic for g in self.gates if g.source == "mqtt"]
        if len(topics) != len(set(topics)):
            raise ValueError("two gates share one topic")
        paths = [(g.listener, g.path) for g in self.gates if g.source == "http"]
        if len(paths) != len(set(paths)):
            raise ValueError("two http gates share one listen address and path")
        keys = [(m.topic, m.payload_device) for m in self.meters if m.transport == "mqtt"]
        if len(keys) != len(set(keys)):
            raise ValueError("two mqtt meters share one topic (give each a payload_device)")
        return self

    @property
    def gates_mqtt_url(self) -> str:
        """The estate broker where gates publish (defaults to the hub broker)."""
        return self.local_mqtt_url or self.mqtt_url

    def make_clock(self) -> Clock:
        """An AcceleratedClock when the site file has ``clock:``, else the wall clock."""
        return self.clock.build() if self.clock is not None else WallClock()

    def secret_bytes(self) -> bytes:
        """The estate's pseudonym key."""
        return self.pseudonym_secret.get_secret_value().encode()


def _describe(err: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in err.errors()[:5]
    )


def _gate_with_token(index: int, gate: Any, environ: Mapping[str, str]) -> Any:
    if not isinstance(gate, dict):
        return gate
    if "token" in gate:
        raise SiteConfigError(f"gates.{index}.token: keep the token in the environment, named by token_env")
    name = gate.get("token_env")
    if not isinstance(name, str) or not name:
        return gate
    token = environ.get(name)
    if not token:
        raise SiteConfigError(f"gates.{index}.token_env: environment variable {name} is not set or empty")
    return {**gate, "token": token}


def _with_map_dirs(doc: dict[str, Any], base_dir: Path | None) -> None:
    """Resolve the site's map folders (relative to the site file) and hand them to every meter."""
    dirs = {}
    for key in ("register_maps_dir", "payload_maps_dir"):
        if isinstance(doc.get(key), str):
            folder = Path(doc[key]).expanduser()
            doc[key] = str(base_dir / folder if base_dir is not None else folder)
            if not Path(doc[key]).is_dir():
                raise SiteConfigError(f"{key}: {doc[key]} is not a directory")
            dirs[key] = doc[key]
    if dirs and isinstance(doc.get("meters"), list):
        doc["meters"] = [{**dirs, **m} if isinstance(m, dict) else m for m in doc["meters"]]


def parse_site(data: Any, *, environ: Mapping[str, str], base_dir: Path | None = None) -> SiteConfig:
    """Validate a parsed site document, taking secrets and overrides from ``environ``."""
    if not isinstance(data, dict):
        raise SiteConfigError("<root>: the site file must be a mapping")
    if "pseudonym_secret" in data:
        raise SiteConfigError(
            "pseudonym_secret: keep the secret in the environment, named by pseudonym_secret_env"
        )
    doc = dict(data)
    env_name = doc.get("pseudonym_secret_env")
    if isinstance(env_name, str) and env_name:
        secret = environ.get(env_name)
        if not secret:
            raise SiteConfigError(
                f"pseudonym_secret_env: environment variable {env_name} is not set or empty"
            )
        doc["pseudonym_secret"] = secret
    gates = doc.get("gates")
    if isinstance(gates, list):
        doc["gates"] = [_gate_with_token(i, g, environ) for i, g in enumerate(gates)]
    if environ.get(MQTT_URL_ENV):
        doc["mqtt_url"] = environ[MQTT_URL_ENV]
    _with_map_dirs(doc, base_dir)
    outbox = doc.get("outbox")
    if base_dir is not None and isinstance(outbox, dict) and isinstance(outbox.get("path"), str):
        # a relative outbox path is relative to the site file, whatever the service's working directory
        doc["outbox"] = {**outbox, "path": str(base_dir / Path(outbox["path"]).expanduser())}
    try:
        return SiteConfig.model_validate(doc)
    except ValidationError as err:
        raise SiteConfigError(_describe(err)) from err


def load_site(path: str | Path, *, environ: Mapping[str, str] | None = None) -> SiteConfig:
    """Load and validate a site YAML file; raise SiteConfigError naming the bad field."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as err:
        raise SiteConfigError(f"<file>: cannot read {p}: {err.strerror}") from err
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise SiteConfigError(f"<file>: {p} is not valid YAML: {err}") from err
    return parse_site(data, environ=os.environ if environ is None else environ, base_dir=p.parent.resolve())
