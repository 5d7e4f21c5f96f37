"""anju's one MQTT plumbing: broker URLs, TLS and credentials, reconnect backoff, clients that stop cleanly.

Used by every deployable that talks MQTT (the edge agent, the hub's ingest, the simulators and the tests'
stand-ins); the wire contract (``anju_wire``) stays free of paho. Each deployable keeps one concurrency
model, stated in its own package docstring: paho always runs its network loop in its own thread, and
``MqttLink`` hands its callbacks to an asyncio loop (edge agent, simulators), while the hub consumes with
plain threads through ``make_client``.
"""

from anju_mqtt.address import SCHEMES, BrokerAddress, BrokerUrlError, parse_broker_url
from anju_mqtt.backoff import backoff_delay, backoff_delays
from anju_mqtt.client import Will, close_client, make_client, stop_loop
from anju_mqtt.link import MqttLink, wait_or_stop

__all__ = [
    "SCHEMES",
    "BrokerAddress",
    "BrokerUrlError",
    "MqttLink",
    "Will",
    "backoff_delay",
    "backoff_delays",
    "close_client",
    "make_client",
    "parse_broker_url",
    "stop_loop",
    "wait_or_stop",
]
