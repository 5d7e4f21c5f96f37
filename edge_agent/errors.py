"""The edge agent's exception tree.

EdgeAgentError
├── RegisterMapError   a register map file is malformed
├── DecodeError        register words do not give a valid cumulative total
├── SiteConfigError    the site file or its environment is wrong; the message names the field
├── GateEventError     a gate vendor payload is malformed
├── PayloadError       a self-reporting meter's message does not give a total
├── MetricsError       the metrics endpoint cannot listen
├── ListenError        the HTTP gate listener cannot listen
└── OutboxError        the durable outbox cannot do what was asked
    └── OutboxFull     the outbox is at capacity and refuses new records
"""


class EdgeAgentError(Exception):
    """Base of every error the edge agent raises on purpose."""


class RegisterMapError(EdgeAgentError):
    """A register map file is missing or malformed."""


class DecodeError(EdgeAgentError):
    """Register words do not decode to a valid cumulative total (wrong count, NaN, negative)."""


class SiteConfigError(EdgeAgentError):
    """The site configuration is invalid; the message starts with the offending field's path."""


class GateEventError(EdgeAgentError):
    """A gate vendor event payload is malformed."""


class PayloadError(EdgeAgentError):
    """A self-reporting (MQTT) meter's message does not give a valid cumulative total."""


class MetricsError(EdgeAgentError):
    """The Prometheus metrics endpoint cannot be served (e.g. its port is taken)."""


class ListenError(EdgeAgentError):
    """The HTTP push listener for gates cannot take its address."""


class OutboxError(EdgeAgentError):
    """The durable outbox cannot do what was asked."""


class OutboxFull(OutboxError):
    """The outbox is at capacity: new records are refused, old ones are never dropped."""
