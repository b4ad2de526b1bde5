"""Getting a generator: the one place that turns "this domain", "this file" or "this training run"
into a loaded generator, for the CLI, the web app, the webcam, eval, distill and the Python API.

    from cycletools import get_generator
    loaded = get_generator("horse2zebra")                       # a registered domain
    loaded = get_generator(weights="horse2zebra.pth")           # a weights file
    loaded = get_generator(weights="hf://alice/h2z/g.safetensors", download=True)   # a file on the Hub
    loaded = get_generator(run="runs/h2z", direction="b2a")     # a training run
    loaded.module, loaded.config, loaded.source, loaded.provenance()

For a domain the weights come from ``weights`` when given, else from the generator ``variant`` names:
``bundled`` (shipped with its plugin), ``full`` (fetched or imported into the user cache, or downloaded
when ``download=True``), ``fast`` (a compact student); ``auto`` picks one of those here (see ``choose``
in store.py: what the user fetched or imported wins over what ships). ``backend`` is ``torch``, ``compile`` (torch.compile,
applied where the generator runs: see ``Translator``) or ``onnxruntime`` (a cached ONNX export).

Whatever names it, the weights become a verified file here once (``store.obtain`` for a domain's variant,
``store.weights_file`` for a path or an ``hf://`` name), then load through the one safe loader (weights.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cycletools.errors import CycletoolsError, UsageError
from cycletools.runs import DIRECTIONS, run_weights_path

if TYPE_CHECKING:
    import torch

    from cycletools.domains import DomainSpec
    from cycletools.registry import Registry

BACKENDS = ("torch", "compile", "onnxruntime", "openvino")
EXPORTED = ("onnxruntime", "openvino")  # backends that run a cached ONNX export on the CPU
VARIANTS = ("auto", "bundled", "full", "fast")


@dataclass
class LoadedGenerator:
    """A generator ready to run, and where it came from."""

    module: Any                    # a torch.nn.Module (or an ONNX Runtime session with the same call)
    config: dict[str, Any]         # the architecture, as in the weights file
    source: Path                   # the weights file
    origin: str                    # file | run | bundled | cached | downloaded | hub (an hf:// file)
    device: "torch.device"
    precision: str                 # fp32 | bf16 | fp16
    backend: str = "torch"
    domain: "DomainSpec | None" = None
    variant: str = "full"
    notice: str | None = None      # a line worth telling the user (e.g. that the fast variant was chosen)
    metadata: dict[str, str] = field(default_factory=dict)
    downloaded_from: str | None = None  # a URL, or hf://OWNER/REPO/PATH@COMMIT (the commit it resolved to)

    def provenance(self) -> dict[str, Any]:
        """Where the weights came from, for reports: file, origin, domain, variant, the file's own metadata."""
        return {"source": str(self.source), "origin": self.origin, "domain": getattr(self.domain, "name", None),
                "variant": self.variant, "backend": self.backend, "device": str(self.device),
                "precision": self.precision, "downloaded_from": self.downloaded_from, **self.metadata}


def get_generator(domain: str | None = None, *, weights: str | os.PathLike | None = None,
                  run: str | os.PathLike | None = None, direction: str = "a2b", variant: str = "auto",
                  backend: str = "torch", device: "str | torch.device | None" = None, precision: str = "auto",
                  download: bool = False, registry: "Registry | None" = None,
                  calibrate: str | os.PathLike | None = None) -> LoadedGenerator:
    """Load the generator that ``domain``, ``weights`` or ``run`` names (``weights`` may go with ``domain``).

    ``variant`` (domains only): ``bundled`` (shipped with cycletools), ``full`` (fetched or imported into
    the cache) or ``fast`` (a compact student); ``auto`` follows ``store.PREFERENCE``: on the CPU the fast
    student, else the full generator, else the bundled one; elsewhere full, bundled, fast. ``precision="int8"``
    (ONNX Runtime only) quantises the export, calibrated on the images in ``calibrate``. ``weights`` is a path or
    an ``hf://OWNER/REPO/PATH[@REVISION]`` name; ``download=True`` fetches what is not here yet (a domain's full
    generator, an ``hf://`` file).
    """
    import torch

    from cycletools import store
    from cycletools.registry import get_registry
    from cycletools.utils.devices import resolve_device, resolve_precision
    from cycletools.weights import load_generator, read_metadata

    if sum(x is not None for x in (domain, run)) + (weights is not None and domain is None) != 1:
        raise UsageError("name the generator by one of: a domain (--plugin NAME), a weights file (--weights FILE) "
                         "or a training run (--run DIR); a weights file may also go with a domain")
    if domain is not None and not isinstance(domain, str):
        raise CycletoolsError(f"a domain is named by a string (e.g. 'horse2zebra'), not {type(domain).__name__} "
                              f"{domain!r}")
    for value, label in ((weights, "weights file"), (run, "training run")):
        if value is not None and not isinstance(value, (str, os.PathLike)):
            raise CycletoolsError(f"a {label} is named by a path, not {type(value).__name__} {value!r}")
    for value, allowed, label in ((backend, BACKENDS, "backend"), (variant, VARIANTS, "variant"),
                                  (direction, DIRECTIONS, "direction")):
        if value not in allowed:
            raise CycletoolsError(f"{label} must be one of {', '.join(allowed)}, not {value!r}")
    if weights is not None and variant != "auto":
        raise UsageError(f"--variant {variant} picks one of a domain's generators; with --weights FILE the file is "
                         "the generator (leave one of them out)")
    registry = registry or get_registry()
    int8 = precision == "int8"
    if calibrate is not None and not int8:
        raise UsageError("calibration images go with int8 precision (--precision int8 --calibrate DIR)")
    if int8 and (backend != "onnxruntime" or calibrate is None):
        raise UsageError("int8 runs on the onnxruntime backend and needs calibration images: --backend onnxruntime "
                         "--precision int8 --calibrate DIR (a folder of the domain's input side, e.g. DATA/trainA)")
    if backend in EXPORTED:
        device = _onnx_device(backend, device, "fp32" if int8 else precision)
    device = device if isinstance(device, torch.device) else resolve_device(device)
    precision = "int8" if int8 else resolve_precision(precision, device)
    spec, notice = None, None
    if run is not None:
        found = store.Resolved(_run_weights(run, direction), "run")
    elif domain is not None:
        spec = registry.domain(domain)
        variant, notice = _choose_variant(spec, variant, weights, device)
        found = (store.weights_file(weights, download, registry=registry) if weights is not None
                 else store.obtain(spec, variant, download, registry=registry))
    else:
        found = store.weights_file(weights, download, registry=registry)
    module, config = load_generator(found.path, registry)
    if backend in EXPORTED:
        module = _exported(backend, module, config, found.path, calibrate if int8 else None)
    metadata = {k: v for k, v in read_metadata(found.path).items() if k != "cycletools.generator"}
    return LoadedGenerator(module, config, found.path, found.origin, device, precision, backend, spec,
                           found.variant if domain is not None and weights is None else "full", notice, metadata,
                           found.source)


def _run_weights(run, direction: str) -> Path:
    path = run_weights_path(run, direction)
    if not Path(run).is_dir():
        raise CycletoolsError(f"run folder not found: {run}")
    if not path.is_file():
        raise CycletoolsError(f"{run}: no {direction} weights yet ({path} is written at the end of each epoch)")
    return path


def _choose_variant(spec: "DomainSpec", variant: str, weights, device) -> tuple[str, str | None]:
    """The variant ``auto`` means here (``store.PREFERENCE``), and a line saying so where another is here too."""
    from cycletools import store

    if weights is not None:
        return "full", None  # the file given, whatever the domain has
    if variant != "auto":
        return variant, None
    chosen = store.choose(spec, device.type)
    if chosen is None:
        return "full", None  # nothing here: the full generator, downloaded with --download or an error saying how
    others = [current.variant for current in store.here(spec) if current.variant != chosen.variant]
    if not others:
        return chosen.variant, None
    where = "on the CPU" if device.type == "cpu" else f"on {device.type}"
    if chosen.variant == "fast":
        what = f"the fast variant of {spec.name} {where}"
    elif chosen.variant == "full":
        what = f"the full {spec.name} generator you fetched or imported"
    else:
        what = f"the bundled {spec.name} generator"
    choices = " or ".join(f"--variant {other}" for other in others)
    return chosen.variant, f"using {what} ({choices} for the {'other' if len(others) == 1 else 'others'})"


def _onnx_device(backend: str, device, precision: str) -> str:
    if device not in (None, "", "auto", "cpu") and str(device) != "cpu":
        raise CycletoolsError(f"the {backend} backend runs on the CPU; use --backend torch on a GPU")
    if precision not in ("auto", "fp32"):
        raise CycletoolsError(f"the {backend} backend computes in fp32")
    return "cpu"


def _exported(backend: str, generator, config: dict[str, Any], source: Path, calibrate=None):
    """``generator`` run by ONNX Runtime or OpenVINO from an ONNX export made once per weights file and
    config (and quantised once per calibration set for int8), then cached."""
    import hashlib
    import json

    import torch

    from cycletools import store
    from cycletools.export import OnnxGenerator, OpenVinoGenerator, export_generator
    from cycletools.utils.files import file_sha256

    key = hashlib.sha256((file_sha256(source) + json.dumps(config, sort_keys=True)).encode()).hexdigest()[:24]
    path = store.home() / "onnx" / f"{key}.onnx"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        export_generator(generator, path, "onnx", size=256, dynamic=True)
    if calibrate is not None:
        from cycletools.quantize import calibration_inputs, calibration_key, quantize_onnx

        quantized = path.with_name(f"{key}.int8-{calibration_key(calibrate)}.onnx")
        if not quantized.is_file():
            quantize_onnx(path, quantized, calibration_inputs(calibrate))
        path = quantized
    runtime = OpenVinoGenerator if backend == "openvino" else OnnxGenerator
    return runtime(path, threads=torch.get_num_threads())  # --threads, or the physical cores
