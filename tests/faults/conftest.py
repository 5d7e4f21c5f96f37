"""Fixtures the fault tests share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.harness import RestartableMosquitto
from tests.services import free_port


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[RestartableMosquitto]:
    """A private Mosquitto the test may stop and start again on the same port."""
    b = RestartableMosquitto(free_port(), tmp_path)
    b.start()
    try:
        yield b
    finally:
        b.stop()
