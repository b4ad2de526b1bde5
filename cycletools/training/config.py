"""The training configuration, its two recipes, and how flags, config files and defaults combine.

Precedence, lowest first: field defaults < recipe preset < config file (TOML/YAML) < explicit flags.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cycletools.errors import CycletoolsError
from cycletools.training.budget import parse_duration

RECIPES = ("official", "fast")

# What each recipe sets on top of the field defaults (a config file or flag overrides these).
RECIPE_PRESETS: dict[str, dict[str, Any]] = {
    "official": {"batch_size": 1, "amp": "none", "channels_last": False, "compile": False},
    "fast": {"batch_size": 8, "amp": "bf16", "channels_last": True, "compile": False},
}

# Settings that may change when a run is resumed; everything else must match the checkpoint.
RESUMABLE_CHANGES = frozenset({"epochs", "epochs_decay", "max_steps", "workers", "log_every",
                               "save_every", "compile", "device", "data"})


@dataclass
class TrainConfig:
    """Every setting of a training run (saved beside the run as config.json)."""

    data: str = ""
    name: str = ""
    out: str = "runs"
    recipe: str = "official"
    epochs: int = 100
    epochs_decay: int = 100
    batch_size: int = 1
    size: int = 256
    load_size: int | None = None
    flip: bool = True
    ngf: int = 64
    ndf: int = 64
    blocks: int = 9
    architecture: dict[str, Any] | None = None  # a generator other than the resnet that ngf/blocks describe
    d_layers: int = 3
    lambda_cycle: float = 10.0
    lambda_identity: float = 0.5
    lr: float | None = None
    beta1: float = 0.5
    beta2: float = 0.999
    pool_size: int = 50
    seed: int = 0
    amp: str = "none"
    channels_last: bool = False
    compile: bool = False
    workers: int | None = None
    device: str | None = None
    save_every: int = 500
    log_every: int = 50
    max_steps: int | None = None
    time_budget: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def effective_load_size(self) -> int:
        """Resize target before the random crop: 286 for 256 (the official 1.1171875 ratio)."""
        return self.load_size or round(self.size * 286 / 256)

    def generator_config(self) -> dict[str, Any]:
        """What the generators are built from: the domain's declared architecture, or resnet ngf/blocks."""
        if self.architecture:
            return dict(self.architecture)
        return {"arch": "resnet", "input_nc": 3, "output_nc": 3, "ngf": self.ngf, "n_blocks": self.blocks}

    @property
    def effective_lr(self) -> float:
        """The learning rate: the flag if given, else 2e-4 × sqrt(batch size)."""
        return self.lr if self.lr is not None else 2e-4 * math.sqrt(self.batch_size)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self) -> "TrainConfig":
        problems = []
        if self.recipe not in RECIPES:
            problems.append(f"recipe must be one of {', '.join(RECIPES)}")
        if self.amp not in ("none", "bf16", "fp16"):
            problems.append("amp must be none, bf16 or fp16")
        for name in ("batch_size", "ngf", "ndf", "d_layers", "log_every"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1")
        for name in ("epochs", "epochs_decay", "blocks", "pool_size", "save_every"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must not be negative")
        if self.epochs + self.epochs_decay < 1:
            problems.append("epochs + epochs_decay must be at least 1")
        smallest = 3 * 2 ** self.d_layers  # the PatchGAN's last norm needs 2×2 pixels: 24 with 3 layers
        if self.size < max(8, smallest) or self.size % 4:
            problems.append(f"size (--crop-size) must be a multiple of 4, at least {max(8, smallest)} for a "
                            f"{self.d_layers}-layer discriminator, not {self.size}")
        if self.effective_load_size < self.size:
            problems.append(f"load_size (--load-size {self.effective_load_size}) must be at least size "
                            f"(--crop-size {self.size})")
        if self.lambda_cycle < 0 or self.lambda_identity < 0:
            problems.append("loss weights must not be negative")
        if self.max_steps is not None and self.max_steps < 1:
            problems.append("max_steps must be at least 1")
        if self.time_budget is not None and not self.time_budget > 0:
            problems.append("time_budget must be positive")
        if not self.name:
            problems.append("a run name is required (--name)")
        if problems:
            raise CycletoolsError("invalid training settings: " + "; ".join(problems))
        return self


FIELD_NAMES = {f.name for f in dataclasses.fields(TrainConfig)} - {"extra"}
# Options whose name differs from their setting's: ``--crop-size`` sets ``size``. Each name works
# everywhere a setting is named: config files, a domain's train_defaults, resolve_config.
SETTING_ALIASES = {"crop_size": "size"}
ACCEPTED_NAMES = ", ".join(sorted(FIELD_NAMES | set(SETTING_ALIASES)))


def setting_name(key: Any) -> str:
    """The setting a name stands for: dashes read as underscores, an option's name as its setting's."""
    name = str(key).replace("-", "_")
    return SETTING_ALIASES.get(name, name)


def setting_problems(values: dict[str, Any], what: str = "settings", accepted: str = "accepted") -> list[str]:
    """What is wrong with the names of ``values``: unknown ones (listed with the accepted names), or one
    setting named twice."""
    problems = []
    unknown = sorted(str(key) for key in values if setting_name(key) not in FIELD_NAMES)
    if unknown:
        problems.append(f"unknown {what}: {', '.join(unknown)} ({accepted}: {ACCEPTED_NAMES})")
    names: dict[str, list[str]] = {}
    for key in values:
        names.setdefault(setting_name(key), []).append(str(key).replace("-", "_"))
    problems += [f"{' and '.join(sorted(keys))} are the same setting; give one" for keys in names.values()
                 if len(keys) > 1]
    return problems


KIND_WORDS = {"int": "a whole number", "float": "a number", "str": "text", "bool": "true or false"}


def value_problems(values: dict[str, Any], what: str = "settings") -> list[str]:
    """The values of known settings that cannot become their setting's type (``epochs = "lots"``)."""
    types = {f.name: f.type for f in dataclasses.fields(TrainConfig)}
    problems = []
    for key, value in values.items():
        name = setting_name(key)
        if name not in FIELD_NAMES or value is None:
            continue
        try:
            parse_duration(value) if name == "time_budget" else _coerce(name, value, types[name])
        except (TypeError, ValueError, CycletoolsError):
            kind = types[name].split("|")[0].strip()
            wanted = "a positive duration (e.g. 90m)" if name == "time_budget" else KIND_WORDS.get(kind, kind)
            problems.append(f"{what}: {key} takes {wanted}, not {value!r}")
    return problems


def typed_setting(name: str, value: Any) -> Any:
    """``value`` as the setting ``name`` holds it (``"2m"`` → 120.0 for time_budget, ``"8"`` → 8), so that a
    value given again the way it was given first compares equal; unknown names and None pass unchanged."""
    if name not in FIELD_NAMES or value is None:
        return value
    types = {f.name: f.type for f in dataclasses.fields(TrainConfig)}
    try:
        return parse_duration(value) if name == "time_budget" else _coerce(name, value, types[name])
    except (TypeError, ValueError) as exc:
        raise CycletoolsError(f"invalid training setting: {exc}") from None


def by_setting(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` keyed by the settings their names stand for (``crop-size`` → ``size``)."""
    return {setting_name(key): value for key, value in values.items()}


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML (.toml) or YAML (.yaml/.yml) file of training settings; keys may use - or _."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CycletoolsError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    try:
        if path.suffix == ".toml":
            values = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError:
                raise CycletoolsError("YAML config files need PyYAML: pip install pyyaml "
                                      "(or use a .toml file)") from None
            values = yaml.safe_load(text) or {}
        elif path.suffix == ".json":
            values = json.loads(text)
        else:
            raise CycletoolsError(f"{path}: config files must be .toml, .yaml/.yml or .json")
    except CycletoolsError:
        raise
    except Exception as exc:
        raise CycletoolsError(f"{path}: not a valid config file ({exc})") from None
    if not isinstance(values, dict):
        raise CycletoolsError(f"{path}: expected a table of settings at the top level")
    problems = setting_problems(values, accepted="accepted, with - or _")
    if problems:
        raise CycletoolsError(f"{path}: {'; '.join(problems)}")
    return by_setting(values)


def resolve_config(flags: dict[str, Any], config_file: str | Path | None = None,
                   cuda_available: bool = False, base: dict[str, Any] | None = None) -> TrainConfig:
    """Combine defaults, a recipe preset, a config file and explicit flags into a TrainConfig.

    ``flags`` holds only the options the user actually gave. ``base`` (e.g. a plugin's
    training defaults) sits between the recipe preset and the config file. Settings may be named
    by their options' names too (``crop_size`` for ``size``).
    """
    from_file = read_config_file(config_file) if config_file else {}
    flags, base = by_setting(flags), by_setting(base or {})
    recipe = flags.get("recipe") or from_file.get("recipe") or base.get("recipe") \
        or ("fast" if cuda_available else "official")
    if recipe not in RECIPES:
        raise CycletoolsError(f"unknown recipe {recipe!r}; choose {' or '.join(RECIPES)}")
    chosen = {**base, **from_file, **flags}
    values: dict[str, Any] = {**RECIPE_PRESETS[recipe], **chosen, "recipe": recipe}
    if values.get("amp") == "bf16" and not _runs_on_gpu(values.get("device"), cuda_available):
        _cpu_bf16(values, asked="amp" in chosen)
    if values.get("time_budget") is not None:
        values["time_budget"] = parse_duration(values["time_budget"])
    types = {f.name: f.type for f in dataclasses.fields(TrainConfig)}
    try:
        config = TrainConfig(**{k: _coerce(k, v, types[k]) for k, v in values.items() if k in FIELD_NAMES})
    except (TypeError, ValueError) as exc:
        raise CycletoolsError(f"invalid training settings: {exc}") from None
    return config.validate()


def _runs_on_gpu(device: str | None, cuda_available: bool) -> bool:
    return (str(device).split(":")[0] in ("cuda", "mps")) if device not in (None, "", "auto") else cuda_available


def _cpu_bf16(values: dict[str, Any], asked: bool) -> None:
    """bf16 training on a CPU: kept where the CPU has it in hardware; else the recipe's choice falls
    back to fp32 with a notice, and an explicit --amp bf16 stays, with a warning."""
    import warnings

    from cycletools.utils.devices import BF16_IS_SLOW, cpu_bf16_is_native

    if cpu_bf16_is_native():
        return
    if asked:
        warnings.warn(f"--amp bf16: {BF16_IS_SLOW}; --amp none trains faster here", stacklevel=3)
        return
    values["amp"] = "none"
    warnings.warn(f"the {values['recipe']} recipe trains in fp32 here: {BF16_IS_SLOW} (--amp bf16 to insist)",
                  stacklevel=3)


def _coerce(name: str, value: Any, annotation: str) -> Any:
    """Coerce file/flag values to the field's type (TOML/YAML already give typed values)."""
    if value is None:
        return None
    kind = annotation.split("|")[0].strip()
    if kind == "bool":
        if isinstance(value, str):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"{name} must be true or false, not {value!r}")
        return bool(value)
    if kind == "int":
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"{name} must be a whole number, not {value!r}")
        return int(value)
    if kind == "float":
        return float(value)
    if kind == "str":
        return str(value)
    return value


def config_from_dict(values: dict[str, Any]) -> TrainConfig:
    """Rebuild a TrainConfig saved with ``to_dict`` (unknown keys are ignored)."""
    return TrainConfig(**{k: v for k, v in values.items() if k in FIELD_NAMES | {"extra"}})
