"""Start a narrower sub-mobile ResNet from a wider one's weights (GAN Compression's weight inheritance).

Every stage of the student keeps the teacher's most active channels (mean absolute activation on
a few real images), so the student starts from the teacher's learnt filters instead of from noise,
and its residual stream corresponds channel for channel to part of the teacher's (which feature
distillation uses). Both networks need the same number of blocks.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from cycletools.errors import CycletoolsError
from cycletools.models.mobile import MobileResnetGenerator


STAGES = ("stem", "c1", "c2", "u0", "u1")


def _widths(config: dict[str, Any]) -> dict[str, int]:
    """Width of every stage: stem, down (c1, c2), each block's inner width (mid0...), up (u0, u1)."""
    widths = {"stem": config["stem"], "c1": config["down"][0], "c2": config["down"][1],
              "u0": config["up"][0], "u1": config["up"][1]}
    return {**widths, **{f"mid{i}": width for i, width in enumerate(config["mids"])}}


def _blocks(config: dict[str, Any]) -> int:
    return len(config["mids"])


def _wider_stages(teacher: dict[str, Any], student: dict[str, Any]) -> list[str]:
    big, small = _widths(teacher), _widths(student)
    return [f"{name} {width} > {big[name]}" for name, width in small.items() if width > big[name]]


@torch.no_grad()
def channel_importance(teacher: MobileResnetGenerator, images: torch.Tensor) -> dict[str, Any]:
    """Mean absolute activation of every channel of every stage, over ``images`` (N×3×H×W in [-1, 1])."""
    layers = teacher.model
    blocks = len(teacher.config["mids"])
    sums: dict[str, torch.Tensor] = {}

    def record(name: str):
        def hook(module, inputs, output):
            energy = output.detach().abs().mean(dim=(0, 2, 3))
            sums[name] = sums.get(name, 0) + energy
        return hook

    taps = {"stem": layers[3], "c1": layers[6], "c2": layers[9], "u0": layers[12 + blocks], "u1": layers[15 + blocks]}
    handles = [module.register_forward_hook(record(name)) for name, module in taps.items()]
    for index in range(blocks):
        block = layers[10 + index]
        handles.append(block.register_forward_hook(record("c2")))  # the residual stream after every block
        handles.append(block.conv_block[3].register_forward_hook(record(f"mid{index}")))
    try:
        teacher.eval()(images)
    finally:
        for handle in handles:
            handle.remove()
    return {**{name: sums[name] for name in taps}, "mids": [sums[f"mid{i}"] for i in range(blocks)]}


def _top(scores: torch.Tensor, keep: int) -> torch.Tensor:
    return torch.topk(scores, keep).indices.sort().values


def inherit_student(teacher: MobileResnetGenerator, student_config: dict[str, Any],
                    images: torch.Tensor) -> tuple[MobileResnetGenerator, torch.Tensor]:
    """A ``student_config`` generator whose weights are channel subsets of ``teacher``'s, and the
    teacher's residual-stream channels it kept (for distilling the blocks' features)."""
    if _blocks(student_config) != _blocks(teacher.config):
        raise CycletoolsError(f"the student has {_blocks(student_config)} blocks and the teacher "
                              f"{_blocks(teacher.config)}: weights can be inherited only with the same number of blocks")
    wider = _wider_stages(teacher.config, student_config)
    if wider:
        raise CycletoolsError(f"the student is wider than the teacher ({', '.join(wider)}): nothing to inherit")
    scores = channel_importance(teacher, images)
    small = _widths(student_config)
    stem, c1, c2, u0, u1 = (_top(scores[name], small[name]) for name in STAGES)
    mids = [_top(score, width) for score, width in zip(scores["mids"], student_config["mids"])]
    source = teacher.state_dict()
    blocks = len(mids)
    up0, up1, out = 10 + blocks, 13 + blocks, 17 + blocks
    picked: dict[str, torch.Tensor] = {
        "model.1.weight": source["model.1.weight"][stem], "model.1.bias": source["model.1.bias"][stem],
        "model.4.weight": source["model.4.weight"][c1][:, stem], "model.4.bias": source["model.4.bias"][c1],
        "model.7.weight": source["model.7.weight"][c2][:, c1], "model.7.bias": source["model.7.bias"][c2],
        f"model.{up0}.weight": source[f"model.{up0}.weight"][c2][:, u0],  # ConvTranspose: in × out
        f"model.{up0}.bias": source[f"model.{up0}.bias"][u0],
        f"model.{up1}.weight": source[f"model.{up1}.weight"][u0][:, u1],
        f"model.{up1}.bias": source[f"model.{up1}.bias"][u1],
        f"model.{out}.weight": source[f"model.{out}.weight"][:, u1], f"model.{out}.bias": source[f"model.{out}.bias"],
    }
    for index, mid in enumerate(mids):
        first, second = f"model.{10 + index}.conv_block.1.conv", f"model.{10 + index}.conv_block.6.conv"
        picked[f"{first}.0.weight"] = source[f"{first}.0.weight"][c2]  # depthwise
        picked[f"{first}.0.bias"] = source[f"{first}.0.bias"][c2]
        picked[f"{first}.2.weight"] = source[f"{first}.2.weight"][mid][:, c2]  # pointwise
        picked[f"{first}.2.bias"] = source[f"{first}.2.bias"][mid]
        picked[f"{second}.0.weight"] = source[f"{second}.0.weight"][mid]
        picked[f"{second}.0.bias"] = source[f"{second}.0.bias"][mid]
        picked[f"{second}.2.weight"] = source[f"{second}.2.weight"][c2][:, mid]
        picked[f"{second}.2.bias"] = source[f"{second}.2.bias"][c2]
    student = MobileResnetGenerator(**{k: v for k, v in student_config.items() if k != "arch"})
    student.load_state_dict({name: tensor.clone() for name, tensor in picked.items()})
    return student, c2


def can_inherit(teacher: nn.Module, student_config: dict[str, Any]) -> bool:
    """Whether ``teacher`` is a sub-mobile ResNet at least as wide as the student, with as many blocks."""
    return (isinstance(teacher, MobileResnetGenerator) and _blocks(teacher.config) == _blocks(student_config)
            and not _wider_stages(teacher.config, student_config))
