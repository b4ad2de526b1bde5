"""The plugin registry: loads every plugin of the ``cycletools`` entry-point group, once, lazily.

Built-in domains (the top-level ``plugins`` package) are registered through the same
entry-point group as third-party ones. Each plugin is imported and each of its hooks is
called on its own, so a plugin that fails to import, raises in a hook, registers an
invalid spec or a name already taken is reported (a warning, and a line in
``cycletools plugins``) and skipped while the others keep working.

``CYCLETOOLS_PLUGINS`` limits third-party loading: unset loads all, ``a,b`` loads only
the entry points named a and b, an empty value loads none (built-ins always load).
"""

from __future__ import annotations

import difflib
import importlib.metadata
import os
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import pluggy

from cycletools import hookspecs
from cycletools.domains import DomainSpec, validate_spec
from cycletools.errors import CycletoolsError, first_line

ENTRY_POINT_GROUP = "cycletools"
BUILTIN_DISTRIBUTION = "cycletools"
PLUGINS_ENV = "CYCLETOOLS_PLUGINS"


@dataclass
class PluginInfo:
    """A loaded (or failed) plugin and the distribution that provides it."""

    name: str
    distribution: str | None = None
    version: str | None = None
    builtin: bool = False
    module: Any = None
    domains: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        dist = f"{self.distribution} {self.version}" if self.distribution else "(no distribution)"
        return f"{self.name} ({dist})"


@dataclass
class PluginProblem:
    """Something a plugin did wrong; the plugin (or that part of it) was skipped."""

    plugin: PluginInfo
    error: str


class Registry:
    """Domains, architectures and weights adapters contributed by plugins."""

    def __init__(self) -> None:
        self.manager = pluggy.PluginManager("cycletools")
        self.manager.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self.problems: list[PluginProblem] = []
        self.domains: dict[str, DomainSpec] = {}
        self.domain_plugins: dict[str, PluginInfo] = {}
        self.adapters: dict[str, Callable] = {}
        self._collected: set[str] = set()

    # ----------------------------------------------------------------- loading
    def load_entry_points(self, entry_points: Iterable[importlib.metadata.EntryPoint] | None = None) -> "Registry":
        """Import and register every allowed entry point, then collect what their hooks register."""
        if entry_points is None:
            entry_points = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
        allowed = _allowed_third_party()
        ordered = sorted(entry_points, key=lambda ep: (not _is_builtin(ep), ep.name))
        for ep in ordered:
            builtin = _is_builtin(ep)
            if not builtin and allowed is not None and ep.name not in allowed:
                continue
            dist = getattr(ep, "dist", None)
            info = PluginInfo(ep.name, dist.name if dist else None, dist.version if dist else None, builtin)
            try:
                module = ep.load()
            except Exception as exc:
                self._problem(info, f"failed to import {ep.value}: {first_line(exc, with_type=True)}")
                continue
            self.register_plugin(module, info)
        self.collect()
        return self

    def register_plugin(self, module: Any, info: PluginInfo | str) -> PluginInfo | None:
        """Register an already imported plugin object (entry points do this for installed ones)."""
        if isinstance(info, str):
            info = PluginInfo(info)
        if info.name in self.plugins:
            self._problem(info, f"another plugin is already called {info.name!r}")
            return None
        try:
            self.manager.register(module, name=info.name)
            self.manager.check_pending()
        except Exception as exc:
            if self.manager.is_registered(module):
                self.manager.unregister(module)
            self._problem(info, f"not a valid plugin: {first_line(exc, with_type=True)}")
            return None
        info.module = module
        self.plugins[info.name] = info
        return info

    def collect(self) -> None:
        """Call the registration hooks of each plugin not collected yet, one plugin at a time."""
        from cycletools.architectures import architecture_names, register_architecture

        pending = [info for name, info in self.plugins.items() if name not in self._collected]
        self._collected.update(info.name for info in pending)
        for info in pending:
            def add_architecture(name: str, factory: Callable, info=info) -> None:
                try:
                    register_architecture(name, factory)
                except ValueError as exc:
                    self._problem(info, str(exc))

            self._call(info, "register_architectures", register=add_architecture)
        architectures = architecture_names()
        for info in pending:
            self._call(info, "register_domains", register=lambda spec, info=info: self._add_domain(spec, info, architectures))
            self._call(info, "register_weights_adapters",
                       register=lambda name, adapter, info=info: self._add_adapter(name, adapter, info))

    def add_commands(self, commands: Any) -> None:
        """Let plugins add subcommands to the CLI's argparse sub-parsers."""
        for info in self.plugins.values():
            self._call(info, "register_commands", commands=commands)

    def _call(self, info: PluginInfo, hook: str, **kwargs: Any) -> None:
        for impl in getattr(self.manager.hook, hook).get_hookimpls():
            if impl.plugin_name != info.name:
                continue
            try:
                impl.function(*[kwargs[name] for name in impl.argnames])
            except Exception as exc:
                self._problem(info, f"{hook} raised {first_line(exc, with_type=True)}")

    def _add_domain(self, spec: Any, info: PluginInfo, architectures: list[str]) -> None:
        try:
            validate_spec(spec, architectures)
        except CycletoolsError as exc:
            self._problem(info, str(exc))
            return
        if spec.name in self.domains:
            owner = self.domain_plugins[spec.name].name
            self._problem(info, f"domain {spec.name!r} is already registered by plugin {owner!r}; skipped")
            return
        self.domains[spec.name] = spec
        self.domain_plugins[spec.name] = info
        info.domains.append(spec.name)

    def _add_adapter(self, name: str, adapter: Callable, info: PluginInfo) -> None:
        if not callable(adapter):
            self._problem(info, f"weights adapter {name!r} is not callable")
        elif name in self.adapters:
            self._problem(info, f"weights adapter {name!r} is already registered")
        else:
            self.adapters[name] = adapter

    def _problem(self, info: PluginInfo, error: str) -> None:
        self.problems.append(PluginProblem(info, error))
        warnings.warn(f"plugin {info.name!r}: {error}", stacklevel=2)

    # ----------------------------------------------------------------- lookup
    def domain(self, name: str) -> DomainSpec:
        """The domain called ``name``, or an error that suggests the closest names."""
        try:
            return self.domains[name]
        except KeyError:
            close = difflib.get_close_matches(name, self.domains, n=3)
            hint = f"; did you mean {' or '.join(close)}?" if close else "; 'cycletools plugins' lists them"
            raise CycletoolsError(f"no domain plugin called {name!r}{hint}") from None


def _is_builtin(ep: importlib.metadata.EntryPoint) -> bool:
    dist = getattr(ep, "dist", None)
    return dist is not None and dist.name == BUILTIN_DISTRIBUTION


def _allowed_third_party() -> set[str] | None:
    value = os.environ.get(PLUGINS_ENV)
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


_REGISTRY: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, loaded from entry points on first use."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = Registry().load_entry_points()
    return _REGISTRY


def reset_registry() -> None:
    """Forget the loaded registry (tests, or after installing a plugin in-process)."""
    global _REGISTRY
    _REGISTRY = None
