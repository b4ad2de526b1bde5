"""``cycletools eval``: FID, KID, classifier score and cycle error, offline."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HELP = """Measure translation quality offline.

With --plugin and --data: translate DATA/{split}A (direction a2b) or DATA/{split}B (b2a) with the
domain (or its reverse) and score the results against the real images of the other side:
FID and KID on Inception-v3 features ("inception-2015-12-05", clean-fid preprocessing), the
share an ImageNet EfficientNet-Lite0 classifies as the target class (horse/zebra and
apple/orange domains), and the cycle reconstruction error when the reverse domain's weights
are present. With --fake and --real: score any folder of images against real ones the same way.

Real-image features are cached per folder in $CYCLETOOLS_HOME/eval-cache. Needs the eval
extras: pip install 'cycletools[eval]'."""


def add_parser(commands) -> None:
    from cycletools.cli.options import COUNT, Number

    parser = commands.add_parser("eval", help="measure FID/KID/classifier score of a domain or of two folders",
                                 description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plugin", metavar="NAME", help="the domain to evaluate (see 'cycletools plugins')")
    parser.add_argument("--data", metavar="DIR", help="dataset folder in the official layout")
    parser.add_argument("--direction", choices=("a2b", "b2a", "both"), default=None,
                        help="a2b: DATA/testA → compared with DATA/testB; b2a the reverse; "
                             "both: each (default: the plugin's own direction)")
    parser.add_argument("--split", default="test", help="which split to use (default: test)")
    parser.add_argument("--weights", metavar="FILE", help="weights to evaluate instead of the plugin's own "
                                                         "(for the plugin's direction): a file, or "
                                                         "hf://OWNER/REPO/PATH[@REVISION]")
    parser.add_argument("--fake", metavar="DIR", help="folder of translated images to score (with --real)")
    parser.add_argument("--real", metavar="DIR", help="folder of real target-domain images (with --fake)")
    parser.add_argument("--classify", type=Number(int, 0, 999), metavar="CLASS",
                        help="with --fake/--real: ImageNet class index to count (e.g. 340 zebra)")
    parser.add_argument("--limit", type=COUNT, metavar="N", help="evaluate only the first N source images")
    parser.add_argument("--save-images", metavar="DIR", help="also keep the translated images (PNG) here")
    parser.add_argument("--out", metavar="FILE", help="write the JSON report here (it is always printed)")
    parser.add_argument("--device", default=None, help="cpu, cuda ... (default: auto)")
    parser.add_argument("--download", action="store_true",
                        help="download missing weights (the domain's, or an hf:// file)")
    parser.add_argument("--backend", choices=("torch", "compile", "onnxruntime", "openvino"), default="torch",
                        help="how the evaluated generator runs, as for translate (default: torch)")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16", "int8"), default="auto",
                        help="its compute precision, as for translate; int8 with --backend onnxruntime "
                             "--calibrate DIR measures what quantisation costs")
    parser.add_argument("--calibrate", metavar="DIR", help="with --precision int8: calibration images")
    parser.add_argument("--variant", choices=("auto", "bundled", "full", "fast"), default="auto",
                        help="which of the domain's generators to evaluate: bundled (shipped with cycletools), "
                             "full (fetched or imported), fast (a compact student); auto: the one --plugin uses "
                             "here, as for translate (default: auto)")
    parser.set_defaults(handler=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    from cycletools import store
    from cycletools.errors import CycletoolsError, UsageError
    from cycletools.pipelines import evaluate
    from cycletools.utils.atomic import atomic_write_text
    from cycletools.utils.devices import resolve_device

    device = str(resolve_device(args.device))
    ctx = evaluate.EvalContext(device=device, cache_dir=store.home() / "eval-cache")
    if args.fake or args.real:
        if not (args.fake and args.real) or args.plugin or args.data:
            raise UsageError("--fake and --real go together, without --plugin/--data")
        entries = [evaluate.evaluate_folders(Path(args.fake), Path(args.real), ctx, args.classify)]
        result = evaluate.report(entries, mode="folders")
    else:
        if not (args.plugin and args.data):
            raise UsageError("give --plugin NAME --data DIR, or --fake DIR --real DIR")
        entries = evaluate_plugin(args, ctx, device)
        result = evaluate.report(entries, mode="plugin", data=str(Path(args.data).resolve()), split=args.split)
    text = json.dumps(result, indent=2, ensure_ascii=False)
    if args.out:
        try:
            atomic_write_text(args.out, text + "\n")
        except OSError as exc:
            raise CycletoolsError(f"cannot write the report to {args.out}: {exc.strerror or exc}") from None
    print(text)
    for entry in entries:
        classifier = entry["classifier"]
        share = f", {100 * classifier['share']:.1f}% classified {classifier['label']}" if classifier else ""
        label = entry.get("direction", "folders")
        print(f"{label}: FID {entry['fid']:.2f}, KID×10³ {1000 * entry['kid']:.2f}{share}", file=sys.stderr)
    return 0


def evaluate_plugin(args: argparse.Namespace, ctx, device: str) -> list[dict]:
    """Evaluate the plugin's own direction, its reverse, or both."""
    from cycletools import store
    from cycletools.errors import CycletoolsError
    from cycletools.pipelines import evaluate
    from cycletools.pipelines.translator import Translator
    from cycletools.registry import get_registry
    from cycletools.resolver import get_generator

    registry = get_registry()
    spec = registry.domain(args.plugin)
    own = spec.run_direction
    other = "b2a" if own == "a2b" else "a2b"
    directions = [own, other] if args.direction == "both" else [args.direction or own]
    data = Path(args.data)
    entries = []
    for direction in directions:
        name = spec.name if direction == own else spec.reverse
        if name is None:
            raise CycletoolsError(f"{spec.name} has no reverse domain to evaluate {direction} with")
        domain = registry.domain(name)
        weights = args.weights if direction == own else None
        how = {"backend": args.backend, "precision": args.precision, "calibrate": args.calibrate} \
            if direction == own else {}
        translator = Translator.from_loaded(get_generator(name, weights=weights, download=args.download,
                                                          device=device, variant=args.variant, **how))
        reverse = None
        if domain.reverse is not None:
            reverse_spec = registry.domain(domain.reverse)
            if store.usable(reverse_spec):
                reverse = Translator.from_loaded(get_generator(reverse_spec.name, device=device))
        source_side, real_side = ("A", "B") if direction == "a2b" else ("B", "A")
        save_dir = Path(args.save_images) / name if args.save_images else None
        entry = evaluate.evaluate_direction(
            translator, data / f"{args.split}{source_side}", data / f"{args.split}{real_side}", ctx,
            reverse=reverse, imagenet_class=domain.imagenet_class, save_dir=save_dir, limit=args.limit)
        entries.append({"direction": direction, "plugin": name, "variant": translator.variant,
                        "backend": translator.loaded.backend, "precision": translator.precision, **entry})
    return entries
