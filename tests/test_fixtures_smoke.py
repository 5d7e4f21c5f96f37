"""The test services themselves work: a query and a publish/subscribe round trip."""

from __future__ import annotations

import threading

import paho.mqtt.client as mqtt
import psycopg

from anju_mqtt import make_client, parse_broker_url, stop_loop


def test_database_answers(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT 40 + 2").fetchone() == (42,)


def test_broker_round_trip(mqtt_url: str) -> None:
    address = parse_broker_url(mqtt_url)
    got = threading.Event()
    received: list[bytes] = []

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        received.append(msg.payload)
        got.set()

    c = make_client(address)
    c.on_message = on_message
    c.connect(address.host, address.port)
    c.subscribe("smoke/#", qos=1)
    c.loop_start()
    try:
        c.publish("smoke/x", b"hello", qos=1).wait_for_publish(5)
        assert got.wait(5)
        assert received == [b"hello"]
    finally:
        stop_loop(c)
        c.disconnect()
