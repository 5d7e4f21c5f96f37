"""Evidence crops: kept on the gateway only when the site policy enables it, encrypted, for a limited time.

Each crop is the face's box (with a margin) as JPEG, sealed with the estate's key into
``faces/estates/<estate>/evidence/<event_id>.bin``; ``prune`` deletes every crop older than the policy's
retention (called on each new crop and by ``anju agent faces prune``).
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta

import cv2
import numpy as np

from anju.edge_agent.faces.engine import Face
from anju.edge_agent.faces.store import EstateVault

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


class EvidenceStore:
    """Encrypted face crops of one estate, with a retention limit."""

    PACK = "evidence"  # the associated data of crops, apart from any pack's gallery

    def __init__(self, vault: EstateVault, *, retention: timedelta) -> None:
        self.vault, self.retention = vault, retention
        self.dir = vault.dir / "evidence"

    def keep(
        self, event_id: str, frame: np.ndarray, face: Face, ts: datetime, *, person_id: str | None = None
    ) -> str:
        """Seal the face's crop under the event id, with the enrolled person if any; return its name."""
        h, w = frame.shape[:2]
        x0, y0, x1, y1 = face.box
        mx, my = (x1 - x0) * 0.25, (y1 - y0) * 0.25
        crop = frame[max(0, int(y0 - my)) : min(h, int(y1 + my)), max(0, int(x0 - mx)) : min(w, int(x1 + mx))]
        ok, jpeg = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 85])
        if not ok:
            raise ValueError("crop does not encode")
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        name = f"evidence/{_SAFE.sub('_', event_id)}.bin"
        self.vault.save(
            name, self.PACK,
            {"ts": ts.isoformat(), "event_id": event_id, "person": person_id, "jpeg": jpeg.tobytes().hex()},
        )  # fmt: skip
        self.prune()
        return name

    def read(self, name: str) -> bytes | None:
        """The JPEG of a kept crop (None when it is gone)."""
        doc = self.vault.load(name, self.PACK)
        return None if doc is None else bytes.fromhex(str(doc["jpeg"]))

    def forget(self, person_id: str) -> int:
        """Delete every crop of an enrolled person (``anju agent faces forget``); return how many."""
        if not self.dir.is_dir():
            return 0
        gone = 0
        for f in self.dir.glob("*.bin"):
            doc = self.vault.load(f"evidence/{f.name}", self.PACK)
            if doc is not None and doc.get("person") == person_id:
                f.unlink(missing_ok=True)
                gone += 1
        return gone

    def prune(self, now: float | None = None) -> int:
        """Delete crops older than the retention (by file time); return how many."""
        if not self.dir.is_dir():
            return 0
        cutoff = (now if now is not None else time.time()) - self.retention.total_seconds()
        gone = 0
        for f in self.dir.glob("*.bin"):
            if f.stat().st_mtime < cutoff:
                f.unlink(missing_ok=True)
                gone += 1
        return gone
