"""Errors raised by the wire contract."""


class ContractError(ValueError):
    """A topic or payload does not follow the wire contract; the message says why."""
