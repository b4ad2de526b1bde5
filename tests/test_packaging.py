"""The wheel is the product: built, installed without -e into a fresh environment and used from elsewhere."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def tracked_copy(target: Path) -> Path:
    """A copy of the checkout's files as git knows them (what a clean clone would hold)."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def fresh_environment(venv: Path) -> Path:
    """A new virtual environment that sees this interpreter's installed packages (torch and the rest), as
    plain paths: inside a venv its site-packages, not the base interpreter's (``--system-site-packages``
    would give the base's), and without this checkout's editable install (a finder that only .pth
    processing in a site folder would run). Returns its python."""
    import sysconfig

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    ours = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    Path(site, "outer-packages.pth").write_text("".join(f"{path}\n" for path in ours))
    return python


@pytest.mark.slow
def test_wheel_installs_without_editable_mode_and_ships_bundled_weights(tmp_path: Path):
    source = tracked_copy(tmp_path / "src")  # the bundled horse2zebra generator and the example photo included
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                            str(tmp_path / "dist"), str(source)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    wheel, = (tmp_path / "dist").glob("cycletools-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"cycletools_plugins/__init__.py", "cycletools_plugins/object_transfiguration.py",
            "cycletools_plugins/weights/horse2zebra.safetensors", "cycletools_plugins/weights/horse2zebra.md",
            "cycletools_plugins/weights/README.md", "cycletools_plugins/examples/horse.jpg",
            "cycletools_plugins/examples/README.md"} <= names
    assert not any("unfinished" in name for name in names)  # the unfinished student stays out of the wheel
    assert not any(name.startswith("plugins/") for name in names)  # no generic top-level package
    modules = {str(path.relative_to(ROOT)) for path in (ROOT / "cycletools").rglob("*.py")}
    assert modules <= names, sorted(modules - names)

    venv = tmp_path / "venv"
    python = fresh_environment(venv)
    installed = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                                str(wheel)], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "CYCLETOOLS_HOME": str(tmp_path / "home"), "CYCLETOOLS_PLUGINS": ""}
    env.pop("PYTHONPATH", None)

    def cycletools(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(python), "-m", "cycletools", *args], capture_output=True, text=True, cwd=elsewhere,
                              env=env, timeout=180)

    where = subprocess.run([str(python), "-c", "import cycletools, cycletools_plugins; print(cycletools.__file__); "
                            "print(cycletools_plugins.BUNDLED_DIR)"], capture_output=True, text=True, cwd=elsewhere,
                           env=env, timeout=60).stdout.split()
    assert all(str(venv) in line for line in where), where  # the installed copy, not the checkout
    listed = cycletools("plugins", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    status = {row["name"]: row["weights"] for row in rows if row["kind"] == "domain"}
    assert status["horse2zebra"] == "bundled" and status["zebra2horse"] == "downloadable"
    assert len(status) == 11
    horse = next(row for row in rows if row["name"] == "horse2zebra")
    assert horse["weights_path"].startswith(str(venv)) and horse["weights_path"].endswith(
        "cycletools_plugins/weights/horse2zebra.safetensors")
    assert horse["weights_variant"] == "bundled" and "GAN Compression" in horse["weights_origin"]
    photo = Path(horse["weights_path"]).parents[1] / "examples" / "horse.jpg"  # installed with the package
    done = cycletools("translate", str(photo), "--plugin", "horse2zebra", "-o", "zebra.png")
    assert done.returncode == 0, done.stderr
    from cycletools.evaluation.classifier import ImageNetClassifier

    with Image.open(elsewhere / "zebra.png") as zebra:
        assert zebra.size == (960, 540)
        assert ImageNetClassifier().top1([zebra]).tolist() == [340]  # ImageNet's zebra


def test_every_cycletools_package_is_listed_for_the_wheel():
    """setuptools ships only the packages pyproject.toml lists: a new package folder left out of the list works
    in an editable install and is missing from a wheel."""
    import tomllib

    root = Path(__file__).resolve().parents[1]
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(init.parent.relative_to(root).parts) for init in (root / "cycletools").rglob("__init__.py")}
    assert found - listed == set()
