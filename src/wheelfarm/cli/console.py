"""What the commands share: the two consoles, the progress bar, the settings, a clean stop.

Output is not wrapped (``soft_wrap``) so that messages stay one line in logs and pipes, and
highlighted (numbers, paths and URLs in colour) only at a terminal: elsewhere the colours are
dropped anyway, and the highlighter's patterns take 12 ms to compile, a twentieth of a short
command's start (benchmarks/cli_startup.py). The progress bar's module is imported with it.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

import click
from rich.console import Console

from wheelfarm.config import Settings

__all__ = [
    "err",
    "out",
    "progress_bar",
    "settings_of",
    "show_new_token",
    "until_stopped",
]

out = Console(soft_wrap=True, highlight=sys.stdout.isatty())
err = Console(stderr=True, soft_wrap=True, highlight=sys.stderr.isatty())


@contextmanager
def progress_bar(description: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr; the callback takes (done, total)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update


def settings_of(ctx: click.Context) -> Settings:
    """The settings the command group loaded (click hands ``obj`` down to subcommands)."""
    settings: Settings = ctx.obj
    return settings


class _Stop(BaseException):
    """Raised by the SIGTERM handler so that a long-running command ends between transactions.

    A BaseException, like KeyboardInterrupt: code that catches Exception to carry on must not
    carry on through a stop."""


@contextmanager
def until_stopped(farewell: str | Callable[[], str]) -> Iterator[threading.Event]:
    """Run the body until SIGINT or SIGTERM, then print ``farewell``: a clean stop, status 0.

    ``farewell`` may be a function, called at the stop, when the line depends on what was
    under way then.

    The handlers raise in the main thread wherever it is (SIGINT as KeyboardInterrupt) and set
    the event yielded. A raise can be lost: when the signal comes while the main thread runs a
    finalizer (``__del__``, a weakref callback, during a garbage collection), Python prints
    "Exception ignored" and goes on. Loops in the body check the event, so that the stop still
    ends them (:func:`wheelfarm.app.parts.follow_rounds`). Code after the ``with`` (or in a
    ``finally`` around it) still runs, and is not cut short by a second signal: one stop often
    comes as two (``timeout`` or systemd signal a whole process group, and a parent such as
    ``make`` passes its own on), and the second then found ``up`` handing its builds back.
    """
    stopping = threading.Event()

    def stop(signum: int, _frame: FrameType | None) -> None:
        if stopping.is_set():  # stopping already: the stop goes on to its end
            return
        stopping.set()
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise _Stop(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, stop)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not ignored (a `&` job)
        signal.signal(signal.SIGINT, stop)
    try:
        yield stopping
    except (_Stop, KeyboardInterrupt):
        stopping.set()
    if stopping.is_set():
        err.print(farewell if isinstance(farewell, str) else farewell())


def show_new_token(kind: str, name: str, token: str) -> None:
    """Print a new token once, plainly (it is stored hashed and never shown again)."""
    out.print(f"{kind} {name} added; its token (keep it secret, it is not shown again):")
    out.print(token, markup=False, highlight=False)
