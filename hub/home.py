"""Where the hub keeps its state on this machine; imports nothing of the hub, so every domain may use it."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_data_dir


def default_home() -> Path:
    """Where anju keeps embedded state when ``ANJU_HOME`` is not set: a per-user data directory."""
    return Path(os.environ.get("ANJU_HOME") or user_data_dir("anju", appauthor=False))
