"""``cycletools weights``: list, fetch, import, inspect and publish (push) generator weights."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "weights", help="list, fetch, import, inspect or publish generator weights",
        description="Manage the weights of registered domains. A domain may have three generators: bundled "
                    "(shipped with its plugin), full (the full-size one you fetched or imported, kept in the user "
                    "cache: $CYCLETOOLS_HOME/weights, default ~/.cache/cycletools/weights) and fast (a compact "
                    "student, bundled or imported). --plugin NAME uses --weights FILE when given, else the one "
                    "--variant names; --variant auto (the default) takes full before bundled (you asked for it) "
                    "and, on the CPU, a fast student first. Nothing is downloaded unless you ask. A file on the "
                    "Hugging Face Hub is named hf://OWNER/REPO/PATH[@REVISION] (fetch, import, info, --weights); "
                    "'weights push' publishes a generator with its model card.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(title="actions", metavar="ACTION", dest="action", required=True)

    listing = actions.add_parser("list", help="weights status and location of every domain")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=run_list)

    fetch = actions.add_parser("fetch", help="download a domain's weights, or a file on the Hugging Face Hub, into "
                                             "the cache")
    fetch.add_argument("names", nargs="+", metavar="NAME", help="domain names (see 'cycletools plugins') or "
                       "hf://OWNER/REPO/PATH[@REVISION] files")
    fetch.add_argument("--force", action="store_true", help="download again even if cached (an hf:// file is "
                       "always checked against the Hub's revision)")
    fetch.set_defaults(handler=run_fetch)

    imports = actions.add_parser("import", help="store a .pth/.safetensors file or a training run as a "
                                                "domain's weights (converted to safetensors)")
    imports.add_argument("source", metavar="FILE|RUN_DIR|hf://...")
    imports.add_argument("--plugin", required=True, metavar="NAME", help="the domain these weights are for")
    imports.add_argument("--direction", choices=("a2b", "b2a"), default=None,
                         help="with a run folder: which generator (default: the domain's own)")
    imports.add_argument("--variant", choices=("full", "fast", "bundled"), default="full",
                         help="full generator, or the compact fast student (default: full); bundled, with "
                              "--output, for a file a plugin ships")
    imports.add_argument("--output", "-o", metavar="FILE", default=None,
                         help="write the converted .safetensors file here instead of the cache (e.g. into a "
                              "plugin's weights folder)")
    imports.add_argument("--origin", metavar="TEXT", default=None,
                         help="who made these weights and under what licence, in one line; kept in the file and "
                              "shown by 'weights list', 'plugins' and the web app")
    imports.add_argument("--download", action="store_true",
                         help="with an hf:// file: download it if it is not in the cache yet")
    imports.set_defaults(handler=run_import)

    info = actions.add_parser("info", help="architecture, parameter count and origin of a weights file")
    info.add_argument("file", metavar="FILE|hf://...")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.add_argument("--download", action="store_true",
                      help="with an hf:// file: download it if it is not in the cache yet")
    info.set_defaults(handler=run_info)

    push = actions.add_parser("push", help="publish a generator and its model card on the Hugging Face Hub",
                              description="Publish a training run's generator (or a weights file) to a model "
                                          "repository on the Hugging Face Hub, as safetensors with its architecture, "
                                          "beside a model card (README.md) that gives the command that uses it: "
                                          "cycletools translate IMG --weights hf://OWNER/NAME/FILE. Needs a write "
                                          "token ('hf auth login' or HF_TOKEN); HF_ENDPOINT names another Hub.")
    push.add_argument("source", metavar="RUN_OR_FILE")
    push.add_argument("--repo", required=True, metavar="OWNER/NAME", help="the model repository (created if new)")
    push.add_argument("--private", action="store_true", help="create the repository private")
    push.add_argument("--revision", metavar="BRANCH", default=None,
                      help="push to this branch (created from main if new; default: main)")
    push.add_argument("--plugin", metavar="NAME", default=None,
                      help="the domain the generator is for (names the file and the card's domain)")
    push.add_argument("--direction", choices=("a2b", "b2a"), default=None,
                      help="with a run folder: which generator (default: the domain's own, else a2b)")
    push.add_argument("--eval", metavar="REPORT", default=None,
                      help="a 'cycletools eval --out REPORT' of this generator: FID/KID go into the card")
    push.add_argument("--license", default="other", help="the licence id for the card (default: other)")
    push.add_argument("--dataset", action="append", default=[], metavar="ID",
                      help="a Hub dataset id it was trained on, for the card (repeatable)")
    push.add_argument("--hardware", metavar="TEXT", default=None, help="what it was trained on, for the card")
    push.set_defaults(handler=run_push)


def run_list(args: argparse.Namespace) -> int:
    from cycletools import store
    from cycletools.cli import output
    from cycletools.registry import get_registry

    stream = output.results_stream() if args.json else sys.stdout  # JSON alone, whatever a plugin prints
    registry = get_registry()
    device = "cpu"  # the CPU's order; knowing whether a GPU is here would mean importing torch (seconds)
    rows = []
    for name, spec in sorted(registry.domains.items()):
        used = store.in_use(spec, device)
        shown = store.here(spec)
        if not store.status(spec, "full").here:
            shown.append(store.status(spec, "full"))  # how to get the full generator
        for current in sorted(shown, key=lambda current: current.variant != used.variant):
            rows.append({"name": name if current.variant == used.variant else f"{name} ({current.variant})",
                         "domain": name, "variant": current.variant, "in_use": current.variant == used.variant,
                         "weights": current.state, "path": str(current.path) if current.path else None,
                         "url": current.url, "origin": store.origin_text(spec, current) if current.here else None,
                         "cache": None if current.variant == "bundled" else
                         str(store.cached_path(spec, current.variant) or store.local_file(spec, current.variant))})
    if args.json:
        print(json.dumps(rows, indent=2), file=stream)
        return 0
    width = max((len(r["name"]) for r in rows), default=4)
    for row in rows:
        where = row["path"] or (f"download: {row['url']}" if row["url"] else "none")
        print(f"{row['name'].ljust(width)}  {row['weights'].ljust(12)}  {where}")
        if row["origin"]:
            print(f"{''.ljust(width)}  {''.ljust(12)}  {row['origin']}")
    print(f"cache: {store.cache_dir()}")
    print("a domain's first row is the generator --plugin NAME uses on the CPU (on a GPU: full, then bundled, then "
          "fast); --variant picks another")
    return 0


def run_fetch(args: argparse.Namespace) -> int:
    from cycletools import hub, store
    from cycletools.registry import get_registry

    registry = get_registry()
    named = [name if hub.is_hub_name(name) else registry.domain(name) for name in args.names]
    for item in named:
        if isinstance(item, str):
            fetched = store.fetch_file(item, force=args.force, registry=registry)
            print(f"{item}: {fetched.path} (commit {fetched.commit})")
        else:
            print(f"{item.name}: {store.fetch(item, force=args.force, registry=registry)}")
    return 0


def run_import(args: argparse.Namespace) -> int:
    from cycletools import store
    from cycletools.registry import get_registry

    registry = get_registry()
    spec = registry.domain(args.plugin)
    if args.output:
        replacing = Path(args.output).is_file()
    else:  # a bundled variant without --output is refused by import_weights
        replacing = args.variant != "bundled" and store.local_file(spec, args.variant).is_file()
    path = store.import_weights(spec, args.source, args.direction, registry=registry, variant=args.variant,
                                output=args.output, origin=args.origin, download=args.download)
    print(f"{spec.name}: imported {args.source} → {path}" + (" (it replaces the file that was there)"
                                                              if replacing else ""))
    config = store.file_architecture(path)
    differences = spec.architecture_differences(config) if args.variant == "full" and config else []
    if differences:
        print(f"note: {spec.name} declares {spec.architecture_summary()}, these weights are "
              f"{spec.architecture_summary(config)} ({', '.join(differences)}); 'cycletools plugins' lists them "
              "as what they are")
    shipped = [variant for variant in ("bundled", "fast") if store.status(spec, variant).state == "bundled"]
    if args.output is None and args.variant == "full" and shipped == ["bundled"]:
        print(f"note: {spec.name} also has a bundled generator; these weights come before it from now on "
              f"(--variant bundled uses the bundled one)")
    elif args.output is None and args.variant == "full" and shipped:  # a bundled fast student too
        them = "them" if len(shipped) > 1 else "it"
        what = "a generator and a fast student of it" if len(shipped) > 1 else "a fast student"
        print(f"note: {spec.name} also bundles {what}; these weights come before {them} from now on, on the CPU "
              f"too ({' or '.join(f'--variant {variant}' for variant in shipped)} uses {them})")
    return 0


def weights_info(name: str, download: bool = False) -> dict:
    from cycletools import store
    from cycletools.registry import get_registry
    from cycletools.utils.files import file_sha256
    from cycletools.weights import load_generator, read_metadata

    registry = get_registry()
    found = store.weights_file(name, download, registry=registry)
    path = str(found.path)
    generator, config = load_generator(path, registry)
    tensors = generator.state_dict()
    metadata = {k: v for k, v in read_metadata(path).items() if k != "cycletools.generator"}
    return {"file": path, "format": "safetensors" if path.endswith(".safetensors") else "pytorch state_dict",
            "architecture": config, "parameters": sum(p.numel() for p in generator.parameters()),
            "tensors": len(tensors), "sha256": file_sha256(path), "downloaded_from": found.source,
            "metadata": metadata}


def run_info(args: argparse.Namespace) -> int:
    from cycletools.cli import output
    from cycletools.errors import one_line

    stream = output.results_stream() if args.json else sys.stdout  # JSON alone, whatever a plugin prints
    info = weights_info(args.file, args.download)
    if args.json:
        print(json.dumps(info, indent=2), file=stream)
        return 0
    arch = info["architecture"]
    print(f"file:          {info['file']} ({info['format']})")
    print(f"architecture:  {arch.get('arch')} " + " ".join(f"{k}={v}" for k, v in arch.items() if k != "arch"))
    print(f"parameters:    {info['parameters']:,} in {info['tensors']} tensors")
    print(f"sha256:        {info['sha256']}")
    if info["downloaded_from"]:
        print(f"downloaded:    from {info['downloaded_from']}")
    for key, value in info["metadata"].items():
        print(f"{(key.removeprefix('cycletools.') + ':').ljust(14)} {one_line(str(value))}")  # no escapes
    return 0


def run_push(args: argparse.Namespace) -> int:
    """Load the generator (the safe loader), write it as safetensors with its card into a temporary folder, and
    publish that folder in one commit."""
    import tempfile

    from cycletools import hub, model_card
    from cycletools.errors import CycletoolsError
    from cycletools.registry import get_registry
    from cycletools.runs import run_weights_path
    from cycletools.weights import load_generator, read_metadata, save_generator

    hub.require_token()  # before anything is loaded: one line saying how to log in
    registry = get_registry()
    spec = registry.domain(args.plugin) if args.plugin else None
    source = Path(args.source)
    run, steps, direction = None, None, None
    if source.is_dir():
        direction = args.direction or (spec.run_direction if spec else "a2b")
        run, steps = model_card.run_facts(source)
        source = run_weights_path(source, direction)
        if not source.is_file():
            raise CycletoolsError(f"{args.source} is not a training run with {direction} weights (no {source})")
    elif args.direction:
        raise CycletoolsError("--direction goes with a run folder (a weights file holds one generator)")
    evaluation = model_card.read_evaluation(args.eval) if args.eval else []
    model_card.check_evaluated(evaluation, source, args.eval)
    generator, config = load_generator(source, registry)
    kept = read_metadata(source)
    filename = f"{spec.name if spec else 'generator'}{'-b2a' if direction == 'b2a' else ''}.safetensors"
    facts = model_card.CardFacts(
        repo_id=args.repo, filename=filename, architecture=config,
        parameters=sum(p.numel() for p in generator.parameters()), revision=args.revision, domain=spec,
        direction=direction, run=run, steps=steps, hardware=args.hardware, evaluation=evaluation,
        license=args.license, datasets=args.dataset, origin=kept.get("cycletools.origin"))
    with tempfile.TemporaryDirectory(prefix="cycletools-push-") as folder:
        metadata = {key: value for key, value in kept.items() if key.startswith("cycletools.") and
                    key not in ("cycletools.generator", "cycletools.imported_from")}  # no paths of this machine
        if spec:
            metadata["cycletools.domain"] = spec.name
        save_generator(generator, Path(folder) / filename, config, metadata=metadata)
        (Path(folder) / "README.md").write_text(model_card.card_text(facts), encoding="utf-8")
        commit = hub.push(Path(folder), args.repo, private=args.private, revision=args.revision,
                          message=f"Upload {filename} (cycletools weights push)")
    print(f"published {filename} and its model card to {hub.endpoint()}/{args.repo} "
          f"({args.revision or 'main'}, commit {commit})")
    print(f"use it: cycletools translate IMG --weights {facts.hub_name} --download -o OUT.png")
    return 0
