"""The "Write a plugin" example in docs/plugins.md, as written there, installs and loads without problems."""

from __future__ import annotations

import json
import re
import textwrap
import tomllib
import warnings
from pathlib import Path

import pytest

from cycletools.cli.main import main
from cycletools.registry import Registry
from plugin_fixtures import activate, install_fake_distribution

PLUGINS_DOC = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"
FENCE = re.compile(r"^( *)```(\w*)\n(.*?)^\1```", re.MULTILINE | re.DOTALL)


def section(text: str, title: str) -> str:
    """The text under the level-2 heading ``title``, up to the next level-2 heading."""
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else len(text)]


def code_blocks(text: str, language: str) -> list[str]:
    """The fenced blocks of ``language`` in ``text``, dedented (list items indent theirs)."""
    return [textwrap.dedent(body) for _, lang, body in FENCE.findall(text) if lang == language]


def readme_example() -> tuple[dict, str, str]:
    """``(pyproject, module source, shell commands)`` of docs/plugins.md's plugin example."""
    text = section(PLUGINS_DOC.read_text(encoding="utf-8"), "Write a plugin")
    projects = [tomllib.loads(block) for block in code_blocks(text, "toml")]
    projects = [project for project in projects if "project" in project]
    assert len(projects) == 1, "docs/plugins.md's plugin example has one pyproject.toml"
    return projects[0], "\n".join(code_blocks(text, "python")), "\n".join(code_blocks(text, "bash"))


@pytest.fixture
def readme_site(tmp_path: Path, monkeypatch):
    project, source, _ = readme_example()
    entry_points = project["project"]["entry-points"]["cycletools"]
    site = install_fake_distribution(tmp_path / "site", project["project"]["name"], project["project"]["version"],
                                     entry_points, {module: source for module in entry_points.values()})
    yield from activate(site, tmp_path / "home", monkeypatch)


def test_readme_plugin_example_loads_without_problems(readme_site: Path, monkeypatch, capsys):
    project, _, commands = readme_example()
    names = list(project["project"]["entry-points"]["cycletools"])
    monkeypatch.setenv("CYCLETOOLS_PLUGINS", ",".join(names))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # a plugin problem is a warning first
        registry = Registry().load_entry_points()
    assert [problem.error for problem in registry.problems] == []
    domains = [name for plugin in names for name in registry.plugins[plugin].domains]
    assert domains, "docs/plugins.md's example registers at least one domain"
    for name in domains:
        spec = registry.domain(name)
        assert spec.reverse is None or spec.reverse in registry.domains

    # step 4: 'cycletools plugins' lists them with the distribution and its version
    assert main(["plugins", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out) if row["kind"] == "domain"}
    for name in domains:
        row = rows[name]
        assert (row["distribution"], row["version"]) == (project["project"]["name"], project["project"]["version"])

    # step 5: every domain the commands name is one of the example's, and its recipe resolves
    from cycletools.cli.train import domain_recipe
    from cycletools.training.config import resolve_config

    named = set(re.findall(r"--plugin (\S+)", commands))
    assert named and named <= set(domains), (named, domains)
    for name in domains:
        resolve_config({"data": "d", "name": name}, base=domain_recipe(registry.domain(name), {}))
