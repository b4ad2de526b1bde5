"""Plugin checks that need other plugins beside them: names released by rejected plugins, every problem
of a plugin listed, reverse domains, training-setting names, header-only weights status, the listing."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cycletools.cli.main import main
from cycletools.errors import CycletoolsError
from cycletools.registry import Registry, get_registry
from cycletools.utils.safetensors_header import read_header_metadata
from plugin_fixtures import activate, cli_env, install_fake_distribution

BUILTIN_DOMAINS = {"summer2winter_yosemite", "winter2summer_yosemite", "horse2zebra", "zebra2horse",
                   "apple2orange", "orange2apple", "monet2photo", "style_monet", "style_cezanne",
                   "style_ukiyoe", "style_vangogh"}


def site_with(tmp_path: Path, monkeypatch, plugins: dict[str, str]):
    """Install ``plugins`` (entry-point name → module source) as one distribution and activate them."""
    site = install_fake_distribution(tmp_path / "site", "cycletools-checks", "0.3",
                                     {name: f"chk_{name}" for name in plugins},
                                     {f"chk_{name}": source for name, source in plugins.items()})
    yield from activate(site, tmp_path / "home", monkeypatch)


def errors_by_plugin(registry: Registry) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for problem in registry.problems:
        errors.setdefault(problem.plugin.name, []).append(problem.error)
    return errors


# ---------------------------------------------------------------- 1. a rejected plugin releases its names
GREEDY = '''
from cycletools import DomainSpec, hookimpl

def factory(**config):
    from cycletools.models import ResnetGenerator
    return ResnetGenerator(ngf=4, n_blocks=1)

@hookimpl
def register_architectures(register):
    register("resnet", factory)   # a core name: this plugin is rejected
    register("shared_arch", factory)

@hookimpl
def register_weights_adapters(register):
    register("garbage", lambda state_dict: None)

@hookimpl
def register_domains(register):
    register(DomainSpec(name="shared2shared", title="P1", family="object", source="a", target="b"))

@hookimpl
def register_commands(commands):
    commands.add_parser("shared-cmd").set_defaults(handler=lambda args: print("p1") or 0)
'''

MODEST = '''
from cycletools import DomainSpec, hookimpl

def factory(**config):
    from cycletools.models import ResnetGenerator
    return ResnetGenerator(ngf=4, n_blocks=1)

@hookimpl
def register_architectures(register):
    register("shared_arch", factory)

@hookimpl
def register_weights_adapters(register):
    register("garbage", lambda state_dict: None)

@hookimpl
def register_domains(register):
    register(DomainSpec(name="shared2shared", title="P2", family="object", source="a", target="b"))

@hookimpl
def register_commands(commands):
    commands.add_parser("shared-cmd").set_defaults(handler=lambda args: print("p2") or 0)
'''


@pytest.fixture
def greedy_site(tmp_path: Path, monkeypatch):
    yield from site_with(tmp_path, monkeypatch, {"p1": GREEDY, "p2": MODEST})


def test_a_rejected_plugin_releases_every_name(greedy_site: Path, capsys):
    with pytest.warns(UserWarning, match="plugin 'p1'"):
        registry = Registry().load_entry_points()
    assert errors_by_plugin(registry) == {"p1": ["architecture 'resnet' is already a cycletools architecture"]}
    assert registry.plugins["p1"].rejected and not registry.plugins["p2"].rejected
    assert registry.adapter_plugins["garbage"].name == "p2"
    assert registry.architecture_plugins["shared_arch"].name == "p2"
    assert registry.domain_plugins["shared2shared"].name == "p2"
    assert registry.plugins["p2"].commands == ["shared-cmd"]
    capsys.readouterr()
    assert main(["shared-cmd"]) == 0
    assert capsys.readouterr().out.strip() == "p2"


# ---------------------------------------------------------------- 2. all of a plugin's problems, together
MANY_PROBLEMS = '''
from cycletools import DomainSpec, hookimpl

@hookimpl
def register_architectures(register):
    register("broken_arch", "not callable")

@hookimpl
def register_domains(register):
    register(DomainSpec(name="horse2zebra", title="Impostor", family="object", source="h", target="z"))
    register(DomainSpec(name="lost2lost", title="Lost", family="object", source="a", target="b",
                        architecture={"arch": "nowhere"}))

@hookimpl
def register_commands(commands):
    commands.add_parser("translate").set_defaults(handler=lambda args: 0)
'''

TWO_PROBLEMS = '''
from cycletools import DomainSpec, hookimpl

@hookimpl
def register_domains(register):
    register(DomainSpec(name="zebra2horse", title="Impostor", family="object", source="z", target="h"))
    register(DomainSpec(name="more2more", title="More", family="object", source="a", target="b",
                        reverse="nothing2nothing"))
'''


@pytest.fixture
def problems_site(tmp_path: Path, monkeypatch):
    yield from site_with(tmp_path, monkeypatch, {"many": MANY_PROBLEMS, "two": TWO_PROBLEMS})


def test_every_problem_of_a_plugin_is_listed_together(problems_site: Path, capsys):
    with pytest.warns(UserWarning):
        registry = Registry().load_entry_points()
    errors = errors_by_plugin(registry)
    assert len(errors["many"]) == 4, errors["many"]
    expected = ["architecture 'broken_arch': the factory is a str",
                "domain 'horse2zebra' is already registered by plugin 'object_transfiguration'",
                "invalid domain 'lost2lost': unknown architecture 'nowhere'",
                "command 'translate' is already a cycletools command"]
    for text in expected:
        assert any(text in error for error in errors["many"]), (text, errors["many"])
    assert len(errors["two"]) == 2, errors["two"]
    owners = [problem.plugin.name for problem in registry.problems]
    assert owners == sorted(owners, key=["many", "two"].index)  # one plugin's problems next to each other

    assert main(["plugins", "--json"]) == 0
    rows = [row for row in json.loads(capsys.readouterr().out) if row["error"]]
    assert [row["plugin"] for row in rows] == ["many"] * 4 + ["two"] * 2
    assert main(["plugins"]) == 0
    table = capsys.readouterr().out
    assert table.count("  many (cycletools-checks): ") == 4 and table.count("  two (cycletools-checks): ") == 2


# ---------------------------------------------------------------- 3. reverse names a registered domain
REVERSES = {
    "lonely": '''
        from cycletools import DomainSpec, hookimpl

        @hookimpl
        def register_domains(register):
            register(DomainSpec(name="cats2dogs", reverse="dogs2cats", title="Cats → dogs", family="object",
                                source="cat", target="dog"))
    ''',
    "paired": '''
        from cycletools import DomainSpec, hookimpl

        @hookimpl
        def register_domains(register):
            register(DomainSpec(name="owls2cats", reverse="cats2owls", title="O", family="object", source="o",
                                target="c"))
            register(DomainSpec(name="cats2owls", reverse="owls2cats", title="C", family="object", source="c",
                                target="o", run_direction="b2a"))
    ''',
    "builtin_reverse": '''
        from cycletools import DomainSpec, hookimpl

        @hookimpl
        def register_domains(register):
            register(DomainSpec(name="zebras2horses", reverse="horse2zebra", title="Z", family="object",
                                source="zebra", target="horse"))
    ''',
}


@pytest.fixture
def reverse_site(tmp_path: Path, monkeypatch):
    yield from site_with(tmp_path, monkeypatch, REVERSES)


def test_a_reverse_that_names_no_domain_is_a_problem_of_its_plugin(reverse_site: Path):
    with pytest.warns(UserWarning, match="plugin 'lonely'"):
        registry = Registry().load_entry_points()
    assert errors_by_plugin(registry) == {
        "lonely": ["invalid domain 'cats2dogs': reverse 'dogs2cats' names no registered domain (register it too, "
                   "or leave reverse out)"]}
    assert {"owls2cats", "cats2owls", "zebras2horses"} <= set(registry.domains)
    assert "cats2dogs" not in registry.domains
    with pytest.raises(CycletoolsError, match="no domain plugin called 'cats2dogs': its plugin 'lonely' was skipped"):
        registry.domain("cats2dogs")


# ---------------------------------------------------------------- 4. a training setting by its option's name
def test_crop_size_is_the_size_setting_everywhere(tmp_path: Path):
    from cycletools.domains import DomainSpec, validate_spec
    from cycletools.training.config import read_config_file, resolve_config

    spec = DomainSpec(name="a2b", title="A", family="object", source="a", target="b",
                      train_defaults={"crop_size": 64, "lambda_identity": 0.0})
    assert validate_spec(spec, ["resnet"]) is spec
    assert resolve_config({"data": "d", "name": "n"}, base=dict(spec.train_defaults)).size == 64
    from cycletools.cli.train import domain_recipe

    assert resolve_config({"data": "d", "name": "n"}, base=domain_recipe(spec, {})).size == 64  # train --plugin
    toml = tmp_path / "run.toml"
    toml.write_text('data = "d"\nname = "n"\ncrop-size = 64\nload-size = 72\n')
    assert read_config_file(toml)["size"] == 64
    assert resolve_config({}, toml).size == 64
    assert resolve_config({"size": 32}, toml).size == 32  # --crop-size overrides the file
    yaml_like = tmp_path / "run.json"
    yaml_like.write_text('{"data": "d", "name": "n", "crop_size": 128}')
    assert resolve_config({}, yaml_like).size == 128


def test_an_unknown_setting_lists_the_accepted_names(tmp_path: Path):
    from cycletools.domains import DomainSpec, validate_spec
    from cycletools.training.config import read_config_file

    toml = tmp_path / "run.toml"
    toml.write_text('crop = 64\n')
    with pytest.raises(CycletoolsError) as caught:
        read_config_file(toml)
    message = str(caught.value)
    assert message.startswith(f"{toml}: unknown settings: crop (accepted, with - or _: ")
    assert "crop_size" in message and "lambda_identity" in message and "\n" not in message
    toml.write_text('size = 64\ncrop-size = 32\n')
    with pytest.raises(CycletoolsError, match="crop_size and size are the same setting"):
        read_config_file(toml)
    spec = DomainSpec(name="a2b", title="A", family="object", source="a", target="b",
                      train_defaults={"learning_rate": 1})
    with pytest.raises(CycletoolsError, match=r"unknown training settings in train_defaults: learning_rate "
                                              r"\(accepted: .*crop_size.*\)"):
        validate_spec(spec, ["resnet"])


def test_train_defaults_of_the_wrong_type_are_reported_at_load():
    from cycletools.domains import DomainSpec, validate_spec

    spec = DomainSpec(name="a2b", title="A", family="object", source="a", target="b",
                      train_defaults={"epochs": "lots", "crop-size": 64.5, "lr": "2e-4", "time_budget": "soon",
                                      "lambda_identity": 0.5})
    with pytest.raises(CycletoolsError) as caught:
        validate_spec(spec, ["resnet"])
    message = str(caught.value)
    for problem in ("train_defaults: epochs takes a whole number, not 'lots'",
                    "train_defaults: crop-size takes a whole number, not 64.5",
                    "train_defaults: time_budget takes a positive duration (e.g. 90m), not 'soon'"):
        assert problem in message, message
    assert "train_defaults: lr" not in message and "lambda_identity" not in message  # '2e-4' is a number


# ---------------------------------------------------------------- 5. weights status without torch
PROBE = """
import json, sys
from cycletools.cli.main import main
code = main(sys.argv[1:])
heavy = sorted(name for name in sys.modules if name.split(".")[0] in ("torch", "safetensors"))
print(json.dumps({"code": code, "heavy": heavy}), file=sys.stderr)
"""


def test_plugins_reads_cached_weights_without_importing_torch(tmp_path: Path, tiny_generator_file: Path):
    home = tmp_path / "home"
    (home / "weights").mkdir(parents=True)
    for name in BUILTIN_DOMAINS:
        shutil.copy(tiny_generator_file, home / "weights" / f"{name}.safetensors")
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    env = cli_env(tmp_path / "no-site", home, CYCLETOOLS_PLUGINS="")
    for args in (["plugins"], ["plugins", "--json"]):
        done = subprocess.run([sys.executable, str(probe), *args], capture_output=True, text=True, env=env,
                              timeout=120)
        report = json.loads(done.stderr.strip().splitlines()[-1])
        assert report == {"code": 0, "heavy": []}, (args, report, done.stderr)
        assert "resnet ngf=4 blocks=1 (declared resnet ngf=64 blocks=9)" in done.stdout


def test_header_reader_matches_safetensors(tmp_path: Path, tiny_generator_file: Path):
    from safetensors import safe_open

    from cycletools import store

    with safe_open(str(tiny_generator_file), "pt") as opened:  # the library's own reading of the header
        expected = opened.metadata()
    assert expected and read_header_metadata(tiny_generator_file) == expected
    assert store.file_architecture(tiny_generator_file)["ngf"] == 4
    for name, content in (("short.safetensors", b"\x01\x00"), ("huge.safetensors", b"\xff" * 8 + b"{}"),
                          ("text.safetensors", (5).to_bytes(8, "little") + b"nope!")):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(CycletoolsError, match="not a readable safetensors file"):
            read_header_metadata(tmp_path / name)
        assert store.file_architecture(tmp_path / name) is None


# ---------------------------------------------------------------- 6. the listing and the names it takes
WIDE = '''
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
                        architecture={"arch": "wide", "width": 6, "depth": 1}))
    register(DomainSpec(name="narrow2wide", title="Narrow", family="object", source="a", target="b",
                        architecture={"arch": "wide", "width": 4}))
'''

ONLY_MACHINERY = '''
from cycletools import hookimpl

@hookimpl
def register_architectures(register):
    register("plain", lambda **config: None)

@hookimpl
def register_weights_adapters(register):
    register("never", lambda state_dict: None)
'''

FRUIT = '''
from cycletools import DomainSpec, hookimpl

@hookimpl
def register_domains(register):
    register(DomainSpec(name="apple2pear", reverse="pear2apple", title="A", family="object", source="apple",
                        target="pear"))
    register(DomainSpec(name="pear2apple", reverse="apple2pear", title="P", family="object", source="pear",
                        target="apple", run_direction="b2a"))
'''


@pytest.fixture
def listing_site(tmp_path: Path, monkeypatch):
    yield from site_with(tmp_path, monkeypatch, {"wide": WIDE, "machinery": ONLY_MACHINERY, "fruit": FRUIT})


def test_plugin_architectures_show_their_settings(listing_site: Path, tmp_path: Path):
    from cycletools import store
    from cycletools.architectures import build_generator
    from cycletools.weights import save_generator

    registry = get_registry()
    wide = registry.domain("wide2wide")
    assert store.architecture_text(wide) == "wide depth=1 width=6"
    config = {"arch": "wide", "width": 4, "depth": 1}
    store.cache_dir().mkdir(parents=True)
    save_generator(build_generator(config, registry), store.local_file(wide), config)
    assert store.architecture_text(wide) == "wide depth=1 width=4 (declared wide depth=1 width=6)"
    narrow = registry.domain("narrow2wide")
    save_generator(build_generator(config, registry), store.local_file(narrow), config)
    assert store.architecture_text(narrow) == "wide width=4"  # what it declares, it has


def test_plugins_without_domains_are_listed(listing_site: Path, capsys):
    assert main(["plugins", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {row["kind"] for row in rows} == {"domain", "plugin"}
    plugins = {row["name"]: row for row in rows if row["kind"] == "plugin"}
    assert set(plugins) == {"machinery", "compressed"}
    machinery = plugins["machinery"]
    assert (machinery["architectures"], machinery["adapters"], machinery["commands"]) == (["plain"], ["never"], [])
    assert (machinery["distribution"], machinery["version"], machinery["error"]) == ("cycletools-checks", "0.3", None)
    assert plugins["compressed"]["adapters"] == ["gan-compression"] and plugins["compressed"]["builtin"]
    assert main(["plugins"]) == 0
    table = capsys.readouterr().out
    assert "Plugins without domains:" in table
    assert "  machinery (cycletools-checks 0.3): architectures plain; weights adapters never" in table
    assert "  compressed (cycletools " in table


def test_an_unknown_name_in_cycletools_plugins_is_warned_about(listing_site: Path, monkeypatch):
    monkeypatch.setenv("CYCLETOOLS_PLUGINS", "fruit,fruits,compressed")
    with pytest.warns(UserWarning) as caught:
        registry = Registry().load_entry_points()
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert messages == ["CYCLETOOLS_PLUGINS names 'fruits', which no installed plugin is called "
                        "(installed: fruit, machinery, wide); did you mean fruit?"]
    assert "apple2pear" in registry.domains and registry.problems == []


def test_a_plugin_name_given_for_a_domain_suggests_its_domains(listing_site: Path, tmp_path: Path):
    registry = get_registry()
    with pytest.raises(CycletoolsError, match="no domain plugin called 'fruit': 'fruit' is a plugin; its domains "
                                              "are apple2pear, pear2apple"):
        registry.domain("fruit")
    with pytest.raises(CycletoolsError, match="'machinery' is a plugin that registers no domain"):
        registry.domain("machinery")
    image = tmp_path / "in.png"
    from PIL import Image

    Image.new("RGB", (8, 8)).save(image)
    done = subprocess.run([sys.executable, "-m", "cycletools", "translate", str(image), "--plugin", "fruit"],
                          capture_output=True, text=True, env=cli_env(listing_site, tmp_path / "home"), timeout=120)
    assert done.returncode != 0
    assert "'fruit' is a plugin; its domains are apple2pear, pear2apple" in done.stderr


# ---------------------------------------------------------------- 7. a foreign file no adapter recognises
def test_a_foreign_file_says_first_that_no_adapter_recognises_it(tmp_path: Path, monkeypatch):
    from cycletools.models import ResnetGenerator
    from cycletools.weights import load_generator

    monkeypatch.setenv("CYCLETOOLS_PLUGINS", "")
    official = ResnetGenerator(ngf=4, n_blocks=9).state_dict()
    state = {key.replace(".conv_block.", ".block."): value for key, value in official.items()}
    path = tmp_path / "theirs.pth"
    torch.save(state, path)
    registry = Registry().load_entry_points()
    with pytest.raises(CycletoolsError) as caught:
        load_generator(path, registry)
    message = str(caught.value)
    assert message.startswith(f"{path}: no weights adapter recognises this file (tried: gan-compression), and it "
                              "is not a CycleGAN ResNet generator")
    assert "0-block" not in message and "output convolution" not in message
    assert "missing: model.10.conv_block.1.weight" in message and "unexpected: model.10.block.1.weight" in message
    with pytest.raises(CycletoolsError) as caught:
        load_generator(path)  # no registry: no adapter was asked
    assert str(caught.value).startswith(f"{path}: not a CycleGAN ResNet generator (")
    assert "0-block" not in str(caught.value)


def test_the_registry_knows_every_core_command():
    """Plugins may not take a core command's name; the registry's list is the CLI's."""
    import argparse

    from cycletools.cli.main import build_parser
    from cycletools.registry import CORE_COMMANDS

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    plugin_commands = {name for info in get_registry().plugins.values() for name in info.commands}
    assert set(commands.choices) - plugin_commands == CORE_COMMANDS
