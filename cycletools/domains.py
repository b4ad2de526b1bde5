"""What a domain pair is: the typed spec that plugins register."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from cycletools.errors import CycletoolsError

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0 and C1: escapes, carriage returns, new lines
TEXT_LIMIT = 2000  # characters of a title, description...: one paragraph on a page


def unsafe_text(text: str) -> bool:
    """Whether ``text`` holds what a terminal or a page would act on rather than show: control characters
    (C0, C1: escapes, carriage returns, new lines), format characters (bidi overrides, zero widths) and
    line or paragraph separators."""
    return bool(CONTROL_CHARACTERS.search(text)) or any(
        unicodedata.category(character) in ("Cf", "Zl", "Zp") for character in text)


def shown(value: Any, limit: int = 64) -> str:
    """``value`` for a message: its repr (control characters escaped), cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"…' ({len(str(value)):,} characters)"
FAMILIES = {
    "season": "season transfer",
    "object": "object transfiguration",
    "painting": "painting ↔ photo",
}
if TYPE_CHECKING:
    from PIL import Image

DEFAULT_ARCHITECTURE = {"arch": "resnet", "input_nc": 3, "output_nc": 3, "ngf": 64, "n_blocks": 9}


@dataclass(frozen=True)
class WeightsSource:
    """A place the domain's generator can be downloaded from (on explicit request only): an http(s) URL or a file
    on the Hugging Face Hub, ``hf://OWNER/REPO/PATH[@REVISION]``."""

    url: str
    sha256: str | None = None

    @property
    def suffix(self) -> str:
        from cycletools import hub

        suffix = hub.parse(self.url).suffix if hub.is_hub_name(self.url) else Path(self.url.split("?", 1)[0]).suffix
        return suffix if suffix in (".pth", ".pt", ".safetensors") else ".pth"


@dataclass(frozen=True)
class DomainSpec:
    """One translation direction between two image domains, e.g. horse → zebra.

    ``run_direction`` says which generator of a training run on this pair's dataset
    (trainA → trainB is ``a2b``) implements this domain; ``train_defaults`` are the
    recipe overrides ``cycletools train --plugin NAME`` starts from (flags override them).
    ``imagenet_class`` is the ImageNet class of the target domain, where ImageNet has one
    (``cycletools eval`` then reports the share of outputs classified as it).
    """

    name: str
    title: str
    family: str
    source: str
    target: str
    description: str = ""
    reverse: str | None = None
    architecture: Mapping[str, Any] = field(default_factory=lambda: dict(DEFAULT_ARCHITECTURE))
    sources: tuple[WeightsSource, ...] = ()
    bundled: Path | None = None
    run_direction: str = "a2b"
    train_defaults: Mapping[str, Any] = field(default_factory=dict)
    inference_size: int | None = None
    imagenet_class: int | None = None
    dataset: str | None = None
    preprocess: Callable[["Image.Image"], "Image.Image"] | None = None
    postprocess: Callable[["Image.Image"], "Image.Image"] | None = None

    @property
    def family_title(self) -> str:
        return FAMILIES.get(self.family, self.family)

    def architecture_summary(self, config: Mapping[str, Any] | None = None) -> str:
        """``resnet ngf=64 blocks=9`` for the declared architecture, or for ``config`` when given."""
        return summarize_architecture(self.architecture if config is None else config)

    def architecture_differences(self, config: Mapping[str, Any]) -> list[str]:
        """Where ``config`` (a generator's) differs from what this domain declares, e.g. ``ngf 4 vs 64``."""
        declared = {**(DEFAULT_ARCHITECTURE if self.architecture.get("arch") == "resnet" else {}),
                    **self.architecture}
        return [f"{key} {config.get(key)!r} vs {value!r}" for key, value in declared.items()
                if config.get(key) != value]


def _hub_name_problem(name: str) -> str | None:
    from cycletools import hub

    try:
        hub.parse(name)
    except CycletoolsError as exc:
        return str(exc)
    return None


def summarize_architecture(config: Mapping[str, Any]) -> str:
    """``resnet ngf=64 blocks=9``; another architecture's name and settings, ``wide depth=1 width=6``
    (RGB in and out, ``input_nc``/``output_nc`` 3, go without saying)."""
    arch = dict(config)
    if arch.get("arch") == "resnet":
        return f"resnet ngf={arch.get('ngf', 64)} blocks={arch.get('n_blocks', 9)}"
    settings = [f"{key}={_setting_text(value)}" for key, value in sorted(arch.items(), key=lambda item: str(item[0]))
                if key != "arch" and not (key in ("input_nc", "output_nc") and value == 3)]
    return " ".join([str(arch.get("arch", "?")), *settings])


def _setting_text(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def validate_spec(spec: Any, architectures: list[str] | None) -> DomainSpec:
    """Check a registered spec; raise CycletoolsError saying what is wrong.

    ``architectures``: the known architecture names (``None`` leaves the architecture unchecked).
    """
    from cycletools.training.config import setting_problems, value_problems

    if not isinstance(spec, DomainSpec):
        raise CycletoolsError(f"registered {type(spec).__name__} instead of a DomainSpec")
    problems = []
    if not isinstance(spec.name, str) or not NAME_PATTERN.match(spec.name):
        problems.append(f"name {shown(spec.name)} must be 1-64 lowercase letters, digits, '_' or '-'")
    for attr in ("title", "family", "source", "target"):
        if not isinstance(getattr(spec, attr), str) or not getattr(spec, attr).strip():
            problems.append(f"{attr} must be a non-empty string")
    for attr in ("title", "family", "source", "target", "description", "dataset"):
        value = getattr(spec, attr, None)
        if isinstance(value, str) and unsafe_text(value):
            problems.append(f"{attr} holds control or format characters (a terminal would run them): plain text "
                            "only")
        elif isinstance(value, str) and len(value) > TEXT_LIMIT:
            problems.append(f"{attr} is {len(value):,} characters long; at most {TEXT_LIMIT:,}")
    if spec.reverse is not None and (not isinstance(spec.reverse, str) or not NAME_PATTERN.match(spec.reverse)):
        problems.append(f"reverse {shown(spec.reverse)} is not a valid domain name")
    elif spec.reverse is not None and spec.reverse == spec.name:
        problems.append(f"reverse {spec.reverse!r} is the domain itself (name the domain of the other direction, "
                        "or leave reverse out)")
    arch = dict(spec.architecture) if isinstance(spec.architecture, Mapping) else {}
    if not isinstance(spec.architecture, Mapping) or not isinstance(arch.get("arch"), str):
        problems.append("architecture must be a mapping with an 'arch' name")
    elif architectures is not None and arch.get("arch") not in architectures:
        problems.append(f"unknown architecture {arch.get('arch')!r} (known: {', '.join(sorted(architectures))})")
    if spec.run_direction not in ("a2b", "b2a"):
        problems.append("run_direction must be a2b or b2a")
    if isinstance(spec.train_defaults, Mapping):
        problems += setting_problems(dict(spec.train_defaults), "training settings in train_defaults")
        problems += value_problems(dict(spec.train_defaults), "train_defaults")
    else:
        problems.append("train_defaults must be a mapping of training settings")
    for source in spec.sources:
        if not isinstance(source, WeightsSource) or not source.url.startswith(("http://", "https://", "file://",
                                                                              "hf://")):
            problems.append(f"weights source {source!r} needs an http(s) or file URL, or an hf:// name")
        elif source.url.startswith("hf://") and _hub_name_problem(source.url):
            problems.append(_hub_name_problem(source.url))
        elif source.sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", source.sha256):
            problems.append(f"sha256 of {source.url} must be 64 lowercase hex digits")
    if spec.imagenet_class is not None and (not isinstance(spec.imagenet_class, int)
                                            or not 0 <= spec.imagenet_class < 1000):
        problems.append("imagenet_class must be an ImageNet class index, 0 to 999")
    if spec.inference_size is not None and (not isinstance(spec.inference_size, int) or spec.inference_size < 8):
        problems.append("inference_size must be an integer of at least 8")
    for hook in ("preprocess", "postprocess"):
        if getattr(spec, hook) is not None and not callable(getattr(spec, hook)):
            problems.append(f"{hook} must be callable")
    if problems:
        raise CycletoolsError(f"invalid domain {shown(getattr(spec, 'name', '?'))}: " + "; ".join(problems))
    return spec
