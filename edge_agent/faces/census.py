"""The face census the agent reports in its status: per unit of the estate, how many people are enrolled.

The hub keeps it as the registry's ``faces_enrolled`` (the sublet rule reads it). Only unit ids and counts
leave the gateway, never a person. Every unit the site knows is listed (its meters' units, the units in the
gallery and every unit the store's audit log shows an enrolment for), 0 where nobody is enrolled now, so a
``forget`` of a household's last person brings its unit back to 0 at the hub. A gateway without a gallery
file reports nothing (unknown), not zeros: a missing or misplaced store must not tell the hub that no
household enrolled a face.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter
from collections.abc import Iterable

from anju.edge_agent.faces.service import home_of, open_gallery
from anju.edge_agent.faces.settings import FacesSettings
from anju.edge_agent.faces.store import FaceStoreError, Gallery, estates_root
from anju_wire.payloads import IDENT_MAX_LENGTH, IDENT_PATTERN, MAX_CENSUS_UNITS

log = logging.getLogger(__name__)
_IDENT = re.compile(IDENT_PATTERN)


def census_of(enrolled_units: Iterable[str], site_units: Iterable[str]) -> dict[str, int]:
    """People enrolled per unit (one entry in ``enrolled_units`` per person), every site unit at least 0."""
    counts = Counter(enrolled_units)
    return {unit: counts.get(unit, 0) for unit in sorted(set(site_units) | set(counts))}


def _enrolled_units(gallery: Gallery) -> frozenset[str]:
    """Every unit the estate's audit log shows an enrolment for (FaceStoreError when its chain is broken)."""
    units = {e.get("unit") for e in gallery.vault.audit_entries() if e.get("action") == "enrol"}
    return frozenset(u for u in units if isinstance(u, str))


class FaceCensus:
    """Counts the estate's gallery per unit when asked; rereads the gallery only when its file changed.

    Called from the publisher (its asyncio side through a worker thread, and paho's thread on connect),
    so one lock keeps the gallery it holds consistent.
    """

    def __init__(self, *, settings: FacesSettings, estate_id: str, units: Iterable[str]) -> None:
        self._settings = settings
        self._estate = estate_id
        self._units = frozenset(units)
        self._gallery: Gallery | None = None
        self._enrolled_once: frozenset[str] = frozenset()  # units with an enrolment in the audit log
        self._lock = threading.Lock()
        self._problem: str | None = None  # logged once when it starts and once when it ends

    def __call__(self) -> dict[str, int] | None:
        """The census now, or None when there is no gallery to count (or it does not open)."""
        with self._lock:
            try:
                counts = self._count()
                problem = None
            except FaceStoreError as err:
                self._gallery = None  # read it all again next time, the audit log too
                counts, problem = None, f"face census not reported: {err}"
            if counts is None and problem is None:
                problem = "face census not reported: this gateway has no face gallery for the estate yet"
            if counts is not None and len(counts) > MAX_CENSUS_UNITS:
                problem = f"face census not reported: {len(counts)} units, more than {MAX_CENSUS_UNITS}"
                counts = None
            self._log(problem)
            return counts

    def _count(self) -> dict[str, int] | None:
        path = estates_root(home_of(self._settings)) / self._estate / Gallery.FILE
        if not path.is_file():
            return None
        if self._gallery is None:
            self._gallery = open_gallery(self._settings, self._estate)
            changed = True
        else:
            changed = self._gallery.refresh()
        if changed:  # enrolments and removals write the gallery and the audit log together
            self._enrolled_once = _enrolled_units(self._gallery)
        counts = census_of((p.unit_id for p in self._gallery), self._units | self._enrolled_once)
        # The gallery checks unit ids on enrolment; a store written otherwise must not break the status.
        return {u: n for u, n in counts.items() if len(u) <= IDENT_MAX_LENGTH and _IDENT.match(u)}

    def _log(self, problem: str | None) -> None:
        if problem == self._problem:
            return
        if problem is not None:
            log.warning("%s", problem)
        else:
            log.info("face census reported again for estate %s", self._estate)
        self._problem = problem
