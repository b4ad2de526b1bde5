"""The text the page shows about a domain: its description line, its model card and the plugin table."""

from __future__ import annotations

import re
from typing import Any

from cycletools import store
from cycletools.app.messages import hide_paths
from cycletools.app.served import OWN_GENERATOR, Served, served_file
from cycletools.errors import one_line
from cycletools.registry import get_registry


def weights_card(spec, current: "store.WeightsStatus") -> str:
    """What a weights file here is: its architecture and where it came from (no server paths)."""
    actual = store.file_architecture(current.path)
    architecture = spec.architecture_summary(actual) if actual else spec.architecture_summary()
    if actual and spec.architecture_differences(actual):
        architecture += f" (the domain declares {spec.architecture_summary()})"
    origin = re.sub(r"(imported|distilled) from (\S+)", r"\1 from `\2`", store.origin_text(spec, current))
    title = spec.title + {"fast": " — fast variant", "bundled": " — bundled generator"}.get(current.variant, "")
    return (f"### {title}\n{spec.description}\n\n- weights: {origin}\n- architecture: {architecture}\n"
            f"- family: {spec.family_title}\n- dataset: {spec.dataset or '—'}")


def file_card(served: "Served") -> str:
    """The card of a generator served with --weights: its file's name, architecture and origin, and whether it
    stands for a domain (--plugin) or for itself."""
    from cycletools.domains import summarize_architecture

    loaded = served.loaded
    origin = loaded.metadata.get("cycletools.origin") or "the file given to cycletools serve --weights"
    if served.plugin:
        spec = get_registry().domain(served.plugin)
        what = (f"### {spec.title}: your generator `{served_file(loaded)}`\nServed with --weights as {spec.name}; "
                f"the reverse direction is the domain's own ({spec.reverse or 'none'}).")
    else:
        what = (f"### Your generator: `{served_file(loaded)}`\nServed with --weights; it has no domain, so no "
                "reverse direction.")
    return f"{what}\n\n- weights: {one_line(origin)}\n- architecture: {summarize_architecture(loaded.config)}"


def describe(name: str | None, served: Served | None = None) -> str:
    served = served or Served()
    if not name:
        return ""
    if name == OWN_GENERATOR and served.own_key == OWN_GENERATOR:
        return f"**Your generator** `{served_file(served.loaded)}` (served with --weights; no reverse direction)"
    registry = get_registry()
    spec = registry.domain(name)
    plugin = registry.domain_plugins[name]
    if name == served.own_key:
        weights = f"Weights: **your file** `{served_file(served.loaded)}` (--weights)"
    else:
        used = served.used(spec)
        weights = f"Weights: **{used.state}**"  # where they are is the server's business
        if used.here:
            weights += ("" if used.state == used.variant else f" ({used.variant})") + \
                f" — {hide_paths(store.origin_text(spec, used))}"
        others = [f"**{current.state}**" if current.state == current.variant  # "bundled", "fast **cached**"
                  else f"{current.variant} **{current.state}**"
                  for current in store.here(spec) if current.variant != used.variant]
        if others:
            weights += "; also here: " + ", ".join(others)
    lines = [f"**{spec.title}** — {spec.description or spec.family_title}", weights + f" · plugin `{plugin.label}`"]
    if spec.reverse:
        lines.append(f"Reverse direction: `{spec.reverse}`")
    if not store.usable(spec) and name != served.own_key:
        lines.append("These weights are not here yet: fetch them in the Plugins tab.")
    return "  \n".join(lines)


def model_card(name: str | None, served: Served) -> str:
    """The cards of the generators here, the one in use first: a bundled file's own card, else what the file
    here is (an imported file's architecture and origin, not the official download's), else the official
    source; a generator served with --weights gets its file's card."""
    if not name:
        return ""
    if name == served.own_key:
        return file_card(served)
    spec = get_registry().domain(name)
    used = served.used(spec)
    sections = []
    for current in sorted(store.here(spec), key=lambda current: current.variant != used.variant):
        card = current.path.with_suffix(".md")
        if current.state == "bundled" and card.is_file():
            sections.append(card.read_text(encoding="utf-8"))
        else:
            sections.append(weights_card(spec, current))
    if sections:
        return "\n\n---\n\n".join(sections)
    source = spec.sources[0].url if spec.sources else "none"
    return (f"### {spec.title}\n{spec.description}\n\n- family: {spec.family_title}\n- architecture: "
            f"{spec.architecture_summary()}\n- download source: {source}\n- dataset: {spec.dataset or '—'}\n\n"
            "No weights are here yet.")


def plugin_table(served: Served) -> list[list[Any]]:
    """One row per domain (name, family, what it does, plugin, architecture, weights), then the broken plugins."""
    registry = get_registry()
    rows = []
    for name, spec in sorted(registry.domains.items()):
        info = registry.domain_plugins[name]
        dist = f"{info.distribution} {info.version}" if info.distribution else "-"
        rows.append([name, spec.family_title, spec.title, f"{info.name} ({dist})",
                     store.architecture_text(spec), store.status_text(spec, served.device_type)])
    for problem in registry.problems:
        rows.append([problem.plugin.name, "—", f"failed: {problem.error}", problem.plugin.label, "—", "—"])
    return rows
