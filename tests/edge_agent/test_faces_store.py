"""Enrolment, identification and removal on the gateway; the encrypted stores; stranger tracks; records."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from anju.cli import main
from anju.device_sims.face_photos import photo
from anju.edge_agent.faces.evidence import EvidenceStore
from anju.edge_agent.faces.recognise import CameraFaces, FaceRecogniser
from anju.edge_agent.faces.settings import CameraConfig
from anju.edge_agent.faces.store import EstateVault, FaceStoreError, Gallery
from anju.edge_agent.faces.strangers import StrangerTracks
from anju.edge_agent.gates import pseudonym
from anju.edge_agent.outbox import Outbox
from anju.edge_agent.records import RecordKind
from tests.edge_agent.faces_support import corridor, engine, pack_dir, write_jpeg

SECRET = b"estate-secret"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    h = tmp_path / "home"
    monkeypatch.setenv("ANJU_HOME", str(h))
    return h


def _photo(tmp_path: Path, name: str) -> Path:
    return write_jpeg(tmp_path / "photos" / name.replace(".png", ".jpg"), photo(name).image)


def test_enrol_identify_forget_through_the_cli(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pack = ["--pack-dir", str(pack_dir())]
    obama = [_photo(tmp_path, n) for n in ("obama.jpg", "obama2.jpg")]
    assert main(["agent", "faces", "enrol", "--estate", "E01", "--person", "T-1001", "--unit", "U-0301",
                 *pack, *map(str, obama)]) == 0  # fmt: skip
    assert "2 face(s)" in capsys.readouterr().out
    probes = [_photo(tmp_path, n) for n in ("obama3.jpg", "biden.jpg", "sample1.jpg")]
    assert main(["agent", "faces", "identify", "--estate", "E01", *pack, *map(str, probes)]) == 0
    lines = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [(Path(p).name, who) for p, who, _ in lines] == [
        ("obama3.jpg", "T-1001"), ("biden.jpg", "stranger"),
        ("sample1.jpg", "stranger"), ("sample1.jpg", "stranger"), ("sample1.jpg", "stranger"),
    ]  # fmt: skip
    assert float(lines[0][2]) < 0.47 < float(lines[1][2])

    # the store holds no photo and no readable embedding; the key is private
    store = home / "faces" / "estates" / "E01"
    assert sorted(p.name for p in store.iterdir()) == [".lock", "audit.log", "gallery.bin", "key"]
    assert (store / "key").stat().st_mode & 0o077 == 0
    assert b"T-1001" not in (store / "gallery.bin").read_bytes()
    assert (store / "gallery.bin").stat().st_size < 16_000  # two embeddings; a photo would not fit

    # what the registry's faces_enrolled column needs: unit ids and counts, nothing of the person
    biden = [_photo(tmp_path, "biden.jpg")]
    assert main(["agent", "faces", "enrol", "--estate", "E01", "--person", "T-1002", "--unit", "U-0302",
                 *pack, *map(str, biden)]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["agent", "faces", "census", "--estate", "E01", *pack]) == 0
    assert capsys.readouterr().out.splitlines() == ["unit_id,faces_enrolled", "U-0301,1", "U-0302,1"]
    assert main(["agent", "faces", "forget", "--person", "T-1002", "--by", "installer-7"]) == 0
    capsys.readouterr()

    assert main(["agent", "faces", "forget", "--person", "T-1001", "--by", "installer-7"]) == 0
    assert capsys.readouterr().out.split() == ["E01", "T-1001", "removed"]
    assert main(["agent", "faces", "identify", "--estate", "E01", *pack, str(probes[0])]) == 0
    assert capsys.readouterr().out.split("\t")[1] == "stranger"
    audit = EstateVault(home, "E01").audit_entries()
    assert [(e["action"], e["person"]) for e in audit] == [
        ("enrol", "T-1001"), ("enrol", "T-1002"), ("forget", "T-1002"), ("forget", "T-1001")]
    assert audit[3]["by"] == "installer-7" and audit[3]["found"] is True


def test_enrol_skips_photos_without_exactly_one_face(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    group = _photo(tmp_path, "sample2.jpg")
    status = main(["agent", "faces", "enrol", "--estate", "E01", "--person", "T-1", "--unit", "U-1",
                   "--pack-dir", str(pack_dir()), str(group)])  # fmt: skip
    assert status == 1
    assert "3 faces (need exactly one)" in capsys.readouterr().err
    assert not (home / "faces" / "estates" / "E01" / "gallery.bin").exists()


def test_a_gallery_opens_only_with_its_estate_key_and_pack(home: Path) -> None:
    vault = EstateVault(home, "E01")
    g = Gallery(vault, "default")
    g.enrol("T-1", "U-1", np.ones((1, 128), np.float32))
    assert Gallery(vault, "default").people["T-1"].unit_id == "U-1"
    with pytest.raises(FaceStoreError, match="another pack"):
        Gallery(vault, "insightface/w600k_r50.onnx")
    other = EstateVault(home, "E02")
    other.dir.mkdir(parents=True)
    (other.dir / "gallery.bin").write_bytes((vault.dir / "gallery.bin").read_bytes())
    (other.dir / "key").write_bytes((vault.dir / "key").read_bytes())
    with pytest.raises(FaceStoreError):  # same key, but bound to E01
        Gallery(other, "default")


def test_the_audit_log_shows_a_removed_line(home: Path) -> None:
    vault = EstateVault(home, "E01")
    for i in range(3):
        vault.audit("forget", person=f"T-{i}", found=False, by="x")
    path = vault.dir / "audit.log"
    lines = path.read_bytes().splitlines()
    path.write_bytes(lines[0] + b"\n" + lines[2] + b"\n")
    with pytest.raises(FaceStoreError, match="line 2"):
        vault.audit_entries()


def _portrait(name: str) -> np.ndarray:
    return photo(name).portraits()[0][1]


def _vec(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=128).astype(np.float32)
    return v / np.linalg.norm(v)


def test_stranger_tracks_are_stable_then_rekeyed_and_forgotten(home: Path) -> None:
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    tracks = StrangerTracks(EstateVault(home, "E01"), "default", secret=SECRET, radius=0.47)
    a = tracks.observe(_vec(1), t0)
    assert tracks.observe(_vec(1) + 0.01, t0 + timedelta(days=3)) == a
    b = tracks.observe(_vec(2), t0 + timedelta(days=3))
    assert b != a and a.startswith("s-") and len(a) == 18
    tracks.save()
    again = StrangerTracks(EstateVault(home, "E01"), "default", secret=SECRET, radius=0.47)
    assert again.observe(_vec(1), t0 + timedelta(days=29)) == a  # kept across restarts
    rekeyed = again.observe(_vec(1), t0 + timedelta(days=31))
    assert rekeyed != a  # the same face, a new id after the rotation period
    assert again.observe(_vec(1), t0 + timedelta(days=40)) == rekeyed
    # b was last seen on day 3: gone (with its centroid) once a whole period passes
    assert len(again.tracks) == 1
    other = StrangerTracks(EstateVault(home, "E01"), "default", secret=b"another", radius=0.47)
    assert other.observe(_vec(1), t0 + timedelta(days=41)) != rekeyed  # the id is keyed


def test_a_camera_frame_becomes_a_pseudonymous_event_or_a_stranger_sighting(
    home: Path, tmp_path: Path
) -> None:
    vault = EstateVault(home, "E01")
    gallery = Gallery(vault, "default")
    e = engine()
    tenant = photo("obama.jpg").image
    gallery.enrol("T-1001", "U-0301", e.embed([e.align(tenant, e.detect(tenant)[0])]))
    strangers = StrangerTracks(vault, "default", secret=SECRET, radius=e.threshold)
    outbox = Outbox(tmp_path / "o.sqlite", capacity=100)
    faces = CameraFaces(recogniser=FaceRecogniser(e, gallery), strangers=strangers, outbox=outbox,
                        estate_id="E01", secret=SECRET)  # fmt: skip
    cam = CameraConfig(device_id="C1", building="3", floor=2, url="x", cooldown_s=60)
    t0 = datetime(2026, 3, 1, 8, tzinfo=UTC)
    first = faces.handle(cam, corridor(_portrait("obama3.jpg")), t0)
    assert len(first) == 1 and first[0].unit_id == "U-0301" and first[0].floor == 2
    assert first[0].person == pseudonym(secret=SECRET, estate_id="E01", employee_no="T-1001")
    assert faces.handle(cam, corridor(_portrait("obama2.jpg")), t0 + timedelta(seconds=30)) == []
    visitor = faces.handle(cam, corridor(_portrait("biden.jpg")), t0 + timedelta(seconds=40))
    assert visitor[0].person is None and visitor[0].unit_id is None
    assert visitor[0].stranger_track is not None and visitor[0].stranger_track.startswith("s-")
    later = faces.handle(cam, corridor(_portrait("biden.jpg"), at=300), t0 + timedelta(hours=5))
    assert later[0].stranger_track == visitor[0].stranger_track
    assert faces.handle(cam, corridor(None), t0 + timedelta(hours=6)) == []
    stored = outbox.next_batch(RecordKind.ACCESS, 10, not_sent_since=1e18)
    assert [json.loads(r.payload)["method"] for r in stored] == ["face"] * 3
    assert faces.stats.suppressed == 1 and faces.stats.events == 3
    outbox.close()


def test_a_running_gallery_sees_an_enrolment_and_a_removal_made_elsewhere(home: Path) -> None:
    running = Gallery(EstateVault(home, "E01"), "default")
    assert not running.refresh() and running.match(_vec(5), 0.47).person_id is None
    installer = Gallery(EstateVault(home, "E01"), "default")
    installer.enrol("T-9", "U-9", np.stack([_vec(5)]))
    assert running.refresh() and running.match(_vec(5), 0.47).person_id == "T-9"
    assert not running.refresh()
    installer.forget("T-9", by="x")
    assert running.refresh() and running.match(_vec(5), 0.47).person_id is None


def test_evidence_crops_are_sealed_and_pruned_after_the_retention(home: Path) -> None:
    vault = EstateVault(home, "E01")
    store = EvidenceStore(vault, retention=timedelta(days=7))
    frame = corridor(_portrait("biden.jpg"))
    face = engine().detect(frame)[0]
    name = store.keep("C1:1:1", frame, face, datetime(2026, 3, 1, tzinfo=UTC))
    jpeg = store.read(name)
    assert jpeg is not None and jpeg[:2] == b"\xff\xd8"
    assert b"JFIF" not in (vault.dir / name).read_bytes()
    assert store.prune(now=time.time() + 6 * 86400) == 0
    assert store.prune(now=time.time() + 8 * 86400) == 1
    assert store.read(name) is None
    # a removed person's crops go with them, at once
    mine = store.keep("C1:2:1", frame, face, datetime(2026, 3, 2, tzinfo=UTC), person_id="T-7")
    other = store.keep("C1:3:1", frame, face, datetime(2026, 3, 2, tzinfo=UTC), person_id=None)
    assert store.forget("T-7") == 1
    assert store.read(mine) is None and store.read(other) is not None


def test_enrolments_by_processes_at_once_all_stay(home: Path, tmp_path: Path) -> None:
    script = (
        "import sys, numpy as np\n"
        "from pathlib import Path\n"
        "from anju.edge_agent.faces.store import EstateVault, Gallery\n"
        "g = Gallery(EstateVault(Path(sys.argv[1]), 'E01'), 'default')\n"
        "for i in range(5):\n"
        "    g.enrol(f'{sys.argv[2]}-{i}', 'U-1', np.ones((1, 128), np.float32))\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, str(home), f"P{n}"]) for n in range(3)]
    assert [p.wait(60) for p in procs] == [0, 0, 0]
    people = Gallery(EstateVault(home, "E01"), "default").people
    assert sorted(people) == sorted(f"P{n}-{i}" for n in range(3) for i in range(5))
    assert len(EstateVault(home, "E01").audit_entries()) == 15
