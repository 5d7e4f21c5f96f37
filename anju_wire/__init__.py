"""anju wire contract v1: MQTT topics, payload schemas and the shared simulated time base.

Imported by edge_agent, hub and device_sims; imports none of them.
"""

from anju_wire.clock import AcceleratedClock, Clock, WallClock
from anju_wire.errors import ContractError
from anju_wire.payloads import (
    AccessBatch,
    AccessEvent,
    AccessMethod,
    Ack,
    AgentStatus,
    MeterKind,
    MeterReading,
    ReadingsBatch,
    SeqRange,
    decode,
    encode,
)
from anju_wire.topics import Topic, TopicKind

__all__ = [
    "AcceleratedClock",
    "AccessBatch",
    "AccessEvent",
    "AccessMethod",
    "Ack",
    "AgentStatus",
    "Clock",
    "ContractError",
    "MeterKind",
    "MeterReading",
    "ReadingsBatch",
    "SeqRange",
    "Topic",
    "TopicKind",
    "WallClock",
    "decode",
    "encode",
]
