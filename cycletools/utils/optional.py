"""Importing the packages behind optional extras, with one clear error when one is missing."""

from __future__ import annotations

import importlib
from types import ModuleType

from cycletools.errors import CycletoolsError


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module``, or say which extra installs it (``pip install 'cycletools[extra]'``)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise CycletoolsError(f"{purpose} needs {module.split('.')[0]}: pip install 'cycletools[{extra}]'") from None
