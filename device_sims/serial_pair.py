"""A serial line for tests and demos: two pseudo-terminals wired to each other, as an RS-485 pair."""

from __future__ import annotations

import asyncio
import os
import tty
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


@asynccontextmanager
async def pty_pair() -> AsyncIterator[tuple[str, str]]:
    """Two serial device paths wired to each other, like two USB RS-485 adapters on one pair of wires.

    Yields (one end, other end): a Modbus RTU server opens one, the agent (or any RTU client) the other.
    Bytes are relayed by the running event loop between the two pseudo-terminals' master sides; both
    lines are raw (no echo, no line discipline) from the start, so nothing is echoed into the bus
    before a client has opened its end.
    """
    loop = asyncio.get_running_loop()
    (ma, sa), (mb, sb) = os.openpty(), os.openpty()
    for fd in (sa, sb):
        tty.setraw(fd)
    for fd in (ma, mb):
        os.set_blocking(fd, False)

    def relay(src: int, dst: int) -> None:
        try:
            data = os.read(src, 4096)
        except BlockingIOError:
            return
        os.write(dst, data)

    loop.add_reader(ma, relay, ma, mb)
    loop.add_reader(mb, relay, mb, ma)
    try:
        yield os.ttyname(sa), os.ttyname(sb)
    finally:
        loop.remove_reader(ma)
        loop.remove_reader(mb)
        for fd in (ma, sa, mb, sb):
            os.close(fd)
