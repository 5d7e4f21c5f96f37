"""Checkpoints of the audit chain's head in an append-only file under the hub's home.

A chain proves every row against the one before it, but a chain whose last rows were deleted, or a
table truncated, still verifies: there is nothing after the cut to disagree. Whoever owns the database
can make that cut. So the hub writes the head (sequence number and MAC, signed with the audit key) to a
file the database operator cannot reach, opened only to append, and sends it with the next filing to the
tenancy system (``anju.hub.cases.service``). ``anju audit verify`` then checks the chain against the latest.
"""

from __future__ import annotations

import hmac
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from anju.hub.audit.chain import Checkpoint
from anju.hub.audit.errors import AuditError

TAIL_BYTES = 64 * 1024  # the latest checkpoint is on the file's last line; never read the whole file


class CheckpointError(AuditError):
    """A checkpoint line that is not one the hub wrote (bad form or bad signature)."""


@dataclass(frozen=True, slots=True)
class CheckpointOutcome:
    """What one ``take_checkpoint`` did: the checkpoint written (None: nothing new or a damaged chain),
    the latest one now, and why nothing was written when the chain does not follow on."""

    written: Checkpoint | None
    latest: Checkpoint | None
    problem: str | None = None


def format_line(cp: Checkpoint, *, key: bytes) -> str:
    """One JSON line: seq, MAC, time in ISO 8601 and the signature over them."""
    return json.dumps({"seq": cp.seq, "mac": cp.mac, "ts": cp.ts.isoformat(), "sig": cp.signature(key)},
                      separators=(",", ":")) + "\n"


def parse_line(line: str, *, key: bytes) -> Checkpoint:
    """The checkpoint of one line; raise ``CheckpointError`` unless it is well formed and signed."""
    try:
        data = json.loads(line)
        cp = Checkpoint(seq=int(data["seq"]), mac=str(data["mac"]), ts=datetime.fromisoformat(data["ts"]))
        sig = str(data["sig"])
    except (ValueError, KeyError, TypeError) as err:
        raise CheckpointError(f"not a checkpoint line: {line[:120]!r}") from err
    if cp.ts.tzinfo is None or not hmac.compare_digest(sig, cp.signature(key)):
        raise CheckpointError(f"checkpoint seq={cp.seq} has a bad signature (written without the key)")
    return cp


def parse_cli(text: str, *, now: datetime | None = None) -> Checkpoint:
    """``SEQ:MAC`` as given to ``anju audit verify --checkpoint`` (from the tenancy system's copy)."""
    seq, sep, mac = text.partition(":")
    if not sep or not seq.strip().isdigit() or len(mac.strip()) != 64:
        raise CheckpointError(f"a checkpoint is SEQ:MAC (64 hex digits), not {text!r}")
    return Checkpoint(seq=int(seq), mac=mac.strip().lower(), ts=now or datetime.now(UTC))


class CheckpointLog:
    """The append-only checkpoint file: every write is one ``O_APPEND`` line, flushed to disk."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, cp: Checkpoint, *, key: bytes) -> None:
        """Append one signed line and fsync it (a checkpoint lost in a crash would be a blind spot)."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, format_line(cp, key=key).encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def latest(self, key: bytes) -> Checkpoint | None:
        """The last checkpoint in the file, or None when there is none yet; a damaged or unsigned last
        line raises ``CheckpointError`` (someone wrote to the file; that is itself worth reporting)."""
        try:
            with self.path.open("rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - TAIL_BYTES))
                tail = f.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return None
        lines = [line for line in tail.splitlines() if line.strip()]
        if not lines:
            return None
        return parse_line(lines[-1], key=key)

