"""Translate PIL images, frames or tensor batches with a generator, keeping every input's exact size.

One pixel path serves images, animations, video frames, the webcam and the web app
(``translate_frames``): the domain's preprocess hook, scaling to the working size (bounded, see
``cycletools.utils.sizes``), the generator, the postprocess hook, scaling back to the input's size.
"""

from __future__ import annotations

import numbers
import os
import threading
import warnings
from typing import TYPE_CHECKING, Any, Sequence, overload

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from torch import nn

from cycletools.data.images import split_alpha
from cycletools.errors import CycletoolsError, first_line
from cycletools.utils.devices import resolve_device, resolve_precision
from cycletools.utils.sizes import MAX_WORKING_PIXELS, MAX_WORKING_SIDE, working_resolution

if TYPE_CHECKING:
    from cycletools.domains import DomainSpec
    from cycletools.resolver import LoadedGenerator

MULTIPLE = 4     # two stride-2 downsamplings
MIN_SIDE = 8     # the residual blocks' reflection padding needs at least 2x2 after downsampling
AUTOCAST = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16, "int8": None}  # int8: inside ONNX Runtime


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
    return Image.fromarray(_to_uint8(tensor.unsqueeze(0))[0])


def _to_uint8(batch: torch.Tensor) -> np.ndarray:
    """NCHW in [-1, 1] → N×H×W×3 uint8 (rounded)."""
    array = ((batch.detach().float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
    return array.permute(0, 2, 3, 1).cpu().numpy()


def _resize(batch: torch.Tensor, height: int, width: int) -> torch.Tensor:
    if tuple(batch.shape[-2:]) == (height, width):
        return batch
    return F.interpolate(batch, size=(height, width), mode="bicubic", antialias=True, align_corners=False)


def checked_working_size(value: "int | str | None") -> int | None:
    """A working size in pixels, or ``None`` (also spelled ``"native"``) for the image's own size."""
    if value is None or (isinstance(value, str) and value == "native"):
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise CycletoolsError(f"working size must be a number of pixels, None or 'native', not {value!r}")
    if value < MIN_SIDE:
        raise CycletoolsError(f"working size must be at least {MIN_SIDE} pixels, not {value}")
    return int(value)


class Translator:
    """A loaded generator ready to translate images.

    >>> translator = Translator.from_plugin("horse2zebra")
    >>> zebra = translator(Image.open("horse.jpg"))
    """

    def __init__(self, generator: nn.Module, device: str | torch.device | None = None,
                 config: dict[str, Any] | None = None, source: str | None = None, precision: str = "auto",
                 working_size: int | None = None, domain: "DomainSpec | None" = None, compile: bool = False,
                 max_working_side: int = MAX_WORKING_SIDE, max_working_pixels: int = MAX_WORKING_PIXELS):
        self.device = resolve_device(device) if not isinstance(device, torch.device) else device
        # On CUDA, NHWC (channels_last) lets cuDNN pick its fastest fp16/bf16 convolutions.
        self.memory_format = torch.channels_last if self.device.type == "cuda" else torch.contiguous_format
        self.generator = generator.to(self.device, memory_format=self.memory_format).eval()
        self.compiled = None
        if compile:
            from cycletools.pipelines.compiled import CompiledGenerator

            self.compiled = CompiledGenerator(self.generator, self.device)
        self._largest_batch: dict[tuple[int, ...], int] = {}  # compiled: frame shape → largest batch seen
        self.precision = precision if precision == "int8" else resolve_precision(precision, self.device)
        self.working_size = checked_working_size(working_size)
        self.max_working_side, self.max_working_pixels = max_working_side, max_working_pixels
        self.domain = domain
        self.variant = "full"
        self.config = dict(config or getattr(generator, "config", {}))
        self.source = source
        self.loaded: "LoadedGenerator | None" = None

    # ----------------------------------------------------------------- making one
    @classmethod
    def from_loaded(cls, loaded: "LoadedGenerator", working_size: int | None | str = "auto") -> "Translator":
        """A Translator for what ``cycletools.get_generator`` loaded. ``working_size`` ``"auto"`` is the
        domain's recommended inference size (native for files and runs); ``None`` is native."""
        if isinstance(working_size, str) and working_size == "auto":
            working_size = loaded.domain.inference_size if loaded.domain is not None else None
        translator = cls(loaded.module, device=loaded.device, config=loaded.config, source=str(loaded.source),
                         precision=loaded.precision, working_size=working_size, domain=loaded.domain,
                         compile=loaded.backend == "compile")
        translator.variant, translator.loaded = loaded.variant, loaded
        return translator

    @classmethod
    def from_file(cls, path: str | os.PathLike, device: str | torch.device | None = None,
                  precision: str = "auto", backend: str = "torch",
                  working_size: int | None | str = "auto") -> "Translator":
        """Any generator file: the project's safetensors, an official ``.pth``, or a checkpoint that a
        plugin's weights adapter recognises (see ``cycletools.get_generator`` for the backends)."""
        from cycletools.resolver import get_generator

        return cls.from_loaded(get_generator(weights=path, device=device, precision=precision, backend=backend),
                               working_size)

    @classmethod
    def from_run(cls, run_dir: str | os.PathLike, direction: str = "a2b",
                 device: str | torch.device | None = None, precision: str = "auto",
                 backend: str = "torch", working_size: int | None | str = "auto") -> "Translator":
        """The ``a2b`` (G_A) or ``b2a`` (G_B) generator of a training run folder."""
        from cycletools.resolver import get_generator

        return cls.from_loaded(get_generator(run=run_dir, direction=direction, device=device, precision=precision,
                                             backend=backend), working_size)

    @classmethod
    def from_plugin(cls, name: str, weights: str | os.PathLike | None = None, download: bool = False,
                    device: str | torch.device | None = None, precision: str = "auto",
                    working_size: int | None | str = "auto", backend: str = "torch",
                    variant: str = "auto") -> "Translator":
        """A registered domain by name (``cycletools plugins`` lists them); see ``cycletools.get_generator``."""
        from cycletools.resolver import get_generator

        loaded = get_generator(name, weights=weights, download=download, device=device, precision=precision,
                               backend=backend, variant=variant)
        return cls.from_loaded(loaded, working_size)

    # ----------------------------------------------------------------- tensors
    @torch.inference_mode()
    def translate_tensor(self, batch: torch.Tensor) -> torch.Tensor:
        """Translate an NCHW batch in [-1, 1] of any H, W; returns the same shape, in [-1, 1]."""
        if batch.ndim != 4 or batch.shape[1] != self.config.get("input_nc", 3):
            raise ValueError(f"expected an Nx{self.config.get('input_nc', 3)}xHxW batch, got {tuple(batch.shape)}")
        height, width = batch.shape[-2:]
        padded = pad_to_multiple(batch.to(self.device, torch.float32)).contiguous(memory_format=self.memory_format)
        dtype = AUTOCAST[self.precision]
        try:
            with torch.autocast(self.device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
                output = (self.compiled or self.generator)(padded)
        except NotImplementedError as exc:
            if not self.on_apple_gpu:
                raise
            self._leave_mps(exc)
            return self.translate_tensor(batch)
        return output[..., :height, :width].float()

    @property
    def on_apple_gpu(self) -> bool:
        return self.device.type == "mps"

    def _leave_mps(self, exc: NotImplementedError) -> None:
        """An operation this PyTorch cannot run on Apple's GPU: say so once and run on the CPU from now on."""
        warnings.warn(f"the generator needs an operation PyTorch cannot run on Apple's GPU ({first_line(exc)}); "
                      "running it on the CPU instead (set PYTORCH_ENABLE_MPS_FALLBACK=1 to move only that "
                      "operation, or use --device cpu)", stacklevel=3)
        self.device, self.memory_format, self.compiled = torch.device("cpu"), torch.contiguous_format, None
        self.generator = self.generator.to(self.device)
        self.precision = "fp32" if self.precision == "fp16" else self.precision

    # ----------------------------------------------------------------- pixels
    def translate_frames(self, frames: np.ndarray) -> np.ndarray:
        """Translate N×H×W×3 uint8 RGB frames into frames of the same shape: the pixel path of images,
        animations, videos, the webcam and the web app.

        Each frame goes through the domain's ``preprocess`` hook, is scaled to the working size (the
        shorter side, bounded by ``max_working_side``/``max_working_pixels``), translated, goes
        through the ``postprocess`` hook and is scaled back (antialiased bicubic) to its own size.
        """
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or 0 in frames.shape:
            raise CycletoolsError(f"expected N×H×W×3 uint8 frames, got {frames.shape} {frames.dtype}")
        if self.domain is not None and self.domain.preprocess is not None:
            prepared = [self._hook("preprocess", frame) for frame in frames]
            if len({item.shape for item in prepared}) > 1:  # a hook that sizes frames differently: one by one
                return np.stack([self._translate_batch(item[None], frame.shape[:2])[0]
                                 for item, frame in zip(prepared, frames)])
            return self._translate_batch(np.stack(prepared), frames.shape[1:3])
        return self._translate_batch(frames, frames.shape[1:3])

    def _translate_batch(self, frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        count, shape = len(frames), tuple(frames.shape[1:])
        if self.compiled is not None:
            # A smaller batch of frames seen before (a video's last one) is filled up to the largest
            # batch of that shape: a new batch size would be compiled again.
            largest = self._largest_batch.setdefault(shape, count)
            if count < largest:
                frames = np.concatenate([frames, np.repeat(frames[-1:], largest - count, axis=0)])
            self._largest_batch[shape] = max(largest, count)
        batch = torch.from_numpy(np.require(frames, requirements=["C", "W"])).to(self.device).permute(0, 3, 1, 2).float()
        batch = batch.div_(127.5).sub_(1.0)
        width, height = working_resolution(batch.shape[-1], batch.shape[-2], self.working_size,
                                           self.max_working_side, self.max_working_pixels)
        output = self.translate_tensor(_resize(batch, height, width))[:count]
        if self.domain is not None and self.domain.postprocess is not None:
            processed = np.stack([self._hook("postprocess", frame) for frame in _to_uint8(output)])
            output = torch.from_numpy(processed).to(self.device).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
        return _to_uint8(_resize(output, *size))

    def _hook(self, which: str, frame: np.ndarray) -> np.ndarray:
        """Run the domain's ``preprocess``/``postprocess`` hook (PIL in, PIL out) on one frame."""
        try:
            return np.asarray(getattr(self.domain, which)(Image.fromarray(frame)).convert("RGB"))
        except Exception as exc:  # a plugin's hook: name it instead of showing its traceback
            raise CycletoolsError(f"the {which} hook of domain {self.domain.name!r} failed "
                                  f"({type(exc).__name__}: {exc})") from None

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
        output = Image.fromarray(self.translate_frames(np.asarray(rgb)[None])[0])
        if alpha is not None:
            output.putalpha(alpha)
        return output


class TranslatorCache:
    """One Translator per domain, made on first use with the same options and shared (thread-safe):
    the web app's and the webcam's domain switching."""

    def __init__(self, **options: Any):
        self.options = options  # get_generator's keyword arguments: device, precision, backend, variant...
        self._translators: dict[str, Translator] = {}
        self._lock = threading.Lock()

    def seed(self, name: str, translator: Translator) -> None:
        """Use an already loaded translator for ``name``."""
        with self._lock:
            self._translators[name] = translator

    def get(self, name: str) -> Translator:
        with self._lock:
            if name not in self._translators:
                from cycletools.resolver import get_generator

                self._translators[name] = Translator.from_loaded(get_generator(name, **self.options))
            return self._translators[name]
