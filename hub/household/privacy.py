"""What a household never sees: the one list, and the filter every household view goes through.

A case about a home is shown to its household with its state, deadlines, reasons, their own meters and
their own entries, its trail and who viewed it. Everything named here is left out wherever it occurs
(a key of the evidence, of a reason, of an audit row's detail, of the case), and a reason whose code is
named here is shown in words only, without its numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PRIVATE_FIELDS: frozenset[str] = frozenset({
    # Other people: stranger tracks and counts at the building, every gate event of the building, faces.
    "strangers", "strangers_building", "gate_events", "gate_events_building", "tracks", "stranger_tracks",
    "person", "persons", "new_faces", "faces", "face_tracks", "recurring_strangers",
    # Camera data.
    "camera", "camera_id", "snapshot", "image", "face", "face_id", "device_id", "event_id",
    # Model internals: scores, rule and model versions, features, learned and peer models.
    "score", "rule_version", "model", "model_version", "features", "probability", "peer_anomaly",
    "verdict_model",
    # Other units' data (the estate's peers a comparison is made with).
    "peer_electricity", "peers", "peer_median",
    # Inspectors' private notes, and the internals of sessions and deliveries.
    "note", "notes", "address", "idempotency_key", "last_error", "payload", "mac", "audit_checkpoint",
})


def is_private(name: str | None) -> bool:
    """Whether a field (or a reason code) is never shown to a household."""
    return name is not None and name in PRIVATE_FIELDS


def public(value: Any) -> Any:
    """``value`` with every private key left out, at any depth (mappings and lists of them)."""
    if isinstance(value, Mapping):
        return {k: public(v) for k, v in value.items() if not is_private(str(k))}
    if isinstance(value, list | tuple):
        return [public(v) for v in value]
    return value


def public_reason(reason: Mapping[str, Any]) -> dict[str, Any]:
    """A reason as a household reads it: its words always; its numbers only when its code is not
    private (a stranger count, a model's score, the peers' median are not theirs to see)."""
    kept = public(reason)
    if is_private(str(reason.get("code"))):
        kept = {k: v for k, v in kept.items() if k in ("code", "text")}
    return kept
