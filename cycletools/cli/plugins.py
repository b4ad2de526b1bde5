"""``cycletools plugins``: every registered domain pair, who registered it, and its weights status."""

from __future__ import annotations

import argparse
import json


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "plugins", help="list the registered domain pairs and their weights status",
        description="List every registered domain pair: name, family, what it does, the plugin and "
                    "distribution that registered it, the generator architecture and the weights status "
                    "(bundled / cached / downloadable / missing). Plugins that failed to load are listed "
                    "with their error. CYCLETOOLS_PLUGINS=a,b limits third-party plugins to those "
                    "entry points (empty: none).")
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    parser.set_defaults(handler=run_plugins)


def plugin_rows() -> list[dict]:
    """One object per domain, then one per plugin problem (``error`` set, ``family`` null)."""
    from cycletools import store
    from cycletools.registry import get_registry

    registry = get_registry()
    rows = []
    for name, spec in registry.domains.items():
        info = registry.domain_plugins[name]
        weights = store.status(spec)
        rows.append({
            "name": name, "family": spec.family, "family_title": spec.family_title, "title": spec.title,
            "description": spec.description, "source": spec.source, "target": spec.target,
            "reverse": spec.reverse, "plugin": info.name, "distribution": info.distribution,
            "version": info.version, "builtin": info.builtin, "architecture": dict(spec.architecture),
            "weights_architecture": store.weights_architecture(spec),
            "architecture_text": store.architecture_text(spec),
            "weights": weights.state, "weights_path": str(weights.path) if weights.path else None,
            "weights_url": weights.url, "fast_weights": store.status(spec, "fast").state,
            "status": store.status_text(spec),
            "inference_size": spec.inference_size,
            "train_defaults": dict(spec.train_defaults), "error": None,
        })
    for problem in registry.problems:
        info = problem.plugin
        rows.append({"name": info.name, "family": None, "title": None, "plugin": info.name,
                     "distribution": info.distribution, "version": info.version, "builtin": info.builtin,
                     "weights": None, "error": problem.error})
    return rows


def format_table(rows: list[dict]) -> str:
    domains = [r for r in rows if r["error"] is None]
    header = ("NAME", "FAMILY", "WHAT IT DOES", "PLUGIN", "ARCHITECTURE", "WEIGHTS")
    lines = []
    for row in sorted(domains, key=lambda r: (r["family"], r["name"])):
        arch_text = row["architecture_text"]
        dist = f"{row['distribution']} {row['version']}" if row["distribution"] else "-"
        lines.append((row["name"], row["family_title"], row["title"], f"{row['plugin']} ({dist})", arch_text,
                      row["status"]))
    widths = [max(len(str(line[i])) for line in [header, *lines]) for i in range(len(header))]
    text = ["  ".join(str(cell).ljust(width) for cell, width in zip(line, widths)).rstrip()
            for line in [header, *lines]]
    problems = [r for r in rows if r["error"] is not None]
    if problems:
        text += ["", "Plugins with problems (skipped):"]
        text += [f"  {r['plugin']} ({r['distribution'] or 'no distribution'}): {r['error']}" for r in problems]
    if not domains:
        text.append("(no domains registered)")
    return "\n".join(text)


def run_plugins(args: argparse.Namespace) -> int:
    rows = plugin_rows()
    print(json.dumps(rows, indent=2, ensure_ascii=False) if args.json else format_table(rows))
    return 0
