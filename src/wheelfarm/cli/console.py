"""What the command line shares: the two consoles, the progress bar, the settings of a command.

Output is not wrapped (``soft_wrap``) so that messages stay one line in logs and pipes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from wheelfarm.config import Settings

__all__ = ["err", "out", "progress_bar", "settings_of"]

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


@contextmanager
def progress_bar(description: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr; the callback takes (done, total)."""
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
