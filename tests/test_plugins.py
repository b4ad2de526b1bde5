"""The plugin registry: entry points, failure isolation, spec validation, the plugins/weights CLI."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cycletools.cli.main import main
from cycletools.domains import DomainSpec, WeightsSource, validate_spec
from cycletools.errors import CycletoolsError
from cycletools.registry import Registry, reset_registry
from plugin_fixtures import BROKEN_PLUGINS, GOOD_PLUGIN, activate, cli_env, install_fake_distribution

BUILTIN_DOMAINS = {"summer2winter_yosemite", "winter2summer_yosemite", "horse2zebra", "zebra2horse",
                   "apple2orange", "orange2apple", "monet2photo", "style_monet", "style_cezanne",
                   "style_ukiyoe", "style_vangogh"}


@pytest.fixture
def plugin_site(tmp_path: Path, monkeypatch) -> Path:
    """A site folder holding a good third-party plugin and five broken ones, on sys.path."""
    site = tmp_path / "site"
    install_fake_distribution(site, "cycletools-good", "2.0", {"good": "good_plugin"}, {"good_plugin": GOOD_PLUGIN})
    install_fake_distribution(site, "cycletools-broken", "0.1", {name: f"broken_{name}" for name in BROKEN_PLUGINS},
                              {f"broken_{name}": source for name, source in BROKEN_PLUGINS.items()})
    yield from activate(site, tmp_path / "home", monkeypatch)


def install_example(name: str, tmp_path: Path) -> Path:
    """pip-install ``examples/NAME`` (a copy, so the build leaves nothing in the checkout) into a folder."""
    import shutil

    example = tmp_path / name
    shutil.copytree(Path(__file__).resolve().parents[1] / "examples" / name, example)
    target = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                              "--target", str(target), str(example)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    return target


def test_builtins_are_registered_through_the_entry_point_group():
    names = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="cycletools")}
    assert names["object_transfiguration"] == "cycletools_plugins.object_transfiguration"
    registry = Registry().load_entry_points()
    assert set(registry.domains) >= BUILTIN_DOMAINS
    for name in BUILTIN_DOMAINS:
        info = registry.domain_plugins[name]
        assert info.builtin and info.distribution == "cycletools" and info.version
    monet = registry.domain("monet2photo")
    assert monet.train_defaults["lambda_identity"] == 0.5 and monet.family == "painting"
    assert registry.domain("zebra2horse").run_direction == "b2a"
    assert registry.domain("horse2zebra").sources[0].url.endswith("/pretrained_models/horse2zebra.pth")
    assert registry.problems == []


def test_each_broken_plugin_is_reported_and_the_rest_work(plugin_site: Path):
    with pytest.warns(UserWarning) as caught:
        registry = Registry().load_entry_points()
    assert set(registry.domains) >= BUILTIN_DOMAINS | {"cats2dogs"}
    good = registry.domain_plugins["cats2dogs"]
    assert (good.name, good.distribution, good.version, good.builtin) == ("good", "cycletools-good", "2.0", False)
    assert registry.domain_plugins["horse2zebra"].name == "object_transfiguration"
    assert registry.domain("horse2zebra").title == "Horse → zebra"
    problems = {(p.plugin.name, p.error) for p in registry.problems}
    expected = {
        "import_fails": "failed to import broken_import_fails: ImportError: a dependency is missing",
        "hook_raises": "register_domains raised RuntimeError: database unreachable",
        "invalid_spec": "invalid domain 'Bad Name!': name 'Bad Name!' must be 1-64 lowercase",
        "name_clash": "domain 'horse2zebra' is already registered by plugin 'object_transfiguration'",
        "unknown_hook": "not a valid plugin",
    }
    for plugin, text in expected.items():
        assert any(name == plugin and text in error for name, error in problems), (plugin, problems)
    assert any(name == "invalid_spec" and "registered dict instead of a DomainSpec" in error for name, error in problems)
    assert all(p.plugin.distribution == "cycletools-broken" for p in registry.problems)
    warned = [str(w.message) for w in caught]
    assert any(m.startswith("plugin 'hook_raises': register_domains raised") for m in warned)


@pytest.mark.parametrize("setting,expected", [("", set()), ("good", {"cats2dogs"}), ("good,hook_raises", {"cats2dogs"})])
def test_environment_variable_limits_third_party_plugins(plugin_site: Path, monkeypatch, setting, expected):
    monkeypatch.setenv("CYCLETOOLS_PLUGINS", setting)
    registry = Registry().load_entry_points()
    assert set(registry.domains) - BUILTIN_DOMAINS == expected
    loaded_third_party = {name for name, info in registry.plugins.items() if not info.builtin}
    assert loaded_third_party == {name for name in setting.split(",") if name}
    assert [p.plugin.name for p in registry.problems] == (["hook_raises"] if "hook_raises" in setting else [])


def spec(**changes) -> DomainSpec:
    base = dict(name="a2b", title="A → B", family="object", source="a", target="b")
    return DomainSpec(**{**base, **changes})


@pytest.mark.parametrize("changes,message", [
    ({"name": "UPPER"}, "must be 1-64 lowercase"),
    ({"title": " "}, "title must be a non-empty string"),
    ({"architecture": {"arch": "transformer"}}, "unknown architecture 'transformer'"),
    ({"train_defaults": {"learning_rate": 1}}, "unknown training settings in train_defaults: learning_rate"),
    ({"sources": (WeightsSource("ftp://x/y.pth"),)}, "needs an http(s) or file URL"),
    ({"sources": (WeightsSource("http://x/y.pth", sha256="abc"),)}, "must be 64 lowercase hex digits"),
    ({"run_direction": "sideways"}, "run_direction must be a2b or b2a"),
    ({"inference_size": 4}, "inference_size must be an integer of at least 8"),
    ({"reverse": "Not Valid"}, "is not a valid domain name"),
    ({"reverse": "a2b"}, "reverse 'a2b' is the domain itself"),
])
def test_spec_validation(changes, message):
    with pytest.raises(CycletoolsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate_spec(spec(**changes), ["resnet"])
    assert validate_spec(spec(), ["resnet"]).name == "a2b"


def test_plugins_json_and_table(plugin_site: Path, tmp_path: Path):
    env = cli_env(plugin_site, tmp_path / "home")
    result = subprocess.run([sys.executable, "-m", "cycletools", "plugins", "--json"], capture_output=True,
                            text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    by_name = {row["name"]: row for row in rows if row["kind"] == "domain"}
    assert set(by_name) == BUILTIN_DOMAINS | {"cats2dogs"}
    for row in rows:
        assert {"name", "family", "plugin", "weights"} <= set(row)
    cats = by_name["cats2dogs"]
    assert (cats["plugin"], cats["distribution"], cats["version"], cats["weights"]) == ("good", "cycletools-good", "2.0", "missing")
    assert by_name["horse2zebra"]["weights"] == "bundled" and by_name["zebra2horse"]["weights"] == "downloadable"
    assert by_name["horse2zebra"]["architecture"] == {"arch": "resnet", "input_nc": 3, "output_nc": 3, "ngf": 64, "n_blocks": 9}
    broken = {row["plugin"]: row["error"] for row in rows if row["error"]}
    assert set(broken) == {"import_fails", "hook_raises", "invalid_spec", "name_clash", "unknown_hook"}
    assert "Traceback" not in result.stderr
    assert "cycletools: warning: plugin 'import_fails': failed to import" in result.stderr

    table = subprocess.run([sys.executable, "-m", "cycletools", "plugins"], capture_output=True, text=True,
                           env=env, timeout=60)
    assert table.returncode == 0
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["NAME", "FAMILY", "WHAT", "IT", "DOES", "PLUGIN", "ARCHITECTURE", "WEIGHTS"]
    assert any(line.startswith("cats2dogs ") and "good (cycletools-good 2.0)" in line and line.endswith("missing")
               for line in lines)
    assert "Plugins with problems (skipped):" in table.stdout
    assert "hook_raises (cycletools-broken): register_domains raised RuntimeError: database unreachable" in table.stdout


def test_plugin_adds_a_cli_command(plugin_site: Path, capsys):
    assert main(["meow", "--times", "3"]) == 0
    assert capsys.readouterr().out.strip() == "meow meow meow"


def test_train_takes_the_plugin_recipe_and_flags_override_it(plugin_site: Path, tmp_path: Path, shapes_dataset: Path):
    common = ["train", "--plugin", "cats2dogs", "--data", str(shapes_dataset), "--out", str(tmp_path / "runs"),
              "--max-steps", "1", "--load-size", "36", "--ndf", "4"]
    assert main(common) == 0
    config = json.loads((tmp_path / "runs" / "cats2dogs" / "config.json").read_text())
    assert (config["ngf"], config["blocks"], config["lambda_identity"], config["size"]) == (4, 1, 0.0, 32)
    assert main([*common, "--name", "override", "--lambda-identity", "0.25", "--blocks", "2"]) == 0
    config = json.loads((tmp_path / "runs" / "override" / "config.json").read_text())
    assert (config["lambda_identity"], config["blocks"], config["ngf"]) == (0.25, 2, 4)


def test_monet2photo_recipe_turns_on_identity_loss():
    from cycletools.registry import get_registry
    from cycletools.training.config import resolve_config

    base = dict(get_registry().domain("monet2photo").train_defaults)
    config = resolve_config({"data": "d", "name": "m", "lambda_identity": 0.0}, base={**base})
    assert config.lambda_identity == 0.0  # a flag overrides the recipe
    assert resolve_config({"data": "d", "name": "m"}, base=base).lambda_identity == 0.5


ARCH_PLUGIN = '''
from cycletools import DomainSpec, hookimpl

def slim_resnet(**config):
    from cycletools.models import ResnetGenerator
    return ResnetGenerator(ngf=config.get("width", 4), n_blocks=config.get("depth", 1))

def netg_prefix(state_dict):
    if not all(key.startswith("netG.") for key in state_dict):
        return None
    renamed = {key[len("netG."):]: value for key, value in state_dict.items()}
    return renamed, {"arch": "slim", "width": renamed["model.1.weight"].shape[0], "depth": 1}

@hookimpl
def register_architectures(register):
    register("slim", slim_resnet)

@hookimpl
def register_weights_adapters(register):
    register("netg-prefix", netg_prefix)

@hookimpl
def register_domains(register):
    register(DomainSpec(name="slim2slim", title="Slim", family="object", source="a", target="b",
                        architecture={"arch": "slim", "width": 4}))
'''


def test_architecture_and_weights_adapter_hooks(tmp_path: Path, monkeypatch):
    from cycletools.models import ResnetGenerator
    from cycletools.weights import load_generator, save_generator

    site = install_fake_distribution(tmp_path / "site", "cycletools-slim", "1.0", {"slim": "slim_plugin"},
                                     {"slim_plugin": ARCH_PLUGIN})
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("CYCLETOOLS_PLUGINS", "slim")
    registry = Registry().load_entry_points()
    assert registry.problems == [] and "slim2slim" in registry.domains
    foreign = tmp_path / "foreign.pth"
    torch.manual_seed(0)
    original = ResnetGenerator(ngf=4, n_blocks=1)
    torch.save({f"netG.{k}": v for k, v in original.state_dict().items()}, foreign)
    with pytest.raises(CycletoolsError, match="not a CycleGAN ResNet generator"):
        load_generator(foreign)  # without the plugin's adapter
    generator, config = load_generator(foreign, registry)
    assert config == {"arch": "slim", "width": 4, "depth": 1}
    assert torch.equal(generator.model[1].weight, original.model[1].weight)
    saved = save_generator(generator, tmp_path / "slim.safetensors", config)
    assert load_generator(saved, registry)[1]["arch"] == "slim"  # the registered architecture rebuilds it
    with pytest.raises(CycletoolsError, match="unknown generator architecture 'slim'"):
        load_generator(saved)  # a plugin's architecture is found through the registry only


def test_translate_by_plugin_name_with_imported_and_explicit_weights(plugin_site: Path, tmp_path: Path,
                                                                      tiny_generator_file: Path, monkeypatch):
    monkeypatch.setenv("CYCLETOOLS_PLUGINS", "good")
    env = cli_env(plugin_site, tmp_path / "home", CYCLETOOLS_PLUGINS="good")
    image = tmp_path / "cat.png"
    Image.new("RGB", (45, 31), (200, 120, 40)).save(image)
    missing = subprocess.run([sys.executable, "-m", "cycletools", "translate", str(image), "--plugin", "cats2dogs",
                              "-o", str(tmp_path / "dog.png")], capture_output=True, text=True, env=env, timeout=60)
    assert missing.returncode == 1
    assert "no weights for cats2dogs: train them" in missing.stderr

    imported = subprocess.run([sys.executable, "-m", "cycletools", "weights", "import", str(tiny_generator_file),
                               "--plugin", "cats2dogs"], capture_output=True, text=True, env=env, timeout=60)
    assert imported.returncode == 0, imported.stderr
    cached = tmp_path / "home" / "weights" / "cats2dogs.safetensors"
    assert cached.is_file()
    done = subprocess.run([sys.executable, "-m", "cycletools", "translate", str(image), "--plugin", "cats2dogs",
                           "-o", str(tmp_path / "dog.png")], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    with Image.open(tmp_path / "dog.png") as dog:
        assert dog.size == (45, 31)

    from cycletools.pipelines.translator import Translator

    explicit = Translator.from_plugin("cats2dogs", weights=tiny_generator_file, device="cpu")
    assert explicit.source == str(tiny_generator_file)
    assert Translator.from_plugin("cats2dogs", device="cpu").source == str(cached)
    info = subprocess.run([sys.executable, "-m", "cycletools", "weights", "info", str(cached), "--json"],
                          capture_output=True, text=True, env=env, timeout=60)
    details = json.loads(info.stdout)
    assert details["parameters"] == sum(p.numel() for p in explicit.generator.parameters())
    assert details["metadata"]["cycletools.domain"] == "cats2dogs"


def test_working_size_translates_small_and_returns_the_input_size(tiny_generator_file: Path):
    from cycletools.pipelines.translator import Translator

    translator = Translator.from_file(tiny_generator_file, device="cpu")
    seen = []
    original = translator.translate_tensor
    translator.translate_tensor = lambda batch: seen.append(tuple(batch.shape[-2:])) or original(batch)
    translator.working_size = 16
    assert translator(Image.new("RGB", (100, 40))).size == (100, 40)
    assert seen == [(16, 40)]


@pytest.mark.slow
def test_example_plugin_distribution_installs_and_registers(tmp_path: Path):
    target = install_example("cycletools-shapes", tmp_path)
    env = cli_env(target, tmp_path / "home")
    rows = json.loads(subprocess.run([sys.executable, "-m", "cycletools", "plugins", "--json"], capture_output=True,
                                     text=True, env=env, timeout=60).stdout)
    shapes = {row["name"]: row for row in rows if row["plugin"] == "shapes"}
    assert set(shapes) == {"squares2circles", "circles2squares"}
    assert shapes["squares2circles"]["distribution"] == "cycletools-shapes"
    assert shapes["squares2circles"]["train_defaults"]["ngf"] == 16
    data = subprocess.run([sys.executable, "-m", "cycletools", "shapes-data", str(tmp_path / "data"), "--count", "3"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert data.returncode == 0, data.stderr
    assert len(list((tmp_path / "data" / "trainA").iterdir())) == 3


# ---------------------------------------------------------------- plugins are all or nothing, and checked
SEMANTICS = {
    "aaa_bad_adapter": '''
        from cycletools import hookimpl

        @hookimpl
        def register_weights_adapters(register):
            register("aaa-garbage", lambda state_dict: "not a tuple")
    ''',
    "half_broken": '''
        from cycletools import DomainSpec, hookimpl

        @hookimpl
        def register_architectures(register):
            register("half", "not callable")

        @hookimpl
        def register_weights_adapters(register):
            register("half-adapter", lambda state_dict: None)

        @hookimpl
        def register_domains(register):
            register(DomainSpec(name="half2half", title="Half", family="object", source="a", target="b"))
    ''',
    "returns_specs": '''
        from cycletools import DomainSpec, hookimpl

        @hookimpl
        def register_domains(register):
            return [DomainSpec(name="returned", title="R", family="object", source="a", target="b")]
    ''',
    "wrong_argument": '''
        from cycletools import hookimpl

        @hookimpl
        def register_domains(regster):
            pass
    ''',
    "no_handler": '''
        from cycletools import DomainSpec, hookimpl

        @hookimpl
        def register_commands(commands):
            commands.add_parser("orphan")

        @hookimpl
        def register_domains(register):
            register(DomainSpec(name="orphan2orphan", title="O", family="object", source="a", target="b"))
    ''',
    "takes_a_command": '''
        from cycletools import DomainSpec, hookimpl

        @hookimpl
        def register_commands(commands):
            commands.add_parser("translate").set_defaults(handler=lambda args: 0)

        @hookimpl
        def register_domains(register):
            register(DomainSpec(name="taker2taker", title="T", family="object", source="a", target="b"))
    ''',
    "none_factory": '''
        from cycletools import hookimpl

        @hookimpl
        def register_architectures(register):
            register("nothing", lambda **config: None)
    ''',
    "zzz_good_adapter": '''
        from cycletools import hookimpl

        def netg_prefix(state_dict):
            if not all(key.startswith("netG.") for key in state_dict):
                return None
            return {key[5:]: value for key, value in state_dict.items()}, {"arch": "resnet", "ngf": 4, "n_blocks": 1}

        @hookimpl
        def register_weights_adapters(register):
            register("zzz-netg", netg_prefix)
    ''',
}


@pytest.fixture
def semantics_site(tmp_path: Path, monkeypatch) -> Path:
    site = install_fake_distribution(tmp_path / "site", "cycletools-semantics", "0.1",
                                     {name: f"sem_{name}" for name in SEMANTICS},
                                     {f"sem_{name}": source for name, source in SEMANTICS.items()})
    yield from activate(site, tmp_path / "home", monkeypatch)


def test_a_plugin_with_any_problem_keeps_none_of_its_registrations(semantics_site: Path):
    with pytest.warns(UserWarning):
        registry = Registry().load_entry_points()
    problems = {}
    for problem in registry.problems:
        problems.setdefault(problem.plugin.name, []).append(problem.error)
    assert "half2half" not in registry.domains and "half-adapter" not in registry.adapters  # all or nothing
    assert "half" not in registry.architectures
    assert any("architecture 'half': the factory is a str" in e for e in problems["half_broken"])
    assert any("register_domains returned a list instead of registering" in e for e in problems["returns_specs"])
    wrong = problems["wrong_argument"][0]
    assert "not a valid plugin" in wrong and "regster" in wrong  # pluggy's own explanation, not just its first line
    assert any("command 'orphan' has no handler" in e for e in problems["no_handler"])
    assert "orphan2orphan" not in registry.domains
    assert registry.plugins["half_broken"].rejected and not registry.plugins["zzz_good_adapter"].rejected
    assert set(registry.domains) >= BUILTIN_DOMAINS


def test_a_command_that_takes_a_core_name_rejects_its_plugin(semantics_site: Path, capsys):
    reset_registry()
    assert main(["plugins", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    errors = {row["plugin"]: row["error"] for row in rows if row["error"]}
    assert "command 'translate' is already a cycletools command" in errors["takes_a_command"]
    assert "taker2taker" not in {row["name"] for row in rows if row["kind"] == "domain"}


def test_a_broken_adapter_never_keeps_a_good_one_from_being_tried(semantics_site: Path, tmp_path: Path):
    from cycletools.models import ResnetGenerator
    from cycletools.weights import load_generator

    foreign = tmp_path / "foreign.pth"
    torch.manual_seed(0)
    original = ResnetGenerator(ngf=4, n_blocks=1)
    torch.save({f"netG.{k}": v for k, v in original.state_dict().items()}, foreign)
    registry = Registry().load_entry_points()
    with pytest.warns(UserWarning, match="weights adapter 'aaa-garbage' \\(plugin 'aaa_bad_adapter'\\) returned str"):
        generator, config = load_generator(foreign, registry)
    assert config["arch"] == "resnet" and torch.equal(generator.model[1].weight, original.model[1].weight)
    env = cli_env(semantics_site, tmp_path / "home")
    image = tmp_path / "in.png"
    Image.new("RGB", (20, 12)).save(image)
    done = subprocess.run([sys.executable, "-m", "cycletools", "translate", str(image), "--weights", str(foreign),
                           "-o", str(tmp_path / "out.png")], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "aaa-garbage" in done.stderr and "Traceback" not in done.stderr


def test_a_factory_that_returns_no_module_is_named(semantics_site: Path, tmp_path: Path):
    from safetensors.torch import save_file

    from cycletools.weights import load_generator

    path = tmp_path / "nothing.safetensors"
    save_file({"w": torch.zeros(1)}, str(path), metadata={"cycletools.generator": '{"arch": "nothing"}'})
    registry = Registry().load_entry_points()
    with pytest.raises(CycletoolsError, match="architecture 'nothing' \\(plugin 'none_factory'\\) returned "
                                              "NoneType, not a torch.nn.Module"):
        load_generator(path, registry)


def test_a_foreign_file_no_adapter_knows_lists_missing_and_unexpected_tensors(tmp_path: Path):
    from cycletools.models import ResnetGenerator
    from cycletools.weights import load_generator

    state = {k.replace("model.", "net."): v for k, v in ResnetGenerator(ngf=4, n_blocks=9).state_dict().items()}
    path = tmp_path / "renamed.pth"
    torch.save(state, path)
    with pytest.raises(CycletoolsError) as caught:
        load_generator(path)
    message = str(caught.value)
    assert "not a CycleGAN ResNet generator" in message
    assert "missing: model.1.weight" in message and "unexpected: net.1.weight" in message
    assert "0-block" not in message


DECLARING_PLUGIN = '''
from cycletools import DomainSpec, hookimpl

def wide_resnet(**config):
    from cycletools.models import ResnetGenerator
    return ResnetGenerator(ngf=config.get("width", 4), n_blocks=config.get("depth", 1))

@hookimpl
def register_architectures(register):
    register("wide", wide_resnet)

@hookimpl
def register_domains(register):
    register(DomainSpec(name="wide2wide", title="Wide", family="object", source="a", target="b",
                        architecture={"arch": "wide", "width": 6, "depth": 1},
                        train_defaults={"size": 32, "lambda_identity": 0.0}))
    register(DomainSpec(name="narrow2narrow", title="Narrow", family="object", source="a", target="b",
                        architecture={"arch": "resnet", "ngf": 16, "n_blocks": 1}))
'''


def test_the_declared_architecture_is_trained_and_imports_show_what_they_are(tmp_path: Path, monkeypatch,
                                                                              shapes_dataset: Path,
                                                                              tiny_generator_file: Path, capsys):
    site = install_fake_distribution(tmp_path / "site", "cycletools-wide", "1.0", {"wide": "wide_plugin"},
                                     {"wide_plugin": DECLARING_PLUGIN})
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("CYCLETOOLS_PLUGINS", "wide")
    monkeypatch.setenv("CYCLETOOLS_HOME", str(tmp_path / "home"))
    reset_registry()
    from cycletools.weights import load_generator

    runs = tmp_path / "runs"
    assert main(["train", "--plugin", "wide2wide", "--data", str(shapes_dataset), "--out", str(runs),
                 "--max-steps", "1", "--load-size", "36", "--ndf", "4"]) == 0
    config = json.loads((runs / "wide2wide" / "config.json").read_text())
    assert config["architecture"] == {"arch": "wide", "width": 6, "depth": 1}
    from cycletools.registry import get_registry

    generator, weights_config = load_generator(runs / "wide2wide" / "weights" / "a2b.safetensors", get_registry())
    assert weights_config["arch"] == "wide" and generator.model[1].weight.shape[0] == 6
    capsys.readouterr()
    assert main(["weights", "import", str(tiny_generator_file), "--plugin", "narrow2narrow"]) == 0
    assert "narrow2narrow declares resnet ngf=16 blocks=1, these weights are resnet ngf=4 blocks=1" in \
        capsys.readouterr().out
    assert main(["plugins", "--json"]) == 0
    row = next(r for r in json.loads(capsys.readouterr().out) if r["name"] == "narrow2narrow")
    assert row["weights_architecture"]["ngf"] == 4
    assert row["architecture_text"] == "resnet ngf=4 blocks=1 (declared resnet ngf=16 blocks=1)"
    reset_registry()


def test_reset_registry_forgets_plugin_architectures(tmp_path: Path, monkeypatch):
    site = install_fake_distribution(tmp_path / "site", "cycletools-wide", "1.0", {"wide": "wide_plugin"},
                                     {"wide_plugin": DECLARING_PLUGIN})
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("CYCLETOOLS_PLUGINS", "wide")
    reset_registry()
    from cycletools.architectures import architecture_names
    from cycletools.registry import get_registry

    assert "wide" in architecture_names(get_registry())
    monkeypatch.setenv("CYCLETOOLS_PLUGINS", "")
    reset_registry()
    assert "wide" not in architecture_names(get_registry())
    reset_registry()


@pytest.mark.slow
def test_example_adapter_plugin_loads_a_foreign_layout(tmp_path: Path, monkeypatch):
    target = install_example("cycletools-affine", tmp_path)
    monkeypatch.syspath_prepend(str(target))
    from cycletools_affine.model import AffineResnetGenerator

    torch.manual_seed(0)
    foreign_model = AffineResnetGenerator(width=6, depth=2).eval()
    with torch.no_grad():
        for module in foreign_model.modules():  # learned norm scales and shifts, as a trained model has
            if isinstance(module, torch.nn.InstanceNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    checkpoint = tmp_path / "their_generator.pth"
    torch.save({f"netG_A.{k}": v for k, v in foreign_model.state_dict().items()}, checkpoint)

    env = cli_env(target, tmp_path / "home", CYCLETOOLS_PLUGINS="affine")
    run = lambda *args: subprocess.run([sys.executable, "-m", "cycletools", *args], capture_output=True, text=True,
                                       env=env, timeout=180)
    info = run("weights", "info", str(checkpoint), "--json")
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["architecture"] == {"arch": "affine_resnet", "width": 6, "depth": 2}
    rng = np.random.default_rng(0)
    image = tmp_path / "sketch.png"
    Image.fromarray(rng.integers(0, 256, (36, 52, 3), dtype=np.uint8)).save(image)
    done = run("translate", str(image), "--weights", str(checkpoint), "-o", str(tmp_path / "photo.png"))
    assert done.returncode == 0, done.stderr
    x = torch.from_numpy(np.asarray(Image.open(image), dtype=np.float32)).permute(2, 0, 1)[None] / 127.5 - 1
    with torch.no_grad():
        expected = ((foreign_model(x)[0].clamp(-1, 1) + 1) * 127.5).round().permute(1, 2, 0).numpy()
    with Image.open(tmp_path / "photo.png") as photo:
        assert np.abs(np.asarray(photo, dtype=np.float32) - expected).max() <= 1  # the same network, loaded right
    rows = json.loads(run("plugins", "--json").stdout)
    sketch = next(row for row in rows if row["name"] == "sketch2photo")
    assert sketch["architecture"]["arch"] == "affine_resnet" and sketch["plugin"] == "affine"
    assert run("weights", "import", str(checkpoint), "--plugin", "sketch2photo").returncode == 0
    assert run("translate", str(image), "--plugin", "sketch2photo", "--working-size", "native", "-o",
               str(tmp_path / "again.png")).returncode == 0
    with Image.open(tmp_path / "again.png") as again, Image.open(tmp_path / "photo.png") as photo:
        assert np.array_equal(np.asarray(again), np.asarray(photo))


BUNDLED_WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "horse2zebra.safetensors"
ESCAPING_PLUGINS = {
    "exits_at_import": "import sys\nprint('hello from a plugin')\nsys.exit('goodbye')\n",
    "exits_in_hook": '''
        import sys
        from cycletools import hookimpl

        @hookimpl
        def register_domains(register):
            sys.exit(5)
    ''',
    "interrupts_in_hook": '''
        from cycletools import hookimpl

        @hookimpl
        def register_domains(register):
            raise KeyboardInterrupt
    ''',
    "generator_exit": "raise GeneratorExit('bye')\n",
    "own_base_exception": '''
        from cycletools import hookimpl

        class Weird(BaseException):
            pass

        @hookimpl
        def register_architectures(register):
            raise Weird("weird\\x1b[31mred\\nsecond line")
    ''',
    "talks": '''
        from cycletools import DomainSpec, hookimpl
        print("loading the talkative plugin")

        @hookimpl
        def register_domains(register):
            print("registering")
            register(DomainSpec(name="talk2quiet", title="Talk → quiet", family="object", source="a", target="b"))
    ''',
    "hijacks": '''
        from cycletools import hookimpl

        @hookimpl
        def register_commands(commands):
            commands.add_parser("probe-ok").set_defaults(handler=lambda args: 0)
            if "translate" in getattr(commands, "choices", {}):
                commands.choices["translate"].set_defaults(handler=lambda args: print("HIJACKED") or 0)
    ''',
    "shouts": '''
        from cycletools import DomainSpec, hookimpl

        @hookimpl
        def register_domains(register):
            register(DomainSpec(name="shout2quiet", title="T\\x1b[2J\\x1b[31mRED\\rOVER", family="object",
                                source="a", target="b"))
            register(DomainSpec(name="x" * 5000, title="Long", family="object", source="a", target="b"))
            register(DomainSpec(name="bidi2plain", title="abc\\u202edcba", family="object", source="a", target="b"))
    ''',
    "talks_later": '''
        import atexit
        import os
        import threading
        import time

        os.write(1, b"raw bytes to descriptor 1\\n")

        def later():
            time.sleep(0.2)
            print("a line from the plugin's thread", flush=True)

        def chatter():  # from the plugins' loading to the command's end, every millisecond
            while True:
                print("thread noise", flush=True)
                time.sleep(0.001)

        threading.Thread(target=later).start()
        threading.Thread(target=chatter, daemon=True).start()
        atexit.register(lambda: print("goodbye from atexit", flush=True) or os.write(1, b"raw at exit\\n"))
    ''',
}


def test_a_plugin_that_exits_or_interrupts_is_skipped_and_prints_nothing_to_stdout(tmp_path: Path):
    """sys.exit at import or in a hook, a KeyboardInterrupt nobody pressed, print() at import: listed as
    broken (or loaded, for the talkers), every command still works, and --json stays JSON: also when a plugin
    writes to descriptor 1, prints from its own thread later, or at exit, after the JSON (issue 25, item 6)."""
    entry_points = {name: name for name in ESCAPING_PLUGINS}
    entry_points.update({"bad\x1b[31mname": "talks", "p" * 100: "talks"})  # names a terminal would run, or endless
    site = install_fake_distribution(tmp_path / "site", "cycletools-escapes", "1.0", entry_points, ESCAPING_PLUGINS)
    env = cli_env(site, tmp_path / "home")
    result = subprocess.run([sys.executable, "-m", "cycletools", "plugins", "--json"], capture_output=True,
                            text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)  # nothing the plugins printed is in it
    problems = {row["plugin"]: row["error"] for row in rows if row["kind"] == "problem"
                and "5,000" not in row["error"] and "bidi" not in row["error"] and "plain text of" not in row["error"]}
    assert problems == {
        "exits_at_import": "failed to import exits_at_import: called sys.exit('goodbye')",
        "exits_in_hook": "register_domains called sys.exit(5)",
        "interrupts_in_hook": "register_domains raised KeyboardInterrupt without a Ctrl-C",
        "generator_exit": "failed to import generator_exit: raised GeneratorExit: bye",
        "own_base_exception": "register_architectures raised Weird: weird [31mred",  # one line, no escape
        "shouts": "invalid domain 'shout2quiet': title holds control or format characters (a terminal would run "
                  "them): plain text only",
    }
    assert "invalid domain 'bidi2plain': title holds control or format characters" in result.stderr
    named = {row["plugin"]: row["error"] for row in rows if row["kind"] == "problem" and "plain text of" in row["error"]}
    assert named == {"bad\\x1b[31mname": "a plugin's name must be plain text of at most 64 characters; not loaded",
                     "p" * 63 + "…' (100 characters)": "a plugin's name must be plain text of at most 64 characters; "
                                                      "not loaded"}
    long_name = [row["error"] for row in rows if row["kind"] == "problem" and "5,000 characters" in row["error"]]
    assert len(long_name) == 1 and len(long_name[0]) < 250  # the name is cut, not echoed 5,000 characters long
    hijacker = next(row for row in rows if row["plugin"] == "hijacks")
    assert hijacker["commands"] == ["probe-ok"]
    translate = subprocess.run([sys.executable, "-m", "cycletools", "translate"], capture_output=True, text=True,
                               env=env, timeout=60)
    assert translate.returncode == 2 and "HIJACKED" not in translate.stdout  # core commands stay cycletools'

    assert "talk2quiet" in {row["name"] for row in rows if row["kind"] == "domain"}
    assert "hello from a plugin" in result.stderr and "registering" in result.stderr
    for line in ("raw bytes to descriptor 1", "a line from the plugin's thread", "goodbye from atexit", "raw at exit"):
        assert line in result.stderr and line not in result.stdout
    for command in (["weights", "list", "--json"], ["weights", "info", str(BUNDLED_WEIGHTS), "--json"]):
        listed = subprocess.run([sys.executable, "-m", "cycletools", *command], capture_output=True, text=True,
                                env=env, timeout=60)
        assert listed.returncode == 0 and json.loads(listed.stdout), listed.stderr
        assert "thread noise" in listed.stderr
    listed = subprocess.run([sys.executable, "-m", "cycletools", "weights", "list"], capture_output=True, text=True,
                            env=env, timeout=60)
    # a table is for people: a plugin's own thread may print into it (only the --json commands keep stdout clean)
    assert listed.returncode == 0 and any(line.startswith("apple2orange ") for line in listed.stdout.splitlines())


def test_a_real_ctrl_c_during_a_plugins_code_still_stops():
    import os
    import signal
    import time

    from cycletools.registry import PluginEscape, plugin_code

    # Python's own handler, as in a terminal: a shell that starts the suite in the background ignores Ctrl-C
    started_with = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            with plugin_code():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(5)  # the signal arrives long before this ends
        with pytest.raises(PluginEscape, match="raised KeyboardInterrupt without a Ctrl-C"):
            with plugin_code():
                raise KeyboardInterrupt
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back as it was
    finally:
        signal.signal(signal.SIGINT, started_with)
