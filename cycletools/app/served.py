"""What ``cycletools serve`` serves: which domains, which of each domain's generators, a generator file of
the operator's own, and the domain picker's entries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cycletools import store
from cycletools.errors import CycletoolsError
from cycletools.registry import get_registry

OWN_GENERATOR = "--weights"  # the picker's value for a generator served with --weights alone (no domain's name)


@dataclass
class Served:
    """What ``cycletools serve`` shows first: a domain (--plugin), a generator file (--weights) for it or on
    its own, and which of each domain's generators (--variant) the app uses."""

    plugin: str | None = None
    weights: str | None = None
    variant: str = "auto"
    device_type: str = "cpu"
    loaded: Any = None  # the --weights generator, once loaded

    @property
    def own_key(self) -> str | None:
        """The picker value the --weights generator is under: its domain, or OWN_GENERATOR."""
        return None if self.weights is None else (self.plugin or OWN_GENERATOR)

    def used(self, spec) -> "store.WeightsStatus":
        """The generator of ``spec`` the app translates with: --variant's, or what auto picks on this device."""
        return store.in_use(spec, self.device_type) if self.variant == "auto" else store.status(spec, self.variant)


def domain_choices(served: Served | None = None) -> list[tuple[str, str]]:
    """Dropdown entries grouped by family: "Family · Title (name) — weights status"; a generator served with
    --weights alone comes first."""
    served = served or Served()
    registry = get_registry()
    rows = []
    for name, spec in registry.domains.items():
        if name == served.own_key:
            status = f"your {served_file(served.loaded)}"
        elif served.variant == "auto":
            status = store.status_text(spec, served.device_type)
        else:  # what the app uses is the variant asked for, or nothing
            status = f"{served.used(spec).state} ({served.variant})"
        rows.append((spec.family_title, spec.title, f"{spec.family_title} · {spec.title} ({name}) — {status}", name))
    own = [(f"Your generator · {served_file(served.loaded)} (--weights)", OWN_GENERATOR)] \
        if served.own_key == OWN_GENERATOR else []
    return own + [(label, name) for _, _, label, name in sorted(rows)]


def served_file(loaded) -> str:
    """How the --weights file is named on the page: an hf:// file with the commit it resolved to, else its name."""
    return loaded.downloaded_from or loaded.source.name


def default_domain(served: Served | None = None) -> str | None:
    """--plugin's domain or the --weights generator, else horse2zebra where a generator of it is here, else the
    first domain that has one."""
    served = served or Served()
    if served.plugin or served.own_key:
        return served.plugin or served.own_key
    registry = get_registry()
    usable = [name for name, spec in registry.domains.items() if store.usable(spec)]
    return "horse2zebra" if "horse2zebra" in usable else (sorted(usable) or [None])[0]


DIRECTIONS = ("forward", "reverse")


def resolve_direction(name: str, direction: str) -> str:
    if direction not in DIRECTIONS:
        raise CycletoolsError(f"unknown direction {str(direction)[:40]!r}: choose forward or reverse")
    if direction == "reverse":
        if name == OWN_GENERATOR:
            raise CycletoolsError("a generator served with --weights alone has no reverse direction")
        spec = get_registry().domain(name)
        if not spec.reverse:
            raise CycletoolsError(f"{name} has no reverse direction")
        return spec.reverse
    return name
