"""Stranger tracks: unrecognised faces clustered online on the gateway, each with a rotating track id.

A face within ``radius`` of a track's centroid joins it (the centroid becomes the running mean), else it
opens a new track. The id that leaves the gateway is ``s-`` + 16 hex digits of
HMAC-SHA256(pseudonym secret, estate:track key): stable while the key is, and the key is replaced with a
fresh random one ``rotation`` after it was drawn, so sightings cannot be linked across rotation periods
by anyone holding the ids. A track not seen for a whole rotation period is deleted with its centroid.
The tracks (centroids are embeddings) are kept only in the estate's encrypted vault.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from anju.edge_agent.faces.store import EstateVault


@dataclass(slots=True)
class Track:
    """One recurring unrecognised face."""

    key: str
    key_since: datetime
    centroid: np.ndarray
    count: int
    last_seen: datetime


class StrangerTracks:
    """The stranger tracks of one estate for one pack."""

    FILE = "strangers.bin"

    def __init__(
        self,
        vault: EstateVault,
        pack: str,
        *,
        secret: bytes,
        radius: float,
        rotation: timedelta = timedelta(days=30),
    ) -> None:
        if not secret:
            raise ValueError("empty pseudonym secret")
        self.vault, self.pack, self._secret = vault, pack, secret
        self.radius, self.rotation = radius, rotation
        self.tracks: list[Track] = []
        doc = vault.load(self.FILE, pack) or {}
        for t in doc.get("tracks", []):  # type: ignore[attr-defined]
            self.tracks.append(Track(
                t["key"], datetime.fromisoformat(t["key_since"]), np.asarray(t["c"], dtype=np.float32),
                int(t["n"]), datetime.fromisoformat(t["last"]),
            ))  # fmt: skip
        self.dirty = False

    def track_id(self, track: Track) -> str:
        """The id a track has on the wire now."""
        mac = hmac.new(self._secret, f"{self.vault.estate_id}:{track.key}".encode(), hashlib.sha256)
        return "s-" + mac.hexdigest()[:16]

    def observe(self, embedding: np.ndarray, ts: datetime) -> str:
        """Add one sighting of an unrecognised face at ``ts``; return its track id."""
        self._expire(ts)
        best: Track | None = None
        if self.tracks:
            distances = [float(np.linalg.norm(t.centroid - embedding)) for t in self.tracks]
            i = int(np.argmin(distances))
            if distances[i] <= self.radius:
                best = self.tracks[i]
        if best is None:
            best = Track(secrets.token_hex(16), ts, np.asarray(embedding, dtype=np.float32), 0, ts)
            self.tracks.append(best)
        else:
            best.centroid = best.centroid + (embedding - best.centroid) / (best.count + 1)
        best.count += 1
        best.last_seen = max(best.last_seen, ts)
        if ts - best.key_since >= self.rotation:
            best.key, best.key_since = secrets.token_hex(16), ts
        self.dirty = True
        return self.track_id(best)

    def _expire(self, now: datetime) -> None:
        kept = [t for t in self.tracks if now - t.last_seen < self.rotation]
        if len(kept) != len(self.tracks):
            self.tracks = kept
            self.dirty = True

    def save(self) -> None:
        """Write the tracks to the vault (encrypted) if they changed."""
        if not self.dirty:
            return
        doc = {"format": 1, "tracks": [
            {"key": t.key, "key_since": t.key_since.isoformat(), "c": t.centroid.tolist(), "n": t.count,
             "last": t.last_seen.isoformat()} for t in self.tracks]}  # fmt: skip
        self.vault.save(self.FILE, self.pack, doc)
        self.dirty = False
