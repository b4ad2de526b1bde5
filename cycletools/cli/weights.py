"""``cycletools weights``: list, fetch, import and inspect generator weights."""

from __future__ import annotations

import argparse
import json


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "weights", help="list, fetch, import or inspect generator weights",
        description="Manage the weights of registered domains. Weights are looked for in this order: an "
                    "explicit --weights file, the plugin's bundled file, the user cache ($CYCLETOOLS_HOME/"
                    "weights, default ~/.cache/cycletools/weights), then a download on request.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(title="actions", metavar="ACTION", dest="action", required=True)

    listing = actions.add_parser("list", help="weights status and location of every domain")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=run_list)

    fetch = actions.add_parser("fetch", help="download a domain's weights into the cache")
    fetch.add_argument("names", nargs="+", metavar="NAME", help="domain names (see 'cycletools plugins')")
    fetch.add_argument("--force", action="store_true", help="download again even if cached")
    fetch.set_defaults(handler=run_fetch)

    imports = actions.add_parser("import", help="store a .pth/.safetensors file or a training run as a "
                                                "domain's weights (converted to safetensors)")
    imports.add_argument("source", metavar="FILE|RUN_DIR")
    imports.add_argument("--plugin", required=True, metavar="NAME", help="the domain these weights are for")
    imports.add_argument("--direction", choices=("a2b", "b2a"), default=None,
                         help="with a run folder: which generator (default: the domain's own)")
    imports.add_argument("--variant", choices=("full", "fast"), default="full",
                         help="full generator, or the compact fast student (default: full)")
    imports.set_defaults(handler=run_import)

    info = actions.add_parser("info", help="architecture, parameter count and origin of a weights file")
    info.add_argument("file", metavar="FILE")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(handler=run_info)


def run_list(args: argparse.Namespace) -> int:
    from cycletools import store
    from cycletools.registry import get_registry

    registry = get_registry()
    rows = []
    for name, spec in sorted(registry.domains.items()):
        status = store.status(spec)
        rows.append({"name": name, "variant": "full", "weights": status.state,
                     "path": str(status.path) if status.path else None,
                     "url": status.url, "cache": str(store.cached_path(spec) or store.local_file(spec))})
        fast = store.status(spec, "fast")
        if fast.here:
            rows.append({"name": f"{name} (fast)", "variant": "fast", "weights": fast.state, "path": str(fast.path),
                         "url": None, "cache": str(store.local_file(spec, "fast"))})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max((len(r["name"]) for r in rows), default=4)
    for row in rows:
        where = row["path"] or (f"download: {row['url']}" if row["url"] else "none")
        print(f"{row['name'].ljust(width)}  {row['weights'].ljust(12)}  {where}")
    print(f"cache: {store.cache_dir()}")
    return 0


def run_fetch(args: argparse.Namespace) -> int:
    from cycletools import store
    from cycletools.registry import get_registry

    registry = get_registry()
    specs = [registry.domain(name) for name in args.names]
    for spec in specs:
        path = store.fetch(spec, force=args.force, registry=registry)
        print(f"{spec.name}: {path}")
    return 0


def run_import(args: argparse.Namespace) -> int:
    from cycletools import store
    from cycletools.registry import get_registry

    registry = get_registry()
    spec = registry.domain(args.plugin)
    path = store.import_weights(spec, args.source, args.direction, registry=registry, variant=args.variant)
    print(f"{spec.name}: imported {args.source} → {path}")
    config = store.file_architecture(path)
    differences = spec.architecture_differences(config) if args.variant == "full" and config else []
    if differences:
        print(f"note: {spec.name} declares {spec.architecture_summary()}, these weights are "
              f"{spec.architecture_summary(config)} ({', '.join(differences)}); 'cycletools plugins' lists them "
              "as what they are")
    bundled = store.status(spec, args.variant)
    if bundled.state == "bundled":
        print(f"note: {spec.name} also has bundled weights ({bundled.path}), which are used first; "
              f"pass --weights {path} to use these")
    return 0


def weights_info(path: str) -> dict:
    from cycletools.registry import get_registry
    from cycletools.utils.files import file_sha256
    from cycletools.weights import read_metadata, load_generator

    generator, config = load_generator(path, get_registry())
    tensors = generator.state_dict()
    metadata = {k: v for k, v in read_metadata(path).items() if k != "cycletools.generator"}
    return {"file": path, "format": "safetensors" if path.endswith(".safetensors") else "pytorch state_dict",
            "architecture": config, "parameters": sum(p.numel() for p in generator.parameters()),
            "tensors": len(tensors), "sha256": file_sha256(path), "metadata": metadata}


def run_info(args: argparse.Namespace) -> int:
    info = weights_info(args.file)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    arch = info["architecture"]
    print(f"file:          {info['file']} ({info['format']})")
    print(f"architecture:  {arch.get('arch')} " + " ".join(f"{k}={v}" for k, v in arch.items() if k != "arch"))
    print(f"parameters:    {info['parameters']:,} in {info['tensors']} tensors")
    print(f"sha256:        {info['sha256']}")
    for key, value in info["metadata"].items():
        print(f"{key.removeprefix('cycletools.') + ':':<15}{value}")
    return 0
