"""Benchmark: the default face pack on real photos; accuracy, per-frame and per-face cost, 4 cameras at 5 fps.

Photos (``anju.device_sims.face_photos``): face_recognition 1.3.0's test images (Obama x5, Biden), face-api
1.7.15's six group photos (22 faces), scikit-image 0.25.2's astronaut: 29 faces, 25 people.

1. Detection recall per photo (faces found / faces there) and extra detections.
2. Distances between embeddings: same person (the Obama photos), different people (labelled people
   against everyone, and two faces of one group photo), unlabelled (faces of two different group photos:
   nobody has said whether one woman appears in two of them), and each face against a degraded copy of
   its own photo (face ~60 px wide, JPEG quality 40, 30% darker: a corridor camera's view).
3. False-accept and false-reject rates of thresholds around the chosen one.
4. Cost on one core (process pinned to CPU 0, onnxruntime on one thread): detection per frame
   (1280x720 and 640x360), alignment + embedding per face, motion gate per frame.
5. Four cameras at 5 fps (1280x720 MPEG-4 files, looped, read through ``CameraReader`` like the agent,
   one engine on one thread shared by the four): empty corridors (sensor noise only) and busy ones
   (someone crossing in every frame); frames/s handled and CPU of the whole process in % of one core.

Run: ``.venv/bin/python bench/faces.py [--seconds 20]`` (builds the pack under a temporary directory
from the download cache when ``ANJU_HOME`` has none).
"""

from __future__ import annotations

import argparse
import itertools
import os
import resource
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np

from anju.device_sims.camera import CorridorScene, Walker
from anju.device_sims.face_photos import photos
from anju.edge_agent.cameras import CameraReader, MotionGate
from anju.edge_agent.faces.engine import DefaultPackEngine
from anju.edge_agent.faces.pack import build_pack, default_pack_dir, pack_ready
from anju.edge_agent.faces.recognise import CameraFaces, FaceRecogniser
from anju.edge_agent.faces.settings import CameraConfig
from anju.edge_agent.faces.store import EstateVault, Gallery
from anju.edge_agent.faces.strangers import StrangerTracks
from anju.edge_agent.outbox import Outbox
from anju_wire import WallClock


def _pack(tmp: Path) -> Path:
    return default_pack_dir() if pack_ready() else build_pack(tmp / "pack")


def _degrade(image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    scale = 60 / max(1.0, box[2] - box[0])
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    small = np.clip(small.astype(np.float32) * 0.7, 0, 255).astype(np.uint8)
    _, jpeg = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 40])
    out = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)
    assert out is not None
    return np.asarray(out)


def accuracy(engine: DefaultPackEngine) -> None:
    print("\n1. detection recall (default pack: BlazeFace full range, min score 0.5)")
    faces, found_total, there_total, extra = [], 0, 0, 0
    degraded: list[float] = []
    for p in photos():
        found = engine.detect(p.image)
        found_total += min(len(found), p.faces)
        there_total += p.faces
        extra += max(0, len(found) - p.faces)
        print(f"   {p.name:26s} {p.source:28s} {len(found)}/{p.faces}")
        vectors = engine.embed([engine.align(p.image, f) for f in found])
        for i, (f, v) in enumerate(zip(found, vectors, strict=True)):
            faces.append((f"{p.name}#{i}", p.identity, v))
            low = _degrade(p.image, f.box)
            again = [g for g in engine.detect(low)]
            if again:
                best = min(again, key=lambda g: abs(g.box[0] * (f.box[2] - f.box[0]) / 60 - f.box[0]))
                degraded.append(float(np.linalg.norm(engine.embed([engine.align(low, best)])[0] - v)))
    print(
        f"   recall {found_total}/{there_total} = {found_total / there_total:.1%}, extra detections {extra}"
    )
    same, different, unlabelled = [], [], []
    for (n1, w1, v1), (n2, w2, v2) in itertools.combinations(faces, 2):
        d = float(np.linalg.norm(v1 - v2))
        if w1 is not None and w1 == w2:
            same.append(d)
        elif w1 is not None or w2 is not None or n1.split("#")[0] == n2.split("#")[0]:
            different.append(d)
        else:
            unlabelled.append(d)
    print("\n2. L2 distances (128-d dlib ResNet embeddings)")
    print(f"   {'pairs':44s} {'n':>4s} {'min':>6s} {'median':>6s} {'max':>6s}")
    rows = (
        ("same person (Obama, 5 photos)", same),
        ("different people (labelled or same photo)", different),
        ("unlabelled (two different group photos)", unlabelled),
        ("same face, degraded copy (60 px, q40, dark)", degraded),
    )
    for name, ds in rows:
        print(f"   {name:44s} {len(ds):4d} {min(ds):6.3f} {statistics.median(ds):6.3f} {max(ds):6.3f}")
    print(f"   degraded copies where the face was found again: {len(degraded)}/{len(faces)}")
    print("\n3. thresholds: false accepts (different <= t) and false rejects (same > t)")
    print(
        f"   {'t':>5s} {'FAR labelled':>14s} {'FRR photos':>12s} {'FRR degraded':>14s} {'unlabelled<=t':>14s}"
    )
    for t in (0.40, 0.43, 0.45, 0.47, 0.50, 0.55, 0.60):
        far = sum(d <= t for d in different)
        frr = sum(d > t for d in same)
        frr_d = sum(d > t for d in degraded)
        un = sum(d <= t for d in unlabelled)
        mark = "  <- chosen" if t == engine.threshold else ""
        nd, ns, ng, nu = len(different), len(same), len(degraded), len(unlabelled)
        cells = [f"{far:4d}/{nd} {far / nd:5.1%}", f"{frr:3d}/{ns} {frr / ns:5.0%}",
                 f"{frr_d:4d}/{ng} {frr_d / ng:5.1%}", f"{un:5d}/{nu}"]  # fmt: skip
        print(f"   {t:5.2f} " + " ".join(cells) + mark)


def _median_ms(fn: Callable[[], object], n: int) -> str:
    """Median CPU (this thread's) and wall milliseconds: a busy machine inflates the wall figure only."""
    wall, cpu = [], []
    for _ in range(n):
        t, c = time.perf_counter(), time.thread_time()
        fn()
        wall.append((time.perf_counter() - t) * 1000)
        cpu.append((time.thread_time() - c) * 1000)
    return f"{statistics.median(cpu):6.2f} ms CPU ({statistics.median(wall):6.2f} ms wall)"


def cost(engine: DefaultPackEngine) -> None:
    os.sched_setaffinity(0, {0})
    person = photos()[2].portraits()[0][1]
    print("\n4. cost on one core (pinned to CPU 0, onnxruntime intra-op threads 1; median of 40)")
    for w, h in ((1280, 720), (640, 360)):
        scene = CorridorScene(w, h, seed=1)
        scene.walkers.append(Walker(person, 0.0))
        frame = scene.render(1.2)
        faces = engine.detect(frame)
        ms = _median_ms(lambda f=frame: engine.detect(f), 40)  # type: ignore[misc]
        print(f"   detect, {w}x{h} frame with {len(faces)} face: {ms}")
    frame = scene.render(1.2)
    face = engine.detect(frame)[0]
    print(f"   align one face:                   {_median_ms(lambda: engine.align(frame, face), 40)}")
    chip = engine.align(frame, face)
    print(f"   embed one face:                   {_median_ms(lambda: engine.embed([chip]), 40)}")
    print(f"   embed a batch of four faces:      {_median_ms(lambda: engine.embed([chip] * 4), 20)}")
    gate = MotionGate()
    big = CorridorScene(1280, 720, seed=2).render(0)
    gate.moved(big)
    print(f"   motion gate, 1280x720 frame:      {_median_ms(lambda: gate.moved(big), 40)}")
    os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))


def _video(path: Path, busy: bool, seconds: int, seed: int) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 5, (1280, 720))
    scene = CorridorScene(1280, 720, seed=seed)
    rng = np.random.default_rng(seed)
    people = [f for p in photos() for _, f in p.portraits()]
    for i in range(seconds * 5):
        t = i / 5
        if busy and not scene.walkers:
            scene.walkers.append(Walker(people[int(rng.integers(0, len(people)))], t, 1, bool(i % 2)))
        frame = scene.render(t).astype(np.int16) + rng.normal(0, 2, (720, 1280, 3)).astype(np.int16)
        writer.write(np.clip(frame, 0, 255).astype(np.uint8))
    writer.release()
    return path


def cameras(engine: DefaultPackEngine, tmp: Path, seconds: float) -> None:
    print(f"\n5. four cameras at 5 fps, 1280x720, {seconds:.0f} s each, both cores, one shared engine thread")
    vault = EstateVault(tmp / "home", "B01")
    gallery = Gallery(vault, "default")
    for busy in (False, True):
        clips = [_video(tmp / f"cam{i}-{busy}.mp4", busy, 12, seed=i) for i in range(4)]
        outbox = Outbox(tmp / f"o-{busy}.sqlite", capacity=1_000_000)
        faces = CameraFaces(
            recogniser=FaceRecogniser(engine, gallery), outbox=outbox, estate_id="B01", secret=b"bench",
            strangers=StrangerTracks(vault, "default", secret=b"bench", radius=engine.threshold),
        )  # fmt: skip
        readers = []
        for i, clip in enumerate(clips):
            cam = CameraConfig(device_id=f"C{i}", building="1", url=str(clip), loop=True, max_fps=5)
            readers.append(CameraReader(cam, url=str(clip), clock=WallClock(), handle=_handler(faces, cam)))
        halt = threading.Event()
        threads = [threading.Thread(target=r.run_blocking, args=(halt,)) for r in readers]
        before, t0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
        for th in threads:
            th.start()
        time.sleep(seconds)
        halt.set()
        for th in threads:
            th.join()
        after, elapsed = resource.getrusage(resource.RUSAGE_SELF), time.monotonic() - t0
        cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) / elapsed
        frames = sum(r.stats.frames for r in readers)
        moving = sum(r.stats.moving for r in readers)
        label = "busy corridors " if busy else "empty corridors"
        print(f"   {label}: {frames / elapsed:5.1f} frames/s read (target 20.0),"
              f" {moving / elapsed:5.1f}/s past the motion gate, {faces.stats.faces / elapsed:5.1f} faces/s,"
              f" CPU {cpu:6.1%} of one core")  # fmt: skip
        outbox.close()


def _handler(faces: CameraFaces, cam: CameraConfig) -> Callable[[np.ndarray, datetime], None]:
    def handle(frame: np.ndarray, ts: datetime) -> None:
        faces.handle(cam, frame, ts)

    return handle


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=20.0, help="length of each camera run")
    args = p.parse_args()
    print(f"bench/faces.py {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs,"
          f" load average {os.getloadavg()[0]:.2f}, opencv {cv2.__version__}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        engine = DefaultPackEngine(_pack(Path(tmp)), threads=1)
        accuracy(engine)
        cost(engine)
        cameras(engine, Path(tmp), args.seconds)


if __name__ == "__main__":
    main()
