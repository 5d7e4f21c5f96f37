"""anju edge-side commands: ``anju sim meters`` serves a fleet of Modbus TCP electricity meters."""

from __future__ import annotations

import argparse
import asyncio
import signal
import time
from datetime import datetime
from typing import Any


def _ids(text: str) -> frozenset[int]:
    """``"1,5,9-12"`` -> {1, 5, 9, 10, 11, 12}."""
    out: set[int] = set()
    for part in filter(None, (p.strip() for p in text.split(","))):
        lo, _, hi = part.partition("-")
        try:
            first, last = int(lo), int(hi or lo)
        except ValueError as err:
            raise argparse.ArgumentTypeError(f"{part!r} is not a unit number or range") from err
        out.update(range(first, last + 1))
    return frozenset(out)


def _listen(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT")
    return host, int(port)


def register(sub: Any, sim: Any) -> None:
    """Add ``anju sim meters`` to the ``sim`` group."""
    p = sim.add_parser(
        "meters",
        help="serve N units' SDM120 electricity meters over Modbus TCP (device ids 1..N, 247 per port)",
        description=(
            "Unit u (1-based) answers at port PORT + (u-1)//247, device id (u-1)%%247 + 1: up to 247 units "
            "are device ids 1..N on PORT; more units take the next ports. Values advance with simulated use."
        ),
    )
    p.add_argument("--listen", type=_listen, required=True, help="HOST:PORT of the first port")
    p.add_argument("--units", type=int, required=True)
    p.add_argument("--slow", type=_ids, default=frozenset(), help="units that answer late, e.g. 3,7-9")
    p.add_argument("--slow-s", type=float, default=2.0, help="how late slow units answer (seconds)")
    p.add_argument("--silent", type=_ids, default=frozenset(), help="units that never answer")
    p.add_argument("--failing", type=_ids, default=frozenset(), help="units that answer with exception 4")
    p.add_argument("--start", default=None, help="simulated start (ISO 8601 with offset); default: now")
    p.add_argument("--origin-wall", type=float, default=None, help="wall time of --start (default: now)")
    p.add_argument("--speed", type=float, default=1.0, help="simulated seconds per wall second")


def run(args: argparse.Namespace) -> int | None:
    """Run ``anju sim meters``; None for any other command."""
    if args.command != "sim" or getattr(args, "sim_command", None) != "meters":
        return None
    from anju_wire import AcceleratedClock, Clock, WallClock
    from device_sims.meters import FleetMeterServer

    if args.units < 1:
        print("anju sim meters: --units must be at least 1")
        return 2
    clock: Clock = WallClock()
    if args.start is not None or args.speed != 1.0:
        start = datetime.fromisoformat(args.start) if args.start else datetime.now().astimezone()
        origin = args.origin_wall if args.origin_wall is not None else time.time()
        clock = AcceleratedClock(origin_wall=origin, origin_sim=start, speed=args.speed)
    host, port = args.listen
    fleet = FleetMeterServer(
        clock, units=args.units, host=host, port=port, slow=args.slow, silent=args.silent,
        failing=args.failing, slow_s=args.slow_s,
    )  # fmt: skip

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with fleet:
            print(f"serving {args.units} meters on {host} ports {fleet.ports}", flush=True)
            await stop.wait()

    asyncio.run(serve())
    return 0
