"""``cycletools plugins``: every registered domain pair, who registered it, and its weights status."""

from __future__ import annotations

import argparse
import json
import sys


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "plugins", help="list the registered domain pairs and their weights status",
        description="List every registered domain pair: name, family, what it does, the plugin and "
                    "distribution that registered it, the generator architecture and the weights status "
                    "(bundled / cached / downloadable / missing: the generator --plugin NAME uses on the CPU "
                    "first, then the others here); then the plugins that register no domain "
                    "(only architectures, weights adapters or commands), and those that failed to load, "
                    "with every problem each has. CYCLETOOLS_PLUGINS=a,b limits third-party plugins to "
                    "those entry points (empty: none).")
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    parser.set_defaults(handler=run_plugins)


def plugin_rows() -> list[dict]:
    """One object per domain (``kind`` "domain"), one per plugin that registers no domain (``kind``
    "plugin": its architectures, weights adapters and commands), then one per plugin problem (``kind``
    "problem", ``error`` set), a plugin's problems next to each other."""
    from cycletools.registry import get_registry

    registry = get_registry()
    rows = [domain_row(name, spec, registry.domain_plugins[name]) for name, spec in registry.domains.items()]
    rows += [{**plugin_fields(info), "name": info.name, "kind": "plugin", "family": None, "title": None,
              "weights": None, "architectures": info.architectures, "adapters": info.adapters,
              "commands": info.commands, "error": None}
             for info in registry.plugins.values() if not info.rejected and not info.domains]
    order = list(dict.fromkeys(problem.plugin.name for problem in registry.problems))
    for problem in sorted(registry.problems, key=lambda problem: order.index(problem.plugin.name)):
        rows.append({**plugin_fields(problem.plugin), "name": problem.plugin.name, "kind": "problem", "family": None,
                     "title": None, "weights": None, "error": problem.error})
    return rows


def plugin_fields(info) -> dict:
    return {"plugin": info.name, "distribution": info.distribution, "version": info.version, "builtin": info.builtin}


def domain_row(name: str, spec, info) -> dict:
    """A domain and its weights: ``weights`` is the state of the generator --plugin NAME uses on the CPU
    (``weights_variant``, where it came from in ``weights_origin``), then each generator's own state."""
    from cycletools import store

    weights = store.in_use(spec)
    return {
        "name": name, "kind": "domain", "family": spec.family, "family_title": spec.family_title,
        "title": spec.title, "description": spec.description, "source": spec.source, "target": spec.target,
        "reverse": spec.reverse, **plugin_fields(info), "architecture": dict(spec.architecture),
        "weights_architecture": store.weights_architecture(spec),
        "architecture_text": store.architecture_text(spec),
        "weights": weights.state, "weights_variant": weights.variant if weights.here else None,
        "weights_path": str(weights.path) if weights.path else None,
        "weights_origin": store.origin_text(spec, weights) if weights.here else None,
        "weights_url": store.status(spec, "full").url,
        **{f"{variant}_weights": store.status(spec, variant).state for variant in store.VARIANTS},
        "status": store.status_text(spec),
        "inference_size": spec.inference_size,
        "train_defaults": dict(spec.train_defaults), "error": None,
    }


def format_table(rows: list[dict]) -> str:
    domains = [r for r in rows if r["kind"] == "domain"]
    header = ("NAME", "FAMILY", "WHAT IT DOES", "PLUGIN", "ARCHITECTURE", "WEIGHTS")
    lines = []
    for row in sorted(domains, key=lambda r: (r["family"], r["name"])):
        lines.append((row["name"], row["family_title"], row["title"], f"{row['plugin']} ({distribution(row)})",
                      row["architecture_text"], row["status"]))
    widths = [max(len(str(line[i])) for line in [header, *lines]) for i in range(len(header))]
    text = ["  ".join(str(cell).ljust(width) for cell, width in zip(line, widths)).rstrip()
            for line in [header, *lines]]
    if not domains:
        text.append("(no domains registered)")
    others = [r for r in rows if r["kind"] == "plugin"]
    if others:
        text += ["", "Plugins without domains:"]
        text += [f"  {r['plugin']} ({distribution(r)}): {contributions(r)}" for r in others]
    problems = [r for r in rows if r["kind"] == "problem"]
    if problems:
        text += ["", "Plugins with problems (skipped):"]
        text += [f"  {r['plugin']} ({r['distribution'] or 'no distribution'}): {r['error']}" for r in problems]
    return "\n".join(text)


def distribution(row: dict) -> str:
    return f"{row['distribution']} {row['version']}" if row["distribution"] else "-"


def contributions(row: dict) -> str:
    """``architectures wide; weights adapters netg`` for a plugin that registers no domain."""
    parts = [f"{label} {', '.join(row[key])}" for key, label in
             (("architectures", "architectures"), ("adapters", "weights adapters"), ("commands", "commands"))
             if row[key]]
    return "; ".join(parts) or "registers nothing"


def run_plugins(args: argparse.Namespace) -> int:
    from cycletools.cli import output

    stream = output.results_stream() if args.json else sys.stdout  # JSON alone, whatever a plugin prints
    rows = plugin_rows()
    print(json.dumps(rows, indent=2, ensure_ascii=False) if args.json else format_table(rows), file=stream)
    return 0
