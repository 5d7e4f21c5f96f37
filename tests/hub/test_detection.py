"""Detection end to end on PostgreSQL: daily features in, one alert, one case and one outbox row out."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from unittest.mock import patch

import psycopg
import pytest

from anju.hub.detection.service import _no_cycle_collection, run_detection
from anju.models.evidence import evidence_sha256
from anju_wire.clock import ESTATE_TZ
from tests.hub.test_features import TZ, add_event, add_readings, add_unit, hourly, prepare_schema

AS_OF = date(2026, 5, 10)
INSERT_DAILY = (
    "INSERT INTO unit_daily (unit_id, day, elec_kwh, water_m3, gas_m3, elec_hours, water_hours,"
    " gas_hours, tenant_entries, strangers_building, gate_events_building)"
)
INSERT_ACTIVE = (
    "INSERT INTO unit_daily (unit_id, day, elec_kwh, water_m3, gas_m3, elec_hours, water_hours,"
    " gas_hours, tenant_entries, strangers_building, gate_events_building, elec_active_kwh,"
    " elec_active_hours, water_active_m3, water_active_hours, gas_active_hours, tenant_face_entries)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)



@pytest.fixture
def database_url(database_url_each_backend: str) -> str:
    """Every test here runs on monthly partitions and on TimescaleDB (PostgreSQL 15, the oldest supported)."""
    return database_url_each_backend

@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url) as c:
        prepare_schema(c)
        yield c


def add_days(
    conn: psycopg.Connection, unit_id: str, *, days: int = 81, vacant_last: int = 0, elec: float = 7.5,
    gate: int = 40,
) -> None:
    """Daily features ending on AS_OF: a lived-in flat, empty for the last ``vacant_last`` days.

    Lived-in days show what any household does (water in 8 hours, 2 cooking hours, 6.5 kWh above the
    floor); empty days a fridge's 0.6 kWh with nothing above its floor.
    """
    rows = []
    for i in range(days):
        d = AS_OF - timedelta(days=days - 1 - i)
        empty = i >= days - vacant_last
        entries = 0 if empty else 3
        rows.append((unit_id, d, 0.6 if empty else elec, 0.0 if empty else 0.3, 0.0 if empty else 0.4,
                     24, 24, 24, entries, 1, gate, 0.0 if empty else elec - 1.0, 0 if empty else 10,
                     0.0 if empty else 0.3, 0 if empty else 8, 0 if empty else 2, entries))
    with conn.cursor() as cur:
        cur.executemany(INSERT_ACTIVE, rows)


def count(conn: psycopg.Connection, sql: str) -> int:
    row = conn.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


def test_vacant_unit_gets_one_alert_and_case_even_when_run_twice(conn: psycopg.Connection) -> None:
    add_unit(conn, "E01-1-0101")
    add_unit(conn, "E01-1-0102")
    add_days(conn, "E01-1-0101", vacant_last=40)
    add_days(conn, "E01-1-0102")
    conn.commit()

    first = run_detection(conn, as_of=AS_OF)
    conn.commit()
    assert (first.units, first.flagged_vacancy, first.flagged_sublet) == (2, 1, 0)
    assert (first.alerts_opened, first.cases_opened) == (1, 1)

    alert = conn.execute(
        "SELECT id, unit_id, kind, status, score, reasons, evidence, window_start, window_end, first_flagged"
        " FROM alerts"
    ).fetchall()
    assert len(alert) == 1
    alert_id, unit_id, kind, status, score, reasons, evidence, w_start, w_end, first_flagged = alert[0]
    assert (unit_id, kind, status, w_end, first_flagged) == ("E01-1-0101", "vacancy", "open", AS_OF, AS_OF)
    assert w_start == AS_OF - timedelta(days=20) and 0 < score <= 1
    assert {"no_tenant_entries", "electricity_base_load", "water_near_zero"} <= {r["code"] for r in reasons}
    assert len(evidence["days"]) == len(evidence["electricity"]) == 180  # the traced history
    assert evidence["electricity"][-1] == 0.6 and evidence["tenant_entries"][-81] == 3
    assert evidence["electricity"][0] is None  # before the data: unknown, not empty

    case = conn.execute("SELECT id, alert_id, status, evidence, evidence_sha256 FROM cases").fetchall()
    assert len(case) == 1
    _, case_alert, case_status, case_evidence, digest = case[0]
    assert case_alert == alert_id and case_status == "open"
    assert digest == evidence_sha256(case_evidence)  # the stored evidence still hashes to the stored digest

    # A lead is not filed: the tenancy system hears of the case once an inspector confirms it.
    assert count(conn, "SELECT count(*) FROM tenancy_outbox") == 0
    actions = [r[0] for r in conn.execute("SELECT action FROM audit_log ORDER BY seq").fetchall()]
    assert actions == ["alert.opened", "case.opened"]
    assert count(conn, "SELECT count(*) FROM audit_log WHERE actor <> 'system:detector'") == 0

    again = run_detection(conn, as_of=AS_OF)
    conn.commit()
    assert (again.alerts_opened, again.alerts_updated, again.cases_opened) == (0, 1, 0)
    later = run_detection(conn, as_of=AS_OF + timedelta(days=1))
    conn.commit()
    assert later.alerts_updated == 1
    for table in ("alerts", "cases"):
        assert count(conn, f"SELECT count(*) FROM {table}") == 1
    row = conn.execute("SELECT first_flagged, last_flagged FROM alerts").fetchone()
    assert row == (AS_OF, AS_OF + timedelta(days=1))
    assert count(conn, "SELECT count(*) FROM audit_log WHERE action = 'alert.reflagged'") == 1


def test_closed_alert_with_open_case_does_not_open_a_second_case(conn: psycopg.Connection) -> None:
    add_unit(conn, "E01-1-0101")
    add_days(conn, "E01-1-0101", vacant_last=40)
    conn.commit()
    run_detection(conn, as_of=AS_OF)
    conn.execute("UPDATE alerts SET status = 'closed'")
    conn.commit()
    result = run_detection(conn, as_of=AS_OF)
    conn.commit()
    assert (result.alerts_opened, result.cases_opened) == (1, 0)
    assert count(conn, "SELECT count(*) FROM cases") == 1


def test_silent_gate_and_outage_give_no_alert(conn: psycopg.Connection) -> None:
    add_unit(conn, "E01-1-0101", building="1")
    add_days(conn, "E01-1-0101", gate=0)
    add_unit(conn, "E01-2-0101", building="2")
    conn.execute(
        INSERT_DAILY +
        " SELECT 'E01-2-0101', d::date, NULL, NULL, NULL, 0, 0, 0, 0, 0, 30"
        " FROM generate_series(%s::date, %s::date, interval '1 day') d",
        (AS_OF - timedelta(days=80), AS_OF),
    )
    conn.commit()
    result = run_detection(conn, as_of=AS_OF)
    conn.commit()
    assert result.alerts_opened == 0 and result.no_verdict >= 3
    assert count(conn, "SELECT count(*) FROM alerts") == 0


def test_default_as_of_is_the_last_complete_day(conn: psycopg.Connection) -> None:
    assert run_detection(conn).as_of is None
    add_unit(conn, "E01-1-0101")
    add_days(conn, "E01-1-0101", vacant_last=30)
    # The newest reading is at 09:00 on the day after AS_OF: that day is incomplete.
    conn.execute(
        INSERT_DAILY +
        " VALUES ('E01-1-0101', %s, NULL, NULL, NULL, 9, 9, 9, 0, 0, 10)",
        (AS_OF + timedelta(days=1),),
    )
    conn.execute(
        "INSERT INTO meter_readings (ts, unit_id, meter, value, quality, device, agent_id, seq)"
        " VALUES (%s, 'E01-1-0101', 'electricity', 5.0, 'ok', 'dev', 'gw', 1)",
        (datetime(AS_OF.year, AS_OF.month, AS_OF.day + 1, 9, tzinfo=TZ),),
    )
    conn.commit()
    result = run_detection(conn)
    conn.commit()
    assert result.as_of == AS_OF and result.alerts_opened == 1


def test_schema_is_idempotent_and_allows_one_open_alert_one_active_case(conn: psycopg.Connection) -> None:
    prepare_schema(conn)  # a second time: no error
    insert = (
        "INSERT INTO alerts (unit_id, estate_id, kind, status, score, first_flagged, last_flagged,"
        " rule_version, window_start, window_end)"
        " VALUES ('U1', 'E01', 'vacancy', %s, 0.5, %s, %s, 'r', %s, %s)"
    )
    conn.execute(insert, ("closed", AS_OF, AS_OF, AS_OF, AS_OF))
    conn.execute(insert, ("open", AS_OF, AS_OF, AS_OF, AS_OF))
    conn.commit()
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute(insert, ("open", AS_OF, AS_OF, AS_OF, AS_OF))
    conn.rollback()
    case = (
        "INSERT INTO cases (unit_id, estate_id, kind, status, evidence, evidence_sha256)"
        " VALUES ('U1', 'E01', 'sublet', %s, '{}', 'x')"
    )
    conn.execute(case, ("closed",))
    conn.execute(case, ("filed",))
    conn.commit()
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute(case, ("open",))
    conn.rollback()


def test_strangers_count_on_the_units_floor_where_corridor_cameras_exist() -> None:
    from anju.hub.detection.load import strangers_near
    from anju.models.features import StrangerTrack

    day = AS_OF - timedelta(days=10)
    on_3, on_5 = StrangerTrack("a", day, 5, floor=3), StrangerTrack("b", day, 5, floor=5)
    gate_only = StrangerTrack("c", day, 5)
    assert strangers_near([on_3, on_5, gate_only], floor=3) == ((on_3,), "floor")
    # Entrance gates only (the live demo's buildings), or a unit without a floor: the whole building.
    assert strangers_near([gate_only], floor=3) == ((gate_only,), "building")
    assert strangers_near([on_3, on_5], floor=None) == ((on_3, on_5), "building")


def test_units_too_busy_to_flag_load_only_their_window_days(conn: psycopg.Connection) -> None:
    from anju.hub.detection.load import load_series, max_window_entries
    from anju.models.rules import Policy

    policy = Policy.load()
    add_unit(conn, "E01-1-0101", building="1")
    add_days(conn, "E01-1-0101")  # lived in: tenants enter 3 times a day
    add_unit(conn, "E01-1-0102", building="1")
    add_days(conn, "E01-1-0102", vacant_last=40)  # no entries in the window: could be flagged
    conn.commit()
    loaded = {s.unit_id: s for s in load_series(conn, as_of=AS_OF, policy=policy)[0]}
    assert len(loaded["E01-1-0101"].days) == policy.window_days
    assert len(loaded["E01-1-0102"].days) == 81  # all it has of the traced history
    assert sum(1 for d in loaded["E01-1-0101"].days if d.tenant_entries) > max_window_entries(policy)
    conn.rollback()


def test_a_busy_units_verdicts_do_not_depend_on_its_baseline_days() -> None:
    """What the loader relies on: over the entry limit, both rules decide from the window alone."""
    from anju.models.features import window_bounds
    from anju.models.rules import Policy, VacancyRule
    from anju.models.sublet import SubletRule
    from tests.models import factories as f

    policy = Policy.load()
    start, end = window_bounds(f.AS_OF, policy.window_days)
    cases = [
        f.series(elec=0.5, water=0.0, entries=1),  # empty-looking meters, a visit a day
        f.series(elec=8.0, water=0.3, entries=1),  # lived in
        f.series(elec=None, water=None, entries=2),  # outage
        f.series(elec=0.5, water=0.0, entries=1, gate=0),  # silent gate (entries regardless)
        f.series(elec=9.0, water=0.4, entries=2, lease_start=f.AS_OF - timedelta(days=5)),
        f.series(elec=8.0, water=0.3, entries=1, faces=1),  # faces still seen daily with the card
    ]
    for full in cases:
        window_only = type(full)(
            unit_id=full.unit_id, estate_id=full.estate_id, days=full.between(start, end),
            lease_start=full.lease_start, strangers=full.strangers,
        )
        assert sum(1 for d in window_only.days if d.tenant_entries) > max(
            policy.vacancy.max_entry_days, policy.sublet.max_entry_days)
        for rule in (VacancyRule(policy), SubletRule(policy)):
            assert rule.evaluate(full, as_of=f.AS_OF) == rule.evaluate(window_only, as_of=f.AS_OF)


def test_a_days_verdicts_do_not_depend_on_earlier_runs(database_url: str) -> None:
    """The same data judged on day D gives the same flags whether detection ran on earlier days or not:
    a daily hub and a city switching anju on with its history see the same units on D."""
    def seeded(conn: psycopg.Connection) -> None:
        prepare_schema(conn)
        for unit, vacant in (("E01-1-0101", 40), ("E01-1-0102", 0), ("E01-1-0103", 25), ("E01-1-0104", 10)):
            add_unit(conn, unit)
            add_days(conn, unit, vacant_last=vacant)
        conn.commit()

    def flagged(conn: psycopg.Connection, day: date) -> set[str]:
        conn.execute("SELECT 1")  # an outer transaction, rolled back: only this run's verdicts are read
        run_detection(conn, as_of=day)
        units = {r[0] for r in conn.execute("SELECT unit_id FROM alerts WHERE last_flagged = %s", (day,))}
        conn.rollback()
        return units

    with psycopg.connect(database_url) as conn:
        seeded(conn)
        alone = flagged(conn, AS_OF)
        for k in range(30, 0, -1):  # a month of daily runs first
            run_detection(conn, as_of=AS_OF - timedelta(days=k))
            conn.commit()
        assert flagged(conn, AS_OF) == alone == {"E01-1-0101", "E01-1-0103"}


def test_one_detection_entry_point_for_the_hub_the_cli_and_the_evaluation() -> None:
    """Issue 15: only ``hub.detection.asof.detect_as_of`` calls the rules' run, so every caller honours the
    days a bulk import left stale and none writes verdicts its own way."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    callers = set()
    for folder in ("hub", "anju", "edge_agent", "device_sims", "models"):
        for path in (root / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) \
                        == "run_detection":
                    callers.add(path.relative_to(root).as_posix())
    assert callers == {"hub/detection/asof.py"}


def test_the_hub_loop_refreshes_days_a_bulk_import_left_stale(conn: psycopg.Connection) -> None:
    """The pipeline rolls up new readings itself; days an import changed are refreshed before detection."""
    from anju.hub.main import detect_once

    add_unit(conn, "E01-1-0101", building="1")
    add_days(conn, "E01-1-0101")
    stale = AS_OF - timedelta(days=3)
    conn.execute("INSERT INTO bulk_stale_days (day) VALUES (%s)", (stale,))
    add_readings(conn, "E01-1-0101", "electricity", hourly(AS_OF + timedelta(days=1), start=9, per_hour=1))
    conn.commit()
    detect_once(conn, tz=ESTATE_TZ, since=AS_OF + timedelta(days=1))
    assert conn.execute("SELECT count(*) FROM bulk_stale_days").fetchone() == (0,)
    # Its features were recomputed from the (absent) readings of that day: no longer the inserted ones.
    assert conn.execute("SELECT elec_kwh FROM unit_daily WHERE unit_id = 'E01-1-0101' AND day = %s",
                        (stale,)).fetchone() in (None, (None,))


def test_faces_several_departures_line_up_with_are_households_moving_in_not_one_group() -> None:
    """Two flats of one entrance-only building sublet in the same week: their five new faces are two
    households, shared out by the attribution, not a group that would need one flat's water to rise."""
    from dataclasses import replace

    from anju.hub.detection.buildings import claimed_strangers
    from anju.models.features import StrangerTrack
    from anju.models.rules import Policy, rule_context
    from anju.models.sublet import SubletRule
    from tests.models import factories as f

    policy = Policy.load()
    left = f.AS_OF - timedelta(days=30)
    faces = tuple(StrangerTrack(f"n-{i}", first_seen=left + timedelta(days=2 + i % 3), days_in_window=15,
                                days_seen=25) for i in range(5))
    lived = dict(elec=7.0, water=0.25, entries=0, strangers=3)
    units = [replace(f.series(unit_id=u, change_from=left, tracks=faces, **lived), building="1")
             for u in ("E01-1-0101", "E01-1-0102")]
    contexts = {s.unit_id: rule_context(s, as_of=f.AS_OF, policy=policy) for s in units}
    rule = SubletRule(policy)
    alone = claimed_strangers(units[:1], contexts, rule, {})
    assert alone == {"E01-1-0101": ()}  # one departure, five faces at once: a group elsewhere
    both = claimed_strangers(units, contexts, rule, {})
    assert set(both["E01-1-0101"]) == set(both["E01-1-0102"]) == set(faces)  # tied: both get them


def test_judging_turns_the_cycle_collector_off_only_while_it_runs() -> None:
    """A batch is judged with Python's cycle collector off (it walked the batch's days again and again);
    after it, the collector is as the caller had it, also when judging raised."""
    assert gc.isenabled()
    with _no_cycle_collection():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), _no_cycle_collection():
        raise RuntimeError("judging failed")
    assert gc.isenabled()
    gc.disable()
    try:
        with _no_cycle_collection():
            pass
        assert not gc.isenabled()  # the caller's choice is kept
    finally:
        gc.enable()


def test_acting_on_tables_analysed_empty_plans_afresh_and_puts_the_setting_back(
    conn: psycopg.Connection,
) -> None:
    """Where ``alerts`` and ``cases`` were analysed (nearly) empty, acting plans its statements for the
    tables as they are (a generic plan made then scanned them for every unit); the caller's setting is
    back after, in the caller's transaction."""
    add_unit(conn, "E01-1-0101")
    add_days(conn, "E01-1-0101", vacant_last=40)
    conn.execute("ANALYZE alerts, cases")
    conn.commit()
    seen = []
    with conn.transaction():
        conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        with patch("anju.hub.detection.service.may_flag", side_effect=lambda c, **kw: seen.append(
                c.execute("SELECT current_setting('plan_cache_mode')").fetchone()) or True):
            assert run_detection(conn, as_of=AS_OF).alerts_opened == 1
        assert seen == [("force_custom_plan",)]
        assert conn.execute("SELECT current_setting('plan_cache_mode')").fetchone() == ("force_generic_plan",)


def test_a_card_in_daily_use_whose_enrolled_faces_never_show_is_flagged_end_to_end(
    conn: psycopg.Connection,
) -> None:
    """The registry's faces_enrolled reaches the rule: the same 81 days of a card and no face are a lent
    card for a household that enrolled its faces, and a household coming home for one that did not."""
    for unit_id, enrolled in (("E01-1-0101", 2), ("E01-1-0102", 0), ("E01-1-0103", None)):
        add_unit(conn, unit_id)
        conn.execute("UPDATE units SET faces_enrolled = %s WHERE unit_id = %s", (enrolled, unit_id))
        rows = [(unit_id, AS_OF - timedelta(days=80 - i), 7.5, 0.3, 0.4, 24, 24, 24, 2, 1, 40, 6.5, 10, 0.3,
                 8, 2, 0) for i in range(81)]
        with conn.cursor() as cur:
            cur.executemany(INSERT_ACTIVE, rows)
    conn.commit()
    result = run_detection(conn, as_of=AS_OF)
    conn.commit()
    assert (result.flagged_vacancy, result.flagged_sublet) == (0, 1)
    alerts = conn.execute("SELECT unit_id, reasons FROM alerts WHERE kind = 'sublet'").fetchall()
    assert [a[0] for a in alerts] == ["E01-1-0101"]
    codes = {r["code"] for r in alerts[0][1]}
    assert codes == {"enrolled_face_unseen", "flat_lived_in"}


def test_a_group_in_a_busy_frugal_households_flat_is_judged_on_its_whole_record(
    conn: psycopg.Connection,
) -> None:
    """A couple that taps its card every day (no face enrolled) used 0.12 m³ a day, half its peers' 0.22;
    for seven weeks its flat has used 0.40. Busy at the gate, it is loaded with its window only, which
    cannot say that the water more than tripled: detection loads its record because its water reached a
    group's, and the group rule finds the rise against its own use."""
    from anju.hub.detection.load import load_series
    from anju.models.rules import Policy

    def add(unit_id: str, water_before: float, water_after: float, faces: int) -> None:
        add_unit(conn, unit_id)
        conn.execute("UPDATE units SET household_size = 2, faces_enrolled = %s WHERE unit_id = %s",
                     (1 if faces else 0, unit_id))
        rows = []
        for i in range(130):
            d = AS_OF - timedelta(days=129 - i)
            w = water_after if (AS_OF - d).days < 49 else water_before
            rows.append((unit_id, d, 7.5, w, 0.4, 24, 24, 24, 2, 1, 40, 6.5, 10, w, 8, 2, faces))
        with conn.cursor() as cur:
            cur.executemany(INSERT_ACTIVE, rows)

    add("E01-1-0101", 0.12, 0.40, faces=0)
    for k in range(2, 8):
        add(f"E01-1-01{k:02d}", 0.22, 0.22, faces=2)
    conn.commit()
    policy = Policy.load()
    loaded = {s.unit_id: s for s in load_series(conn, as_of=AS_OF, policy=policy)[0]}
    assert len(loaded["E01-1-0101"].days) == policy.window_days  # busy: its window only
    result = run_detection(conn, as_of=AS_OF)
    conn.commit()
    assert (result.flagged_vacancy, result.flagged_sublet) == (0, 1)
    unit_id, reasons = conn.execute("SELECT unit_id, reasons FROM alerts WHERE kind = 'sublet'").fetchone()
    assert unit_id == "E01-1-0101"
    grown = next(r for r in reasons if r["code"] == "water_grown")
    assert (grown["value"], grown["baseline"]) == (0.4, 0.12)


def test_a_group_that_moved_in_beside_its_tenant_claims_its_faces_from_a_side_door_household() -> None:
    """One entrance-only building: a household took to the car-park door (its water unchanged) on day L; a
    week later a group moved into a flat whose tenant's card goes on being used every day (no departure)
    and whose water tripled. The group's two faces, first seen the day after, are the group flat's: the
    day its water rose claims them as a departure would, and the side-door household keeps none."""
    from dataclasses import replace

    from anju.hub.detection.buildings import claimed_strangers
    from anju.models.features import Crowding, StrangerTrack
    from anju.models.rules import Policy, rule_context
    from anju.models.sublet import SubletRule
    from tests.models import factories as f

    policy = Policy.load()
    left = f.AS_OF - timedelta(days=45)
    moved_in = left + timedelta(days=7)
    faces = tuple(StrangerTrack(f"g-{i}", first_seen=moved_in + timedelta(days=1), days_in_window=15,
                                days_seen=35) for i in range(2))
    side_door = replace(f.series(unit_id="E01-1-0101", change_from=left, tracks=faces, elec=7.0, water=0.3,
                                 entries=0, strangers=3), building="1")
    group = replace(f.series(unit_id="E01-1-0102", change_from=moved_in, tracks=faces, water=0.9,
                             entries=3, faces=0, strangers=3), building="1")
    group = replace(group, days=tuple(d._replace(tenant_face_entries=0) for d in group.days))
    units = [side_door, group]
    contexts = {s.unit_id: rule_context(s, as_of=f.AS_OF, policy=policy) for s in units}
    rule = SubletRule(policy)
    assert rule.departure(group, contexts["E01-1-0102"]) is None  # its card is in daily use
    assert claimed_strangers(units, contexts, rule, {})["E01-1-0101"] == faces  # no group water: taken
    crowds = {"E01-1-0102": Crowding(household_size=2, peers=12, window_water=0.9, window_peers=0.3,
                                     baseline_water=0.6, baseline_peers=0.3)}
    claimed = claimed_strangers(units, contexts, rule, crowds)
    assert claimed["E01-1-0102"] == faces and claimed["E01-1-0101"] == ()
    verdict = rule.evaluate(side_door, as_of=f.AS_OF, context=contexts["E01-1-0101"],
                            claimed=claimed["E01-1-0101"])
    assert verdict.outcome.value == "clear"


def test_a_standing_sublet_is_placed_only_on_a_floor_whose_camera_knows_the_tenants(
    conn: psycopg.Connection,
) -> None:
    """Two flats whose registered households never passed the gate in 81 days, each beside a face settled on
    its floor since the first day. Floor 12's corridor camera recognised a neighbour's registered face, so
    it would have seen this household too, whatever door it took: a sublet older than the record. Floor
    13's camera reports unrecognised faces only: the household may use the side door and the face be a
    neighbour's live-in; nothing is said. A household with no face enrolled is never placed so."""
    from anju.hub.storage.rollups import local_midnight

    units = {"E01-1-1201": (12, 2), "E01-1-1202": (12, 2), "E01-1-1301": (13, 2), "E01-1-1302": (13, 2),
             "E01-1-1401": (14, 0), "E01-1-1402": (14, 2)}
    for unit_id, (floor, enrolled) in units.items():
        add_unit(conn, unit_id)
        conn.execute("UPDATE units SET floor = %s, household_size = 2, faces_enrolled = %s"
                     " WHERE unit_id = %s", (floor, enrolled, unit_id))
        home = unit_id.endswith("02")  # the neighbours come home through the gate every day
        rows = [(unit_id, AS_OF - timedelta(days=80 - i), 7.5, 0.3, 0.4, 24, 24, 24, 2 if home else 0, 1, 40,
                 6.5, 10, 0.3, 8, 2, 2 if home else 0) for i in range(81)]
        with conn.cursor() as cur:
            cur.executemany(INSERT_ACTIVE, rows)
    for i in range(81):
        noon = local_midnight(AS_OF - timedelta(days=80 - i), tz=ESTATE_TZ) + timedelta(hours=19)
        for floor in (12, 13, 14):
            add_event(conn, noon, f"s{floor}-{i}", stranger=f"E01-settled-{floor}")
            conn.execute("UPDATE access_events SET floor = %s WHERE event_id = %s", (floor, f"s{floor}-{i}"))
    add_event(conn, local_midnight(AS_OF - timedelta(days=30), tz=ESTATE_TZ) + timedelta(hours=8), "k12",
              unit_id="E01-1-1202")
    add_event(conn, local_midnight(AS_OF - timedelta(days=30), tz=ESTATE_TZ) + timedelta(hours=8), "k14",
              unit_id="E01-1-1402")
    conn.execute("UPDATE access_events SET floor = 12 WHERE event_id = 'k12'")
    conn.execute("UPDATE access_events SET floor = 14 WHERE event_id = 'k14'")
    add_event(conn, local_midnight(AS_OF - timedelta(days=30), tz=ESTATE_TZ) + timedelta(hours=9), "g13",
              unit_id="E01-1-1302")  # at the gate, not the floor: says nothing of floor 13's camera
    conn.commit()
    result = run_detection(conn, as_of=AS_OF)
    conn.commit()
    assert (result.flagged_vacancy, result.flagged_sublet) == (0, 1)
    unit_id, reasons = conn.execute("SELECT unit_id, reasons FROM alerts WHERE kind = 'sublet'").fetchone()
    assert unit_id == "E01-1-1201"
    assert [r["code"] for r in reasons] == ["tenants_absent_on_record", "flat_lived_in", "settled_strangers"]
