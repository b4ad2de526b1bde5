"""Reading and writing generator weights: safetensors with an embedded config, or plain state_dicts.

Official CycleGAN ``*.pth`` files load unchanged: a ``module.`` prefix and the stale
InstanceNorm buffers they carry are dropped, the architecture is inferred from the
tensor shapes, and the result is loaded strictly. Nothing is ever unpickled beyond
tensors and plain containers (``torch.load(..., weights_only=True)``).
"""

from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

import torch
from torch import nn

from cycletools.errors import CycletoolsError, first_line
from cycletools.models import ResnetGenerator
from cycletools.utils.safetensors_header import CONFIG_KEY, read_header_metadata
from cycletools.utils.atomic import atomic_path

if TYPE_CHECKING:
    from cycletools.registry import Registry

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
    if not isinstance(path, (str, os.PathLike)):
        raise CycletoolsError(f"a weights file is named by a path, not {type(path).__name__} {path!r}")
    path = Path(path)
    if path.is_dir():
        raise CycletoolsError(f"{path} is a folder, not a weights file")
    if not path.is_file():
        raise CycletoolsError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        return _read_safetensors(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pickle-protocol notices; refusals still raise
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling refusals, truncated zips, not-a-pickle files
        raise CycletoolsError(f"{path}: {_unreadable_reason(exc)}") from None
    return _state_dict_from_object(obj, path), None


def _unreadable_reason(exc: Exception) -> str:
    """Why torch.load (weights_only) refused a file, in cycletools' words: torch's own text advises
    loading without weights_only, which cycletools never does."""
    text = str(exc)
    found = re.search(r"unsupported (?:global: )?GLOBAL ([\w.]+)", text, re.IGNORECASE)
    if found:
        return (f"holds Python objects ({found.group(1)}), not only tensors; cycletools never unpickles code: "
                "save the generator's state_dict (or safetensors) instead")
    if "PytorchStreamReader" in text or "zip archive" in text:
        return "a damaged or truncated PyTorch file (its zip archive cannot be read)"
    return "not a weights file (a .safetensors file or a PyTorch .pth/.pt state_dict)"


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The string metadata in a safetensors header ({} for other files)."""
    return read_header_metadata(path) if Path(path).suffix == ".safetensors" else {}


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
    """Infer the ResNet generator's config from an official-layout state_dict.

    A file in another layout gets the missing and unexpected tensors against the official layout
    (with as many blocks as it names, else 9), so its author can see what differs.
    """
    try:
        return ResnetGenerator.infer_config(state_dict)
    except KeyError as exc:
        reason = exc.args[0]
    blocks = sorted(int(key.split(".")[1]) for key in state_dict
                    if key.startswith("model.") and ".conv_block." in key and key.split(".")[1].isdigit())
    n_blocks = blocks[-1] - 9 if blocks and 1 <= blocks[-1] - 9 <= 64 else 9
    expected = ResnetGenerator(ngf=4, n_blocks=n_blocks).state_dict()
    missing = [key for key in expected if key not in state_dict]
    unexpected = [key for key in state_dict if key not in expected]
    differences = "; ".join(f"{label}: {_shown(items)}" for label, items in
                            (("missing", missing), ("unexpected", unexpected)) if items)
    # Without a block named as in the official layout, the reason would count 0 blocks: leave it out.
    reason = f"{reason}; " if blocks else ""
    raise CycletoolsError(f"{path}: not a CycleGAN ResNet generator ({reason}against the official {n_blocks}-block "
                          f"layout: {differences or 'the same tensor names'})")


def _shown(items: list[str], limit: int = 4) -> str:
    return ", ".join(items[:limit]) + (f" (+{len(items) - limit} more)" if len(items) > limit else "")


def load_into(generator: nn.Module, state_dict: dict[str, torch.Tensor], path: str | os.PathLike) -> None:
    """Load strictly; on mismatch raise one error that lists what differs."""
    expected = generator.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    shapes = [f"{k} {tuple(state_dict[k].shape)} vs {tuple(v.shape)}"
              for k, v in expected.items() if k in state_dict and state_dict[k].shape != v.shape]
    if missing or unexpected or shapes:
        parts = [f"{label}: {_shown(items)}" for label, items in
                 (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes)) if items]
        raise CycletoolsError(f"{path}: weights do not fit the generator ({'; '.join(parts)})")
    generator.load_state_dict({k: v.to(expected[k].dtype) for k, v in state_dict.items()}, strict=True)


WeightsAdapter = Callable[[dict[str, torch.Tensor]], "tuple[dict[str, torch.Tensor], dict[str, Any]] | None"]


def load_generator(path: str | os.PathLike, registry: "Registry | None" = None) -> tuple[nn.Module, dict[str, Any]]:
    """Build the generator a weights file describes and load it; returns ``(model, config)`` in eval mode.

    Without a registry, every file cycletools writes loads (its config names a core architecture),
    and so does an official CycleGAN ``.pth``. With a plugin registry (``get_registry()``), plugin
    architectures are known too, and a state_dict in neither layout is offered to the registry's
    weights adapters in turn: the first whose result loads is used; an adapter that fails or
    hands back something unusable is reported and the next one tried.
    """
    state_dict, config = read_weights_file(path)
    state_dict = clean_state_dict(state_dict)
    if config is not None:
        return _build_and_load(config, state_dict, path, registry), config
    try:
        config = infer_config(state_dict, path)
    except CycletoolsError as not_official:
        if registry is None:
            raise
        adapted, failed = _adapt(state_dict, registry, path)
        if adapted is None:
            raise CycletoolsError(_unrecognised(path, registry, failed, not_official)) from None
        return adapted
    return _build_and_load(config, state_dict, path, registry), config


def _unrecognised(path: str | os.PathLike, registry: "Registry", failed: list[str],
                  not_official: CycletoolsError) -> str:
    """Why a file loads neither way: no adapter took it (said first), and how it differs from the official layout."""
    tried = f"tried: {', '.join(registry.adapters)}" if registry.adapters else "none is installed"
    if failed:
        tried += f"; {', '.join(failed)} failed, as warned above"
    layout = str(not_official).removeprefix(f"{path}: ")
    return f"{path}: no weights adapter recognises this file ({tried}), and it is {layout}"


def _build_and_load(config: dict[str, Any], state_dict: dict[str, torch.Tensor], path: str | os.PathLike,
                    registry: "Registry | None") -> nn.Module:
    from cycletools.architectures import build_generator

    try:
        generator = build_generator(config, registry)
    except CycletoolsError as exc:
        raise CycletoolsError(f"{path}: cannot build the generator it describes ({exc})") from None
    load_into(generator, state_dict, path)
    return generator.eval()


def _adapt(state_dict: dict[str, torch.Tensor], registry: "Registry",
           path: str | os.PathLike) -> tuple[tuple[nn.Module, dict[str, Any]] | None, list[str]]:
    """The first adapter's result that builds and loads, as ``(model, config)``, or ``None`` if none claims
    the file; and the adapters that failed on it (each is warned about)."""
    failed = []
    for name, adapter in registry.adapters.items():
        owner = f"weights adapter {name!r} (plugin {registry.adapter_plugins[name].name!r})"
        try:
            result = adapter(dict(state_dict))
        except Exception as exc:
            warnings.warn(f"{owner} failed on {path}: {first_line(exc, with_type=True)}", stacklevel=3)
            failed.append(name)
            continue
        if result is None:
            continue
        if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], Mapping)
                and isinstance(result[1], Mapping) and isinstance(result[1].get("arch"), str)
                and all(isinstance(v, torch.Tensor) for v in result[0].values())):
            warnings.warn(f"{owner} returned {type(result).__name__} for {path}; expected None or "
                          "(state_dict of tensors, config with an 'arch')", stacklevel=3)
            failed.append(name)
            continue
        adapted, config = dict(result[0]), dict(result[1])
        try:
            return (_build_and_load(config, adapted, path, registry), config), failed
        except CycletoolsError as exc:
            warnings.warn(f"{owner} claimed {path}, but its result does not load: {exc}", stacklevel=3)
            failed.append(name)
    return None, failed


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
