"""Prometheus metrics of one edge agent, read from the live counters at scrape time.

Nothing on the polling or publishing path touches Prometheus: the collector reads the pollers',
the MQTT meters', the publisher's, the gate intake's and the outbox's own counters when ``/metrics``
is scraped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from anju.edge_agent.errors import MetricsError, OutboxError
from anju.edge_agent.gates import GateIntake
from anju.edge_agent.mqtt_meters import MqttMeterSource
from anju.edge_agent.outbox import Outbox
from anju.edge_agent.poller import EndpointPoller
from anju.edge_agent.publisher import Publisher

if TYPE_CHECKING:
    from anju.edge_agent.faces.service import CameraSet

log = logging.getLogger(__name__)


@dataclass(eq=False)  # a registry keys collectors by identity
class AgentMetrics(Collector):
    """A collector over the parts of one running agent (parts may be attached after construction)."""

    agent_id: str
    outbox: Outbox
    pollers: list[EndpointPoller] = field(default_factory=list)
    publisher: Publisher | None = None
    gates: GateIntake | None = None
    mqtt_meters: MqttMeterSource | None = None
    cameras: CameraSet | None = None

    def collect(self) -> Iterator[Metric]:
        """Every metric as it stands now."""
        yield from self._devices()
        if self.cameras is not None:
            from anju.edge_agent.faces.metrics import camera_metrics  # OpenCV only on a gateway with cameras

            yield from camera_metrics(self.cameras)
        yield from self._outbox()
        yield from self._uplink()

    def _devices(self) -> Iterable[Metric]:
        polls = CounterMetricFamily("anju_edge_polls", "Meter polls, answered or not", labels=["device"])
        errors = CounterMetricFamily(
            "anju_edge_poll_errors", "Meter polls that gave no reading", labels=["device"]
        )
        available = GaugeMetricFamily(
            "anju_edge_device_available", "1 if the meter answered its last poll, 0 if not", labels=["device"]
        )
        kinds = CounterMetricFamily(
            "anju_edge_endpoint_errors", "Failed polls per polled endpoint (bus or TCP host) by cause",
            labels=["endpoint", "cause"],
        )  # fmt: skip
        counter_events = CounterMetricFamily(
            "anju_edge_counter_events", "Readings whose total fell below the last one, by flag",
            labels=["device", "event"],
        )  # fmt: skip
        for p in self.pollers:
            for s in p.meters:
                polls.add_metric([s.config.device], s.polls)
                errors.add_metric([s.config.device], s.failures)
                if s.available is not None:
                    available.add_metric([s.config.device], 1.0 if s.available else 0.0)
                counter_events.add_metric([s.config.device, "rollover"], s.rollovers)
                counter_events.add_metric([s.config.device, "replaced"], s.replacements)
            kinds.add_metric([p.name, "transport"], p.stats.transport_errors)
            kinds.add_metric([p.name, "exception_response"], p.stats.device_errors)
            kinds.add_metric([p.name, "decode"], p.stats.decode_errors)
        out: list[Metric] = [polls, errors, available, kinds, counter_events]
        if self.mqtt_meters is not None:
            src = self.mqtt_meters
            messages = CounterMetricFamily(
                "anju_edge_meter_messages", "Readings stored from a self-reporting (MQTT) meter",
                labels=["device"],
            )  # fmt: skip
            silent = CounterMetricFamily(
                "anju_edge_meter_silent_intervals",
                "Expected intervals an MQTT meter let pass in silence (each an unavailable reading)",
                labels=["device"],
            )
            for m in src.meters:
                messages.add_metric([m.config.device], m.messages)
                silent.add_metric([m.config.device], m.silent_intervals)
                if m.available is not None:
                    available.add_metric([m.config.device], 1.0 if m.available else 0.0)
                counter_events.add_metric([m.config.device, "rollover"], m.rollovers)
                counter_events.add_metric([m.config.device, "replaced"], m.replacements)
            rejected = CounterMetricFamily(
                "anju_edge_meter_messages_rejected", "MQTT meter messages that did not decode",
                value=src.stats.rejected,
            )  # fmt: skip
            redelivered = CounterMetricFamily(
                "anju_edge_meter_messages_redelivered",
                "MQTT meter messages the estate broker delivered again after they were stored (not stored "
                "twice)", value=src.stats.redelivered,
            )  # fmt: skip
            late = CounterMetricFamily(
                "anju_edge_meter_messages_late", "MQTT meter messages older than the meter's last stored "
                "reading (stored, not compared for rollover)", value=src.stats.late,
            )  # fmt: skip
            out += [messages, silent, rejected, redelivered, late]
        return out

    def _outbox(self) -> Iterable[Metric]:
        try:
            depth = self.outbox.depth()
            full = self.outbox.is_full()
        except OutboxError as err:  # closed while a scrape was under way
            log.debug("outbox not readable for metrics: %s", err)
            return []
        refused = sum(p.stats.refused_full for p in self.pollers)
        refused += self.gates.refused_full if self.gates is not None else 0
        refused += self.mqtt_meters.stats.refused_full if self.mqtt_meters is not None else 0
        return [
            GaugeMetricFamily("anju_edge_outbox_depth", "Records waiting for the hub's ack", value=depth),
            GaugeMetricFamily("anju_edge_outbox_capacity", "Records the outbox holds at most",
                              value=self.outbox.capacity),
            GaugeMetricFamily("anju_edge_outbox_full", "1 while the outbox refuses new records (alarm)",
                              value=1.0 if full else 0.0),
            CounterMetricFamily("anju_edge_outbox_refused_records", "Records refused because the outbox was "
                                "full or failed", value=refused),
        ]  # fmt: skip

    def _uplink(self) -> Iterable[Metric]:
        out: list[Metric] = []
        if self.publisher is not None:
            st = self.publisher.stats
            out += [
                GaugeMetricFamily("anju_edge_uplink_connected", "1 while the hub broker connection is up",
                                  value=1.0 if self.publisher.link.connected else 0.0),
                CounterMetricFamily("anju_edge_published_records", "Records handed to the broker (resends "
                                    "included)", value=st.records_sent),
                CounterMetricFamily("anju_edge_published_batches", "Batches handed to the broker",
                                    value=st.batches),
                CounterMetricFamily("anju_edge_acked_records", "Records the hub confirmed and the outbox "
                                    "deleted", value=st.acked_records),
                CounterMetricFamily("anju_edge_acks", "Ack messages applied", value=st.acks),
                CounterMetricFamily("anju_edge_discarded_records", "Stored records that no longer validated",
                                    value=st.discarded),
            ]  # fmt: skip
        if self.gates is not None:
            events = CounterMetricFamily(
                "anju_edge_gate_events", "Gate events by outcome", labels=["outcome"]
            )
            events.add_metric(["accepted"], self.gates.accepted)
            events.add_metric(["rejected"], self.gates.rejected)
            events.add_metric(["refused"], self.gates.refused_full)  # outbox full: the device retries
            out.append(events)
        return out


class MetricsServer:
    """``/metrics`` over HTTP for one agent's collector; ``close`` stops it and joins its thread."""

    def __init__(self, metrics: AgentMetrics, *, host: str, port: int) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(metrics)
        self._server: WSGIServer
        self._thread: threading.Thread
        try:
            self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        except OSError as err:
            raise MetricsError(f"metrics: cannot listen on {host}:{port}: {err}") from err
        log.info("metrics on http://%s:%d/metrics", host, self.port)

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        return int(self._server.server_address[1])

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
