"""anju case-work commands (users, audit)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    """Add this group's subcommands to the ``anju`` parser (none yet)."""


def run(args: argparse.Namespace) -> int | None:
    """Run the command if it belongs to this group; None otherwise."""
    return None
