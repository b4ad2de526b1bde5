"""The suite itself: what a newcomer running it sees when the shared data is not there."""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_every_test_that_reads_shared_data_says_how_to_point_it_there():
    """A test module that reads the shared folder skips through needs_shared/shared_missing, whose
    reason names CYCLETOOLS_SHARED; a bare skipif on a shared path would not say it."""
    offenders = []
    for module in sorted(TESTS.glob("test_*.py")):
        text = module.read_text(encoding="utf-8")
        if "shared_root()" in text and not re.search(r"needs_shared\(|shared_missing\(", text):
            offenders.append(module.name)
    assert offenders == []
    from conftest import shared_missing

    assert "CYCLETOOLS_SHARED" in shared_missing("no/such/file")
