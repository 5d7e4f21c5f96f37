"""Request dependencies: a pooled database connection, the signed-in person, role checks, form bodies."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, Any
from urllib.parse import parse_qs, urlsplit

import psycopg
from fastapi import Depends, HTTPException, Request
from psycopg_pool import ConnectionPool

from anju.hub.auth.models import Principal, Role
from anju.hub.auth.service import SignIn, session_principal
from anju.hub.cases.workflow import WorkflowPolicy

SESSION_COOKIE = "anju_session"
HOUSEHOLD_COOKIE = "anju_household"  # a household member's session (hub/api/household.py), never staff
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def get_pool(request: Request) -> ConnectionPool:
    """The application's connection pool, opened by its lifespan."""
    pool: ConnectionPool = request.app.state.pool
    return pool


def get_conn(request: Request) -> Iterator[psycopg.Connection[Any]]:
    """A connection from the pool for the duration of one request (PoolTimeout, hence 503, if none comes)."""
    timeout: float = request.app.state.pool_timeout_s
    with get_pool(request).connection(timeout=timeout) as conn:
        yield conn


DbConn = Annotated[psycopg.Connection[Any], Depends(get_conn)]
DbPool = Annotated[ConnectionPool, Depends(get_pool)]


def get_workflow(request: Request) -> WorkflowPolicy:
    """The case workflow's policy the application was built with (each step's deadline)."""
    policy: WorkflowPolicy = request.app.state.workflow
    return policy


Workflow = Annotated[WorkflowPolicy, Depends(get_workflow)]


def request_token(request: Request) -> tuple[str | None, bool]:
    """The session token of a request and whether it came in a cookie (bearer header wins)."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip(), False
    cookie = request.cookies.get(SESSION_COOKIE)
    return (cookie, True) if cookie else (None, False)


def client_address(request: Request) -> str:
    """The address a sign-in is throttled by: the peer as uvicorn reports it (behind the bureau's
    reverse proxy, run uvicorn with ``--forwarded-allow-ips`` set to it so this is the real client)."""
    return request.client.host if request.client else "unknown"


def login_refusal(outcome: SignIn) -> HTTPException:
    """The API's answer to a refused sign-in: 401 for a wrong password, 429 with Retry-After when the
    throttle or a lockout refused to check it (a locked account waits for an admin, not a time)."""
    if outcome.refused == "locked":
        return HTTPException(status_code=429, detail="account locked after failed sign-ins; ask an admin")
    if outcome.refused == "throttled":
        return HTTPException(status_code=429, detail="too many failed sign-ins; wait",
                             headers={"Retry-After": str(outcome.retry_after_s)})
    return HTTPException(status_code=401, detail="wrong name or password")


def same_origin(request: Request) -> bool:
    """Whether an unsafe request sent with a cookie comes from our own pages (CSRF defence beside
    SameSite=Lax): its Origin, or failing that its Referer, names this host; neither header also passes,
    because browsers send Origin on every cross-site POST."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source or source == "null":
        return source is None
    return urlsplit(source).netloc == request.headers.get("host", request.url.netloc)


def optional_principal(request: Request, conn: DbConn) -> Principal | None:
    """The signed-in person, or None; an unsafe cookie request from another origin counts as no one."""
    no_household(request)
    token, from_cookie = request_token(request)
    if token is None or len(token) > 200:
        return None
    if from_cookie and request.method in UNSAFE_METHODS and not same_origin(request):
        return None
    return session_principal(conn, token)


def no_household(request: Request) -> None:
    """A household member's session opens no staff page or endpoint: without a staff session, the
    staff surface answers 404 to them, as for an object they may not see (issue 19)."""
    if request_token(request)[0] is None and request.cookies.get(HOUSEHOLD_COOKIE):
        raise HTTPException(status_code=404, detail="not found")


def get_principal(principal: Annotated[Principal | None, Depends(optional_principal)]) -> Principal:
    """The signed-in person; 401 without a live session."""
    if principal is None:
        raise HTTPException(status_code=401, detail="sign in first", headers={"WWW-Authenticate": "Bearer"})
    return principal


CurrentUser = Annotated[Principal, Depends(get_principal)]
MaybeUser = Annotated[Principal | None, Depends(optional_principal)]


def require_roles(*roles: Role) -> Callable[[Principal], Principal]:
    """A dependency: the signed-in person if their role is one of ``roles``, else 403."""
    allowed = frozenset(roles)

    def check(principal: CurrentUser) -> Principal:
        if principal.role not in allowed:
            raise HTTPException(status_code=403, detail=f"not allowed for role {principal.role.value}")
        return principal

    return check


AuditReader = Annotated[Principal, Depends(require_roles(Role.AUDITOR, Role.ADMIN))]
Overseer = Annotated[Principal, Depends(require_roles(Role.SUPERVISOR, Role.AUDITOR, Role.ADMIN))]
Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]


async def form_fields(request: Request) -> dict[str, str]:
    """An urlencoded form body as a dict (first value of each field), at most 64 KiB."""
    body = await request.body()
    if len(body) > 65536:
        raise HTTPException(status_code=413, detail="form too large")
    parsed = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {k: v[0] for k, v in parsed.items()}


FormFields = Annotated[dict[str, str], Depends(form_fields)]
