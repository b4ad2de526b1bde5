"""cycletools: unpaired image-to-image translation with CycleGAN.

The public API is imported lazily so that ``import cycletools`` (and the CLI's
``--help``) stay fast::

    from cycletools import Translator, get_generator
    translator = Translator.from_loaded(get_generator("horse2zebra"))
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "Translator": "cycletools.pipelines.translator",
    "CycleGANTrainer": "cycletools.training.trainer",
    "TrainConfig": "cycletools.training.config",
    "resolve_config": "cycletools.training.config",
    "ResnetGenerator": "cycletools.models.generator",
    "NLayerDiscriminator": "cycletools.models.discriminator",
    "get_generator": "cycletools.resolver",
    "LoadedGenerator": "cycletools.resolver",
    "load_generator": "cycletools.weights",
    "save_generator": "cycletools.weights",
    "CycletoolsError": "cycletools.errors",
    "DomainSpec": "cycletools.domains",
    "WeightsSource": "cycletools.domains",
    "hookimpl": "cycletools.hookspecs",
    "get_registry": "cycletools.registry",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'cycletools' has no attribute {name!r}")
