"""anju_mqtt: broker URLs, backoff, and a link that connects, carries messages and stops cleanly."""

from __future__ import annotations

import asyncio
import random
import threading
import uuid

import pytest

from anju.services import free_port
from anju_mqtt import (
    BrokerAddress,
    BrokerUrlError,
    MqttLink,
    backoff_delay,
    backoff_delays,
    close_client,
    make_client,
    parse_broker_url,
)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mqtt://127.0.0.1:1999", BrokerAddress("127.0.0.1", 1999, False)),
        ("mqtt://broker", BrokerAddress("broker", 1883, False)),
        ("tcp://broker", BrokerAddress("broker", 1883, False)),
        ("mqtts://hub.example", BrokerAddress("hub.example", 8883, True)),
        ("ssl://hub.example:9883", BrokerAddress("hub.example", 9883, True)),
        ("mqtts://gw%40e01:p%3Ass@hub.example", BrokerAddress("hub.example", 8883, True, "gw@e01", "p:ss")),
        ("mqtt://user@h", BrokerAddress("h", 1883, False, "user", None)),
    ],
)
def test_broker_urls(url: str, expected: BrokerAddress) -> None:
    assert parse_broker_url(url) == expected


@pytest.mark.parametrize("url", ["http://x", "mqtt://", "mqtt:///p", "mqtt://h:99999", "mqtt://h:port", "x"])
def test_bad_broker_urls_are_refused(url: str) -> None:
    with pytest.raises(BrokerUrlError):
        parse_broker_url(url)
    assert issubclass(BrokerUrlError, ValueError)  # pydantic turns it into a named field error


def test_backoff_is_jittered_and_capped() -> None:
    rng = random.Random(1)
    delays = [backoff_delay(n, base=0.5, cap=8.0, rng=rng) for n in range(12)]
    assert all(0.25 <= d <= 8.0 for d in delays)
    assert 0.25 <= delays[0] <= 0.5 and 0.5 <= delays[1] <= 1.0
    assert max(delays[6:]) <= 8.0 and min(delays[6:]) >= 4.0
    assert len({round(d, 6) for d in delays[6:]}) > 1
    series = backoff_delays(first=0.2, cap=10.0, rng=random.Random(1))
    first = [next(series) for _ in range(12)]
    assert 0.1 <= first[0] <= 0.2 and all(5.0 <= d <= 10.0 for d in first[7:])
    again = random.Random(1)
    assert first == [backoff_delay(n, base=0.2, cap=10.0, rng=again) for n in range(12)]


def test_client_carries_credentials_and_tls_from_the_url() -> None:
    client = make_client(parse_broker_url("mqtts://gw:secret@hub.example"), client_id="c1", reconnect=None)
    try:
        assert client._username == b"gw" and client._password == b"secret"
        assert client._ssl_context is not None
    finally:
        close_client(client)
    plain = make_client(parse_broker_url("mqtt://h"), protocol="5")
    try:
        assert plain._username is None and plain._ssl_context is None
    finally:
        close_client(plain)


def test_link_round_trip_and_clean_stop(mqtt_url: str) -> None:
    topic = f"anju-test/{uuid.uuid4().hex[:8]}"
    received: list[bytes] = []
    got = threading.Event()

    def on_message(_topic: str, payload: bytes) -> None:
        received.append(payload)
        got.set()

    async def scenario() -> MqttLink:
        stop = asyncio.Event()
        link = MqttLink(url=mqtt_url, client_id=f"t-{topic[-8:]}", name="test link", on_message=on_message,
                        on_connect=lambda: link.client.subscribe(topic, qos=1))
        task = asyncio.create_task(link.run(stop))
        for _ in range(200):
            if link.connected:
                break
            await asyncio.sleep(0.02)
        assert link.connected
        await asyncio.sleep(0.1)  # the subscription goes out right after the CONNACK
        link.publish(topic, b"hello")
        assert await asyncio.to_thread(got.wait, 5)
        stop.set()
        await asyncio.wait_for(task, 5)
        return link

    link = asyncio.run(scenario())
    assert received == [b"hello"] and not link.connected and link.connects == 1


def test_link_retries_an_absent_broker_until_stopped() -> None:
    async def scenario() -> MqttLink:
        stop = asyncio.Event()
        link = MqttLink(url=f"mqtt://127.0.0.1:{free_port()}", client_id="t-absent", name="absent",
                        backoff_cap_s=0.05)
        task = asyncio.create_task(link.run(stop))
        await asyncio.sleep(0.3)
        stop.set()
        await asyncio.wait_for(task, 5)
        return link

    link = asyncio.run(scenario())
    assert link.connects == 0 and not link.connected


def test_site_files_take_the_urls_the_link_takes() -> None:
    from anju.edge_agent.errors import SiteConfigError
    from anju.edge_agent.site import parse_site
    from tests.edge_agent.helpers import SECRET_ENV, site_dict

    env = {SECRET_ENV: "s3cret"}
    for url in ("tcp://hub:1883", "ssl://gw:pw@hub", "mqtts://hub.example"):
        doc = site_dict(estate="E01", agent="E01-gw1", mqtt_url=url, outbox_path="/tmp/o.sqlite")
        assert parse_site(doc, environ=env).mqtt_url == url
    for bad in ("http://hub", "mqtt://hub:99999", "mqtt://"):
        doc = site_dict(estate="E01", agent="E01-gw1", mqtt_url=bad, outbox_path="/tmp/o.sqlite")
        with pytest.raises(SiteConfigError, match=r"^mqtt_url: "):
            parse_site(doc, environ=env)
