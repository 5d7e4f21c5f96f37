"""MQTT topics of wire contract v1, built and parsed as value objects, never by hand.

Layout: ``anju/v1/{estate}/readings``, ``anju/v1/{estate}/access`` (agent to hub),
``anju/v1/{estate}/status/{agent}`` (retained, last will) and ``anju/v1/{estate}/ack/{agent}`` (hub to agent).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from anju_wire.errors import ContractError

PREFIX = "anju"
VERSION = "v1"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class TopicKind(StrEnum):
    """What a topic carries."""

    READINGS = "readings"
    ACCESS = "access"
    STATUS = "status"
    ACK = "ack"


_PER_AGENT = {TopicKind.STATUS, TopicKind.ACK}


def check_id(value: str, what: str) -> str:
    """Return ``value`` if it is a valid estate or agent id (no MQTT wildcards or separators)."""
    if not _ID.match(value):
        raise ContractError(f"invalid {what} id {value!r}: use 1-64 letters, digits, '_', '.', '-'")
    return value


@dataclass(frozen=True, slots=True)
class Topic:
    """One concrete v1 topic."""

    kind: TopicKind
    estate: str
    agent: str | None = None

    def __post_init__(self) -> None:
        check_id(self.estate, "estate")
        if self.kind in _PER_AGENT:
            if self.agent is None:
                raise ContractError(f"{self.kind} topics name the agent")
            check_id(self.agent, "agent")
        elif self.agent is not None:
            raise ContractError(f"{self.kind} topics do not name the agent")

    def __str__(self) -> str:
        base = f"{PREFIX}/{VERSION}/{self.estate}/{self.kind.value}"
        return f"{base}/{self.agent}" if self.agent else base

    @classmethod
    def readings(cls, estate: str) -> Topic:
        """Batched meter readings from an estate's agent."""
        return cls(TopicKind.READINGS, estate)

    @classmethod
    def access(cls, estate: str) -> Topic:
        """Batched access events from an estate's agent."""
        return cls(TopicKind.ACCESS, estate)

    @classmethod
    def status(cls, estate: str, agent: str) -> Topic:
        """Retained agent status; also the agent's last will."""
        return cls(TopicKind.STATUS, estate, agent)

    @classmethod
    def ack(cls, estate: str, agent: str) -> Topic:
        """The hub's acknowledgements to one agent."""
        return cls(TopicKind.ACK, estate, agent)

    @classmethod
    def parse(cls, topic: str) -> Topic:
        """Parse a concrete topic string; raise ContractError when it is not a v1 topic."""
        parts = topic.split("/")
        if len(parts) < 4 or parts[0] != PREFIX:
            raise ContractError(f"not an anju topic: {topic!r}")
        if parts[1] != VERSION:
            raise ContractError(f"unsupported contract version {parts[1]!r} in {topic!r}")
        try:
            kind = TopicKind(parts[3])
        except ValueError as err:
            raise ContractError(f"unknown topic kind {parts[3]!r} in {topic!r}") from err
        expected = 5 if kind in _PER_AGENT else 4
        if len(parts) != expected:
            raise ContractError(f"wrong number of levels in {topic!r}")
        return cls(kind, parts[2], parts[4] if expected == 5 else None)


def agent_of_estate(agent: str, estate: str) -> bool:
    """Whether ``agent`` is one of ``estate``'s agents: its id is ``{estate}-{name}``.

    The binding rule of agent ids to estates: stateless, so the first message an agent ever sends is
    judged like any other, and no gateway can claim another estate's agent id by speaking first. The
    broker's per-estate identity decides which estate's topics a gateway may publish on; this rule
    decides which agents may speak on them.
    """
    return len(agent) > len(estate) + 1 and agent.startswith(f"{estate}-")


def subscription(kind: TopicKind, *, estate: str = "+", share_group: str | None = None) -> str:
    """A subscription filter for one kind over one or all estates, optionally as a shared subscription."""
    if estate != "+":
        check_id(estate, "estate")
    flt = f"{PREFIX}/{VERSION}/{estate}/{kind.value}"
    if kind in _PER_AGENT:
        flt += "/+"
    if share_group is not None:
        check_id(share_group, "share group")
        flt = f"$share/{share_group}/{flt}"
    return flt
