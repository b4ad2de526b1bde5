"""Reading and writing generator weights: safetensors with an embedded config, or plain state_dicts.

Official CycleGAN ``*.pth`` files load unchanged: a ``module.`` prefix and the stale
InstanceNorm buffers they carry are dropped, the architecture is inferred from the
tensor shapes, and the result is loaded strictly. Nothing is ever unpickled beyond
tensors and plain containers (``torch.load(..., weights_only=True)``).
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import nn

from cycletools.errors import CycletoolsError, first_line
from cycletools.models import ResnetGenerator, build_generator
from cycletools.utils.atomic import atomic_path

CONFIG_KEY = "cycletools.generator"
STALE_NORM_SUFFIXES = (".running_mean", ".running_var", ".num_batches_tracked")


def clean_state_dict(state_dict: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Strip a DataParallel ``module.`` prefix and drop stale InstanceNorm buffers."""
    cleaned = {}
    for key, value in state_dict.items():
        if key.startswith("module."):
            key = key[len("module."):]
        if key.endswith(STALE_NORM_SUFFIXES):
            continue
        cleaned[key] = value
    return cleaned


def read_weights_file(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None]:
    """Return ``(state_dict, config)``; ``config`` is ``None`` unless the file embeds one."""
    path = Path(path)
    if not path.is_file():
        raise CycletoolsError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        return _read_safetensors(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pickle-protocol notices; refusals still raise
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling refusals, truncated zips, not-a-pickle files
        raise CycletoolsError(f"{path}: not a loadable weights file ({first_line(exc)})") from None
    return _state_dict_from_object(obj, path), None


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The string metadata in a safetensors header ({} for other files)."""
    if Path(path).suffix != ".safetensors":
        return {}
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except Exception as exc:
        raise CycletoolsError(f"{path}: not a readable safetensors file ({exc})") from None


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None]:
    from safetensors.torch import load_file

    metadata = read_metadata(path)
    try:
        state_dict = load_file(str(path), device="cpu")
    except Exception as exc:
        raise CycletoolsError(f"{path}: not a readable safetensors file ({exc})") from None
    config = None
    if CONFIG_KEY in metadata:
        try:
            config = json.loads(metadata[CONFIG_KEY])
        except json.JSONDecodeError:
            raise CycletoolsError(f"{path}: its embedded generator config is not valid JSON") from None
    return state_dict, config


def _state_dict_from_object(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if isinstance(obj, dict) and {"G_A", "G_B"} <= set(obj):
        raise CycletoolsError(f"{path}: this is a cycletools training checkpoint, not a generator; "
                              "use --run RUN_DIR --direction a2b|b2a")
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CycletoolsError(f"{path}: not a generator state_dict (expected a mapping of names to tensors)")
    return obj


def infer_config(state_dict: dict[str, torch.Tensor], path: str | os.PathLike = "weights") -> dict[str, Any]:
    """Infer the ResNet generator's config from an official-layout state_dict."""
    try:
        return ResnetGenerator.infer_config(state_dict)
    except KeyError as exc:
        raise CycletoolsError(f"{path}: not a CycleGAN ResNet generator ({exc.args[0]})") from None


def load_into(generator: nn.Module, state_dict: dict[str, torch.Tensor], path: str | os.PathLike) -> None:
    """Load strictly; on mismatch raise one error that lists what differs."""
    expected = generator.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    shapes = [f"{k} {tuple(state_dict[k].shape)} vs {tuple(v.shape)}"
              for k, v in expected.items() if k in state_dict and state_dict[k].shape != v.shape]
    if missing or unexpected or shapes:
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes)):
            if items:
                shown = ", ".join(items[:4]) + (f" (+{len(items) - 4} more)" if len(items) > 4 else "")
                parts.append(f"{label}: {shown}")
        raise CycletoolsError(f"{path}: weights do not fit the generator ({'; '.join(parts)})")
    generator.load_state_dict({k: v.to(expected[k].dtype) for k, v in state_dict.items()}, strict=True)


WeightsAdapter = Callable[[dict[str, torch.Tensor]], "tuple[dict[str, torch.Tensor], dict[str, Any]] | None"]


def load_generator(path: str | os.PathLike,
                   adapters: Mapping[str, WeightsAdapter] | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """Build the generator a weights file describes and load it; returns ``(model, config)`` in eval mode.

    A state_dict that is not in the official layout is offered to each of ``adapters``
    (from plugins) in turn; the first that recognises it maps it onto a known architecture.
    """
    state_dict, config = read_weights_file(path)
    state_dict = clean_state_dict(state_dict)
    if config is not None:
        return _build_and_load(config, state_dict, path), config
    try:
        config = infer_config(state_dict, path)
        return _build_and_load(config, state_dict, path), config
    except CycletoolsError as not_official:
        adapted = _adapt(state_dict, adapters or {}, path)
        if adapted is None:
            raise not_official from None
    state_dict, config = adapted
    return _build_and_load(config, state_dict, path), config


def _build_and_load(config: dict[str, Any], state_dict: dict[str, torch.Tensor], path: str | os.PathLike) -> nn.Module:
    try:
        generator = build_generator(config)
    except (TypeError, ValueError) as exc:
        raise CycletoolsError(f"{path}: cannot build the generator it describes ({exc})") from None
    load_into(generator, state_dict, path)
    return generator.eval()


def _adapt(state_dict: dict[str, torch.Tensor], adapters: Mapping[str, WeightsAdapter],
           path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    for name, adapter in adapters.items():
        try:
            result = adapter(dict(state_dict))
        except Exception as exc:
            warnings.warn(f"weights adapter {name!r} failed on {path}: {exc}", stacklevel=3)
            continue
        if result is not None:
            return result
    return None


def save_generator(generator: nn.Module, path: str | os.PathLike, config: dict[str, Any] | None = None,
                   half: bool = False, metadata: Mapping[str, str] | None = None) -> Path:
    """Save as safetensors with the architecture embedded, atomically; ``half`` stores fp16.

    ``metadata`` adds string entries (e.g. where the weights came from) to the file's header.
    """
    from safetensors.torch import save_file

    path = Path(path)
    config = dict(config or getattr(generator, "config"))
    tensors = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu().contiguous()
               for k, v in generator.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={**(metadata or {}), CONFIG_KEY: json.dumps(config, sort_keys=True)})
    return path
