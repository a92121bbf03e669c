"""A worker of a full regeneration dies with the process that started it.

A real parent process spawns real workers (as ``write --all`` does, with the ``spawn`` start
method and the worker initializer calling :func:`die_with_parent`), then is killed with
SIGKILL: the workers must be gone within seconds, not left writing the tree.
"""

from __future__ import annotations

import signal
import subprocess
import sys

import psutil
import pytest

PARENT = """
import multiprocessing, os, sys, time
from concurrent.futures import ProcessPoolExecutor
from wheelfarm.publish.orphans import die_with_parent

if __name__ == "__main__":
    protect = sys.argv[1] == "1"
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(
        2, mp_context=context, initializer=die_with_parent if protect else None
    )
    pids = {pool.submit(os.getpid).result() for _ in range(20)}
    print(" ".join(map(str, sorted(pids))), flush=True)
    time.sleep(600)
"""


def _workers_after_the_parent_is_killed(protect: bool) -> list[psutil.Process]:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, "1" if protect else "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # the killed parent's resource tracker complains: noise
        text=True,
    )
    assert parent.stdout is not None
    line = parent.stdout.readline()
    parent.stdout.close()
    workers = [psutil.Process(int(pid)) for pid in line.split()]
    assert workers, "the parent started no worker"
    parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=30)
    _, alive = psutil.wait_procs(workers, timeout=10)
    for worker in alive:
        worker.kill()  # what the test left, it cleans up
    return alive


@pytest.mark.slow
def test_workers_die_when_their_parent_is_killed() -> None:
    assert _workers_after_the_parent_is_killed(protect=True) == []


@pytest.mark.slow
def test_without_it_workers_outlive_a_killed_parent() -> None:
    """The control: this is what happened before, so the test above can fail."""
    assert _workers_after_the_parent_is_killed(protect=False) != []
