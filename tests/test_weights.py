"""Official checkpoint compatibility and safe weights loading."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from cycletools.errors import CycletoolsError
from cycletools.models import NLayerDiscriminator, ResnetGenerator, init_weights
from cycletools.weights import clean_state_dict, load_generator, save_generator

OFFICIAL_KEYS_9 = (["model.1", "model.4", "model.7"]
                   + [f"model.{i}.conv_block.{j}" for i in range(10, 19) for j in (1, 5)]
                   + ["model.19", "model.22", "model.26"])
NORM_LAYERS_9 = (["model.2", "model.5", "model.8"]
                 + [f"model.{i}.conv_block.{j}" for i in range(10, 19) for j in (2, 6)]
                 + ["model.20", "model.23"])


def official_state_dict(generator: ResnetGenerator, norm_layers: list[str]) -> dict[str, torch.Tensor]:
    """What an official file holds: DataParallel prefix plus stale InstanceNorm buffers."""
    state = {f"module.{k}": v.clone() for k, v in generator.state_dict().items()}
    for layer in norm_layers:
        parent, index = layer.rsplit(".", 1)
        channels = state[f"module.{parent}.{int(index) - 1}.bias"].shape[0]  # the conv before the norm
        state[f"module.{layer}.running_mean"] = torch.randn(channels)
        state[f"module.{layer}.running_var"] = torch.rand(channels)
        state[f"module.{layer}.num_batches_tracked"] = torch.tensor(7)
    return state


def reference_forward(sd: dict[str, torch.Tensor], x: torch.Tensor, n_blocks: int) -> torch.Tensor:
    """The ResNet generator written out with functional ops, straight from the paper's description."""
    def conv(x, key, stride=1, padding=0):
        return F.conv2d(x, sd[f"{key}.weight"], sd[f"{key}.bias"], stride=stride, padding=padding)

    def norm_relu(x, relu=True):
        x = F.instance_norm(x, eps=1e-5)
        return F.relu(x) if relu else x

    x = norm_relu(conv(F.pad(x, (3, 3, 3, 3), mode="reflect"), "model.1"))
    x = norm_relu(conv(x, "model.4", stride=2, padding=1))
    x = norm_relu(conv(x, "model.7", stride=2, padding=1))
    for i in range(10, 10 + n_blocks):
        y = norm_relu(conv(F.pad(x, (1, 1, 1, 1), mode="reflect"), f"model.{i}.conv_block.1"))
        y = norm_relu(conv(F.pad(y, (1, 1, 1, 1), mode="reflect"), f"model.{i}.conv_block.5"), relu=False)
        x = x + y
    for key in (f"model.{10 + n_blocks}", f"model.{13 + n_blocks}"):
        x = norm_relu(F.conv_transpose2d(x, sd[f"{key}.weight"], sd[f"{key}.bias"], stride=2, padding=1,
                                         output_padding=1))
    return torch.tanh(conv(F.pad(x, (3, 3, 3, 3), mode="reflect"), f"model.{17 + n_blocks}"))


def test_official_key_layout_and_parameter_count():
    generator = ResnetGenerator(ngf=64, n_blocks=9)
    state = generator.state_dict()
    assert len(state) == 48
    assert sum(p.numel() for p in generator.parameters()) == 11_378_179
    assert sorted(state) == sorted(f"{k}.{p}" for k in OFFICIAL_KEYS_9 for p in ("weight", "bias"))
    assert tuple(state["model.1.weight"].shape) == (64, 3, 7, 7)
    assert tuple(state["model.4.weight"].shape) == (128, 64, 3, 3)
    assert tuple(state["model.7.weight"].shape) == (256, 128, 3, 3)
    assert tuple(state["model.18.conv_block.5.weight"].shape) == (256, 256, 3, 3)
    assert tuple(state["model.19.weight"].shape) == (256, 128, 3, 3)  # ConvTranspose: in, out
    assert tuple(state["model.22.weight"].shape) == (128, 64, 3, 3)
    assert tuple(state["model.26.weight"].shape) == (3, 64, 7, 7)


def test_official_pth_loads_strictly_and_matches_reference_forward(tmp_path: Path):
    torch.manual_seed(1)
    original = init_weights(ResnetGenerator(ngf=64, n_blocks=9), gain=0.05)
    state = official_state_dict(original, NORM_LAYERS_9)
    assert len(state) == 48 + 3 * len(NORM_LAYERS_9) == 117
    path = tmp_path / "horse2zebra.pth"
    torch.save(state, path, _use_new_zipfile_serialization=False)  # the old format official files use

    generator, config = load_generator(path)
    assert config == {"arch": "resnet", "input_nc": 3, "output_nc": 3, "ngf": 64, "n_blocks": 9}
    for key, value in original.state_dict().items():
        assert torch.equal(generator.state_dict()[key], value), key

    x = torch.rand(1, 3, 32, 44) * 2 - 1
    with torch.no_grad():
        expected = reference_forward(original.state_dict(), x, 9)
        actual = generator(x)
    assert actual.shape == (1, 3, 32, 44)
    assert torch.allclose(actual, expected, atol=1e-5), (actual - expected).abs().max()


def test_six_block_generator_is_inferred(tmp_path: Path):
    torch.manual_seed(2)
    original = init_weights(ResnetGenerator(ngf=16, n_blocks=6))
    path = tmp_path / "g6.pth"
    torch.save(original.state_dict(), path)
    generator, config = load_generator(path)
    assert (config["ngf"], config["n_blocks"]) == (16, 6)
    x = torch.rand(1, 3, 24, 24) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(generator(x), reference_forward(original.state_dict(), x, 6), atol=1e-5)


def test_clean_state_dict_drops_prefix_and_stale_buffers():
    state = {"module.model.1.weight": torch.zeros(1), "module.model.2.running_mean": torch.zeros(1),
             "model.2.running_var": torch.zeros(1), "model.2.num_batches_tracked": torch.tensor(0)}
    assert list(clean_state_dict(state)) == ["model.1.weight"]


def test_safetensors_round_trip_needs_no_architecture_flags(tmp_path: Path):
    torch.manual_seed(3)
    original = init_weights(ResnetGenerator(ngf=8, n_blocks=3))
    path = save_generator(original, tmp_path / "g.safetensors")
    generator, config = load_generator(path)
    assert config == original.config
    assert all(torch.equal(generator.state_dict()[k], v) for k, v in original.state_dict().items())

    half = save_generator(original, tmp_path / "g16.safetensors", half=True)
    generator16, _ = load_generator(half)
    assert generator16.model[1].weight.dtype == torch.float32
    assert torch.allclose(generator16.model[1].weight, original.model[1].weight, atol=1e-3)
    assert half.stat().st_size < path.stat().st_size * 0.6


def test_missing_block_is_listed(tmp_path: Path):
    state = ResnetGenerator(ngf=8, n_blocks=9).state_dict()
    del state["model.14.conv_block.1.weight"], state["model.14.conv_block.1.bias"]
    path = tmp_path / "broken.pth"
    torch.save(state, path)
    with pytest.raises(CycletoolsError, match=r"missing: model\.14\.conv_block\.1\.weight"):
        load_generator(path)


def test_config_that_does_not_fit_the_tensors_lists_shape_mismatch(tmp_path: Path):
    from safetensors.torch import save_file

    state = {k: v.contiguous() for k, v in ResnetGenerator(ngf=8, n_blocks=2).state_dict().items()}
    path = tmp_path / "lying.safetensors"
    save_file(state, str(path), metadata={"cycletools.generator":
                                          '{"arch": "resnet", "ngf": 16, "n_blocks": 2}'})
    with pytest.raises(CycletoolsError, match=r"shape mismatch: model\.1\.weight \(8, 3, 7, 7\) vs \(16, 3, 7, 7\)"):
        load_generator(path)


def test_discriminator_is_not_a_generator(tmp_path: Path):
    path = tmp_path / "D.pth"
    torch.save(NLayerDiscriminator().state_dict(), path)
    with pytest.raises(CycletoolsError, match="not a CycleGAN ResNet generator"):
        load_generator(path)


class Exploit:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_and_never_runs(tmp_path: Path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    with open(path, "wb") as handle:
        pickle.dump({"model.1.weight": Exploit(marker)}, handle)
    with pytest.raises(CycletoolsError, match="evil.pth: not a weights file") as refused:
        load_generator(path)
    assert not marker.exists()
    assert "weights_only" not in str(refused.value)  # not torch's advice to load it unsafely
    saved = tmp_path / "objects.pth"  # torch.save's own format, with an object that is not a tensor
    torch.save({"model.1.weight": Exploit(marker)}, saved)
    with pytest.raises(CycletoolsError, match=r"objects.pth: holds Python objects \(posix.system\), not only "
                                              "tensors; cycletools never unpickles code") as refused:
        load_generator(saved)
    assert not marker.exists() and "weights_only" not in str(refused.value)


@pytest.mark.parametrize("content, reason", [
    (b"", "not a weights file"), (b"not a checkpoint at all", "not a weights file"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "not a weights file"),
    (b"PK\x03\x04truncated zip", "a damaged or truncated PyTorch file"),
])
def test_garbage_files_get_a_clear_error(tmp_path: Path, content: bytes, reason: str):
    path = tmp_path / "bad.pth"
    path.write_bytes(content)
    with pytest.raises(CycletoolsError, match=f"bad.pth: ({reason})") as refused:
        load_generator(path)
    assert "weights_only" not in str(refused.value) and "\n" not in str(refused.value)


def test_a_folder_or_a_non_path_is_not_a_weights_file(tmp_path: Path):
    with pytest.raises(CycletoolsError, match="is a folder, not a weights file"):
        load_generator(tmp_path)
    with pytest.raises(CycletoolsError, match="a weights file is named by a path, not int 5"):
        load_generator(5)


def test_truncated_safetensors_gets_a_clear_error(tmp_path: Path, tiny_generator_file: Path):
    data = tiny_generator_file.read_bytes()
    path = tmp_path / "cut.safetensors"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CycletoolsError, match="not a readable safetensors file"):
        load_generator(path)


def test_non_tensor_mapping_is_not_a_state_dict(tmp_path: Path):
    path = tmp_path / "numbers.pth"
    torch.save({"epoch": 3, "lr": 0.1}, path)
    with pytest.raises(CycletoolsError, match="not a generator state_dict"):
        load_generator(path)


def test_a_new_weights_file_gets_the_permissions_any_new_file_gets(tmp_path: Path):
    """safetensors writes 0600 files of its own; a saved generator is readable as any file the user makes."""
    import stat

    from cycletools.models import ResnetGenerator
    from cycletools.weights import save_generator

    umask = os.umask(0o022)
    os.umask(umask)
    path = save_generator(ResnetGenerator(ngf=4, n_blocks=1), tmp_path / "g.safetensors")
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
