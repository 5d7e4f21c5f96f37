"""Enrolled faces of one estate: embeddings only (never a photo), encrypted at rest with the estate's key.

Layout under ``$ANJU_HOME/faces/estates/<estate>/``:

* ``key``            32 random bytes (AES-256-GCM), mode 0600, made on first enrolment;
* ``gallery.bin``    nonce + AES-GCM(JSON of every person's unit and embeddings), the estate and the
                     pack bound in as associated data, so a gallery cannot be moved or read by another pack;
* ``strangers.bin``  the stranger tracks (``anju.edge_agent.faces.strangers``), encrypted the same way;
* ``audit.log``      one JSON line per enrolment and removal, each carrying the SHA-256 of the line before.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from anju.edge_agent.errors import EdgeAgentError
from anju_wire.topics import check_id

_NONCE = 12
_UNIT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")  # the wire contract's Ident


class FaceStoreError(EdgeAgentError):
    """The estate's face store is unreadable, tampered with, or from another pack."""


def estates_root(home: Path) -> Path:
    """Where every estate's face store lives."""
    return home / "faces" / "estates"


def _write_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


class EstateVault:
    """The encrypted files of one estate's face store."""

    def __init__(self, home: Path, estate_id: str) -> None:
        check_id(estate_id, "estate")
        self.estate_id = estate_id
        self.dir = estates_root(home) / estate_id

    def _key(self, *, create: bool) -> bytes | None:
        path = self.dir / "key"
        if path.is_file():
            key = path.read_bytes()
            if len(key) != 32:
                raise FaceStoreError(f"{path} is not a 32-byte key")
            return key
        if not create:
            return None
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = secrets.token_bytes(32)
        try:  # exclusive: two enrolments starting at once must not each make a key
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return self._key(create=False)
        with os.fdopen(fd, "wb") as f:
            f.write(key)
            f.flush()
            os.fsync(f.fileno())
        return key

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the estate's store for one read-modify-write (other processes wait)."""
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with (self.dir / ".lock").open("a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def load(self, name: str, pack: str) -> dict[str, object] | None:
        """The decrypted JSON document ``name`` (None when absent); FaceStoreError when it does not open."""
        path = self.dir / name
        key = self._key(create=False)
        if key is None or not path.is_file():
            return None
        blob = path.read_bytes()
        try:
            plain = AESGCM(key).decrypt(blob[:_NONCE], blob[_NONCE:], f"{self.estate_id}|{pack}".encode())
        except InvalidTag as err:
            raise FaceStoreError(
                f"{path} does not open with this estate's key for pack {pack!r} (another pack, or tampered)"
            ) from err
        doc = json.loads(plain)
        if not isinstance(doc, dict):
            raise FaceStoreError(f"{path} holds no JSON object")
        return doc

    def save(self, name: str, pack: str, doc: dict[str, object]) -> None:
        """Encrypt and write the JSON document ``name`` atomically."""
        key = self._key(create=True)
        assert key is not None
        nonce = secrets.token_bytes(_NONCE)
        sealed = AESGCM(key).encrypt(nonce, json.dumps(doc).encode(), f"{self.estate_id}|{pack}".encode())
        _write_atomic(self.dir / name, nonce + sealed)

    def audit(self, action: str, **fields: object) -> dict[str, object]:
        """Append one hash-chained line to the estate's audit log and return it."""
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.dir / "audit.log"
        prev = "0" * 64
        if path.is_file():
            lines = path.read_bytes().splitlines()
            if lines:
                prev = hashlib.sha256(lines[-1]).hexdigest()
        entry: dict[str, object] = {"ts": datetime.now(UTC).isoformat(), "action": action,
                                    "estate": self.estate_id, **fields, "prev": prev}  # fmt: skip
        with path.open("ab") as f:
            f.write(json.dumps(entry, sort_keys=True).encode() + b"\n")
            f.flush()
            os.fsync(f.fileno())
        return entry

    def audit_entries(self) -> list[dict[str, object]]:
        """The audit log, checked link by link; FaceStoreError names the first broken line."""
        path = self.dir / "audit.log"
        if not path.is_file():
            return []
        out, prev = [], "0" * 64
        for n, line in enumerate(path.read_bytes().splitlines(), 1):
            entry = json.loads(line)
            if entry.get("prev") != prev:
                raise FaceStoreError(f"{path} line {n}: the chain is broken (a line was changed or removed)")
            prev = hashlib.sha256(line).hexdigest()
            out.append(entry)
        return out


@dataclass(slots=True)
class Person:
    """One enrolled person: the unit they are registered to and their face embeddings."""

    person_id: str
    unit_id: str
    embeddings: list[np.ndarray] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Match:
    """The nearest enrolled person to a face, and how near."""

    person_id: str | None  # None: nobody within the threshold (a stranger)
    unit_id: str | None
    distance: float


class Gallery:
    """The enrolled people of one estate for one pack, read from and written to the estate's vault."""

    FILE = "gallery.bin"

    def __init__(self, vault: EstateVault, pack: str) -> None:
        self.vault = vault
        self.pack = pack
        self.people: dict[str, Person] = {}
        self._matrix: tuple[np.ndarray, list[Person]] | None = None
        self._loaded = self._stamp()
        self._load()

    def _stamp(self) -> tuple[int, int, int] | None:
        try:
            st = (self.vault.dir / self.FILE).stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _load(self) -> None:
        doc = self.vault.load(self.FILE, self.pack)
        self.people = {}
        for pid, rec in (doc or {}).get("people", {}).items():  # type: ignore[attr-defined]
            self.people[pid] = Person(pid, rec["unit"], [np.asarray(e, dtype=np.float32) for e in rec["emb"]])
        self._matrix = None

    def refresh(self) -> bool:
        """Reload when another process enrolled or removed someone since this gallery was read."""
        stamp = self._stamp()
        if stamp == self._loaded:
            return False
        self._loaded = stamp
        self._load()
        return True

    def __iter__(self) -> Iterator[Person]:
        return iter(self.people.values())

    def enrol(self, person_id: str, unit_id: str, embeddings: np.ndarray) -> None:
        """Add embeddings for a person (replacing the unit they are registered to), save, audit."""
        if not _UNIT.match(unit_id):
            raise FaceStoreError(f"invalid unit id {unit_id!r}")
        if not person_id or len(person_id) > 128:
            raise FaceStoreError("a person id is 1..128 characters")
        if len(embeddings) == 0:
            raise FaceStoreError(f"no face to enrol for {person_id}")
        with self.vault.lock():
            self.refresh()  # what other processes enrolled meanwhile stays
            person = self.people.setdefault(person_id, Person(person_id, unit_id))
            person.unit_id = unit_id
            person.embeddings.extend(np.asarray(e, dtype=np.float32) for e in embeddings)
            self.save()
            self.vault.audit("enrol", person=person_id, unit=unit_id, faces=len(embeddings), pack=self.pack)

    def forget(self, person_id: str, *, by: str) -> bool:
        """Delete a person's embeddings; audited whether or not they were enrolled here."""
        with self.vault.lock():
            self.refresh()
            found = self.people.pop(person_id, None) is not None
            if found:
                self.save()
            self.vault.audit("forget", person=person_id, found=found, by=by)
        return found

    def save(self) -> None:
        """Write the gallery, encrypted."""
        people = {p.person_id: {"unit": p.unit_id, "emb": [e.tolist() for e in p.embeddings]} for p in self}
        doc = {"format": 1, "people": people}
        self.vault.save(self.FILE, self.pack, doc)
        self._loaded = self._stamp()
        self._matrix = None

    def match(self, embedding: np.ndarray, threshold: float) -> Match:
        """The nearest enrolled person by L2 distance, if within ``threshold``."""
        if self._matrix is None:
            owners = [p for p in self.people.values() for _ in p.embeddings]
            rows = [e for p in self.people.values() for e in p.embeddings]
            self._matrix = (np.stack(rows) if rows else np.zeros((0, 1), np.float32), owners)
        matrix, owners = self._matrix
        if not owners:
            return Match(None, None, float("inf"))
        distances = np.linalg.norm(matrix - embedding[None, :], axis=1)
        best = int(np.argmin(distances))
        d = float(distances[best])
        if d <= threshold:
            return Match(owners[best].person_id, owners[best].unit_id, d)
        return Match(None, None, d)
