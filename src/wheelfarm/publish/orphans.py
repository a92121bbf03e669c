"""Worker processes that die with the process that started them.

``write --all`` (and ``up``'s first full write) hands chunks of projects to spawned worker
processes. Killed with SIGKILL, or dying of anything else, the parent cannot tell them to stop,
and orphaned workers would go on writing into the tree while the next writer starts. On Linux
the kernel can send a child a signal when its parent dies (``prctl(PR_SET_PDEATHSIG)``); a
worker asks for SIGKILL when it starts.

The signal comes when the *thread* that started the child ends, not the whole process: the
pool is started, used and closed within one call of the thread that writes, so that holds.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys

__all__ = ["die_with_parent"]

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def die_with_parent() -> bool:
    """Ask the kernel to kill this process when its parent dies; False where it cannot.

    Called first thing in a worker. A parent that died before the call is caught too: the
    worker then has another parent already, and exits at once.
    """
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        return False
    parent = multiprocessing.parent_process()
    if parent is not None and os.getppid() != parent.pid:
        os._exit(1)  # orphaned already, between the spawn and the prctl
    return True
