"""``anju sim camera``: the household model's entrance camera, with its tenants optionally enrolled."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np

from anju.device_sims.camera import CameraSim, CorridorScene, serve
from anju.device_sims.household import EstateModel, make_estate
from anju_wire import AcceleratedClock

if TYPE_CHECKING:
    from anju.edge_agent.faces.settings import FacesSettings


def enrol_tenants(sim: CameraSim, estate_id: str, settings: FacesSettings | None = None) -> int:
    """Enrol every tenant the simulation shows, from the first of their photos, under their tenant id."""
    from anju.edge_agent.faces.recognise import FaceRecogniser
    from anju.edge_agent.faces.service import open_engine, open_gallery
    from anju.edge_agent.faces.settings import FacesSettings

    settings = settings or FacesSettings()
    gallery = open_gallery(settings, estate_id)
    recogniser = FaceRecogniser(open_engine(settings), gallery)
    count = 0
    for tenant_id, (_, portraits) in sim.enrolled.items():
        faces = recogniser.faces(portraits[0], min_face_px=40)
        if len(faces) == 1:
            unit = tenant_id.removeprefix("T-").rsplit("-", 1)[0]
            gallery.enrol(tenant_id, unit, np.stack([faces[0][1]]))
            count += 1
    return count


def run_camera(args: argparse.Namespace) -> int:
    """Build the estate's model, enrol its shown tenants if asked, serve the stream until interrupted."""
    host, _, port = args.listen.rpartition(":")
    start = datetime.fromisoformat(args.start) if args.start else datetime.now().astimezone()
    origin = args.origin_wall if args.origin_wall is not None else time.time()
    clock = AcceleratedClock(origin_wall=origin, origin_sim=start, speed=args.speed)
    spec = make_estate(args.estate, n_units=args.units, days=args.days, start=start, seed=args.seed)
    events = [e for e in EstateModel(spec).gate_events() if e.building == args.building]
    scene = CorridorScene(args.width, args.height, seed=args.seed, stay_s=args.stay_s)
    tenant_ids = [p for u in spec.units for p in u.persons]
    sim = CameraSim(
        events, clock, scene, seed=args.seed, visitors=not args.no_visitors, tenant_ids=tenant_ids
    )
    if args.enrol_estate:
        from anju.edge_agent.errors import EdgeAgentError

        try:
            count = enrol_tenants(sim, args.enrol_estate)
        except EdgeAgentError as err:
            print(f"anju sim camera: cannot enrol the tenants: {err}", file=sys.stderr)
            return 2
        print(f"enrolled {count} tenants in {args.enrol_estate}", flush=True)
    print(f"camera of building {args.building}: http://{host}:{port}/ at {args.fps} fps", flush=True)
    stop = threading.Event()
    try:
        serve(sim, host, int(port), args.fps, stop)
    except KeyboardInterrupt:
        stop.set()
    return 0
