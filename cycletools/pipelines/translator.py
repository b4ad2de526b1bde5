"""Translate PIL images or tensor batches with a generator, keeping every input's exact size."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence, overload

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from torch import nn

from cycletools.data.images import split_alpha
from cycletools.errors import CycletoolsError
from cycletools.utils.devices import resolve_device
from cycletools.weights import load_generator

if TYPE_CHECKING:
    from cycletools.domains import DomainSpec

DIRECTIONS = ("a2b", "b2a")
MULTIPLE = 4     # two stride-2 downsamplings
MIN_SIDE = 8     # the residual blocks' reflection padding needs at least 2x2 after downsampling


PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` → fp16 on CUDA, fp32 elsewhere; fp16 needs CUDA (CPU kernels are slow or missing)."""
    if precision == "auto":
        return "fp16" if device.type == "cuda" else "fp32"
    if precision not in PRECISIONS:
        raise CycletoolsError(f"precision must be auto, {', '.join(PRECISIONS)}; not {precision!r}")
    if precision == "fp16" and device.type != "cuda":
        raise CycletoolsError("fp16 precision needs a CUDA device; use bf16 or fp32 on the CPU")
    return precision


def pad_to_multiple(batch: torch.Tensor, multiple: int = MULTIPLE, minimum: int = MIN_SIDE) -> torch.Tensor:
    """Pad right/bottom by reflection so H and W are multiples of ``multiple`` (and >= ``minimum``).

    Sides too small to reflect (padding >= size) are padded by replication instead.
    """
    height, width = batch.shape[-2:]
    pad_h = max(-(-height // multiple) * multiple, minimum) - height
    pad_w = max(-(-width // multiple) * multiple, minimum) - width
    if pad_h == 0 and pad_w == 0:
        return batch
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(batch, (0, pad_w, 0, pad_h), mode=mode)


def image_to_tensor(rgb: Image.Image) -> torch.Tensor:
    """RGB PIL image → 1x3xHxW float tensor in [-1, 1] (the official ``x/127.5 - 1``)."""
    array = np.asarray(rgb, dtype=np.float32)
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).div_(127.5).sub_(1.0)


def tensor_to_image(tensor: torch.Tensor) -> Image.Image:
    """3xHxW tensor in [-1, 1] → RGB PIL image (the official ``(y+1)·127.5``, rounded)."""
    array = ((tensor.detach().float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
    return Image.fromarray(array.permute(1, 2, 0).cpu().numpy(), mode="RGB")


BACKENDS = ("torch", "compile", "onnxruntime")


def _with_backend(generator: nn.Module, config: dict[str, Any], source: str | os.PathLike, backend: str,
                  device, precision: str):
    """Swap in an ONNX Runtime session for ``backend="onnxruntime"`` (exported once, then cached);
    ``compile`` is applied by the Translator, once the generator is on its device."""
    if backend not in BACKENDS:
        raise CycletoolsError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if backend != "onnxruntime":
        return generator, device, precision
    if device not in (None, "auto", "cpu") and str(device) != "cpu":
        raise CycletoolsError("the onnxruntime backend runs on the CPU; use --backend torch on CUDA")
    if precision not in ("auto", "fp32"):
        raise CycletoolsError("the onnxruntime backend computes in fp32")
    import hashlib
    import json

    from cycletools import store
    from cycletools.export import OnnxGenerator, export_generator
    from cycletools.utils.files import file_sha256

    key = hashlib.sha256((file_sha256(source) + json.dumps(config, sort_keys=True)).encode()).hexdigest()[:24]
    path = store.home() / "onnx" / f"{key}.onnx"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        export_generator(generator, path, "onnx", size=256, dynamic=True)
    return OnnxGenerator(path), "cpu", "fp32"


class Translator:
    """A loaded generator ready to translate images.

    >>> translator = Translator.from_file("weights/horse2zebra.safetensors")
    >>> zebra = translator(Image.open("horse.jpg"))
    """

    def __init__(self, generator: nn.Module, device: str | torch.device | None = None,
                 config: dict[str, Any] | None = None, source: str | None = None, precision: str = "auto",
                 working_size: int | None = None, domain: "DomainSpec | None" = None, compile: bool = False):
        self.device = resolve_device(device) if not isinstance(device, torch.device) else device
        # On CUDA, NHWC (channels_last) lets cuDNN pick its fastest fp16/bf16 convolutions.
        self.memory_format = torch.channels_last if self.device.type == "cuda" else torch.contiguous_format
        self.generator = generator.to(self.device, memory_format=self.memory_format).eval()
        self.compiled = None
        if compile:
            from cycletools.pipelines.compiled import CompiledGenerator

            self.compiled = CompiledGenerator(self.generator, self.device)
        self._largest_batch: dict[tuple[int, ...], int] = {}  # compiled: frame shape → largest batch seen
        self.precision = resolve_precision(precision, self.device)
        if working_size is not None and working_size < MIN_SIDE:
            raise CycletoolsError(f"working size must be at least {MIN_SIDE} pixels, not {working_size}")
        self.working_size = working_size
        self.domain = domain
        self.variant = "full"
        self.config = dict(config or getattr(generator, "config", {}))
        self.source = source

    @classmethod
    def from_file(cls, path: str | os.PathLike, device: str | torch.device | None = None,
                  precision: str = "auto", backend: str = "torch") -> "Translator":
        """Load any generator file: the project's safetensors, an official ``.pth``, or a checkpoint
        that a plugin's weights adapter recognises. ``backend="onnxruntime"`` runs an ONNX export
        of it (made once, kept in the user cache) with ONNX Runtime on the CPU; ``backend="compile"``
        runs it through torch.compile (compiled on the first call for each input shape)."""
        from cycletools.registry import get_registry

        generator, config = load_generator(path, get_registry().adapters)
        generator, device, precision = _with_backend(generator, config, path, backend, device, precision)
        return cls(generator, device=device, config=config, source=str(path), precision=precision,
                   compile=backend == "compile")

    @classmethod
    def from_run(cls, run_dir: str | os.PathLike, direction: str = "a2b",
                 device: str | torch.device | None = None, precision: str = "auto",
                 backend: str = "torch") -> "Translator":
        """Load the ``a2b`` (G_A) or ``b2a`` (G_B) generator of a training run folder."""
        if direction not in DIRECTIONS:
            raise CycletoolsError(f"direction must be one of {', '.join(DIRECTIONS)}, not {direction!r}")
        run_dir = Path(run_dir)
        path = run_dir / "weights" / f"{direction}.safetensors"
        if not run_dir.is_dir():
            raise CycletoolsError(f"run folder not found: {run_dir}")
        if not path.is_file():
            raise CycletoolsError(f"{run_dir}: no {direction} weights yet ({path} is written at the end of "
                                  "each epoch)")
        return cls.from_file(path, device=device, precision=precision, backend=backend)

    @classmethod
    def from_plugin(cls, name: str, weights: str | os.PathLike | None = None, download: bool = False,
                    device: str | torch.device | None = None, precision: str = "auto",
                    working_size: int | None | str = "auto", backend: str = "torch",
                    variant: str = "auto") -> "Translator":
        """Load a registered domain by name (``cycletools plugins`` lists them).

        Weights come from ``weights`` when given, else the plugin's bundled file, else the
        user cache, else (only with ``download=True``) its download source. ``working_size``
        ``"auto"`` uses the domain's recommended inference size; ``None`` translates at native size.
        ``variant`` picks the full generator or the compact ``fast`` student; ``auto`` takes the fast
        one on the CPU when it is here, the full one otherwise, and the fast one wherever it is the only
        one here (``translator.variant`` says which).
        """
        from cycletools import store
        from cycletools.registry import get_registry

        registry = get_registry()
        spec = registry.domain(name)
        if variant == "auto":
            on_cpu = (resolve_device(device) if not isinstance(device, torch.device) else device).type == "cpu"
            fast_here, full_here = store.status(spec, "fast").here, store.status(spec, "full").here
            variant = "fast" if fast_here and not weights and (on_cpu or not full_here) else "full"
        path = Path(weights) if weights else store.resolve(spec, download=download, adapters=registry.adapters,
                                                           variant=variant)
        generator, config = load_generator(path, registry.adapters)
        generator, device, precision = _with_backend(generator, config, path, backend, device, precision)
        size = spec.inference_size if working_size == "auto" else working_size
        translator = cls(generator, device=device, config=config, source=str(path), precision=precision,
                         working_size=size, domain=spec, compile=backend == "compile")
        translator.variant = variant
        return translator

    @torch.inference_mode()
    def translate_tensor(self, batch: torch.Tensor) -> torch.Tensor:
        """Translate an NCHW batch in [-1, 1] of any H, W; returns the same shape, in [-1, 1]."""
        if batch.ndim != 4 or batch.shape[1] != self.config.get("input_nc", 3):
            raise ValueError(f"expected an Nx{self.config.get('input_nc', 3)}xHxW batch, got {tuple(batch.shape)}")
        height, width = batch.shape[-2:]
        padded = pad_to_multiple(batch.to(self.device, torch.float32)).contiguous(memory_format=self.memory_format)
        dtype = PRECISIONS[self.precision]
        with torch.autocast(self.device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            output = (self.compiled or self.generator)(padded)
        return output[..., :height, :width].float()

    def translate_frames(self, frames: np.ndarray) -> np.ndarray:
        """Translate a batch of video frames (N×H×W×3 uint8 RGB) into frames of the same shape.

        With a working size, frames are scaled (antialiased bicubic) so the shorter side has it,
        translated, and scaled back.
        """
        count, shape = len(frames), tuple(frames.shape[1:])
        if self.compiled is not None:
            # A smaller batch of frames seen before (a video's last one) is filled up to the largest
            # batch of that shape: a new batch size would be compiled again.
            largest = self._largest_batch.setdefault(shape, count)
            if count < largest:
                frames = np.concatenate([frames, np.repeat(frames[-1:], largest - count, axis=0)])
            self._largest_batch[shape] = max(largest, count)
        batch = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device).permute(0, 3, 1, 2).float()
        batch = batch.div_(127.5).sub_(1.0)
        height, width = batch.shape[-2:]
        if self.working_size is not None:
            w, h = self._working_resolution((width, height))
            if (w, h) != (width, height):
                batch = F.interpolate(batch, size=(h, w), mode="bicubic", antialias=True, align_corners=False)
        output = self.translate_tensor(batch)
        if output.shape[-2:] != (height, width):
            output = F.interpolate(output, size=(height, width), mode="bicubic", antialias=True, align_corners=False)
        output = ((output.clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
        return output[:count].permute(0, 2, 3, 1).cpu().numpy()

    @overload
    def __call__(self, image: Image.Image) -> Image.Image: ...
    @overload
    def __call__(self, image: Sequence[Image.Image]) -> list[Image.Image]: ...

    def __call__(self, image):
        """Translate a PIL image (or a list of them); the result has the input's exact size.

        Any mode is accepted; an alpha channel is carried over unchanged (result RGBA).
        """
        if isinstance(image, Image.Image):
            return self.translate_image(image)
        return [self.translate_image(item) for item in image]

    def translate_image(self, image: Image.Image) -> Image.Image:
        rgb, alpha = split_alpha(ImageOps.exif_transpose(image))
        size = rgb.size
        if self.domain is not None and self.domain.preprocess is not None:
            rgb = self.domain.preprocess(rgb).convert("RGB")
        working = self._working_resolution(rgb.size)
        if working != rgb.size:
            rgb = rgb.resize(working, Image.Resampling.BICUBIC)
        output = tensor_to_image(self.translate_tensor(image_to_tensor(rgb))[0])
        if self.domain is not None and self.domain.postprocess is not None:
            output = self.domain.postprocess(output).convert("RGB")
        if output.size != size:
            output = output.resize(size, Image.Resampling.BICUBIC)
        if alpha is not None:
            output.putalpha(alpha)
        return output

    def _working_resolution(self, size: tuple[int, int]) -> tuple[int, int]:
        """Scale so the shorter side is ``working_size`` (aspect kept); native size when unset."""
        if self.working_size is None:
            return size
        scale = self.working_size / min(size)
        return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))
