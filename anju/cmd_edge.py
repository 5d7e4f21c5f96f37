"""anju edge-side commands: ``anju sim meters`` serves a fleet of meters: Modbus (TCP or RTU), DL/T 645 or
CJ/T 188 (on a serial line, a pty, or TCP as a transparent gateway)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
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
        help="serve N units' meters: SDM120 over Modbus TCP/RTU, DL/T 645 electricity or CJ/T 188 water",
        description=(
            "Over TCP (--listen), unit u (1-based) answers at port PORT + (u-1)//247, device id "
            "(u-1)%247 + 1: up to 247 units are device ids 1..N on PORT; more units take the next ports. "
            "Over RTU (--serial or --rtu-pty) units 1..N (at most 247) are device ids 1..N on one serial "
            "line. Values advance with simulated use. With --protocol dlt645 or cjt188, unit u answers at "
            "address u (12 or 14 digits) on the serial line, or on the one TCP port as a transparent gateway."
        ),
    )
    p.add_argument("--protocol", choices=("modbus", "dlt645", "cjt188"), default="modbus",
                   help="modbus: SDM120 electricity; dlt645: DL/T 645-2007 electricity; cjt188: CJ/T 188 "
                   "water")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--listen", type=_listen, help="Modbus TCP: HOST:PORT of the first port")
    where.add_argument(
        "--serial", metavar="DEVICE", help="Modbus RTU on this serial port, e.g. a USB RS-485 adapter"
    )
    where.add_argument(
        "--rtu-pty", action="store_true",
        help="Modbus RTU on a new pseudo-terminal pair; prints the path to give the agent as serial_port",
    )  # fmt: skip
    p.add_argument("--baudrate", type=int, default=None,
                   help="serial line speed; default 9600 for Modbus (the SDM120's), 2400 for dlt645/cjt188")
    p.add_argument("--parity", choices=("N", "E", "O"), default=None,
                   help="serial parity; default N (8N1) for Modbus, E (8E1) for dlt645/cjt188")
    p.add_argument("--units", type=int, required=True, help="how many meters (units 1..N)")
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
    from anju.device_sims.fleet_meters import FleetMeterServer
    from anju.device_sims.serial_pair import pty_pair
    from anju_wire import AcceleratedClock, Clock, WallClock

    rtu = (args.serial is not None or args.rtu_pty) and args.protocol == "modbus"
    if args.units < 1 or (rtu and args.units > 247):
        print("anju sim meters: --units must be 1..247 on one RTU line" if rtu else
              "anju sim meters: --units must be at least 1", file=sys.stderr)  # fmt: skip
        return 2
    clock: Clock = WallClock()
    if args.start is not None or args.speed != 1.0:
        start = datetime.fromisoformat(args.start) if args.start else datetime.now().astimezone()
        origin = args.origin_wall if args.origin_wall is not None else time.time()
        clock = AcceleratedClock(origin_wall=origin, origin_sim=start, speed=args.speed)
    faults = {"slow": args.slow, "silent": args.silent, "failing": args.failing, "slow_s": args.slow_s}
    framed = args.protocol != "modbus"
    args.baudrate = args.baudrate or (2400 if framed else 9600)
    args.parity = args.parity or ("E" if framed else "N")

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with contextlib.AsyncExitStack() as stack:
            line = f"{args.baudrate} 8{args.parity}1"
            if framed:
                where = await _serve_framed(args, clock, faults, stack)
            elif args.listen is not None:
                host, port = args.listen
                fleet = FleetMeterServer(clock, units=args.units, host=host, port=port, **faults)
                await stack.enter_async_context(fleet)
                where = f"on {host} ports {fleet.ports}"
            else:
                path = args.serial
                if args.rtu_pty:
                    path, agent_end = await stack.enter_async_context(pty_pair())
                fleet = FleetMeterServer(
                    clock, units=args.units, serial_port=path, baudrate=args.baudrate, parity=args.parity,
                    **faults,
                )  # fmt: skip
                await stack.enter_async_context(fleet)
                where = f"over Modbus RTU on {path} ({line}), device ids 1..{args.units}"
                if args.rtu_pty:
                    where = (
                        f"over Modbus RTU ({line}), device ids 1..{args.units}; "
                        f"agent serial_port: {agent_end}"
                    )
            print(f"serving {args.units} meters {where}", flush=True)
            await stop.wait()

    try:
        asyncio.run(serve())
    except OSError as err:  # a taken TCP port, a serial port that does not open
        print(f"anju sim meters: {err}", file=sys.stderr)
        return 1
    return 0


async def _serve_framed(
    args: argparse.Namespace, clock: Any, faults: dict[str, Any], stack: contextlib.AsyncExitStack
) -> str:
    """Start a DL/T 645 or CJ/T 188 fleet; say where it answers."""
    from anju.device_sims.dlt645_sim import FrameMeterFleet
    from anju.device_sims.serial_pair import pty_pair

    line = f"{args.baudrate} 8{args.parity}1"
    if args.listen is not None:
        host, port = args.listen
        fleet = FrameMeterFleet(
            clock, protocol=args.protocol, units=args.units, host=host, port=port, **faults
        )
        await stack.enter_async_context(fleet)
        return f"over {args.protocol} on TCP {host}:{fleet.port} (a gateway), addresses 1..{args.units}"
    path, agent_end = args.serial, None
    if args.rtu_pty:
        path, agent_end = await stack.enter_async_context(pty_pair())
    fleet = FrameMeterFleet(
        clock, protocol=args.protocol, units=args.units, serial_port=path, baudrate=args.baudrate,
        parity=args.parity, **faults,
    )  # fmt: skip
    await stack.enter_async_context(fleet)
    where = f"over {args.protocol} on {path} ({line}), addresses 1..{args.units}"
    return where + (f"; agent serial_port: {agent_end}" if agent_end else "")
