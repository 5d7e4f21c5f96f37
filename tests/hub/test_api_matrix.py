"""Role x endpoint x estate matrix over the whole API and the pages: who gets 200, 401, 403, 404 or 409.

Write endpoints are tried on closed cases, so a caller who passes every authorisation check gets 409
(the action does not apply) and nothing changes; anyone refused gets 401, 403 or 404 before that.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from psycopg.types.json import Jsonb
from starlette.routing import BaseRoute, Mount, Router

from anju.hub.api.app import create_app
from tests.hub.test_api import (
    add_users,
    create_schema,
    insert_alert,
    insert_unit,
    login,
    seed,
    serve,
    vacancy_evidence,
)

ROLES = {"anon": None, "inspector": "insp1", "supervisor": "sup1", "auditor": "aud", "admin": "adm",
         "household": None}  # a household member of E01-1-0101, signed in by code (issue 19)
SCOPED = {"inspector", "supervisor"}


def closed_case(conn: psycopg.Connection[Any], *, unit_id: str, estate_id: str, assignee: str) -> int:
    alert = insert_alert(conn, unit_id=unit_id, estate_id=estate_id, kind="sublet", score=0.5, reasons=[],
                         evidence=vacancy_evidence(), status="closed")
    row = conn.execute(
        "INSERT INTO cases (unit_id, estate_id, kind, alert_id, status, evidence, evidence_sha256, assignee,"
        " alert_ids) VALUES (%s, %s, 'sublet', %s, 'closed', %s, %s, %s, ARRAY[%s]::bigint[]) RETURNING id",
        (unit_id, estate_id, alert, Jsonb({}), "cd" * 32, assignee, alert),
    ).fetchone()
    assert row is not None
    return int(row[0])


@dataclass(frozen=True)
class Cell:
    method: str
    route: str  # the route template, for the coverage check
    path: str
    body: dict[str, Any] | None
    scope: str  # "own" | "other" | "-"
    expected: Callable[[str], int]


def api(allowed: set[str] | None, *, ok: int = 200, scoped_other: bool = False, public: bool = False
        ) -> Callable[[str], int]:
    """Expected status per role: 401 anonymous, 403 for a role not allowed, 404 for another estate's
    object (checked before the role for object actions), ``ok`` otherwise."""
    def expect(role: str) -> int:
        if public:
            return ok
        if role == "anon":
            return 401
        if scoped_other and role in SCOPED:
            return 404
        if allowed is not None and role not in allowed:
            return 403
        return ok
    return expect


def page(
    allowed: set[str] | None = None, *, scoped_other: bool = False, ok: int = 200
) -> Callable[[str], int]:
    """Pages: anonymous callers are sent to sign in (303); the rest as for the API."""
    inner = api(allowed, ok=ok, scoped_other=scoped_other)
    return lambda role: 303 if role == "anon" else inner(role)


def cells(ids: dict[str, int]) -> list[Cell]:
    all_roles = None
    writers = {"inspector", "supervisor", "admin"}
    managers = {"supervisor", "admin"}
    overseers = {"supervisor", "auditor", "admin"}
    auditors = {"auditor", "admin"}
    admins = {"admin"}
    out = [
        Cell("GET", "/api/health", "/api/health", None, "-", api(None, public=True)),
        # Prometheus scrapes without a session (an operator's firewall keeps it inside the network).
        Cell("GET", "/metrics", "/metrics", None, "-", api(None, public=True)),
        Cell("POST", "/api/auth/login", "/api/auth/login", {"name": "nobody", "password": "wrong-password"},
             # One wrong password per role for the same name: the fifth in a row waits (the throttle).
             "-", lambda role: 429 if role == "admin" else 401),
        Cell("GET", "/api/auth/me", "/api/auth/me", None, "-", api(all_roles)),
        Cell("GET", "/api/alerts", "/api/alerts", None, "-", api(all_roles)),
        Cell("GET", "/api/cases", "/api/cases", None, "-", api(all_roles)),
        Cell("GET", "/api/stats", "/api/stats", None, "-", api(overseers)),
        Cell("GET", "/api/agents", "/api/agents", None, "-", api(all_roles)),
        Cell("GET", "/api/audit", "/api/audit", None, "-", api(auditors)),
        Cell("GET", "/api/audit/verify", "/api/audit/verify", None, "-", api(auditors)),
        Cell("GET", "/api/users", "/api/users", None, "-", api(admins)),
        # Only the admin's request goes through: it adds this user once and sets insp1b's estates to
        # what they were, so the rest of the matrix sees the same people.
        Cell("POST", "/api/users", "/api/users",
             {"name": "matrix-user", "role": "inspector", "password": "long enough", "estates": ["E01"]},
             "-", api(admins, ok=201)),
        Cell("PUT", "/api/users/{name}/estates", "/api/users/insp1b/estates", {"estates": ["E01"]}, "-",
             api(admins)),
        Cell("GET", "/", "/", None, "-", page()),
        Cell("GET", "/login", "/login", None, "-", lambda role: 200),
        Cell("GET", "/audit", "/audit", None, "-", page(auditors)),
        Cell("GET", "/visits", "/visits?sheets=1", None, "-", page()),
        Cell("GET", "/visits.csv", "/visits.csv", None, "-", page()),
        Cell("GET", "/supervisor", "/supervisor", None, "-", page(managers)),
        # The operator's status page and its JSON (issue 17): admins only.
        Cell("GET", "/status", "/status", None, "-", page(admins)),
        Cell("GET", "/api/status", "/api/status", None, "-", api(admins)),
        # Batch assignment of closed cases: managers get each case's refusal (200, or back to the queue),
        # the others nothing.
        Cell("POST", "/api/cases/assign", "/api/cases/assign",
             {"case_ids": [ids["own_case"], ids["other_case"]], "assignee": "insp1"}, "-", api(managers)),
        Cell("POST", "/cases/assign", "/cases/assign",
             {f"case_{ids['own_case']}": "on", f"case_{ids['other_case']}": "on", "assignee": "insp1"}, "-",
             page(managers, ok=303)),
    ]
    for scope in ("own", "other"):
        other = scope == "other"
        alert, case = ids[f"{scope}_alert"], ids[f"{scope}_case"]
        unit_id = "E01-1-0101" if not other else "E02-2-0501"
        actions = [
            ("assign", {"assignee": "insp1"}, managers),
            ("accept", {"note": ""}, writers),
            ("schedule-visit", {"visit_on": "2026-04-01"}, writers),
            ("record-visit", {"note": "two strangers"}, writers),
            ("confirm", {"note": "seen"}, writers),
            ("dismiss", {"reason": "travel", "note": ""}, writers),
            ("close", {"note": ""}, managers),
            ("escalate", {"note": "visit this week"}, managers),
        ]
        out += [
            Cell("GET", "/api/alerts/{alert_id}", f"/api/alerts/{alert}", None, scope,
                 api(all_roles, scoped_other=other)),
            Cell("GET", "/api/cases/{case_id}", f"/api/cases/{case}", None, scope,
                 api(all_roles, scoped_other=other)),
            Cell("GET", "/api/units/{unit_id}", f"/api/units/{unit_id}", None, scope,
                 api(all_roles, scoped_other=other)),
            # Role first (a dependency), then the estate: an inspector is 403 for any unit's trail.
            Cell("GET", "/api/units/{unit_id}/trail", f"/api/units/{unit_id}/trail", None, scope,
                 lambda role, other=other: 401 if role == "anon" else 403 if role == "inspector"
                 else 404 if (other and role == "supervisor") else 200),
            Cell("GET", "/alerts/{alert_id}", f"/alerts/{alert}", None, scope, page(scoped_other=other)),
            Cell("GET", "/alerts/{alert_id}/sheet", f"/alerts/{alert}/sheet", None, scope,
                 page(scoped_other=other)),
            Cell("GET", "/estates/{estate}/grid", f"/estates/{unit_id[:3]}/grid", None, scope,
                 page(scoped_other=other)),
        ]
        for name, body, allowed in actions:
            route = f"/api/cases/{{case_id}}/{name}"
            out.append(Cell("POST", route, f"/api/cases/{case}/{name}", body, scope,
                            api(allowed, ok=409, scoped_other=other)))
            form = {"action": name.replace("-", "_"), "alert_id": str(alert), "assignee": "insp1",
                    "visit_on": "2026-04-01", "reason": "travel"}
            out.append(Cell("POST", "/cases/{case_id}/action", f"/cases/{case}/action", form, scope,
                            page(allowed, ok=409, scoped_other=other)))
    return out + household_cells(ids)


def home(own: int, *, other: bool = False) -> Callable[[str], int]:
    """The household pages: a member gets ``own`` on their own unit's case and 404 on another's; anyone
    else is sent to the household sign-in (303)."""
    return lambda role: (404 if other else own) if role == "household" else 303


def for_household(cell: Cell) -> int:
    """What a household session gets on a cell: its own pages as their cells say; on the staff surface
    404 (nothing of it exists for them), but for the public endpoints."""
    if cell.route.startswith("/home"):
        return cell.expected("household")
    if cell.route in ("/api/health", "/metrics", "/login"):
        return cell.expected("anon")
    if cell.route == "/api/auth/login":
        return 429  # the sixth wrong password in a row for one name
    return 404


def household_cells(ids: dict[str, int]) -> list[Cell]:
    """The household side's routes (hub/api/household.py)."""
    number = {"phone": "+8613000000000"}  # on no lease: the same answers as for one on a lease
    out = [
        Cell("GET", "/home/login", "/home/login", None, "-", lambda role: 200),
        # One code a minute per number: the first caller gets the code page, the rest 429.
        Cell("POST", "/home/login/code", "/home/login/code", number, "-",
             lambda role: 200 if role == "anon" else 429),
        Cell("POST", "/home/login", "/home/login", {**number, "code": "000000"}, "-", lambda role: 401),
        Cell("GET", "/home", "/home", None, "-", home(200)),
        Cell("POST", "/home/welfare", "/home/welfare", {"note": "matrix"}, "-", lambda role: 303),
        Cell("GET", "/api/welfare", "/api/welfare", None, "-", api({"admin"})),
    ]
    for scope in ("own", "other"):
        other = scope == "other"
        case, photo = ids[f"{scope}_case"], ids.get(f"{scope}_photo", 1)
        out += [
            Cell("GET", "/home/cases/{case_id}", f"/home/cases/{case}", None, scope, home(200, other=other)),
            # The matrix's cases are closed: the member's own answers 409, another unit's 404.
            Cell("POST", "/home/cases/{case_id}/answer", f"/home/cases/{case}/answer", {"reason": "hospital"},
                 scope, home(409, other=other)),
            Cell("GET", "/home/cases/{case_id}/photos/{photo_id}", f"/home/cases/{case}/photos/{photo}", None,
                 scope, home(200, other=other)),
            Cell("GET", "/cases/{case_id}/answer-photos/{photo_id}", f"/cases/{case}/answer-photos/{photo}",
                 None, scope, page(scoped_other=other)),
            Cell("GET", "/api/cases/{case_id}/answers", f"/api/cases/{case}/answers", None, scope,
                 api(None, scoped_other=other)),
            Cell("POST", "/cases/{case_id}/filing-override", f"/cases/{case}/filing-override",
                 {"why": "matrix: a reason long enough", "alert_id": str(ids.get(f"{scope}_alert", 1))},
                 scope,
                 page({"supervisor", "admin"}, ok=409, scoped_other=other)),
            Cell("POST", "/api/cases/{case_id}/filing-override", f"/api/cases/{case}/filing-override",
                 {"why": "matrix: a reason long enough"}, scope,
                 api({"supervisor", "admin"}, ok=409, scoped_other=other)),
        ]
    return out


def household_session(conn: psycopg.Connection[Any], ids: dict[str, int]) -> str:
    """A member on the lease of each case's unit, an answer with a photo on each case; the session token
    of the own unit's member."""
    from anju.hub.household.signin import add_member, member_principal, open_household_session

    members = {}
    leases = (("own", "E01-1-0101", "+8613700000001"), ("other", "E02-2-0501", "+8613700000002"))
    for scope, unit, phone in leases:
        members[scope] = add_member(conn, unit_id=unit, name=f"{scope} tenant", phone=phone,
                                    relation="tenant", adult=True)
        row = conn.execute("INSERT INTO household_answers (case_id, member_id, reason)"
                           " VALUES (%s, %s, 'hospital') RETURNING id",
                           (ids[f"{scope}_case"], members[scope])).fetchone()
        assert row is not None
        photo = conn.execute(
            "INSERT INTO household_answer_photos (answer_id, case_id, content_type, size_bytes, sha256, data)"
            " VALUES (%s, %s, 'image/png', 8, 'x', %s) RETURNING id",
            (row[0], ids[f"{scope}_case"], b"\x89PNG\r\n\x1a\n"),
        ).fetchone()
        assert photo is not None
        ids[f"{scope}_photo"] = int(photo[0])
    principal = member_principal(conn, members["own"])
    assert principal is not None
    return open_household_session(conn, principal=principal)


# Signing in and out is tested on its own (test_login_hardening, and the end of the matrix below).
OUTSIDE_THE_MATRIX = {("POST", "/api/auth/logout"), ("POST", "/logout"), ("POST", "/login"),
                      ("POST", "/home/logout")}


def api_routes(routes: Sequence[BaseRoute], prefix: str = "") -> set[tuple[str, str]]:
    """(method, path) of every API route, down through included routers and mounted routers: FastAPI
    keeps an included router's routes under one entry of ``app.routes``, not flattened into it."""
    found: set[tuple[str, str]] = set()
    for route in routes:
        if isinstance(route, APIRoute):
            found |= {(m, prefix + route.path) for m in route.methods or ()}
        elif hasattr(route, "original_router"):  # fastapi.routing._IncludedRouter
            inner_prefix = getattr(getattr(route, "include_context", None), "prefix", "")
            found |= api_routes(route.original_router.routes, prefix + inner_prefix)
        elif isinstance(route, Mount) and isinstance(route.app, Router):
            found |= api_routes(route.app.routes, prefix + route.path)
    return found


def uncovered(app: FastAPI, matrix: list[Cell]) -> set[tuple[str, str]]:
    """Routes of the app with no cell in the matrix."""
    covered = {(c.method, c.route) for c in matrix} | OUTSIDE_THE_MATRIX
    return api_routes(app.routes) - covered


def test_coverage_check_sees_routes_in_included_routers() -> None:
    app = create_app(database_url="postgresql://unused")
    ids = {f"{s}_{k}": 1 for s in ("own", "other") for k in ("alert", "case")}
    assert len(api_routes(app.routes)) >= 25
    assert uncovered(app, cells(ids)) == set()
    extra = APIRouter(prefix="/api")

    @extra.get("/not-in-the-matrix")
    def not_in_the_matrix() -> dict[str, str]:
        return {}

    app.include_router(extra)
    assert uncovered(app, cells(ids)) == {("GET", "/api/not-in-the-matrix")}


def test_role_endpoint_matrix(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        create_schema(conn)
        seed(conn)
        insert_unit(conn, "E02-2-0777", "E02")
        add_users(conn)
        ids = {
            "own_case": closed_case(conn, unit_id="E01-1-0101", estate_id="E01", assignee="insp1"),
            "other_case": closed_case(conn, unit_id="E02-2-0501", estate_id="E02", assignee="insp2"),
        }
        row = conn.execute("SELECT alert_id FROM cases WHERE id = %s", (ids["own_case"],)).fetchone()
        ids["own_alert"] = row[0] if row else 0
        row = conn.execute("SELECT alert_id FROM cases WHERE id = %s", (ids["other_case"],)).fetchone()
        ids["other_alert"] = row[0] if row else 0
        token = household_session(conn, ids)
        conn.commit()
    app = create_app(database_url=database_url)
    matrix = cells(ids)
    assert uncovered(app, matrix) == set(), "endpoints missing from the matrix"

    failures: list[str] = []
    checked = 0
    with serve(app) as url:
        headers = {role: login(url, name) if name else {} for role, name in ROLES.items()}
        headers["household"] = {"Cookie": f"anju_household={token}"}
        with httpx.Client(base_url=url, timeout=10, follow_redirects=False) as http:
            for cell in matrix:
                for role in ROLES:
                    if cell.route.startswith(("/cases/", "/home")):
                        resp = http.request(cell.method, cell.path, data=cell.body, headers=headers[role])
                    else:
                        resp = http.request(cell.method, cell.path, json=cell.body, headers=headers[role])
                    checked += 1
                    want = for_household(cell) if role == "household" else cell.expected(role)
                    if resp.status_code != want:
                        failures.append(f"{role:10} {cell.method} {cell.path} ({cell.scope}): "
                                        f"got {resp.status_code}, want {want}")
                    listing = cell.path in ("/api/alerts", "/api/cases")
                    if resp.status_code == 200 and listing and role in SCOPED:
                        estates = {i["estate_id"] for i in resp.json()["items"]}
                        if not estates <= {"E01", "E03"}:
                            failures.append(f"{role} {cell.path} leaks estates {estates}")
            # Sign out last: the token stops working.
            for role in ("inspector", "supervisor", "auditor", "admin"):
                assert http.post("/api/auth/logout", headers=headers[role]).status_code == 204
                assert http.get("/api/auth/me", headers=headers[role]).status_code == 401
                checked += 2
            assert http.post("/api/auth/logout").status_code == 401
            checked += 1
            assert http.post("/home/logout", headers=headers["household"]).status_code == 303
            assert http.get("/home", headers=headers["household"]).status_code == 303  # signed out
            checked += 2
        with psycopg.connect(database_url) as conn:
            statuses = conn.execute("SELECT status FROM cases WHERE id = ANY(%s)",
                                    ([ids["own_case"], ids["other_case"]],)).fetchall()
    print(f"role x endpoint matrix: {len(matrix)} endpoint cells x {len(ROLES)} roles = {checked} requests "
          f"checked, {len(failures)} authorisation failures")
    assert failures == [], "\n".join(failures)
    assert statuses == [("closed",), ("closed",)]  # nothing was changed by the matrix
