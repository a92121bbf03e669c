"""The fake upstream with a synthetic changelog, in its own process, as the benchmarks use it.

Its answers are pre-encoded (tests/fixtures/fake_upstream.py), so what is measured is the
follower, not the fake.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["fake_changelog"]

REPO = Path(__file__).resolve().parents[2]


@contextmanager
def fake_changelog(events: int) -> Iterator[str]:
    """Serve ``events`` synthetic events; yields the XML-RPC changelog URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fixtures.fake_upstream", "--events", str(events)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        if process.stdout is None:
            raise RuntimeError("the fake upstream's output was not captured")
        ready = process.stdout.readline().split()
        if ready[:1] != ["READY"]:
            raise RuntimeError(f"the fake upstream did not start: {ready}")
        yield ready[1] + "/pypi"
    finally:
        process.terminate()
        process.wait(timeout=30)
