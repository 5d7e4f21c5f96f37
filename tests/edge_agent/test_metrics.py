"""Prometheus metrics of the agent: scraped over HTTP from a running agent, and the outbox-full alarm."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry

from anju.edge_agent.agent import run_agent
from anju.edge_agent.metrics import AgentMetrics
from anju.edge_agent.outbox import Outbox
from anju.edge_agent.registers import encode_total, load_map
from anju.edge_agent.site import parse_site
from tests.edge_agent.helpers import (
    SECRET_ENV,
    hub_stand_in,
    meter_server,
    scrape_metrics,
    site_dict,
    unique_ids,
    wait_until,
)
from tests.services import free_port


def test_metrics_endpoint_reports_polls_errors_availability_outbox_and_acks(
    mqtt_url: str, tmp_path: Path
) -> None:
    estate, agent = unique_ids()
    metrics_port = free_port()
    elec = dict(zip((342, 343), encode_total(load_map("eastron_sdm120"), 1532.5), strict=True))

    async def scenario() -> tuple[dict[tuple[str, tuple[tuple[str, str], ...]], float], int]:
        async with meter_server({1: elec}) as port:
            meters = [
                {"unit_id": f"{estate}-0101", "meter": "electricity", "host": "127.0.0.1", "port": port,
                 "device_id": device_id, "register_map": "eastron_sdm120", "poll_interval_s": 3600,
                 "timeout_s": 0.5}
                for device_id in (1,)
            ] + [
                {"unit_id": f"{estate}-0102", "meter": "electricity", "host": "127.0.0.1", "port": port,
                 "device_id": 9, "register_map": "eastron_sdm120", "poll_interval_s": 3600, "timeout_s": 0.5},
            ]  # fmt: skip
            doc = site_dict(
                estate=estate, agent=agent, mqtt_url=mqtt_url, outbox_path=str(tmp_path / "o.sqlite"),
                meters=meters, metrics={"host": "127.0.0.1", "port": metrics_port},
                clock={"origin_wall": time.time(), "origin_sim": "2026-03-01T00:00:00+08:00", "speed": 7200},
            )  # fmt: skip
            config = parse_site(doc, environ={SECRET_ENV: "k"})
            stop = asyncio.Event()
            with hub_stand_in(mqtt_url, estate=estate, agent=agent):
                task = asyncio.create_task(run_agent(config, stop=stop))
                try:

                    def enough() -> bool:
                        try:
                            m = scrape_metrics(metrics_port)
                        except httpx.HTTPError:
                            return False
                        return m.get(("anju_edge_acked_records_total", ()), 0) >= 4

                    await asyncio.to_thread(wait_until, enough, 15, "acked records in /metrics")
                    return await asyncio.to_thread(scrape_metrics, metrics_port), port
                finally:
                    stop.set()
                    await asyncio.wait_for(task, 10)

    m, modbus_port = asyncio.run(scenario())
    good = (("device", f"modbus-tcp://127.0.0.1:{modbus_port}/1"),)
    bad = (("device", f"modbus-tcp://127.0.0.1:{modbus_port}/9"),)
    assert m[("anju_edge_polls_total", good)] >= 2
    assert m[("anju_edge_poll_errors_total", good)] == 0
    assert m[("anju_edge_device_available", good)] == 1
    assert m[("anju_edge_poll_errors_total", bad)] >= 2
    assert m[("anju_edge_device_available", bad)] == 0
    assert m[("anju_edge_published_records_total", ())] >= m[("anju_edge_acked_records_total", ())] >= 4
    assert m[("anju_edge_uplink_connected", ())] == 1
    assert m[("anju_edge_outbox_full", ())] == 0
    assert ("anju_edge_outbox_depth", ()) in m
    # the endpoint is gone once the agent has stopped
    try:
        httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=1)
    except httpx.ConnectError:
        pass
    else:
        raise AssertionError("metrics endpoint still answers after the agent stopped")


def test_outbox_full_raises_the_alarm_metric(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite", capacity=2) as outbox:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(AgentMetrics(agent_id="A-gw1", outbox=outbox))
        assert registry.get_sample_value("anju_edge_outbox_full") == 0
        outbox.put_many("reading", ["{}", "{}"])
        assert registry.get_sample_value("anju_edge_outbox_full") == 1
        assert registry.get_sample_value("anju_edge_outbox_depth") == 2
        assert registry.get_sample_value("anju_edge_outbox_capacity") == 2
