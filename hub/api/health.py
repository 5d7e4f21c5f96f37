"""The hub's liveness for operators: the parts behind ``/api/health`` and the Prometheus ``/metrics``.

Both read the ``HubMonitor`` that ``run_hub`` gives the app (an app built without one, as in the API
tests, has a monitor with no parts: the database alone decides its health).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from anju.hub.api.models import Health
from anju.hub.monitor import HubMonitor

router = APIRouter(tags=["operations"])


def monitor_of(request: Request) -> HubMonitor:
    """The app's monitor (an empty one when the app was built without)."""
    monitor: HubMonitor | None = getattr(request.app.state, "monitor", None)
    return monitor if monitor is not None else HubMonitor()


def with_parts(answer: Health, monitor: HubMonitor) -> Health:
    """``answer`` with every part's state and the dead letters by estate; its status names the parts down."""
    parts = monitor.parts()
    down = [p.name for p in parts if not p.up]
    status = answer.status
    if down:
        status = f"{status}; down: {', '.join(down)}" if status != "ok" else f"down: {', '.join(down)}"
    return answer.model_copy(
        update={"status": status, "parts": parts, "dead_letters_by_estate": monitor.dead_letters_by_estate()}
    )


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """Prometheus text format: parts up, restarts, last success, lag; ingest counters and dead letters
    by estate and reason code (no sign-in, like /api/health: serve it on an internal network only)."""
    body = generate_latest(monitor_of(request).registry())
    return Response(content=body, media_type=CONTENT_TYPE_LATEST)
