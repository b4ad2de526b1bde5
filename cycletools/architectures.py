"""Generator architectures by name (the ``arch`` of a weights file's config), without importing torch.

Built-ins are referenced as ``"module:attribute"`` strings and imported only when a
generator is built; plugins add factories through the ``register_architectures`` hook.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

_FACTORIES: dict[str, Callable[..., Any] | str] = {
    "resnet": "cycletools.models.generator:ResnetGenerator",
    "mobile_resnet": "cycletools.models.mobile:MobileResnetGenerator",  # the compact students (core: distill)
}


def register_architecture(name: str, factory: Callable[..., Any]) -> None:
    """Make ``factory(**config)`` buildable as ``{"arch": name, ...}``."""
    if name in _FACTORIES and _FACTORIES[name] is not factory:
        raise ValueError(f"generator architecture {name!r} is already registered")
    _FACTORIES[name] = factory


def architecture_names() -> list[str]:
    return sorted(_FACTORIES)


def get_factory(name: str) -> Callable[..., Any]:
    """The factory registered as ``name`` (imported on first use)."""
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise ValueError(f"unknown generator architecture {name!r} (known: {', '.join(architecture_names())})") from None
    if isinstance(factory, str):
        module, attribute = factory.split(":")
        factory = _FACTORIES[name] = getattr(importlib.import_module(module), attribute)
    return factory
