"""``anju sim estate``: run one estate's simulated meters and gates until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import signal
from datetime import datetime

from anju_wire import AcceleratedClock


def run_estate(args: argparse.Namespace) -> int:
    """Serve the estate's Modbus meters and publish its gate events on the simulated clock."""
    from anju.device_sims.estate import run_estate_sim
    from anju.device_sims.household import make_estate

    start = datetime.fromisoformat(args.start)
    spec = make_estate(args.estate, n_units=args.units, days=args.days, start=start, seed=args.seed)
    clock = AcceleratedClock(origin_wall=args.origin_wall, origin_sim=start, speed=args.speed)

    async def _main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_estate_sim(
            spec, clock, modbus_host=args.modbus_host, modbus_port=args.modbus_port,
            mqtt_url=args.mqtt_url, stop=stop,
        )

    asyncio.run(_main())
    return 0
