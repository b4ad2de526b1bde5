"""Generator architectures by name (the ``arch`` of a weights file's config), and building one.

The core architectures are always known, without any plugin or registry: ``resnet`` (the paper's
ResNet generator) and ``mobile_resnet`` (the compact "sub-mobile" ResNet of GAN Compression, what
``cycletools distill`` trains). Plugins add their own through the ``register_architectures`` hook;
those live in the plugin registry, which is passed in where they may be needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Callable, Mapping

from cycletools.errors import CycletoolsError

if TYPE_CHECKING:
    from torch import nn

    from cycletools.registry import Registry

CORE_ARCHITECTURES: Mapping[str, str] = {
    "resnet": "cycletools.models.generator:ResnetGenerator",
    "mobile_resnet": "cycletools.models.mobile:MobileResnetGenerator",
}


def architecture_names(registry: "Registry | None" = None) -> list[str]:
    """The core architectures, plus a registry's plugin architectures."""
    return sorted({*CORE_ARCHITECTURES, *(registry.architectures if registry is not None else ())})


def find_factory(name: str, registry: "Registry | None" = None) -> tuple[Callable[..., Any], str | None]:
    """``(factory, plugin name)`` for ``name``: a core architecture (plugin ``None``) or a registry's."""
    if name in CORE_ARCHITECTURES:
        module, attribute = CORE_ARCHITECTURES[name].split(":")
        return getattr(importlib.import_module(module), attribute), None
    if registry is not None and name in registry.architectures:
        return registry.architectures[name], registry.architecture_plugins[name].name
    hint = "" if registry is not None else \
        ("; a plugin's architecture is found through the plugin registry: cycletools.get_generator(weights=PATH), "
         "or load_generator(PATH, get_registry())")
    raise CycletoolsError(f"unknown generator architecture {name!r} "
                          f"(known: {', '.join(architecture_names(registry))}){hint}")


def build_generator(config: Mapping[str, Any], registry: "Registry | None" = None) -> "nn.Module":
    """Build the generator ``config`` describes, e.g. ``{"arch": "resnet", "ngf": 64, "n_blocks": 9}``.

    A factory must return a ``torch.nn.Module``; its ``config`` attribute (the dict that rebuilds it)
    is set to ``config`` when the module has none or one that names another architecture.
    """
    from torch import nn

    options = dict(config)
    name = options.pop("arch", "resnet")
    factory, plugin = find_factory(name, registry)
    owner = f" (plugin {plugin!r})" if plugin else ""
    try:
        module = factory(**options)
    except Exception as exc:  # a plugin's factory may raise anything; the user gets one line naming it
        raise CycletoolsError(f"architecture {name!r}{owner} cannot be built from {options} "
                              f"({type(exc).__name__}: {exc})") from None
    if not isinstance(module, nn.Module):
        raise CycletoolsError(f"architecture {name!r}{owner} returned {type(module).__name__}, "
                              "not a torch.nn.Module")
    own = getattr(module, "config", None)
    if not isinstance(own, dict) or own.get("arch") != name:
        module.config = {"arch": name, **options}
    return module
