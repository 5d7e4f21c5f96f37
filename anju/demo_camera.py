"""The demo's cameras: each building entrance of one estate seen by ``anju sim camera``, read by its agent."""

from __future__ import annotations

import sys
from typing import Any, Protocol

from anju.device_sims.household import EstateSpec
from anju.services import free_port
from anju_wire import AcceleratedClock


class _Starter(Protocol):
    def start(self, name: str, args: list[str], env: dict[str, str] | None = None) -> Any: ...


def demo_camera(procs: _Starter, spec: EstateSpec, *, seed: int, clock: AcceleratedClock) -> dict[str, Any]:
    """Start a camera simulator per building (enrolling its tenants); return the site's ``cameras:`` section.

    Nothing (an empty section) when the face pack is not built: the demo runs without cameras then.
    The demo's machine also runs the hub, the database and the meter simulators, so the cameras are
    light: 640x360 at 2 fps, each passer-by staying 1.5 wall seconds (3 frames; many simulated hours).
    The cooldown of 12 simulated hours keeps one event per person per half day. Visitors are left out
    (the photos hold too few people for one-off visitors to stay one-off).
    """
    from anju.edge_agent.faces.pack import pack_ready

    if not pack_ready():
        print("demo: no face pack (anju agent faces pack): the camera is left out", file=sys.stderr)
        return {}
    est, cameras = spec.estate_id, []
    for gate in spec.gates:
        port = free_port()
        procs.start(f"camera-{est}-{gate.building}", [
            "sim", "camera", "--estate", est, "--building", gate.building, "--units", str(len(spec.units)),
            "--days", str(spec.days), "--seed", str(seed), "--start", spec.start.isoformat(),
            "--origin-wall", repr(clock.origin_wall), "--speed", repr(clock.speed),
            "--listen", f"127.0.0.1:{port}", "--width", "640", "--height", "360", "--fps", "2",
            "--stay-s", "1.5", "--no-visitors", "--enrol-estate", est,
        ])  # fmt: skip
        url = f"http://127.0.0.1:{port}/"
        cameras.append({"device_id": f"{est}-C{gate.building}", "building": gate.building, "url": url,
                        "max_fps": 2, "cooldown_s": 43200, "open_timeout_s": 5})  # fmt: skip
    return {"cameras": cameras}
