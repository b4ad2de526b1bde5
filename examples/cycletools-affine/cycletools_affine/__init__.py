"""A foreign generator layout for cycletools: affine InstanceNorm and named blocks.

Checkpoints of this layout (keys such as ``stem.conv.weight``, ``blocks.0.norm1.weight``,
``head.weight``, possibly behind a ``netG_A.`` or ``module.`` prefix) load with ``--weights``
through the ``affine-resnet`` adapter, and files that name ``affine_resnet`` in their config
are built with the registered architecture.
"""

from __future__ import annotations

import re

from cycletools import DomainSpec, hookimpl

ARCH = "affine_resnet"
PREFIXES = ("netG_A.", "netG.", "module.", "generator.")


def build(width: int = 64, depth: int = 9, **ignored):
    """The ``affine_resnet`` factory: cycletools calls it with a weights file's config."""
    from cycletools_affine.model import AffineResnetGenerator

    return AffineResnetGenerator(width=width, depth=depth)


def adapt(state_dict):
    """Recognise an affine-ResNet checkpoint; return ``(state_dict, config)``, or ``None`` if it is not one."""
    for prefix in PREFIXES:
        if state_dict and all(key.startswith(prefix) for key in state_dict):
            state_dict = {key[len(prefix):]: value for key, value in state_dict.items()}
    if "stem.conv.weight" not in state_dict or "head.weight" not in state_dict:
        return None
    blocks = {int(match.group(1)) for key in state_dict if (match := re.match(r"blocks\.(\d+)\.", key))}
    config = {"arch": ARCH, "width": int(state_dict["stem.conv.weight"].shape[0]), "depth": len(blocks)}
    return state_dict, config


@hookimpl
def register_architectures(register):
    register(ARCH, build)


@hookimpl
def register_weights_adapters(register):
    register("affine-resnet", adapt)


@hookimpl
def register_domains(register):
    register(DomainSpec(
        name="sketch2photo", title="Sketch → photo", family="object", source="sketch", target="photo",
        description="Turns pencil sketches into photographs (bring your own weights).",
        architecture={"arch": ARCH, "width": 32, "depth": 6},
        train_defaults={"lambda_identity": 0.0}, inference_size=256))
