"""anju bulk data commands (import, detect, alerts export, eval)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any, sim: Any) -> None:
    """Add this group's subcommands to the ``anju`` parser and its ``sim`` group (none yet)."""


def run(args: argparse.Namespace) -> int | None:
    """Run the command if it belongs to this group; None otherwise."""
    return None
