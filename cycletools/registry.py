"""The plugin registry: loads every plugin of the ``cycletools`` entry-point group, once, lazily.

Built-in domains (the ``cycletools_plugins`` package) are registered through the same
entry-point group as third-party ones. The registry owns what plugins contribute: domains,
generator architectures (beside the core ones in ``cycletools.architectures``), weights adapters
and CLI commands.

A plugin is all or nothing. Its hooks register into a staging area first; every value they hand
over is checked (a hook that raises, returns something instead of calling ``register``, registers
an invalid spec, a non-callable, a name that is taken, a domain whose architecture or reverse is
registered nowhere, a command without a handler...). A plugin with any problem keeps none of its
registrations and holds none of its names: each of its problems is reported (a warning, and a line
in ``cycletools plugins``) and it is skipped, while the others keep working.

``CYCLETOOLS_PLUGINS`` limits third-party loading: unset loads all, ``a,b`` loads only the entry
points named a and b (a name no installed plugin has is warned about), an empty value loads none
(built-ins always load).
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import importlib.metadata
import os
import signal
import sys
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import pluggy

from cycletools import hookspecs
from cycletools.architectures import CORE_ARCHITECTURES
from cycletools.domains import (
    NAME_PATTERN,
    DomainSpec,
    shown,
    unsafe_text,
    validate_spec,
)
from cycletools.errors import CycletoolsError, first_line, one_line

ENTRY_POINT_GROUP = "cycletools"
BUILTIN_DISTRIBUTION = "cycletools"
PLUGINS_ENV = "CYCLETOOLS_PLUGINS"
CORE = "cycletools"  # the owner of the core architectures and commands
CORE_COMMANDS = frozenset({"train", "translate", "video", "webcam", "serve", "eval", "export", "distill", "plugins",
                           "weights"})
HOOKS = ("register_architectures", "register_domains", "register_weights_adapters", "register_commands")


@dataclass
class PluginInfo:
    """A loaded (or failed) plugin, the distribution that provides it, and what it registered."""

    name: str
    distribution: str | None = None
    version: str | None = None
    builtin: bool = False
    module: Any = None
    domains: list[str] = field(default_factory=list)
    architectures: list[str] = field(default_factory=list)
    adapters: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    rejected: bool = False

    @property
    def label(self) -> str:
        dist = f"{self.distribution} {self.version}" if self.distribution else "(no distribution)"
        return f"{self.name} ({dist})"


@dataclass
class PluginProblem:
    """Something a plugin did wrong; the whole plugin was skipped."""

    plugin: PluginInfo
    error: str


@dataclass
class Staged:
    """What one plugin's hooks registered, held back until all of it is known to be valid."""

    domains: list[DomainSpec] = field(default_factory=list)
    architectures: dict[str, Callable] = field(default_factory=dict)
    adapters: dict[str, Callable] = field(default_factory=dict)
    commands: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class Registry:
    """Domains, architectures, weights adapters and commands contributed by plugins."""

    def __init__(self) -> None:
        self.manager = pluggy.PluginManager("cycletools")
        self.manager.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self.problems: list[PluginProblem] = []
        self.domains: dict[str, DomainSpec] = {}
        self.domain_plugins: dict[str, PluginInfo] = {}
        self.architectures: dict[str, Callable] = {}
        self.architecture_plugins: dict[str, PluginInfo] = {}
        self.adapters: dict[str, Callable] = {}
        self.adapter_plugins: dict[str, PluginInfo] = {}
        self.skipped_domains: dict[str, PluginInfo] = {}  # what rejected plugins tried to register
        self._collected: set[str] = set()

    # ----------------------------------------------------------------- loading
    def load_entry_points(self, entry_points: Iterable[importlib.metadata.EntryPoint] | None = None) -> "Registry":
        """Import and register every allowed entry point, then collect what their hooks register."""
        if entry_points is None:
            entry_points = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
        allowed = _allowed_third_party()
        ordered = sorted(entry_points, key=lambda ep: (not _is_builtin(ep), ep.name))
        _warn_unmatched(allowed or set(), ordered)
        for ep in ordered:
            builtin = _is_builtin(ep)
            if not builtin and allowed is not None and ep.name not in allowed:
                continue
            dist = getattr(ep, "dist", None)
            if len(ep.name) > 64 or unsafe_text(ep.name):  # shown in tables and warnings: plain and short
                info = PluginInfo(shown(ep.name).strip("'"), dist.name if dist else None,
                                  dist.version if dist else None, builtin)
                self._problem(info, "a plugin's name must be plain text of at most 64 characters; not loaded")
                continue
            info = PluginInfo(ep.name, dist.name if dist else None, dist.version if dist else None, builtin)
            try:
                with plugin_code():
                    module = ep.load()
            except Exception as exc:
                self._problem(info, f"failed to import {ep.value}: {_reason(exc)}")
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
            self._problem(info, f"not a valid plugin: {_whole_message(exc)}")
            return None
        info.module = module
        self.plugins[info.name] = info
        return info

    def collect(self) -> None:
        """Call every registration hook of the plugins not collected yet; keep each plugin whole or not at all."""
        pending = [info for name, info in self.plugins.items() if name not in self._collected]
        self._collected.update(info.name for info in pending)
        staged = {info.name: self._stage(info) for info in pending}
        problems = self._settle(pending, staged)
        for info in pending:
            if problems[info.name]:
                self._reject(info, problems[info.name], [spec.name for spec in staged[info.name].domains])
            else:
                self._accept(info, staged[info.name])

    def _settle(self, pending: list[PluginInfo], staged: dict[str, Staged]) -> dict[str, list[str]]:
        """Every problem of every pending plugin; a plugin without any is accepted.

        A domain's architecture and reverse must be registered by an accepted plugin (or its own); a
        plugin that fails that is left out, and the names are shared out again without it, until
        nothing changes.
        """
        left_out: dict[str, list[str]] = {}  # left out for a missing architecture or reverse, and why
        while True:
            accepted, problems = self._share_names(pending, staged, left_out)
            architectures = {*CORE_ARCHITECTURES, *self.architectures,
                             *(name for info in accepted for name in staged[info.name].architectures)}
            domains = {*self.domains, *(spec.name for info in accepted for spec in staged[info.name].domains)}
            missing = {info.name: _missing(staged[info.name], architectures, domains) for info in pending}
            newly = {info.name: missing[info.name] for info in accepted if missing[info.name]}
            if not newly:
                return {name: [*found, *(missing[name] or left_out.get(name, []))] for name, found in problems.items()}
            left_out.update(newly)

    def _share_names(self, pending: list[PluginInfo], staged: dict[str, Staged],
                     left_out: dict[str, list[str]]) -> tuple[list[PluginInfo], dict[str, list[str]]]:
        """In load order, a plugin keeps its names unless cycletools or an accepted plugin has one of them;
        a plugin with a problem holds none. Returns the plugins accepted so far and each one's problems."""
        owners, accepted, problems = self._owners(), [], {}
        for info in pending:
            problems[info.name] = [*staged[info.name].problems, *_taken(staged[info.name], owners)]
            if not problems[info.name] and info.name not in left_out:
                accepted.append(info)
                owners.update({key: info.name for key in _names(staged[info.name])})
        return accepted, problems

    def _owners(self) -> dict[tuple[str, str], str]:
        """Who has each name already: cycletools itself, or an accepted plugin."""
        owners = {("architecture", name): CORE for name in CORE_ARCHITECTURES}
        owners.update({("command", name): CORE for name in core_commands()})
        for kind, table in (("domain", self.domain_plugins), ("architecture", self.architecture_plugins),
                            ("weights adapter", self.adapter_plugins)):
            owners.update({(kind, name): info.name for name, info in table.items()})
        owners.update({("command", name): info.name for info in self.plugins.values() if not info.rejected
                       for name in info.commands})
        return owners

    def _stage(self, info: PluginInfo) -> Staged:
        staged = Staged()

        def add_architecture(name: Any, factory: Any) -> None:
            if not isinstance(name, str) or not NAME_PATTERN.match(name):
                staged.problems.append(f"architecture name {name!r} must be 1-64 lowercase letters, digits, "
                                       "'_' or '-'")
            elif not callable(factory):
                staged.problems.append(f"architecture {name!r}: the factory is a {type(factory).__name__}, "
                                       "not a callable that builds a torch.nn.Module")
            elif name in staged.architectures:
                staged.problems.append(f"architecture {name!r} is registered twice")
            else:
                staged.architectures[name] = factory

        def add_domain(spec: Any) -> None:
            try:
                validate_spec(spec, None)  # its architecture is checked once every plugin's are known
            except CycletoolsError as exc:
                staged.problems.append(str(exc))
                return
            if any(other.name == spec.name for other in staged.domains):
                staged.problems.append(f"domain {spec.name!r} is registered twice")
            else:
                staged.domains.append(spec)

        def add_adapter(name: Any, adapter: Any) -> None:
            if not isinstance(name, str) or not name.strip():
                staged.problems.append(f"weights adapter name {name!r} must be a non-empty string")
            elif not callable(adapter):
                staged.problems.append(f"weights adapter {name!r} is a {type(adapter).__name__}, not a callable "
                                       "taking a state_dict")
            elif name in staged.adapters:
                staged.problems.append(f"weights adapter {name!r} is registered twice")
            else:
                staged.adapters[name] = adapter

        callbacks = {"register_architectures": {"register": add_architecture},
                     "register_domains": {"register": add_domain},
                     "register_weights_adapters": {"register": add_adapter}}
        for hook, kwargs in callbacks.items():
            self._call(info, hook, kwargs, staged)
        trial = argparse.ArgumentParser(prog="cycletools").add_subparsers()
        self._call(info, "register_commands", {"commands": trial}, staged)
        for name, parser in trial.choices.items():
            if not callable(parser.get_default("handler")):
                staged.problems.append(f"command {name!r} has no handler (call set_defaults(handler=function) "
                                       "on its parser)")
            staged.commands.append(name)
        return staged

    def _call(self, info: PluginInfo, hook: str, kwargs: dict[str, Any], staged: Staged) -> None:
        for impl in getattr(self.manager.hook, hook).get_hookimpls():
            if impl.plugin_name != info.name:
                continue
            try:
                with plugin_code():
                    returned = impl.function(*[kwargs[name] for name in impl.argnames])
            except Exception as exc:
                staged.problems.append(_hook_failure(hook, exc))
                continue
            if returned is not None:
                staged.problems.append(f"{hook} returned a {type(returned).__name__} instead of registering through "
                                       f"its callback (call {next(iter(kwargs))}(...) for each item; the hook "
                                       "returns nothing)")

    def _accept(self, info: PluginInfo, staged: Staged) -> None:
        for name, factory in staged.architectures.items():
            self.architectures[name], self.architecture_plugins[name] = factory, info
        for spec in staged.domains:
            self.domains[spec.name], self.domain_plugins[spec.name] = spec, info
        for name, adapter in staged.adapters.items():
            self.adapters[name], self.adapter_plugins[name] = adapter, info
        info.architectures, info.adapters = list(staged.architectures), list(staged.adapters)
        info.domains, info.commands = [spec.name for spec in staged.domains], list(staged.commands)

    def _reject(self, info: PluginInfo, problems: list[str], domains: Iterable[str] = ()) -> None:
        """Drop everything ``info`` registered and report why (each problem once, all together)."""
        for table, owners in ((self.domains, self.domain_plugins), (self.architectures, self.architecture_plugins),
                              (self.adapters, self.adapter_plugins)):
            for name in [name for name, owner in owners.items() if owner is info]:
                del table[name], owners[name]
        self.skipped_domains.update({name: info for name in [*domains, *info.domains]
                                     if name not in self.domains})
        info.domains, info.architectures, info.adapters, info.commands = [], [], [], []
        info.rejected = True
        for problem in dict.fromkeys(problems):
            self._problem(info, problem)

    def add_commands(self, commands: Any) -> None:
        """Let the accepted plugins add their subcommands to the CLI's argparse sub-parsers."""
        for info in self.plugins.values():
            if info.rejected or not info.commands:
                continue
            taken = [name for name in info.commands if name in commands.choices]
            if taken:
                self._reject(info, [f"command {name!r} is already a cycletools command" for name in taken])
                continue
            for impl in self.manager.hook.register_commands.get_hookimpls():
                if impl.plugin_name == info.name:
                    try:
                        with plugin_code():
                            impl.function(PluginCommands(commands, info.commands))
                    except Exception as exc:  # it passed the trial run; report a change of mind all the same
                        self._reject(info, [_hook_failure("register_commands", exc)])

    def _problem(self, info: PluginInfo, error: str) -> None:
        self.problems.append(PluginProblem(info, error))
        warnings.warn(f"plugin {info.name!r}: {error}", stacklevel=2)

    # ----------------------------------------------------------------- lookup
    def domain(self, name: str) -> DomainSpec:
        """The domain called ``name``, or an error that says why there is none or suggests the closest names."""
        if not isinstance(name, str):
            raise CycletoolsError(f"a domain is named by a string, not a {type(name).__name__}")
        try:
            return self.domains[name]
        except KeyError:
            raise CycletoolsError(f"no domain plugin called {name!r}{self._missing_domain_hint(name)}") from None

    def _missing_domain_hint(self, name: str) -> str:
        plugin, skipped = self.plugins.get(name), self.skipped_domains.get(name)
        if plugin is not None and plugin.domains:
            return f": {name!r} is a plugin; its domains are {', '.join(plugin.domains)}"
        if plugin is not None and plugin.rejected:
            return f": {name!r} is a plugin, and it was skipped ({self._skipped_because(plugin)})"
        if plugin is not None:
            return f": {name!r} is a plugin that registers no domain"
        if skipped is not None:
            return f": its plugin {skipped.name!r} was skipped ({self._skipped_because(skipped)})"
        close = difflib.get_close_matches(name, self.domains, n=3)
        return f"; did you mean {' or '.join(close)}?" if close else "; 'cycletools plugins' lists them"

    def _skipped_because(self, info: PluginInfo) -> str:
        errors = [problem.error for problem in self.problems if problem.plugin is info]
        more = f"; {len(errors) - 1} more in 'cycletools plugins'" if len(errors) > 1 else ""
        return f"{errors[0]}{more}" if errors else "see 'cycletools plugins'"


class PluginCommands:
    """What ``register_commands`` is given for real: ``add_parser`` for the commands the plugin declared in its
    trial run, and nothing else (argparse's own object would let it replace a core command's handler). The
    sub-parsers are held in a closure, not an attribute; a plugin runs with the user's rights all the same,
    so this guards against mistakes, not against a plugin that means harm."""

    def __init__(self, commands: Any, names: list[str]):
        allowed = set(names)

        def add_parser(name: str, **kwargs: Any) -> argparse.ArgumentParser:
            if name not in allowed:
                raise CycletoolsError(f"register_commands added {name!r}, which its first run did not")
            return commands.add_parser(name, **kwargs)

        self.add_parser = add_parser


class PluginEscape(Exception):
    """A plugin tried to end the process (sys.exit, a KeyboardInterrupt that no Ctrl-C caused)."""


@contextlib.contextmanager
def plugin_code():
    """Run a plugin's import or hook: what it prints goes to stderr (stdout carries cycletools' own output,
    ``plugins --json`` included), and ``sys.exit`` or a KeyboardInterrupt it raises itself becomes an ordinary
    error (``PluginEscape``), so that one plugin cannot end every command. A real Ctrl-C still stops."""
    pressed = []
    previous = None
    if threading.current_thread() is threading.main_thread():
        def interrupted(signum, frame):
            pressed.append(signum)
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGINT, interrupted)
    try:
        with contextlib.redirect_stdout(sys.stderr), _descriptor_1_to_stderr():
            yield
    except SystemExit as exc:
        raise PluginEscape(f"called sys.exit({exc.code!r})") from None
    except KeyboardInterrupt:
        if pressed:
            raise
        raise PluginEscape("raised KeyboardInterrupt without a Ctrl-C") from None
    except Exception:
        raise  # an ordinary error: the caller reports it
    except BaseException as exc:  # GeneratorExit, a plugin's own BaseException: still only this plugin's problem
        raise PluginEscape(f"raised {first_line(exc, with_type=True)}") from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def _descriptor_1_to_stderr():
    """What a plugin writes to file descriptor 1 itself (``os.write``, a C library) goes to stderr meanwhile."""
    try:
        sys.stdout.flush()
        saved = os.dup(1)
        os.dup2(2, 1)
    except (OSError, ValueError):  # no descriptor 1 or 2 (a closed stdout): nothing to protect
        yield
        return
    try:
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _reason(exc: Exception) -> str:
    """What went wrong in a plugin's code, in one line: ``RuntimeError: …``, or what a PluginEscape says."""
    return one_line(str(exc) if isinstance(exc, PluginEscape) else first_line(exc, with_type=True))


def _hook_failure(hook: str, exc: Exception) -> str:
    """``register_domains raised RuntimeError: …``, or ``register_domains called sys.exit(5)``."""
    return f"{hook} {'' if isinstance(exc, PluginEscape) else 'raised '}{_reason(exc)}"


def _names(staged: Staged) -> list[tuple[str, str]]:
    """Every name a plugin's hooks registered, as ``(kind, name)``."""
    return [*(("architecture", name) for name in staged.architectures),
            *(("weights adapter", name) for name in staged.adapters),
            *(("domain", spec.name) for spec in staged.domains),
            *(("command", name) for name in staged.commands)]


def _taken(staged: Staged, owners: dict[tuple[str, str], str]) -> list[str]:
    """The names of ``staged`` that cycletools or another accepted plugin already has."""
    problems = []
    for kind, name in _names(staged):
        owner = owners.get((kind, name))
        if owner == CORE:
            problems.append(f"{kind} {name!r} is already a cycletools {kind}")
        elif owner is not None:
            problems.append(f"{kind} {name!r} is already registered by plugin {owner!r}")
    return problems


def _missing(staged: Staged, architectures: set[str], domains: set[str]) -> list[str]:
    """Domains whose architecture or reverse domain is registered nowhere (the plugin's own count)."""
    architectures = architectures | set(staged.architectures)
    domains = domains | {spec.name for spec in staged.domains}
    problems = []
    for spec in staged.domains:
        if spec.architecture["arch"] not in architectures:
            problems.append(f"invalid domain {spec.name!r}: unknown architecture {spec.architecture['arch']!r} "
                            f"(known: {', '.join(sorted(architectures))})")
        if spec.reverse is not None and spec.reverse not in domains:
            problems.append(f"invalid domain {spec.name!r}: reverse {spec.reverse!r} names no registered domain "
                            "(register it too, or leave reverse out)")
    return problems


def core_commands() -> frozenset[str]:
    """The names of cycletools' own commands, which no plugin may take (the CLI's; a test keeps them in step)."""
    return CORE_COMMANDS


def _whole_message(exc: BaseException) -> str:
    """All of an exception's message on one line (pluggy says what is wrong on its second line)."""
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _is_builtin(ep: importlib.metadata.EntryPoint) -> bool:
    dist = getattr(ep, "dist", None)
    return dist is not None and dist.name == BUILTIN_DISTRIBUTION


def _warn_unmatched(allowed: set[str], entry_points: list[importlib.metadata.EntryPoint]) -> None:
    """Warn about each name in CYCLETOOLS_PLUGINS that no installed plugin has."""
    installed = sorted({ep.name for ep in entry_points if not _is_builtin(ep)})
    for name in sorted(allowed - {ep.name for ep in entry_points}):
        close = difflib.get_close_matches(name, installed, n=3)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        warnings.warn(f"{PLUGINS_ENV} names {name!r}, which no installed plugin is called "
                      f"(installed: {', '.join(installed) or 'none'}){hint}", stacklevel=3)


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
    """Forget the loaded registry, and with it every plugin's architectures and adapters."""
    global _REGISTRY
    _REGISTRY = None
