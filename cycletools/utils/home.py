"""The user's cycletools folder, where the weights cache, the Hub cache and exports live."""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "CYCLETOOLS_HOME"


def home() -> Path:
    """The user's cycletools folder: ``$CYCLETOOLS_HOME`` or ``~/.cache/cycletools``."""
    return Path(os.environ.get(HOME_ENV) or Path.home() / ".cache" / "cycletools")
