"""Shared fixtures: a synthetic squares-vs-circles domain pair, tiny generators, the shared folder."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cycletools.data.toy import make_shapes_dataset


def shared_root() -> Path:
    return Path(os.environ.get("CYCLETOOLS_SHARED", Path(__file__).resolve().parents[2] / "shared"))


def shared_missing(*names: str) -> str | None:
    """Why a test that reads ``names`` (paths under the shared folder) cannot run, or None if it can."""
    root = shared_root()
    missing = [name for name in names if not (root / name).exists()]
    if not missing:
        return None
    return (f"needs {root / missing[0]}: put the project's shared folder beside the checkout (../shared) "
            "or set CYCLETOOLS_SHARED to it")


def needs_shared(*names: str) -> pytest.MarkDecorator:
    """Skip a test (with a reason that says how to point it at the data) unless ``names`` exist under the shared folder."""
    reason = shared_missing(*names)
    return pytest.mark.skipif(reason is not None, reason=reason or "")


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 300,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``cycletools ARGS...`` in a fresh interpreter (``env`` adds variables); returns the process."""
    return subprocess.run([sys.executable, "-m", "cycletools", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, env={**os.environ, **(env or {})})


def run_cli_here(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None
                 ) -> subprocess.CompletedProcess:
    """``cycletools ARGS...`` in this process, like ``run_cli`` but without an interpreter's start-up
    (3-4 s a call on 2 cores): ``env`` variables and ``cwd`` hold for the call only."""
    from cycletools.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    os.environ.update(env or {})
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse's usage errors
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    return subprocess.CompletedProcess(["cycletools", *args], code, out.getvalue(), err.getvalue())


@pytest.fixture
def cli_here():
    return run_cli_here


def refuse_writes_in(folder: Path, monkeypatch, code: int) -> None:
    """Make creating files in ``folder`` fail as a read-only (EROFS) or locked (EACCES) folder would."""
    real_open = os.open

    def guarded_open(path, flags, *args, **kwargs):
        if Path(path).parent == folder and flags & os.O_CREAT:
            raise OSError(code, os.strerror(code), str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", guarded_open)


def cycle_error(trainer, folder: Path, size: int = 32) -> float:
    """Mean |G_B(G_A(x)) - x| over a folder's images at ``size``², on the trainer's device."""
    import numpy as np
    import torch
    from PIL import Image

    images = [np.asarray(Image.open(p).convert("RGB").resize((size, size)), dtype=np.float32)
              for p in sorted(folder.iterdir())]
    x = (torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2) / 127.5 - 1).to(trainer.device)
    with torch.no_grad():
        return float((trainer.G_B(trainer.G_A(x)).float() - x).abs().mean())


def pytest_configure(config):
    """torch.compile's on-disk cache starts empty for each run of the suite and is removed after it:
    a graph another run (another ATEN_CPU_CAPABILITY, another version) cached must not decide a test."""
    import tempfile

    config._cycletools_inductor_cache = tempfile.mkdtemp(prefix="cycletools-tests-inductor-")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = config._cycletools_inductor_cache


def pytest_unconfigure(config):
    import shutil

    folder = getattr(config, "_cycletools_inductor_cache", None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)


def pytest_collection_modifyitems(config, items):
    """Tests marked ``cuda`` run only where CUDA is (``pytest -m cuda`` on a GPU machine)."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (run 'pytest -m cuda' on a GPU machine)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


def run_cli_measured(*args: str, timeout: float = 300) -> tuple[subprocess.CompletedProcess, int]:
    """Run ``cycletools ARGS...`` like ``run_cli``; also return the process's peak resident memory in bytes.

    The peak is the child's own high-water mark (``VmHWM``, read while it runs): ``ru_maxrss`` would
    also count the pages of this (large) test process that the child held between fork and exec.
    """
    import tempfile

    peak = 0
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen([sys.executable, "-m", "cycletools", *args], stdout=out, stderr=err)
        deadline = time.monotonic() + timeout
        while process.poll() is None:
            try:
                status = Path(f"/proc/{process.pid}/status").read_text()
                peak = max(peak, int(next(line for line in status.splitlines() if line.startswith("VmHWM:"))
                                     .split()[1]) * 1024)
            except (OSError, StopIteration, ValueError):
                pass
            if time.monotonic() > deadline:
                process.kill()
                raise subprocess.TimeoutExpired(process.args, timeout)
            time.sleep(0.02)
        out.seek(0)
        err.seek(0)
        result = subprocess.CompletedProcess(process.args, process.returncode, out.read().decode(), err.read().decode())
    return result, peak


@pytest.fixture
def shapes_dataset(tmp_path: Path) -> Path:
    return make_shapes_dataset(tmp_path / "shapes")


@pytest.fixture
def tiny_generator_file(tmp_path: Path) -> Path:
    """A small random ResNet generator saved in the project's safetensors format."""
    import torch

    from cycletools.models import ResnetGenerator, init_weights
    from cycletools.weights import save_generator

    torch.manual_seed(0)
    generator = init_weights(ResnetGenerator(ngf=4, n_blocks=1), gain=0.5)
    return save_generator(generator, tmp_path / "tiny.safetensors")
