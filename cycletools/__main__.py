"""``python -m cycletools`` (also what ``torchrun -m cycletools train ...`` runs)."""

from cycletools.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
