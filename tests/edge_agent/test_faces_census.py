"""The face census in the agent's status: opt-in, every site unit listed, a forget back to 0, no person."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import numpy as np
import pytest

from anju.edge_agent.agent import face_census, run_agent
from anju.edge_agent.faces.census import FaceCensus, census_of
from anju.edge_agent.faces.store import EstateVault, Gallery
from anju.edge_agent.outbox import Outbox
from anju.edge_agent.publisher import Publisher
from anju.edge_agent.site import SiteConfig, parse_site
from anju_wire import AgentStatus, WallClock, decode, encode
from tests.edge_agent.helpers import SECRET_ENV, hub_stand_in, site_dict, unique_ids, wait_until

ESTATE = "E01"


def _meters() -> list[dict[str, object]]:
    return [
        {"unit_id": unit, "meter": "electricity", "host": "127.0.0.1", "port": 1, "device_id": i,
         "register_map": "eastron_sdm120", "poll_interval_s": 3600, "timeout_s": 0.5}
        for i, unit in enumerate(("U-0101", "U-0102"), 1)
    ]  # fmt: skip


def _site(tmp_path: Path, *, report: bool | None, estate: str = ESTATE, agent: str = "E01-gw1",
          mqtt_url: str = "mqtt://127.0.0.1:1", meters: list[dict[str, object]] | None = None) -> SiteConfig:
    faces: dict[str, object] = {"home": str(tmp_path / "home")}
    if report is not None:
        faces["report_enrolment"] = report
    doc = site_dict(estate=estate, agent=agent, mqtt_url=mqtt_url, outbox_path=str(tmp_path / "outbox.db"),
                    meters=_meters() if meters is None else meters, faces=faces)  # fmt: skip
    return parse_site(doc, environ={SECRET_ENV: "k"})


def _gallery(config: SiteConfig) -> Gallery:
    """The estate's gallery as ``anju agent faces enrol`` and ``forget`` (another process) write it."""
    assert config.faces.home is not None
    return Gallery(EstateVault(config.faces.home, config.estate_id), "default")


def _enrol(gallery: Gallery, person: str, unit: str) -> None:
    gallery.enrol(person, unit, np.random.default_rng(len(person)).normal(size=(1, 128)).astype(np.float32))


def _status(config: SiteConfig, tmp_path: Path) -> AgentStatus:
    with Outbox(tmp_path / "status-outbox.db", capacity=10) as outbox:
        publisher = Publisher(
            url=config.mqtt_url, agent_id=config.agent_id, estate_id=config.estate_id, outbox=outbox,
            clock=WallClock(), settings=config.publish, census=face_census(config),
        )  # fmt: skip
        return decode(AgentStatus, encode(publisher.status()))


def test_census_lists_every_known_unit_with_zero_where_nobody_is_enrolled() -> None:
    assert census_of(["U-2", "U-1", "U-2"], ["U-3", "U-1"]) == {"U-1": 1, "U-2": 2, "U-3": 0}
    assert list(census_of(["U-2", "U-1"], ())) == ["U-1", "U-2"]  # sorted
    assert census_of([], ["U-1"]) == {"U-1": 0}


def test_the_setting_is_off_by_default_and_then_the_status_carries_no_census(tmp_path: Path) -> None:
    config = _site(tmp_path, report=None)
    assert config.faces.report_enrolment is False
    _enrol(_gallery(config), "T-1", "U-0101")
    status = _status(config, tmp_path)
    assert status.faces_enrolled is None
    assert b"faces_enrolled" not in encode(status)  # an older hub reads what it knows
    assert _status(_site(tmp_path, report=False), tmp_path).faces_enrolled is None


def test_the_status_carries_the_census_when_on_and_a_forget_brings_a_unit_to_zero(tmp_path: Path) -> None:
    config = _site(tmp_path, report=True)
    gallery = _gallery(config)
    for person, unit in (("T-1", "U-0101"), ("T-2", "U-0101"), ("T-3", "U-0909")):
        _enrol(gallery, person, unit)
    census = face_census(config)
    assert isinstance(census, FaceCensus)
    # the site's meters' units (U-0102: nobody enrolled) and a unit only the gallery knows (U-0909)
    assert census() == {"U-0101": 2, "U-0102": 0, "U-0909": 1}
    assert _status(config, tmp_path).faces_enrolled == {"U-0101": 2, "U-0102": 0, "U-0909": 1}

    assert gallery.forget("T-1", by="test") and gallery.forget("T-3", by="test")  # another process's forget
    assert census() == {"U-0101": 1, "U-0102": 0, "U-0909": 0}  # U-0909 stays listed, at 0
    assert face_census(config)() == {"U-0101": 1, "U-0102": 0, "U-0909": 0}  # after a restart too (audit log)
    _enrol(gallery, "T-4", "U-0102")
    assert census() == {"U-0101": 1, "U-0102": 1, "U-0909": 0}


def test_without_a_gallery_the_census_is_not_reported_and_that_is_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    census = face_census(_site(tmp_path, report=True))
    with caplog.at_level(logging.INFO, logger="anju.edge_agent.faces.census"):
        assert census() is None and census() is None  # unknown, not "nobody enrolled"
        _enrol(_gallery(_site(tmp_path, report=True)), "T-1", "U-0101")
        assert census() == {"U-0101": 1, "U-0102": 0}
        assert census() == {"U-0101": 1, "U-0102": 0}
    assert [r.levelname for r in caplog.records] == ["WARNING", "INFO"]


def test_a_gallery_that_does_not_open_is_not_reported(tmp_path: Path) -> None:
    config = _site(tmp_path, report=True)
    gallery = _gallery(config)
    _enrol(gallery, "T-1", "U-0101")
    (gallery.vault.dir / "key").write_bytes(b"\x00" * 32)  # another key: the gallery does not decrypt
    assert face_census(config)() is None


def test_the_agent_publishes_the_census_over_the_broker_and_nothing_of_the_person(
    mqtt_url: str, tmp_path: Path
) -> None:
    estate, agent = unique_ids()
    config = _site(tmp_path, report=True, estate=estate, agent=agent, mqtt_url=mqtt_url, meters=[])
    gallery = _gallery(config)
    _enrol(gallery, "T-1001", "U-0301")

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(run_agent(config, stop=stop))
        try:
            await asyncio.to_thread(checks)
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)

    def census_seen() -> list[dict[str, int] | None]:
        with hub.lock:
            return [decode(AgentStatus, s).faces_enrolled for s in hub.status]

    def checks() -> None:
        wait_until(lambda: {"U-0301": 1} in census_seen(), 10, "a status with the census")
        gallery.forget("T-1001", by="test")
        wait_until(lambda: census_seen()[-1] == {"U-0301": 0}, 10, "the census after a forget")

    with hub_stand_in(mqtt_url, estate=estate, agent=agent) as hub:
        asyncio.run(scenario())
        with hub.lock:
            raw = list(hub.status)
    assert raw and all(b"T-1001" not in s for s in raw)
    assert all(set(json.loads(s).get("faces_enrolled") or {}) <= {"U-0301"} for s in raw)
