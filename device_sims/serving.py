"""What the meter simulators share: served by ``start``/``stop``, or as an async context manager."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class Served:
    """A simulator that ``start`` brings up and ``stop`` takes down; ``async with`` does both."""

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
