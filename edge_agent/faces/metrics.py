"""Prometheus metrics of the cameras: frames read and past the motion gate, faces, events, availability."""

from __future__ import annotations

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from anju.edge_agent.faces.service import CameraSet


def camera_metrics(cameras: CameraSet) -> list[Metric]:
    """The metric families of one agent's cameras (device label ``camera:<device_id>``)."""
    frames = CounterMetricFamily(
        "anju_edge_camera_frames", "Camera frames taken at the capped rate", labels=["device"]
    )
    moving = CounterMetricFamily(
        "anju_edge_camera_frames_moving", "Camera frames that passed the motion gate", labels=["device"]
    )
    failures = CounterMetricFamily(
        "anju_edge_camera_failures", "Camera opens or streams that failed (each followed by a backoff)",
        labels=["device"],
    )  # fmt: skip
    frame_errors = CounterMetricFamily(
        "anju_edge_camera_frame_errors", "Camera frames whose face work failed (logged)", labels=["device"]
    )
    available = GaugeMetricFamily(
        "anju_edge_camera_available", "1 if the camera delivers frames, 0 if not", labels=["device"]
    )
    for r in cameras.readers:
        frames.add_metric([r.device], r.stats.frames)
        moving.add_metric([r.device], r.stats.moving)
        failures.add_metric([r.device], r.stats.failures)
        frame_errors.add_metric([r.device], r.stats.frame_errors)
        if r.available is not None:
            available.add_metric([r.device], 1.0 if r.available else 0.0)
    s = cameras.faces.stats
    faces = CounterMetricFamily("anju_edge_camera_faces", "Faces found in camera frames", value=s.faces)
    seen = CounterMetricFamily(
        "anju_edge_camera_sightings", "Faces matched to an enrolled person or to a stranger track",
        labels=["who"],
    )  # fmt: skip
    seen.add_metric(["enrolled"], s.recognised)
    seen.add_metric(["stranger"], s.strangers)
    events = CounterMetricFamily(
        "anju_edge_camera_events", "Access events stored from cameras, and sightings within the cooldown",
        labels=["outcome"],
    )  # fmt: skip
    events.add_metric(["stored"], s.events)
    events.add_metric(["cooldown"], s.suppressed)
    events.add_metric(["refused_full"], s.refused_full)
    return [frames, moving, failures, frame_errors, available, faces, seen, events]
