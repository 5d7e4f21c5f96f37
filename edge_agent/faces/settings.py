"""The site file's ``cameras:`` and ``faces:`` sections (typed, validated; part of ``SiteConfig``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from anju_wire.payloads import Ident


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CameraConfig(_Section):
    """One plain camera read by the agent: an RTSP or HTTP (MJPEG) stream, a video file or an image folder.

    ``url`` may carry the camera's password; keep it in the environment with ``url_env`` instead. Only
    ``device_id`` ever names the camera outside the gateway. ``listen: true`` makes the agent the RTSP
    server a camera (or ffmpeg) pushes to (``rtsp_flags listen``).
    """

    device_id: Ident
    building: Annotated[str, Field(min_length=1, max_length=32)]
    floor: Annotated[int, Field(ge=-200, le=1000)] | None = None
    url: Annotated[str, Field(min_length=1, max_length=2000)] | None = None
    url_env: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] | None = None
    listen: bool = False
    loop: bool = False  # files and folders: start again at the end
    max_fps: Annotated[float, Field(gt=0, le=60)] = 5.0
    motion_gate: bool = True
    motion_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.005  # of the downscaled frame's pixels
    min_face_px: Annotated[int, Field(ge=16)] = 40
    cooldown_s: Annotated[float, Field(ge=0)] = 120.0  # one event per person (or track) per camera per this
    open_timeout_s: Annotated[float, Field(gt=0)] = 10.0
    backoff_max_s: Annotated[float, Field(gt=0)] = 30.0

    @model_validator(mode="after")
    def _one_url(self) -> Self:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("a camera needs exactly one of url and url_env")
        return self


class EvidencePolicy(_Section):
    """Face crops kept on the gateway as evidence: off unless the site enables it, then for a limit."""

    enabled: bool = False
    retention_days: Annotated[float, Field(gt=0, le=90)] = 7.0


class FacesSettings(_Section):
    """The face pack, the matching threshold and the privacy policy of this gateway."""

    pack: Literal["default", "insightface"] = "default"
    pack_dir: Path | None = None  # default pack: $ANJU_HOME/faces/packs/default
    detector: Annotated[str, Field(min_length=1)] = "det_10g.onnx"  # insightface packs only
    embedder: Annotated[str, Field(min_length=1)] = "w600k_r50.onnx"
    threshold: Annotated[float, Field(gt=0)] | None = None  # default: the pack's calibrated one
    stranger_radius: Annotated[float, Field(gt=0)] | None = None  # default: the threshold
    stranger_rotation_days: Annotated[float, Field(gt=0, le=366)] = 30.0
    threads: Annotated[int, Field(ge=1, le=16)] = 1
    home: Path | None = None  # default: $ANJU_HOME
    evidence: EvidencePolicy = EvidencePolicy()
    # Report the gallery's census (people enrolled per unit) in the agent's status, for the hub's registry.
    # Off by default: turn it on where this gallery is the estate's whole face enrolment.
    report_enrolment: bool = False

    @model_validator(mode="after")
    def _pack_dir(self) -> Self:
        if self.pack == "insightface" and self.pack_dir is None:
            raise ValueError("an insightface pack needs pack_dir (the operator's model directory)")
        return self
