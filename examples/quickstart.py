"""Quick start: make a toy squares → circles dataset, train a small CycleGAN on it, translate with it.

    python examples/quickstart.py [WORKDIR]

Runs in about a minute on an idle 2-core CPU and leaves in WORKDIR (default: ./quickstart):
  data/       the toy domain pair (trainA squares, trainB circles, testA/testB)
  runs/toy/   the training run (checkpoint, weights, sample grids, losses.csv)
  out/        testA squares translated to the circle domain
It drives the same commands a user types: cycletools train, cycletools translate.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cycletools.data.toy import make_shapes_dataset


def cycletools(*args: str) -> None:
    print("$ cycletools " + " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "cycletools", *args], check=True)


def main() -> None:
    work = Path(sys.argv[1] if len(sys.argv) > 1 else "quickstart")
    data = make_shapes_dataset(work / "data", count=48, size=64, test_count=4)
    run = work / "runs" / "toy"
    if (run / "checkpoints" / "latest.pt").exists():
        cycletools("train", "--name", "toy", "--out", str(work / "runs"), "--resume")
    else:
        cycletools("train", "--data", str(data), "--name", "toy", "--out", str(work / "runs"),
                   "--crop-size", "64", "--load-size", "72", "--ngf", "16", "--ndf", "16", "--blocks", "3",
                   "--epochs", "3", "--epochs-decay", "2", "--lr", "5e-4", "--log-every", "8")
    cycletools("translate", str(data / "testA"), "--run", str(run), "--direction", "a2b", "-o", str(work / "out"))
    print(f"sample grids: {run / 'samples'}; translated squares: {work / 'out'}")


if __name__ == "__main__":
    main()
