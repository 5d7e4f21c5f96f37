"""Who is at home in the appliance model, slot by slot, and what the entry gates record of it.

Part of the second, independently written household generator (``appliances.py``). People live on a
10-minute grid; each resident's days (work, school, home, elder, night shift, visits only) are lists of
intervals, so a whole block of households is marked with a few vectorised difference arrays instead
of a Python loop over minutes. Gates see each return home (never an exit), through the household's
preferred method, minus tailgating; faces are recognised with the gate's own probability.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from anju.device_sims.appliances import ApplianceScenario, ApplianceUnit

SPD = 144  # 10-minute slots per day
# registered resident, subtenant, visiting relative, tenant dropping by, someone living there on no lease
REG, SUB, REL, DROP, LIVE = 0, 1, 2, 3, 4
LIVE_IN_SHARE = 0.04  # share of households with a live-in person on no lease (carer, partner, grandparent)
WORK, SCHOOL, HOME, ELDER, NIGHT, VISIT = range(6)
METHODS = ("face", "card", "password", "qr")
FAR = 10**12  # an interval end or a time in seconds far outside any scenario (10**7 s was only 116 days)

# Per schedule kind (WORK, SCHOOL, HOME, ELDER, NIGHT): usual wake, sleep and return slots (low, high).
_WAKE = np.array([[38, 45], [37, 41], [39, 50], [32, 38], [50, 60], [0, 1]])
_SLEEP = np.array([[135, 147], [126, 134], [132, 144], [122, 131], [138, 150], [0, 1]])
_RETURN = np.array([[105, 120], [100, 108], [0, 1], [0, 1], [0, 1], [0, 1]])
_OUTING_P = np.array([0.0, 0.0, 0.6, 0.45, 0.2, 0.0])  # errands on a workday


def pseudonym(seed: int, unit_id: str, k: int) -> str:
    """The edge's keyed pseudonym of registered person ``k`` of a unit (wire pattern ``p-<hex>``)."""
    return "p-" + hashlib.blake2b(f"{seed}:{unit_id}:{k}".encode(), digest_size=8).hexdigest()


class TrackIds:
    """Opaque stranger track ids; one-off and recurring faces get ids of the same form, from one counter."""

    def __init__(self, seed: int, base: int) -> None:
        self._next = base
        self._salt = (seed * 7919 + 12345) % (1 << 40)

    def take(self, estate_id: str) -> str:
        """A fresh track id in ``estate_id``."""
        self._next += 1
        return f"{estate_id}-t{(self._next * 0x9E3779B1 + self._salt) % (1 << 40):010x}"


def mark(n_rows: int, t_len: int, rows: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Boolean (rows, slots) array, true inside any of the half-open intervals [start, end) of each row."""
    s, e = np.clip(starts, 0, t_len), np.clip(ends, 0, t_len)
    ok = s < e
    w = t_len + 1
    size = n_rows * w
    diff = (
        np.bincount(rows[ok] * w + s[ok], minlength=size) - np.bincount(rows[ok] * w + e[ok], minlength=size)
    ).reshape(n_rows, w)
    return np.asarray(np.cumsum(diff[:, :t_len], axis=1) > 0)


@dataclass(frozen=True)
class Residents:
    """Everyone who may be in a block's flats: rows sorted by unit, their presence and sleep per slot."""

    unit: np.ndarray  # (R,) block-local unit index, ascending
    role: np.ndarray  # (R,) REG / SUB / REL / DROP
    person: list[str]  # pseudonym a gate shows for the row ("" when it can only be a stranger)
    track: list[str]  # the stable stranger track of a face the gates do not know ("" for registered)
    card_only: np.ndarray  # (R,) a subtenant who always uses the tenant's card or code
    method_p: np.ndarray  # (R, 4) method preference (face, card, password, qr)
    present: np.ndarray  # (R, T) bool
    asleep: np.ndarray  # (R, T) bool, only where present
    shower_unit: np.ndarray  # block-local unit of each shower
    shower_slot: np.ndarray  # its slot


def _trips(u: ApplianceUnit, days: int, cny_day: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """Whole-household absences in days [start, end): trips, a hospital stay, Spring Festival at home."""
    out: list[tuple[int, int]] = []
    if u.subtype == "travel":
        cursor = int(rng.integers(3, 25))
        for _ in range(int(rng.integers(1, 4))):
            length = int(rng.integers(3, 22))
            if cursor + length > days - 2:
                break
            out.append((cursor, cursor + length))
            cursor += length + int(rng.integers(7, 40))
    elif u.subtype == "hospital":
        first = int(rng.integers(5, max(6, days - 25)))
        out.append((first, first + int(rng.integers(7, 22))))
    else:
        if 0 <= cny_day < days and rng.random() < 0.25:  # home town for the Spring Festival
            first = cny_day - int(rng.integers(1, 5))
            out.append((first, first + int(rng.integers(4, 13))))
        if rng.random() < 0.3:
            first = int(rng.integers(2, days - 4))
            if all(first + 3 < a or first > b + 1 for a, b in out):
                out.append((first, first + int(rng.integers(1, 4))))
    return out


def build_residents(
    sc: ApplianceScenario,
    units: tuple[ApplianceUnit, ...],
    workday: np.ndarray,
    tracks: TrackIds,
    rng: np.random.Generator,
) -> Residents:
    """Draw the residents of a block of units and mark, slot by slot, who is home and who is asleep."""
    days = sc.days
    t_len = days * SPD
    cny_day = (np.datetime64("2026-02-17") - np.datetime64(sc.start.date().isoformat())).astype(int)
    r_unit: list[int] = []
    r_role: list[int] = []
    r_sched: list[int] = []
    r_person: list[str] = []
    r_track: list[str] = []
    r_card: list[bool] = []
    r_pref: list[np.ndarray] = []
    inactive: list[tuple[int, int, int]] = []  # (row, start, end) slots when the row is not living there
    visits: list[tuple[int, int, int]] = []
    hh_away: list[tuple[int, int, int]] = []  # (unit, start, end) slots when the registered household is away

    def add(
        i: int, role: int, sched: int, person: str, track: str, pref: np.ndarray, card: bool = False
    ) -> int:
        r_unit.append(i)
        r_role.append(role)
        r_sched.append(sched)
        r_person.append(person)
        r_track.append(track)
        r_card.append(card)
        r_pref.append(pref)
        return len(r_unit) - 1

    for i, u in enumerate(units):
        pref = rng.dirichlet([4.0, 1.5, 0.6, 0.6])  # this household's mix of face, card, password, qr
        if not u.faces_enrolled:  # no face enrolled: card, code and QR only
            pref[0] = 0.0
            pref /= pref.sum()
        persons = [pseudonym(sc.seed, u.unit_id, k) for k in range(1, u.household_size + 1)]
        living = u.household_size - int(
            u.household_size >= 2 and u.subtype != "large_family" and rng.random() < 0.08
        )
        onset = u.onset_day
        leave = FAR if onset is None else onset * SPD + int(rng.integers(48, 100))
        arrive = -FAR if u.subtype != "new_lease" else (u.event_day or 0) * SPD + int(rng.integers(54, 108))
        for k in range(max(living, 1)):
            if u.subtype == "elderly_single":
                sched = ELDER
            elif u.subtype == "night_shift" and k == 0:
                sched = NIGHT
            elif k < 2:
                sched = int(rng.choice([WORK, HOME, NIGHT], p=[0.68, 0.3, 0.02]))
            else:
                sched = int(rng.choice([SCHOOL, WORK, HOME], p=[0.5, 0.25, 0.25]))
            row = add(i, REG, sched, persons[k], "", pref)
            inactive.append((row, -FAR, arrive))
            inactive.append((row, leave, FAR))
        if u.kind == "normal" and rng.random() < LIVE_IN_SHARE:
            # An unregistered face at the gate on most days from the first: lives with the household.
            row = add(i, LIVE, int(rng.choice([WORK, HOME])), "", tracks.take(u.estate_id), pref)
        for a, b in _trips(u, days, int(cny_day), rng):
            hh_away.append((i, a * SPD + int(rng.integers(48, 100)), b * SPD + int(rng.integers(60, 120))))
        if u.kind == "sublet" and onset is not None:
            group = u.subtype == "group_rental"
            n_sub = int(rng.integers(5, 13)) if group else int(rng.integers(1, 5))
            sub_p = [0.5, 0.1, 0.4] if group else [0.6, 0.2, 0.2]
            for _ in range(n_sub):
                card = bool(rng.random() < (0.25 if group else 0.35))
                sched = int(rng.choice([WORK, HOME, NIGHT], p=sub_p))
                row = add(
                    i,
                    SUB,
                    sched,
                    persons[0] if card else "",
                    tracks.take(u.estate_id),
                    rng.dirichlet([1.0, 3.0, 1.0, 0.3]),
                    card,
                )
                moved_in = (onset + int(rng.integers(0, 5))) * SPD + int(rng.integers(60, 130))
                inactive.append((row, -FAR, moved_in))
        if u.subtype in ("vacant_drop_by", "sublet_tenant_drops_by") and onset is not None:
            row = add(i, DROP, VISIT, persons[0], "", pref)
            day = max(onset, 0) + int(rng.integers(3, 15))
            while day < days:
                first = day * SPD + int(rng.integers(60, 114))
                visits.append((row, first, first + int(rng.integers(3, 10))))
                day += int(rng.integers(7, 22))
        if u.subtype == "relatives_visit":
            weekday = int(rng.integers(0, 7))
            for _ in range(int(rng.integers(1, 4))):
                row = add(i, REL, VISIT, "", tracks.take(u.estate_id), pref)
                for d in range(weekday, days, 7):
                    if rng.random() < 0.85:
                        first = d * SPD + int(rng.integers(58, 100))
                        visits.append((row, first, first + int(rng.integers(12, 49))))

    unit_arr = np.array(r_unit)
    order = np.argsort(unit_arr, kind="stable")
    inv = np.empty_like(order)
    inv[order] = np.arange(order.size)
    sched_arr = np.array(r_sched)[order]
    n_rows = order.size
    away_parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    sleep_parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def triples(items: list[tuple[int, int, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        a = np.array(items, dtype=np.int64).reshape(-1, 3)
        return inv[a[:, 0]], a[:, 1], a[:, 2]

    away_parts.append(triples(inactive))
    # A household absence applies to its residents (the registered ones and who lives with them).
    role_sorted = np.array(r_role)[order]
    unit_sorted = unit_arr[order]
    for unit, a, b in hh_away:
        rows = np.flatnonzero((unit_sorted == unit) & ((role_sorted == REG) | (role_sorted == LIVE)))
        away_parts.append((rows, np.full(rows.size, a), np.full(rows.size, b)))
    visit_rows = np.flatnonzero(sched_arr == VISIT)
    away_parts.append((visit_rows, np.zeros(visit_rows.size, np.int64), np.full(visit_rows.size, t_len)))

    # Daily schedules, vectorised over rows and days.
    d_idx = np.arange(days)
    base = (d_idx * SPD)[None, :]
    lo_hi = lambda table: rng.uniform(table[sched_arr, 0], table[sched_arr, 1])[:, None]  # noqa: E731
    wake_m, sleep_m, ret_m = lo_hi(_WAKE), lo_hi(_SLEEP), lo_hi(_RETURN)
    off = ~workday[None, :]
    shape = (n_rows, days)
    wake = np.rint(wake_m + rng.normal(0, 2, shape) + off * rng.uniform(0, 8, shape)).astype(np.int64)
    sleep = np.rint(sleep_m + rng.normal(0, 3, shape) + off * rng.uniform(0, 6, shape)).astype(np.int64)
    six_day = (rng.random(n_rows) < 0.15)[:, None] & (d_idx % 7 == (5 - sc.start.weekday()) % 7)[None, :]
    works = (
        np.isin(sched_arr, (WORK, SCHOOL, NIGHT))[:, None]
        & (workday[None, :] | six_day)
        & (rng.random(shape) > 0.03)
    )
    day_job = works & (sched_arr != NIGHT)[:, None]
    late = rng.random(shape) < 0.15
    leave_t = wake + rng.integers(4, 10, shape)
    ret_t = np.rint(ret_m + rng.normal(0, 3, shape) + late * rng.uniform(10, 24, shape)).astype(np.int64)
    rr, dd = np.nonzero(day_job)
    away_parts.append((rr, (base + leave_t)[rr, dd], (base + np.maximum(ret_t, leave_t + 6))[rr, dd]))
    night_job = works & (sched_arr == NIGHT)[:, None]
    n_leave = np.rint(rng.uniform(119, 128, shape)).astype(np.int64)
    n_back = SPD + np.rint(rng.uniform(42, 50, shape)).astype(np.int64)
    rr, dd = np.nonzero(night_job)
    away_parts.append((rr, (base + n_leave)[rr, dd], (base + n_back)[rr, dd]))
    sleep_parts.append(
        (rr, (base + n_back + 2)[rr, dd], (base + n_back + rng.integers(38, 46, shape))[rr, dd])
    )
    # Errands, and a longer outing on days off.
    out_p = np.where(
        works, _OUTING_P[sched_arr][:, None] * 0, np.where(off, 0.55, _OUTING_P[sched_arr][:, None])
    )
    out_p = np.where(np.isin(sched_arr, (HOME, ELDER))[:, None], _OUTING_P[sched_arr][:, None], out_p)
    outing = (rng.random(shape) < out_p) & (sched_arr != VISIT)[:, None]
    o_start = wake + rng.integers(4, 40, shape)
    o_len = np.where(off, rng.integers(12, 37, shape), rng.integers(6, 19, shape))
    rr, dd = np.nonzero(outing & ~night_job)
    away_parts.append((rr, (base + o_start)[rr, dd], (base + o_start + o_len)[rr, dd]))
    # Nights asleep: from tonight's bedtime to tomorrow's waking, except on a night shift.
    wake_next = np.concatenate([wake[:, 1:], wake[:, -1:]], axis=1) + SPD
    rr, dd = np.nonzero(~night_job & (sched_arr != VISIT)[:, None])
    sleep_parts.append((rr, (base + sleep)[rr, dd], (base + wake_next)[rr, dd]))
    day_rows = np.flatnonzero(sched_arr != VISIT)
    sleep_parts.append((day_rows, np.zeros(day_rows.size, np.int64), wake[day_rows, 0]))

    def merged(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> np.ndarray:
        rows = np.concatenate([p[0] for p in parts]).astype(np.int64)
        return mark(
            n_rows,
            t_len,
            rows,
            np.concatenate([p[1] for p in parts]).astype(np.int64),
            np.concatenate([p[2] for p in parts]).astype(np.int64),
        )

    visit_mask = merged([triples(visits)]) if visits else np.zeros((n_rows, t_len), bool)
    present = ~merged(away_parts) | visit_mask
    asleep = merged(sleep_parts) & present & ~visit_mask
    # One shower a day for most residents, after waking or before bed, when they are home and awake then.
    morning = (rng.random(n_rows) < 0.35)[:, None]
    s_slot = base + np.where(morning, wake + rng.integers(1, 4, shape), sleep - rng.integers(3, 9, shape))
    s_slot = np.clip(s_slot, 0, t_len - 1)
    rows2 = np.arange(n_rows)[:, None]
    takes = (
        (rng.random(shape) < rng.uniform(0.6, 1.0, n_rows)[:, None])
        & present[rows2, s_slot]
        & ~asleep[rows2, s_slot]
        & (sched_arr != VISIT)[:, None]
    )
    rr, dd = np.nonzero(takes)
    return Residents(
        unit=unit_sorted,
        role=role_sorted,
        person=[r_person[k] for k in order],
        track=[r_track[k] for k in order],
        card_only=np.array(r_card)[order],
        method_p=np.array(r_pref)[order],
        present=present,
        asleep=asleep,
        shower_unit=unit_sorted[rr],
        shower_slot=s_slot[rr, dd],
    )


@dataclass(frozen=True)
class GateLog:
    """Access records (columns, in time order), and what happened at the gates without a record."""

    t: np.ndarray  # seconds since the scenario start
    building: np.ndarray  # index into the scenario's buildings
    floor: np.ndarray  # 0: the building gate; else the corridor camera of that floor
    method: np.ndarray  # index into METHODS
    person: list[str]  # "" for a stranger
    unit: list[str]  # "" for a stranger
    track: list[str]  # "" for a registered person
    entries: np.ndarray  # per building: passages through the gate (recorded or not)
    tailgated: np.ndarray  # per building: passages with no record (behind someone)
    face_tries: np.ndarray  # per building: registered persons showing their face at the gate
    face_failed: np.ndarray  # per building: of those, not recognised (a one-off stranger)


def _log(
    sc: ApplianceScenario,
    t: np.ndarray,
    b: np.ndarray,
    floor: np.ndarray,
    method: np.ndarray,
    person: list[str],
    unit: list[str],
    track: list[str],
    counts: np.ndarray,
) -> GateLog:
    """Records in time order, less those of a building whose gateway was down then and those after the
    scenario's last day (a corridor camera sees someone who came home in its last minutes a minute or two
    later, past midnight)."""
    first = np.array([o[0] if o else 0 for o in (x.outage for x in sc.buildings)]) * 86400
    end = np.array([o[1] if o else 0 for o in (x.outage for x in sc.buildings)]) * 86400
    keep = ~((t >= first[b]) & (t < end[b])) & (t < sc.days * 86400)
    order = np.flatnonzero(keep)[np.argsort(t[keep], kind="stable")].tolist()
    return GateLog(
        t=t[order],
        building=b[order],
        floor=floor[order],
        method=method[order],
        person=[person[j] for j in order],
        unit=[unit[j] for j in order],
        track=[track[j] for j in order],
        entries=counts[0],
        tailgated=counts[1],
        face_tries=counts[2],
        face_failed=counts[3],
    )


def gate_log(
    sc: ApplianceScenario,
    units: tuple[ApplianceUnit, ...],
    res: Residents,
    tracks: TrackIds,
    rng: np.random.Generator,
) -> GateLog:
    """Gate and corridor-camera records of a block's residents coming home (exits are not recorded)."""
    rows, slots = np.nonzero(res.present[:, 1:] & ~res.present[:, :-1])
    n = rows.size
    t = (slots + 1) * 600 + rng.integers(0, 600, n)
    x = rng.random((n, 6))
    ul = res.unit[rows]
    b = np.array([u.building_index for u in units])[ul]
    bs = sc.buildings
    recog = np.array([x.recognition for x in bs])[b]
    role, card = res.role[rows], res.card_only[rows]
    stranger = (role == REL) | (role == LIVE) | ((role == SUB) & ~card)
    side_from = np.array(
        [u.event_day * 86400 if u.subtype == "side_door" and u.event_day is not None else FAR for u in units]
    )[ul]
    tailgate = x[:, 0] < np.array([x.tailgating for x in bs])[b]
    # The side door has no recorder; whoever lives with the household uses it too.
    gate = ~tailgate & ~(((role == REG) | (role == LIVE)) & (t >= side_from))
    pref = np.minimum((x[:, 1][:, None] > np.cumsum(res.method_p[rows], axis=1)).sum(axis=1), 3)
    method = np.where(stranger, 0, np.where(role == SUB, np.where(x[:, 1] < 0.75, 1, 2), pref))
    face_reg = gate & ~stranger & (role != SUB) & (method == 0)
    failed = face_reg & (x[:, 2] >= recog)
    n_b = len(bs)
    counts = np.stack(
        [
            np.bincount(b, minlength=n_b),
            np.bincount(b[tailgate], minlength=n_b),
            np.bincount(b[face_reg], minlength=n_b),
            np.bincount(b[failed], minlength=n_b),
        ]
    )
    known = ~stranger & ~failed
    lost = x[:, 2] < 0.1  # the edge lost a regular stranger's face and gave it a new track
    # The corridor camera sees every face, also of those who came in by card or behind someone.
    seen = np.array([x.corridor for x in bs])[b] & (x[:, 3] < np.array([x.corridor_coverage for x in bs])[b])
    c_known = (role == REG) | (role == DROP)
    c_known &= x[:, 5] < recog
    g_idx, c_idx = np.flatnonzero(gate).tolist(), np.flatnonzero(seen).tolist()
    estate = [units[k].estate_id for k in ul.tolist()]
    uid = [units[k].unit_id for k in ul.tolist()]

    def who(idx: list[int], is_known: np.ndarray) -> tuple[list[str], list[str], list[str]]:
        person, unit, track = [], [], []
        for j in idx:
            r = int(rows[j])
            if is_known[j]:
                person.append(res.person[r])
                unit.append(uid[j])
                track.append("")
            else:
                person.append("")
                unit.append("")
                track.append(res.track[r] if res.track[r] and not lost[j] else tracks.take(estate[j]))
        return person, unit, track

    gp, gu, gt = who(g_idx, known)
    cp, cu, ct = who(c_idx, c_known)
    floors = np.array([u.floor for u in units])[ul]
    return _log(
        sc,
        np.concatenate([t[g_idx], t[c_idx] + 20 + (x[c_idx, 4] * 100).astype(np.int64)]),
        np.concatenate([b[g_idx], b[c_idx]]),
        np.concatenate([np.zeros(len(g_idx), np.int64), floors[c_idx]]),
        np.concatenate([method[g_idx], np.zeros(len(c_idx), np.int64)]),
        gp + cp,
        gu + cu,
        gt + ct,
        counts,
    )


def visitor_log(sc: ApplianceScenario, tracks: TrackIds, rng: np.random.Generator) -> GateLog:
    """One-off strangers (visitors, couriers) at every building gate each day, some also on a corridor."""
    hour_w = np.array([1, 0, 0, 0, 0, 1, 2, 4, 6, 8, 9, 10, 10, 9, 9, 9, 9, 10, 11, 10, 8, 6, 4, 2], float)
    hour_w /= hour_w.sum()
    parts = []
    for b, spec in enumerate(sc.buildings):
        d = np.repeat(np.arange(sc.days), rng.poisson(spec.visitors_per_day, sc.days))
        t = d * 86400 + rng.choice(24, d.size, p=hour_w) * 3600 + rng.integers(0, 3600, d.size)
        names = [tracks.take(spec.estate_id) for _ in range(d.size)]
        seen = np.flatnonzero(rng.random(d.size) < (0.6 if spec.corridor else 0.0))
        floors = rng.integers(1, spec.floors + 1, seen.size)
        parts.append(
            (
                np.concatenate([t, t[seen] + 40]),
                np.full(d.size + seen.size, b),
                np.concatenate([np.zeros(d.size, np.int64), floors]),
                names + [names[k] for k in seen],
            )
        )
    t = np.concatenate([p[0] for p in parts])
    tracks_all = [name for p in parts for name in p[3]]
    return _log(
        sc,
        t,
        np.concatenate([p[1] for p in parts]),
        np.concatenate([p[2] for p in parts]),
        np.zeros(t.size, np.int64),
        [""] * t.size,
        [""] * t.size,
        tracks_all,
        np.zeros((4, len(sc.buildings)), np.int64),
    )
