"""anju wire contract v1: MQTT topics, payload schemas and the shared simulated time base.

Imported by edge_agent, hub and device_sims; imports none of them.
"""

from anju_wire.bounds import TimeBounds
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
from anju_wire.topics import Topic, TopicKind, agent_of_estate

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
    "TimeBounds",
    "Topic",
    "TopicKind",
    "WallClock",
    "agent_of_estate",
    "decode",
    "encode",
]
