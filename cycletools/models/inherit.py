"""Start a narrower sub-mobile ResNet from a wider one (weight inheritance by reconstruction).

Every convolution of a sub-mobile ResNet is followed by InstanceNorm (no affine parameters),
which gives every channel the same mean and spread: how active a channel is says nothing about
what it is worth. What a channel is worth is how much the next layer's output suffers without it.
So each cut is chosen and then repaired by least squares on a few real images:

1. On the teacher's own activations, every convolution that reads a cut stage is written as a
   linear map from its inputs (each input channel a group of columns: its k×k taps) to its
   output before the norm. Channels are dropped one at a time, always the one whose loss raises
   that map's least-squares error least (the residual stream, read by every block and by the
   first up-convolution, is chosen on all of them together).
2. Then the student is built layer after layer on its own activations: each convolution that
   lost inputs or outputs is refitted by least squares so that, fed what the student has computed
   so far, it gives the teacher's kept channels before the norm (a residual block's second
   pointwise convolution also makes up for what the stream has drifted from the teacher's).

Depthwise convolutions keep the teacher's filters; the result is exact where nothing was cut.
Both networks need the same number of blocks.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cycletools.errors import CycletoolsError
from cycletools.models.mobile import MobileResnetGenerator

STAGES = ("stem", "c1", "c2", "u0", "u1")
RIDGE = 1e-4  # relative to the mean input energy: keeps the normal equations well posed
ROWS_PER_IMAGE = 8192  # pixels of each image a fit sees (a random subset where a layer has more)


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


def _norm(x: torch.Tensor) -> torch.Tensor:
    return F.instance_norm(x)


def _columns(x: torch.Tensor, layer: nn.Module) -> torch.Tensor:
    """The inputs of ``layer`` (a Conv2d or ConvTranspose2d) at every output pixel: rows × (C·k·k),
    channel-major, so channel c owns columns c·k²...(c+1)·k²-1. ``x`` is already padded where a
    ReflectionPad2d precedes the layer."""
    k = layer.kernel_size[0]
    if isinstance(layer, nn.ConvTranspose2d):  # the same map as a stride-1 conv over a zero-stuffed input
        stride, pad, extra = layer.stride[0], layer.padding[0], layer.output_padding[0]
        n, c, h, w = x.shape
        stuffed = x.new_zeros(n, c, (h - 1) * stride + 1, (w - 1) * stride + 1)
        stuffed[:, :, ::stride, ::stride] = x
        before, after = k - 1 - pad, k - 1 - pad + extra
        x, stride, padding = F.pad(stuffed, (before, after, before, after)), 1, 0
    else:
        stride, padding = layer.stride[0], layer.padding[0]
    if k == 1 and stride == 1:
        return x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])
    patches = F.unfold(x, k, padding=padding, stride=stride)  # N × (C·k·k) × L
    return patches.transpose(1, 2).reshape(-1, patches.shape[1])


def _to_weight(solution: torch.Tensor, layer: nn.Module, inputs: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A least-squares solution ((C·k·k + 1) × out, the last row the bias) as ``layer``'s weight and bias."""
    k = layer.kernel_size[0]
    weight = solution[:-1].T.reshape(-1, inputs, k, k)  # out × in × k × k, as a forward conv
    if isinstance(layer, nn.ConvTranspose2d):
        weight = weight.flip(2, 3).transpose(0, 1)  # in × out × k × k, the kernel turned round
    return weight.contiguous(), solution[-1].contiguous()


def _rows(z: torch.Tensor) -> torch.Tensor:
    return z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])


class NormalEquations:
    """Sums for a least-squares fit of targets (rows × q) from inputs (rows × p) plus a bias,
    whose columns come in equal groups (one group per input channel)."""

    def __init__(self, group_size: int):
        self.group_size = group_size
        self.gram = self.cross = None
        self.energy = 0.0  # sum of squared targets: what a fit's error is measured against

    def add(self, inputs: torch.Tensor, targets: torch.Tensor, images: int = 1) -> None:
        if len(inputs) > ROWS_PER_IMAGE * images:
            rows = torch.randperm(len(inputs), generator=torch.Generator().manual_seed(len(inputs)))
            rows = rows[:ROWS_PER_IMAGE * images].to(inputs.device)
            inputs, targets = inputs[rows], targets[rows]
        inputs = torch.cat([inputs, inputs.new_ones(len(inputs), 1)], 1)
        # The sums are small (p × p); they live on the CPU whatever device the networks run on.
        gram, cross = (inputs.T @ inputs).double().cpu(), (inputs.T @ targets).double().cpu()
        self.gram = gram if self.gram is None else self.gram + gram
        self.cross = cross if self.cross is None else self.cross + cross
        self.energy += float(targets.double().square().sum())

    def _columns_of(self, groups: torch.Tensor) -> torch.Tensor:
        size = self.group_size
        columns = (groups[:, None] * size + torch.arange(size)).reshape(-1)
        return torch.cat([columns, torch.tensor([self.gram.shape[0] - 1])])  # the bias always stays

    def inverse(self, groups: torch.Tensor) -> torch.Tensor:
        columns = self._columns_of(groups)
        gram = self.gram[columns][:, columns]
        ridge = RIDGE * gram.diagonal()[:-1].mean()
        return torch.linalg.inv(gram + ridge * torch.eye(len(columns), dtype=gram.dtype))

    def solve(self, groups: torch.Tensor, outputs: torch.Tensor | None = None) -> torch.Tensor:
        """The fit (len(groups)·group_size + 1) × q from the kept groups, for the ``outputs`` columns."""
        cross = self.cross[self._columns_of(groups)]
        if outputs is not None:
            cross = cross[:, outputs]
        return (self.inverse(groups) @ cross).float()


def select_groups(fits: list[NormalEquations], keep: int) -> torch.Tensor:
    """The ``keep`` input groups (sorted) whose loss raises the fits' summed relative error least,
    found by dropping one group at a time (each drop's cost read off the inverse, as OBS does)."""
    total = (fits[0].gram.shape[0] - 1) // fits[0].group_size
    alive = torch.arange(total)
    state = []
    for fit in fits:
        inverse = fit.inverse(alive)
        state.append([inverse, inverse @ fit.cross, fit.group_size, max(fit.energy, 1e-12)])
    while len(alive) > keep:
        cost = torch.zeros(len(alive), dtype=torch.float64)
        for inverse, solution, size, energy in state:
            for position in range(len(alive)):
                rows = slice(position * size, (position + 1) * size)
                block = inverse[rows, rows]
                cost[position] += torch.trace(solution[rows].T @ torch.linalg.solve(block, solution[rows])) / energy
        drop = int(cost.argmin())
        for entry in state:
            inverse, solution, size, _ = entry
            rows = torch.arange(drop * size, (drop + 1) * size)
            rest = torch.cat([torch.arange(0, drop * size), torch.arange((drop + 1) * size, inverse.shape[0])])
            link = inverse[rest][:, rows] @ torch.linalg.inv(inverse[rows][:, rows])
            entry[0] = inverse[rest][:, rest] - link @ inverse[rows][:, rest]
            entry[1] = solution[rest] - link @ solution[rows]
        alive = torch.cat([alive[:drop], alive[drop + 1:]])
    return alive


class _Layers:
    """Named views into a sub-mobile ResNet's ``model`` Sequential."""

    def __init__(self, generator: MobileResnetGenerator):
        model, blocks = generator.model, len(generator.config["mids"])
        self.stem, self.down1, self.down2 = model[1], model[4], model[7]
        self.blocks = [model[10 + i].conv_block for i in range(blocks)]
        self.up0, self.up1, self.out = model[10 + blocks], model[13 + blocks], model[17 + blocks]

    @staticmethod
    def block_parts(block: nn.Sequential) -> tuple[nn.Conv2d, nn.Conv2d, nn.Conv2d, nn.Conv2d]:
        """depthwise 1, pointwise 1, depthwise 2, pointwise 2 of a residual block."""
        return block[1].conv[0], block[1].conv[2], block[6].conv[0], block[6].conv[2]


def _pad(x: torch.Tensor, amount: int) -> torch.Tensor:
    return F.pad(x, (amount,) * 4, mode="reflect")


def _block_inputs(parts, stream: torch.Tensor) -> torch.Tensor:
    """What a block's first pointwise conv reads: the normed depthwise filtering of the stream."""
    return _norm(parts[0](_pad(stream, 1)))


def _block_middle(parts, first: torch.Tensor) -> torch.Tensor:
    """What a block's second pointwise conv reads, from the first pointwise conv's output."""
    return _norm(parts[2](_pad(torch.relu(_norm(first)), 1)))


@torch.no_grad()
def _teacher_pass(teacher: MobileResnetGenerator, images: torch.Tensor, batch: int) -> dict[str, Any]:
    """The teacher's activations on ``images`` at every point the student is fitted to."""
    layers = _Layers(teacher)
    saved: dict[str, list] = {"stem": [], "down1": [], "streams": [[] for _ in range(len(layers.blocks) + 1)],
                              "up0": [], "up1": []}
    for start in range(0, len(images), batch):
        x = images[start:start + batch].clamp(-1, 1)
        stem = torch.relu(_norm(layers.stem(_pad(x, 3))))
        down1 = torch.relu(_norm(layers.down1(stem)))
        stream = torch.relu(_norm(layers.down2(down1)))
        saved["stem"].append(stem)
        saved["down1"].append(down1)
        saved["streams"][0].append(stream)
        for index, block in enumerate(layers.blocks):
            stream = stream + block(stream)
            saved["streams"][index + 1].append(stream)
        up0 = torch.relu(_norm(layers.up0(stream)))
        saved["up0"].append(up0)
        saved["up1"].append(torch.relu(_norm(layers.up1(up0))))
    return {"stem": saved["stem"], "down1": saved["down1"], "streams": saved["streams"],
            "up0": saved["up0"], "up1": saved["up1"], "layers": layers}


def _choose_channels(teacher: MobileResnetGenerator, acts: dict[str, Any], small: dict[str, int]) -> dict[str, Any]:
    """The teacher's channels each student stage keeps, by the least-squares error of what reads them."""
    layers: _Layers = acts["layers"]
    big = _widths(teacher.config)

    def fits_for(layer: nn.Module, inputs: list[torch.Tensor], pad: int = 0, outputs=None) -> NormalEquations:
        fit = NormalEquations(layer.kernel_size[0] ** 2)
        for x in inputs:
            x = _pad(x, pad) if pad else x
            fit.add(_columns(x, layer), _rows(layer(x)) if outputs is None else _rows(outputs(x)), len(x))
        return fit

    def choose(name: str, fits) -> torch.Tensor:
        """``fits()``: the fits that read stage ``name``, made only where it is cut."""
        return torch.arange(big[name]) if small[name] == big[name] else select_groups(fits(), small[name])

    def block_fits(index: int, which: int) -> NormalEquations:
        """The first (``which`` 0) or second pointwise conv of block ``index`` as a fit on its inputs."""
        parts = _Layers.block_parts(layers.blocks[index])
        fit = NormalEquations(1)
        for stream in acts["streams"][index]:
            inputs = _block_inputs(parts, stream)
            if which:
                inputs = _block_middle(parts, parts[1](inputs))
            fit.add(_rows(inputs), _rows(parts[1 + 2 * which](inputs)), len(stream))
        return fit

    blocks = range(len(layers.blocks))
    return {
        "stem": choose("stem", lambda: [fits_for(layers.down1, acts["stem"])]),
        "c1": choose("c1", lambda: [fits_for(layers.down2, acts["down1"])]),
        "c2": choose("c2", lambda: [fits_for(layers.up0, acts["streams"][-1])] + [block_fits(i, 0) for i in blocks]),
        "mids": [choose(f"mid{i}", lambda i=i: [block_fits(i, 1)]) for i in blocks],
        "u0": choose("u0", lambda: [fits_for(layers.up1, acts["up0"])]),
        "u1": choose("u1", lambda: [fits_for(layers.out, acts["up1"], pad=3)]),
    }


@torch.no_grad()
def inherit_student(teacher: MobileResnetGenerator, student_config: dict[str, Any],
                    images: torch.Tensor, batch: int = 4) -> tuple[MobileResnetGenerator, torch.Tensor]:
    """A ``student_config`` generator fitted to ``teacher`` on ``images`` (N×3×H×W in [-1, 1]),
    and the teacher's residual-stream channels it kept (for distilling the blocks' features)."""
    if _blocks(student_config) != _blocks(teacher.config):
        raise CycletoolsError(f"the student has {_blocks(student_config)} blocks and the teacher "
                              f"{_blocks(teacher.config)}: weights can be inherited only with the same number of blocks")
    wider = _wider_stages(teacher.config, student_config)
    if wider:
        raise CycletoolsError(f"the student is wider than the teacher ({', '.join(wider)}): nothing to inherit")
    teacher = teacher.eval()
    images = images.to(next(teacher.parameters()).device)
    acts = _teacher_pass(teacher, images, batch)
    kept = _choose_channels(teacher, acts, _widths(student_config))
    student = MobileResnetGenerator(**{k: v for k, v in student_config.items() if k != "arch"})
    student.to(images.device).eval()
    _fit_student(student, teacher, acts, kept)
    return student, kept["c2"]


def _refit(student_layer: nn.Module, teacher_layer: nn.Module, inputs: list[torch.Tensor],
           targets: list[torch.Tensor], keep_in: torch.Tensor, exact: bool, pad: int = 0) -> None:
    """Fit ``student_layer`` so that, fed ``inputs`` (the student's), it gives ``targets`` (the teacher's
    kept output channels, before the norm); ``exact``: nothing was cut or has drifted, copy the teacher's."""
    if exact:
        student_layer.load_state_dict(teacher_layer.state_dict())
        return
    fit = NormalEquations(teacher_layer.kernel_size[0] ** 2)
    for x, target in zip(inputs, targets):
        fit.add(_columns(_pad(x, pad) if pad else x, student_layer), _rows(target), len(x))
    weight, bias = _to_weight(fit.solve(torch.arange(len(keep_in))), student_layer, len(keep_in))
    student_layer.weight.copy_(weight)
    student_layer.bias.copy_(bias)


def _fit_student(student: MobileResnetGenerator, teacher: MobileResnetGenerator, acts: dict[str, Any],
                 kept: dict[str, Any], compensate: bool = True) -> None:
    """Build the student layer after layer on its own activations (see the module's docstring)."""
    mine, theirs = _Layers(student), acts["layers"]
    big = _widths(teacher.config)
    stem, c1, c2, u0, u1 = (kept[name] for name in STAGES)
    # The stem reads the image itself: its kept filters are exact.
    mine.stem.weight.copy_(theirs.stem.weight[stem])
    mine.stem.bias.copy_(theirs.stem.bias[stem])
    inputs = [x[:, stem] for x in acts["stem"]]
    exact = len(stem) == big["stem"]  # whether the student's activations so far are the teacher's

    def conv_stage(layer_mine, layer_theirs, teacher_inputs, keep_in, keep_out, pad=0):
        """Refit one convolution on the student's inputs; the student's normed, ReLU'd outputs."""
        nonlocal exact
        exact = exact and len(keep_out) == layer_theirs.out_channels
        targets = [layer_theirs(_pad(x, pad) if pad else x)[:, keep_out] for x in teacher_inputs]
        _refit(layer_mine, layer_theirs, inputs, targets, keep_in, exact, pad)
        return [torch.relu(_norm(layer_mine(_pad(x, pad) if pad else x))) for x in inputs]

    inputs = conv_stage(mine.down1, theirs.down1, acts["stem"], stem, c1)
    inputs = conv_stage(mine.down2, theirs.down2, acts["down1"], c1, c2)
    for index, (block_mine, block_theirs) in enumerate(zip(mine.blocks, theirs.blocks)):
        mid = kept["mids"][index]
        parts_mine, parts_theirs = _Layers.block_parts(block_mine), _Layers.block_parts(block_theirs)
        parts_mine[0].load_state_dict({"weight": parts_theirs[0].weight[c2], "bias": parts_theirs[0].bias[c2]})
        parts_mine[2].load_state_dict({"weight": parts_theirs[2].weight[mid], "bias": parts_theirs[2].bias[mid]})
        teacher_streams = acts["streams"][index]
        # first pointwise conv: the teacher's kept inner channels, from the student's filtered stream
        first_inputs = [_block_inputs(parts_mine, s) for s in inputs]
        teacher_first = [parts_theirs[1](_block_inputs(parts_theirs, t)) for t in teacher_streams]
        exact = exact and len(mid) == big[f"mid{index}"]
        _refit(parts_mine[1], parts_theirs[1], first_inputs, [f[:, mid] for f in teacher_first], c2, exact)
        # second pointwise conv: the teacher's kept stream channels; with ``compensate``, what the stream
        # should gain to land on the teacher's next stream, in the teacher's own pre-norm scale
        second_inputs = [_block_middle(parts_mine, parts_mine[1](x)) for x in first_inputs]
        second_targets = []
        for s, first, t_next in zip(inputs, teacher_first, acts["streams"][index + 1]):
            raw = parts_theirs[3](_block_middle(parts_theirs, first))[:, c2]
            if compensate and not exact:
                mean = raw.mean(dim=(2, 3), keepdim=True)
                spread = (raw.var(dim=(2, 3), keepdim=True, unbiased=False) + 1e-5).sqrt()
                raw = (t_next[:, c2] - s) * spread + mean
            second_targets.append(raw)
        _refit(parts_mine[3], parts_theirs[3], second_inputs, second_targets, mid, exact)
        inputs = [s + block_mine(s) for s in inputs]
    inputs = conv_stage(mine.up0, theirs.up0, acts["streams"][-1], c2, u0)
    inputs = conv_stage(mine.up1, theirs.up1, acts["up0"], u0, u1)
    targets = [theirs.out(_pad(x, 3)) for x in acts["up1"]]
    _refit(mine.out, theirs.out, inputs, targets, u1, exact, pad=3)


def can_inherit(teacher: nn.Module, student_config: dict[str, Any]) -> bool:
    """Whether ``teacher`` is a sub-mobile ResNet at least as wide as the student, with as many blocks."""
    return (isinstance(teacher, MobileResnetGenerator) and _blocks(teacher.config) == _blocks(student_config)
            and not _wider_stages(teacher.config, student_config))
