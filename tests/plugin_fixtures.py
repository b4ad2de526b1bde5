"""Helpers that install throw-away plugin distributions into a temporary site folder."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path


def install_fake_distribution(site: Path, dist: str, version: str, entry_points: dict[str, str],
                              modules: dict[str, str]) -> Path:
    """Write ``dist``'s dist-info (METADATA, entry_points.txt) and its modules into ``site``."""
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = ["[cycletools]"] + [f"{name} = {target}" for name, target in entry_points.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    for module, source in modules.items():
        (site / f"{module}.py").write_text(textwrap.dedent(source))
    return site


def activate(site: Path, home: Path, monkeypatch):
    """Put ``site`` on sys.path with every third-party plugin allowed, around a fresh registry."""
    from cycletools.registry import reset_registry

    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("CYCLETOOLS_HOME", str(home))
    monkeypatch.delenv("CYCLETOOLS_PLUGINS", raising=False)
    reset_registry()
    yield site
    reset_registry()


def cli_env(site: Path, home: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(site), "CYCLETOOLS_HOME": str(home), **extra}


GOOD_PLUGIN = '''
from cycletools import DomainSpec, WeightsSource, hookimpl

@hookimpl
def register_domains(register):
    register(DomainSpec(name="cats2dogs", title="Cats → dogs", family="object", source="cat", target="dog",
                        architecture={"arch": "resnet", "ngf": 4, "n_blocks": 1},
                        train_defaults={"ngf": 4, "blocks": 1, "lambda_identity": 0.0, "size": 32}))

@hookimpl
def register_commands(commands):
    parser = commands.add_parser("meow", help="says meow")
    parser.add_argument("--times", type=int, default=1)
    parser.set_defaults(handler=lambda args: print("meow " * args.times) or 0)
'''

BROKEN_PLUGINS = {
    "import_fails": "raise ImportError('a dependency is missing')\n",
    "hook_raises": '''
        from cycletools import hookimpl

        @hookimpl
        def register_domains(register):
            raise RuntimeError("database unreachable")
    ''',
    "invalid_spec": '''
        from cycletools import DomainSpec, hookimpl

        @hookimpl
        def register_domains(register):
            register(DomainSpec(name="Bad Name!", title="x", family="object", source="a", target="b"))
            register({"name": "not-a-spec"})
    ''',
    "name_clash": '''
        from cycletools import DomainSpec, hookimpl

        @hookimpl
        def register_domains(register):
            register(DomainSpec(name="horse2zebra", title="Impostor", family="object", source="h", target="z"))
    ''',
    "unknown_hook": '''
        from cycletools import hookimpl

        @hookimpl
        def register_domain(register):  # typo: not a cycletools hook
            pass
    ''',
}
