"""paho clients built one way (protocol, credentials, TLS, last will, reconnect) and stopped cleanly."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Literal

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from anju_mqtt.address import BrokerAddress


@dataclass(frozen=True, slots=True)
class Will:
    """A last-will message registered with the broker at connect."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


def make_client(
    address: BrokerAddress,
    *,
    client_id: str = "",
    protocol: Literal["3.1.1", "5"] = "3.1.1",
    clean_session: bool | None = None,
    will: Will | None = None,
    reconnect: tuple[int, int] | None = (1, 30),
) -> paho.Client:
    """A paho client (callback API 2) for ``address``, not yet connected.

    ``clean_session`` applies to MQTT 3.1.1 only (``None``: paho's default, a clean session).
    ``reconnect`` is paho's own reconnect delay range in seconds while its loop runs; ``None`` switches
    paho's reconnect off, for a caller that reconnects with its own backoff (``MqttLink``).
    """
    version = MQTTProtocolVersion.MQTTv5 if protocol == "5" else MQTTProtocolVersion.MQTTv311
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=clean_session if version is MQTTProtocolVersion.MQTTv311 else None,
        protocol=version,
        reconnect_on_failure=reconnect is not None,
    )
    if reconnect is not None:
        client.reconnect_delay_set(min_delay=reconnect[0], max_delay=reconnect[1])
    if address.username is not None:
        client.username_pw_set(address.username, address.password)
    if address.tls:
        client.tls_set_context(ssl.create_default_context())
    if will is not None:
        client.will_set(will.topic, will.payload, qos=will.qos, retain=will.retain)
    return client


def stop_loop(client: paho.Client) -> None:
    """Stop the client's network thread (if any) and close its wake-up socket pair.

    paho keeps a socket pair to wake its network thread. ``loop_start()`` makes a new pair without
    closing the previous one, and otherwise only ``Client.__del__`` closes them; when the client sits in
    a reference cycle (its callbacks are bound methods of the object that owns it) the garbage collector
    may finalise the sockets before the client, and Python reports them as unclosed. Closing the pair as
    soon as the network thread is gone makes the release deterministic.
    """
    client.loop_stop()
    client._reset_sockets(sockpair_only=True)


def close_client(client: paho.Client) -> None:
    """Disconnect (if connected), stop the network thread and release its sockets."""
    client.disconnect()
    stop_loop(client)
