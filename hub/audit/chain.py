"""The pure core of the chain: canonical form of a row, its MAC, and walking a sequence of rows."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

GENESIS = "0" * 64
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One row of ``audit_log`` as the chain sees it."""

    seq: int
    ts: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    detail_json: str
    mac: str | None = None


def canonical(row: AuditRow) -> bytes:
    """Sorted-key compact JSON of every field but the MAC; the time in integer microseconds since 1970.

    ``detail_json`` is PostgreSQL's own text of the jsonb value, so the MAC covers exactly what is stored
    (jsonb normalises numbers and key order; hashing the Python dict would not survive that round trip).
    """
    micros = (row.ts - EPOCH) // timedelta(microseconds=1)
    body = {
        "seq": row.seq, "ts_us": micros, "actor": row.actor, "action": row.action,
        "object_type": row.object_type, "object_id": row.object_id, "detail": row.detail_json,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def row_mac(key: bytes, prev_mac: str, row: AuditRow) -> str:
    """HMAC-SHA256 over the previous MAC and the row's canonical form, hex."""
    return hmac.new(key, prev_mac.encode() + b"\n" + canonical(row), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The chain head (sequence number and MAC) as it was seen at a time, kept outside the database."""

    seq: int
    mac: str
    ts: datetime

    def signature(self, key: bytes) -> str:
        """HMAC-SHA256 of the checkpoint's fields: a line no one without the key could have written."""
        micros = (self.ts - EPOCH) // timedelta(microseconds=1)
        text = f"checkpoint:{self.seq}:{self.mac}:{micros}"
        return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class Verification:
    """The result of walking the chain: rows checked, the first bad sequence number and why."""

    rows: int
    head_seq: int
    head_mac: str
    bad_seq: int | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        """Whether every row checked out."""
        return self.bad_seq is None


def verify_rows(key: bytes, rows: Iterable[AuditRow], *, start_seq: int = 1, prev_mac: str = GENESIS,
                checkpoint: Checkpoint | None = None) -> Verification:
    """Walk rows in sequence order; stop at the first gap (deletion), mismatch (edit) or foreign row.

    A chain cut short at its end looks whole on its own; ``checkpoint`` (a head seen earlier, kept where
    the database's operator cannot rewrite it) is what shows rows deleted from the tail or a truncation.
    """
    expected = start_seq
    n = 0
    for row in rows:
        if row.seq != expected:
            if row.seq > expected:
                return Verification(n, expected - 1, prev_mac, expected,
                                    f"rows {expected}..{row.seq - 1} missing (deleted)")
            return Verification(n, expected - 1, prev_mac, row.seq, "sequence number repeated")
        if row.mac is None:
            return Verification(n, row.seq - 1, prev_mac, row.seq, "row has no MAC (written out of band)")
        want = row_mac(key, prev_mac, row)
        if not hmac.compare_digest(want, row.mac):
            return Verification(n, row.seq - 1, prev_mac, row.seq,
                                "MAC mismatch (row edited, inserted out of band, or wrong key)")
        if checkpoint is not None and row.seq == checkpoint.seq and row.mac != checkpoint.mac:
            return Verification(n, row.seq - 1, prev_mac, row.seq,
                                f"row differs from the checkpoint of {checkpoint.ts.isoformat()}"
                                " (chain rewritten from here)")
        prev_mac = row.mac
        expected += 1
        n += 1
    if checkpoint is not None and expected - 1 < checkpoint.seq:
        seen = f"the checkpoint of {checkpoint.ts.isoformat()} saw seq {checkpoint.seq}"
        if n == 0 and start_seq == 1:
            return Verification(0, 0, prev_mac, 1, f"audit_log is empty but {seen}: truncated")
        return Verification(n, expected - 1, prev_mac, expected,
                            f"rows {expected}..{checkpoint.seq} missing at the tail (deleted; {seen})")
    return Verification(n, expected - 1, prev_mac)
