"""The sublet rule: registered tenants gone from a flat that stays lived in, and who lives there instead.

Ways to a verdict (``SubletRule.evaluate``): a departure (the household stopped entering, through any method,
or its faces vanished while its card is used) with new faces that arrived as it left (or, with no face to
place, a water use that halved or doubled as it left: other people's); far more water than households of
the registered size use, or a group's faces that came as it rose (a group rental, ``anju.models.arrival``);
a card whose enrolled faces never show (``anju.models.enrolment``); or, for sublets older than the record,
faces settled on the unit's floor that no other flat there explains (``anju.models.standing``).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from datetime import date, timedelta
from typing import Literal

from anju.models.activity import (
    changed_water_levels,
    levels_differ,
    life_counts,
    lowest_level,
    occupied_days,
    people_level,
    presence_ends,
)
from anju.models.arrival import by_arrival, crowding_reason
from anju.models.enrolment import by_enrolment
from anju.models.features import Crowding, PeerStats, StrangerTrack, UnitSeries
from anju.models.habit import face_change_chance, presence_change_chance
from anju.models.rules import (
    Outcome,
    Policy,
    Reason,
    RuleContext,
    RuleFinding,
    entry_days_between,
    face_days_between,
    fmt,
    precheck,
    rule_context,
    window_median,
)
from anju.models.standing import Standing, standing_candidate
from anju.models.strangers import settled, stranger_chance


class SubletRule:
    """Sublet: registered tenants stopped entering (through any method, at a working gate) while the
    flat stays lived in, and new recurring faces appeared in its building (or on its floor) as they left."""

    kind: Literal["sublet"] = "sublet"

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    def departure(self, series: UnitSeries, ctx: RuleContext) -> tuple[date, bool] | None:
        """When the registered household of a lived-in unit stopped entering (and whether judged on faces
        alone: a card still in use), or None; what the stranger attribution of a building compares."""
        p = self.policy.sublet
        entry_days = entry_days_between(series.days, start=ctx.start, end=ctx.end)
        faces_only = entry_days > p.max_entry_days
        if faces_only and face_days_between(series.days, start=ctx.start, end=ctx.end) > p.max_face_days:
            return None
        life = life_counts(series.days, start=ctx.start, end=ctx.end, policy=self.policy.activity)
        if life.lived_share < p.min_lived_share:
            return None
        found = self._left(series, ctx, faces_only=faces_only)
        return None if found is None else (found[0], faces_only)

    def _left(
        self, series: UnitSeries, ctx: RuleContext, *, faces_only: bool
    ) -> tuple[date, float, int] | None:
        """The departure day by the policy's presence thresholds (stricter when judged on faces alone), the
        chance that a household keeping its habits would show so few entries (or faces) since, and the gate
        days it was on record before it (the flat not standing empty).

        Only days the flat was not standing empty count: a sublet is tenants absent while somebody lives
        there, and a household that travelled, or moved out, was absent from an empty flat (that is the
        vacancy rule's question). Without this a household that entered every other day, then left the
        flat empty, would show a long absence at the gate and be judged on the days it lived there.

        Of the days the thresholds let pass for a departure, the one whose change is least likely by chance
        against its bar (of equal ones, the larger drop in share): a household that travelled for a
        fortnight, came back for five weeks and then gave way to a subtenant shows its largest drop before
        the trip, and dated there the weeks of faces after its return make the change a common one.
        """
        p = self.policy.sublet
        days = occupied_days(series.days, self.policy.activity)
        kept = {d.day for d in days}
        ends = presence_ends(
            days, end=ctx.end, lookback_days=p.lookback_days,
            min_share_before=p.min_face_share_before if faces_only else p.min_presence_share_before,
            max_share_after=p.max_face_share_after if faces_only else p.max_presence_share_after,
            min_days_after=p.min_absent_gate_days, faces_only=faces_only,
            empty=[d for d in series.days if d.day not in kept])
        if not ends:
            return None
        of = face_change_chance if faces_only else presence_change_chance
        # A household that mixes card and face can go weeks without a face by chance, and a pensioner who
        # goes out twice a week can stay in for a fortnight: the change must be rare for its habit. A habit
        # known from less than half the lookback (the record began a week or two before) is known loosely:
        # the change must be rarer still.
        usual = p.max_face_change_chance if faces_only else p.max_change_chance
        scored = []
        for drop, t in ends:
            known = sum(1 for d in days if d.day < t and d.gate_working)
            bar = p.short_record_change_chance if known < p.lookback_days / 2 else usual
            change = of(days, left=t, end=ctx.end)
            scored.append((change / bar, -drop, t, change, known))
        margin, _, left, change, known = min(scored)
        return None if margin > 1 else (left, change, known)

    def aligned(
        self, series: UnitSeries, *, left: date, end: date, crowd: Crowding | None = None,
        shared: Collection[str] = (),
    ) -> tuple[StrangerTrack, ...]:
        """The unit's recurring, resident-like stranger tracks that first appeared as its tenants left.

        A face goes to the departure it matches best in its building (``attribute_strangers``), so it
        supports this one only once any closer departure elsewhere would have shown: the closer it came to
        this one, the sooner. Where only a building's entrance places faces, a group that moved in together
        (``group_min_faces`` new faces within ``group_days``, and two more than the lease lists) is one
        flat's: it supports a departure only if
        that flat's water has risen to a group's (``group_water_ratio`` times its peers', see
        ``models.features.crowding``), not a household's that took to the side door as they arrived. Faces
        that several departures in the building line up with (``shared``) are several households moving
        in at once, not one group: the building's attribution shares them out instead. A face first seen
        in the record's first week was there before it began (``models.strangers.settled``): it neither
        lines up with a departure nor makes a group.
        """
        p = self.policy.sublet
        there = settled(series)
        lo, hi = left - timedelta(days=p.stranger_lead_days), left + timedelta(days=p.alignment_days)
        lo = max(lo, there + timedelta(days=1))
        found = tuple(
            s for s in series.strangers
            if s.days_in_window >= p.stranger_min_days and lo <= s.first_seen <= hi
            and (end - s.first_seen).days + 1 >= p.min_track_span_days
            and (end - s.first_seen).days + 1 >= abs((s.first_seen - left).days) + p.min_absent_gate_days
            and s.resident_share(end=end) >= p.min_resident_share
        )
        if series.strangers_scope != "building" or (
                crowd is not None and crowd.window_reaches(p.group_water_ratio)):
            return found
        arrivals = sorted(t.first_seen for t in series.strangers if t.first_seen > there)
        # A family replacing a family is no group: more people than the lease lists, and then some.
        size = max(p.group_min_faces, (series.household_size or 0) + 2)

        def in_group(t: StrangerTrack) -> bool:
            starts = (t.first_seen - timedelta(days=k) for k in range(p.group_days))
            return any(sum(1 for d in arrivals if s <= d <= s + timedelta(days=p.group_days - 1)) >= size
                       for s in starts)

        return tuple(t for t in found if t.track in shared or not in_group(t))

    def evaluate(
        self, series: UnitSeries, *, as_of: date, peers: PeerStats | None = None,
        context: RuleContext | None = None, claimed: tuple[StrangerTrack, ...] | None = None,
        crowd: Crowding | None = None, standing: Standing | None = None, explained: Collection[str] = (),
    ) -> RuleFinding:
        """Judge one unit for the window ending on ``as_of`` (``context``: its summaries, if made already;
        ``claimed``: the aligned strangers the building's attribution gave it (``attribute_strangers``;
        None: every aligned stranger near it); ``crowd``: its water against the estate's households of its
        registered size (``models.features.crowding``); ``standing``: its evidence of a sublet older than
        the record (``models.standing``); ``explained``: new faces near it given to other departures).
        The registered household left while the flat stayed lived in, or far more people live there than
        the lease lists (群租, tenant there or not), or the record's own signs (module docstring)."""
        ctx = context or rule_context(series, as_of=as_of, policy=self.policy)
        judged = self._by_departure(series, as_of=as_of, peers=peers, ctx=ctx, claimed=claimed, crowd=crowd,
                                    explained=explained)
        if judged.outcome is Outcome.CLEAR and crowd is not None and (
                crowded := self._by_crowding(series, ctx=ctx, crowd=crowd, verdict=judged) or (by_arrival(
                    series, ctx=ctx, policy=self.policy, crowd=crowd, claimed=claimed, verdict=judged)
                    if claimed else None)):
            return crowded
        if judged.outcome is Outcome.CLEAR and series.faces_enrolled:
            judged = by_enrolment(series, ctx=ctx, policy=self.policy, verdict=judged)
        if judged.outcome is Outcome.CLEAR and standing is not None:
            return self._by_standing(series, ctx=ctx, standing=standing, verdict=judged)
        return judged

    def standing(self, series: UnitSeries, *, end: date) -> Standing | None:
        """The unit's evidence of a sublet older than its record, by the policy (``anju.models.standing``)."""
        p = self.policy.sublet
        return standing_candidate(
            series, end=end, min_record_days=p.standing_min_record_days,
            max_presence_share=p.max_presence_share_after, min_lived_share=p.min_lived_share,
            stranger_min_days=p.stranger_min_days, min_resident_share=p.min_resident_share,
            activity=self.policy.activity)

    def _by_standing(self, series: UnitSeries, *, ctx: RuleContext, standing: Standing,
                     verdict: RuleFinding) -> RuleFinding:
        """A sublet older than the record (``anju.models.standing``): its reasons, if the flat is lived in
        over the window too (a record of months says little about a flat emptied in the last weeks)."""
        pol, p = self.policy, self.policy.sublet
        life = life_counts(series.days, start=ctx.start, end=ctx.end, policy=pol.activity)
        if life.known < pol.min_coverage * ctx.window.n_days or life.lived_share < p.min_lived_share:
            return verdict
        since = standing.record_start.isoformat()
        reasons = (
            Reason(
                "tenants_absent_on_record",
                f"Since records began on {since}, registered tenants entered on {standing.entry_days} of "
                f"{standing.gate_days} days the building's gate was working: at most a drop-by.",
                value=round(standing.entry_days / standing.gate_days, 3), baseline=p.max_presence_share_after,
                unit="share of gate days",
            ),
            Reason(
                "flat_lived_in",
                f"The flat is lived in on {standing.lived} of {standing.known} days with meter data since "
                "then.",
                value=round(standing.lived / standing.known, 3), baseline=p.min_lived_share,
                unit="share of days",
            ),
            Reason(
                "settled_strangers",
                f"{len(standing.settled)} unrecognised face(s) on the unit's floor since the first week of "
                "records and seen on most days since, and no other flat on that floor lacks its tenants.",
                value=len(standing.settled), baseline=0, unit="tracks",
            ),
        )
        score = (0.6 + 0.2 * min(len(standing.settled) / 2, 1.0) + 0.2 * standing.lived / standing.known)
        score *= min(ctx.window.water_coverage, 1.0)
        return replace(verdict, outcome=Outcome.FLAGGED, score=round(score, 3), reasons=reasons)

    def _by_crowding(self, series: UnitSeries, *, ctx: RuleContext, crowd: Crowding,
                     verdict: RuleFinding) -> RuleFinding | None:
        """More people than the lease lists: water well above what households of its registered size use,
        in the window and over the baseline days before (visiting relatives do not stay that long). Where
        the tenants' own faces are seen at the gate on more days than drop-bys give (or, where they enter on
        more days than that, on some of them and on as large a share as before: a household that mostly
        taps the card), they live here, and a carer or partner living in reaches ``crowding_ratio`` too:
        only a group rental (群租) reaches ``crowding_ratio_present``. Where they are gone from the gate, or
        only their card is used (it says nothing of who carries it, also where nobody enrolled a face),
        ``crowding_ratio`` is the evidence."""
        pol, p = self.policy, self.policy.sublet
        if not crowd.window_reaches(min(p.group_water_ratio, p.crowding_ratio, p.crowding_ratio_present)):
            return None  # no group's use now (most units): whose faces are seen need not be asked
        w, b = ctx.window, ctx.baseline
        face_days = face_days_between(series.days, start=ctx.start, end=ctx.end)
        absent = w.tenant_entry_days <= p.max_entry_days and (
            b.gate_days == 0 or b.tenant_entry_days <= p.max_presence_share_after * b.gate_days)
        # Their own faces, on more days than drop-bys give; or, where they enter on more days than that and
        # mix card and face (a face now or on record), as often as chance allows for their habit from the
        # window on, and with no earlier day since which they vanished as the departure path judges it (no
        # face in a week of card entries is ordinary for a household that showed one on a third of them).
        faced = face_days > 0 or any(d.tenant_face_entries for d in series.days if d.day < ctx.start)
        present = not absent and (face_days > p.max_face_days or (
            w.tenant_entry_days > p.max_entry_days and faced
            and face_change_chance(series.days, left=ctx.start, end=ctx.end) > p.max_face_change_chance
            and self._left(series, ctx, faces_only=True) is None))
        bar = p.crowding_ratio_present if present else p.crowding_ratio
        grown = None
        if crowd.ratio < bar:
            # Under the bar against its peers; but against its own record? (a frugal household's flat)
            if crowd.window_reaches(p.group_water_ratio):
                grown = self.grown(series, ctx=ctx, bar=bar)
            if grown is None:
                return None
        life = life_counts(series.days, start=ctx.start, end=ctx.end, policy=pol.activity)
        if life.known < pol.min_coverage * ctx.window.n_days or life.lived_share < p.min_lived_share:
            return None
        now = crowd.window_water / crowd.window_peers
        reasons = [] if grown is None else [Reason(
            "water_grown",
            f"Water people used (a leak's steady flow left out) {grown[0]:.2f} m³/day over the window, "
            f"{grown[0] / grown[1]:.1f} times the {grown[1]:.2f} of the household's most frugal four weeks "
            f"on record (from {grown[2].isoformat()}), and {now:.1f} times what the estate's households of "
            "its size use: more people live here than before.",
            value=round(grown[0], 3), baseline=round(grown[1], 3), unit="m3/day",
        )]
        reasons += [
            crowding_reason(crowd, baseline_days=pol.baseline_days,
                            ending=": more people live here than the lease lists." if grown is None else "."),
            Reason(
                "tenants_present" if present else "tenants_absent" if absent else "tenants_card_only",
                f"Registered tenants entered on {w.tenant_entry_days} of the window's {w.gate_days} gate "
                f"days (their faces recognised on {face_days}) and on {b.tenant_entry_days} of the "
                f"{b.gate_days} before: "
                + ("they live here, with far more people than a household." if present else
                   "others live here." if absent else "only their card or code is used, by whoever has it."),
                value=w.tenant_entry_days, baseline=b.tenant_entry_days, unit="days",
            ),
            Reason(
                "flat_lived_in",
                f"The flat is lived in on {life.lived} of {life.known} days with meter data.",
                value=round(life.lived_share, 3), baseline=p.min_lived_share, unit="share of days",
            ),
        ]
        if series.strangers:
            reasons.append(Reason(
                "recurring_strangers_near",
                f"{len(series.strangers)} unrecognised face(s) recur at the unit's {series.strangers_scope}.",
                value=len(series.strangers), baseline=0, unit="tracks",
            ))
        ratio = crowd.ratio if grown is None else grown[0] / grown[1]
        score = (0.6 + 0.2 * min((ratio - bar) / bar, 1.0)
                 + 0.2 * life.lived_share) * min(w.water_coverage, 1.0)
        return replace(verdict, outcome=Outcome.FLAGGED, score=round(score, 3), reasons=tuple(reasons))

    def grown(self, series: UnitSeries, *, ctx: RuleContext, bar: float) -> tuple[float, float, date] | None:
        """Water people use now at least ``bar`` times the household's own at its most frugal on record
        (``models.activity.lowest_level``, since its lease): now, then, and the first day of then; or None.

        Peers say what a household of the registered size uses; its own record says what this one does. A
        couple that uses two thirds of its peers' water and then three times its own has a group in its
        flat, though the group's use is under ``bar`` times the peers'. "Now" is the smaller level of the
        window and of the weeks before it back to ``group_min_stay_days``: relatives who stay for a
        holiday leave before that. Normal flats of both scenario models stay within 1.8 times their most
        frugal month (five seeds, about 1,500 flats, leaks left out); where the water is under a group's
        (``group_water_ratio`` times the peers'), this is not asked.
        """
        pol, p = self.policy, self.policy.sublet
        first = ctx.end - timedelta(days=p.group_min_stay_days - 1)
        own = lowest_level(series.days, since=series.lease_start, before=first, policy=pol.activity)
        if own is None or own[0] <= 0:
            return None
        spans = [(ctx.start, ctx.end)]
        if first < ctx.start:
            spans.append((first, ctx.start - timedelta(days=1)))
        levels = [people_level(series.days, start=lo, end=hi, policy=pol.activity) for lo, hi in spans]
        known = [v for v in levels if v is not None]
        if len(known) < len(levels) or min(known) < bar * own[0]:
            return None
        return min(known), own[0], own[1]

    def _by_departure(
        self, series: UnitSeries, *, as_of: date, peers: PeerStats | None, ctx: RuleContext,
        claimed: tuple[StrangerTrack, ...] | None, crowd: Crowding | None, explained: Collection[str],
    ) -> RuleFinding:
        """The departure path of ``evaluate``."""
        pol, p = self.policy, self.policy.sublet
        w, b = ctx.window, ctx.baseline

        def verdict(outcome: Outcome, score: float, reasons: list[Reason]) -> RuleFinding:
            return RuleFinding(
                kind=self.kind, unit_id=series.unit_id, outcome=outcome, score=round(score, 3),
                window_start=ctx.start, window_end=ctx.end, rule_version=pol.version,
                reasons=tuple(reasons),
            )

        blocked = precheck(series, ctx, policy=pol)
        if blocked is None and w.gate_coverage < p.min_gate_coverage:
            blocked = Reason(
                "gate_silent",
                f"The building's gate reported on only {w.gate_days} of {w.n_days} days: missing entries "
                "may be a gate outage.",
                value=round(w.gate_coverage, 3), baseline=p.min_gate_coverage, unit="share of days",
            )
        if blocked is not None:
            return verdict(Outcome.NO_VERDICT, 0.0, [blocked])
        entry_days = entry_days_between(series.days, start=ctx.start, end=ctx.end)
        face_days = face_days_between(series.days, start=ctx.start, end=ctx.end)
        # A card or code counts as presence as much as a face. But when the household's faces stop while
        # its card goes on being used, that is a change to explain: the same test of new faces decides.
        faces_only = entry_days > p.max_entry_days
        if faces_only and face_days > p.max_face_days:
            return verdict(Outcome.CLEAR, 0.0, [])
        life = life_counts(series.days, start=ctx.start, end=ctx.end, policy=pol.activity)
        if life.known < pol.min_coverage * w.n_days or life.lived_share < p.min_lived_share:
            return verdict(Outcome.CLEAR, 0.0, [])
        found = self._left(series, ctx, faces_only=faces_only)
        if found is None:
            return verdict(Outcome.CLEAR, 0.0, [Reason(
                "no_presence_change", "Registered tenants rarely use the gate, but there is no time at which "
                "they stopped: a household that uses another entrance looks the same.")])
        left, change, known = found
        aligned = list(self.aligned(series, left=left, end=ctx.end, crowd=crowd) if claimed is None
                       else claimed)
        chance = stranger_chance(series, aligned=aligned, end=ctx.end, policy=p, explained=explained)
        if chance > p.max_stranger_chance:
            aligned = []  # where new faces arrive every few days, one near a departure is no evidence
        # Their card used day after day, their faces never: a lent card, even with no new face to place (the
        # occupants may all use the card). Alone, it must be rarer by chance than with one, on whichever day
        # of the record such a run began: asked daily, a household mixing card and face shows its rarest run
        # of the half-year somewhere (so the chance times the gate days before it).
        lent_card = faces_only and entry_days - face_days >= p.min_card_days and (
            bool(aligned) or change * known <= p.lent_card_change_chance)
        days = series.days
        levels = changed_water_levels(days, left=left, policy=pol.activity, ratio=p.move_water_ratio)
        if not aligned and not lent_card and not levels_differ(levels, p.move_alone_ratio):
            # Tenants who stop passing the gate (car-park door, side entrance) while still living there
            # look the same on the meters: their water stays theirs. Without new recurring faces, only a
            # water use that halved or doubled as they stopped tells a new occupant apart.
            return verdict(Outcome.CLEAR, 0.0, [Reason(
                "no_new_faces", "Registered entries stopped, but no recurring stranger appeared as they "
                "stopped and the flat's water stayed its household's: likely another entrance, not a new "
                "occupant.",
            )])
        active = window_median(days, "elec_active_kwh", start=ctx.start, end=ctx.end)
        water_hours = window_median(days, "water_active_hours", start=ctx.start, end=ctx.end)

        def shares(start: date, end: date) -> tuple[int, int]:
            gate = [d for d in days if start <= d.day <= end and d.gate_working]
            seen = sum(1 for d in gate if (d.tenant_face_entries if faces_only else d.tenant_entries))
            return seen, len(gate)

        before_days, before_gate = shares(left - timedelta(days=p.lookback_days), left - timedelta(days=1))
        now_days, now_gate = shares(ctx.start, ctx.end)
        who = "tenants' faces were recognised" if faces_only else "tenants entered"
        limit = p.max_face_share_after if faces_only else p.max_presence_share_after
        reasons = [
            Reason(
                "tenant_faces_vanished",
                (f"No registered tenant's face was recognised since {left.isoformat()}" if face_days == 0
                 else f"A registered tenant's face was recognised on only {face_days} of the last {w.n_days} "
                      f"days (visits; seldom since {left.isoformat()})")
                + f", yet their card or code was used on {entry_days} of {w.n_days} days: someone else may "
                "be using it.",
                value=face_days, baseline=entry_days, unit="days",
            ) if faces_only else Reason(
                "no_tenant_entries",
                f"Registered tenants entered on {entry_days} of {w.n_days} days although the building's gate "
                f"recorded events on {w.gate_days} of them.",
                value=entry_days, baseline=b.tenant_entry_days if b.gate_days else None, unit="days",
            ),
            Reason(
                "flat_lived_in",
                f"The flat is lived in on {life.lived} of {life.known} days with meter data: water used in a "
                f"median {fmt(water_hours, 'hours/day')}, electricity {fmt(active, 'kWh/day')} above its "
                "floor.", value=round(life.lived_share, 3), baseline=p.min_lived_share, unit="share of days",
            ),
            Reason(
                "tenant_presence_ended",
                f"Until {(left - timedelta(days=1)).isoformat()} {who} on {before_days} of {before_gate} "
                f"gate days; since then on at most {limit:.0%} of them.",
                value=round(now_days / now_gate, 3) if now_gate else None,
                baseline=round(before_days / before_gate, 3) if before_gate else None,
                unit="share of gate days",
            ),
            *([] if not aligned else [Reason(
                "recurring_strangers",
                f"{len(aligned)} unrecognised face(s) seen at the unit's {series.strangers_scope} on most "
                f"days since they first appeared, from {min(s.first_seen for s in aligned).isoformat()}: "
                "about when the registered tenants stopped appearing.",
                value=len(aligned), baseline=0, unit="tracks",
            )]),
        ]
        if levels is not None:
            reasons.append(Reason(
                "water_level_changed",
                f"Water {levels[0]:.2f} m³/day over the four weeks before {left.isoformat()}, "
                f"{levels[1]:.2f} over the four weeks after (days the flat stood empty left out): another "
                "household's use.",
                value=round(levels[1], 3), baseline=round(levels[0], 3), unit="m3/day",
            ))
        elec_ref = peers.elec_median if peers is not None else None
        if elec_ref is not None and w.elec_median is not None:
            reasons.append(Reason(
                "electricity_in_use",
                f"Median electricity {w.elec_median:.2f} kWh/day (estate median {elec_ref:.2f}).",
                value=round(w.elec_median, 3), baseline=round(elec_ref, 3), unit="kWh/day",
            ))
        score = (0.6 + 0.2 * min(len(aligned) / 2, 1.0) + 0.2 * life.lived_share)
        score *= min(w.elec_coverage, w.water_coverage, 1.0)
        return verdict(Outcome.FLAGGED, score, reasons)
