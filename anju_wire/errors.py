"""Errors raised by the wire contract."""

from __future__ import annotations


class ContractError(ValueError):
    """A topic or payload does not follow the wire contract; the message says why, ``code`` says what.

    Codes are stable, lower-case words (``contract``, ``ts_future``, ``ts_too_old`` ...) that dead letters
    and metrics carry, so that no reader has to parse the English.
    """

    def __init__(self, message: str, *, code: str = "contract") -> None:
        super().__init__(message)
        self.code = code
