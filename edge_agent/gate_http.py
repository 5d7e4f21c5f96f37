"""HTTP push gates: devices POST vendor JSON events to the agent, which stores them before replying 200.

One uvicorn server (Starlette app) per listen address, run as a task in the agent's TaskGroup and
stopped with it. The reply is the device's receipt: 200 only once the event is durable in the outbox,
400 with the reason for a malformed event (kept raw in ``rejected``), 401 for a missing or wrong
token, 404 for a path no gate is configured at, 503 while the outbox refuses records (the device keeps
the event and retries, as access controllers do with their offline event store). A 503 stores nothing
(neither the event nor a ``rejected`` row: the event is well formed and its device still holds it),
carries ``Retry-After`` and is counted in the intake's ``refused_full`` (metrics) while the outbox-full
alarm shows in metrics and in the agent's status.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import socket
from collections.abc import Awaitable, Callable, Generator

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from anju.edge_agent.errors import GateEventError, ListenError, OutboxError, OutboxFull
from anju.edge_agent.gates import GateIntake, unwrap_pushed_event
from anju.edge_agent.site import GateConfig

log = logging.getLogger(__name__)
MAX_BODY = 64 * 1024  # a vendor event is a few hundred bytes; refuse anything absurd before reading it
RETRY_AFTER_S = 30  # a full outbox empties at the uplink's pace once the hub is back: seconds, not ms


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the agent (it installs its own by default)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _authorised(request: Request, gate: GateConfig) -> bool:
    if gate.token is None:
        return True
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), gate.token.get_secret_value().encode())


def build_app(gates: list[GateConfig], intake: GateIntake) -> Starlette:
    """The Starlette app serving these gates' paths (all of one listen address)."""

    def endpoint(gate: GateConfig) -> Callable[[Request], Awaitable[JSONResponse]]:
        async def receive(request: Request) -> JSONResponse:
            if not _authorised(request, gate):
                log.warning("gate %s: refused a push without the right token", gate.device_id)
                return JSONResponse({"error": "missing or wrong token"}, status_code=401)
            length = request.headers.get("content-length")
            if length is not None and length.isdigit() and int(length) > MAX_BODY:
                return JSONResponse({"error": f"body over {MAX_BODY} bytes"}, status_code=413)
            body = await request.body()
            if len(body) > MAX_BODY:
                return JSONResponse({"error": f"body over {MAX_BODY} bytes"}, status_code=413)
            raw = unwrap_pushed_event(body, device_id=gate.device_id, building=gate.building)
            try:
                # the outbox commit fsyncs: off the event loop
                record = await asyncio.to_thread(intake.take, f"gate-http:{gate.path}", raw)
            except GateEventError as err:
                return JSONResponse({"error": str(err)}, status_code=400)
            except OutboxFull as err:
                return JSONResponse(
                    {"error": f"outbox full, event not stored; send it again later ({err})"},
                    status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)},
                )  # fmt: skip
            except OutboxError as err:
                return JSONResponse(
                    {"error": f"event not stored; send it again later ({err})"},
                    status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)},
                )  # fmt: skip
            return JSONResponse({"status": "stored", "event_id": record.event_id})

        return receive

    routes = [Route(g.path, endpoint(g), methods=["POST"]) for g in gates if g.path is not None]
    # The limit counts bytes as they arrive (a chunked body has no Content-Length to check up front).
    return Starlette(routes=routes,
                     middleware=[Middleware(RequestBodyLimitMiddleware, max_body_size=MAX_BODY)])


class HttpGateListener:
    """Serves the HTTP push gates of one listen address until stopped."""

    def __init__(self, *, host: str, port: int, gates: list[GateConfig], intake: GateIntake) -> None:
        self.host = host
        self.port = port
        self.gates = gates
        config = uvicorn.Config(
            build_app(gates, intake), host=host, port=port, lifespan="off", ws="none", http="h11",
            log_level="warning", access_log=False, server_header=False,
        )  # fmt: skip
        self._server = _Server(config)
        self._socket: socket.socket | None = None

    def bind(self) -> None:
        """Take the port now, so that a taken port stops the agent at start with a clear error."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
        except OSError as err:
            sock.close()
            raise ListenError(f"gates: cannot listen on {self.host}:{self.port}: {err}") from err
        sock.listen(128)
        sock.setblocking(False)
        self._socket = sock
        self.port = int(sock.getsockname()[1])

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set, then finish requests under way and close the socket."""
        if self._socket is None:
            self.bind()
        assert self._socket is not None
        serving = asyncio.create_task(self._server.serve(sockets=[self._socket]), name="gate-http-serve")
        halt = asyncio.create_task(stop.wait(), name="gate-http-stop")
        try:
            await asyncio.wait({serving, halt}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._server.should_exit = True
            halt.cancel()
            await asyncio.gather(halt, return_exceptions=True)
            await serving
            self._socket.close()
        log.info("gate listener on %s:%d stopped", self.host, self.port)
