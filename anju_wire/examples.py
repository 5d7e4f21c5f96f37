"""Example payloads of contract v1, kept as files and tested on both ends (agent and hub)."""

from __future__ import annotations

from importlib import resources

from anju_wire.payloads import AccessBatch, Ack, AgentStatus, ReadingsBatch
from anju_wire.topics import TopicKind

EXAMPLES: dict[str, tuple[TopicKind, type[ReadingsBatch | AccessBatch | AgentStatus | Ack]]] = {
    "readings_batch.json": (TopicKind.READINGS, ReadingsBatch),
    "readings_batch_counter_events.json": (TopicKind.READINGS, ReadingsBatch),
    "access_batch.json": (TopicKind.ACCESS, AccessBatch),
    "agent_status_online.json": (TopicKind.STATUS, AgentStatus),
    "agent_status_offline.json": (TopicKind.STATUS, AgentStatus),
    "ack.json": (TopicKind.ACK, Ack),
}


def example_bytes(name: str) -> bytes:
    """The raw bytes of one example payload file."""
    return resources.files("anju_wire").joinpath("examples", name).read_bytes()
