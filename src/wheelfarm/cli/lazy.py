"""A click group whose commands are imported only when one of them runs.

Every command imported at start cost every call a second or more (FastAPI for ``serve``,
httpx for ``sync``, Textual for ``monitor``...), even ``wheelfarm --help``. The group knows
each command by name, module and one-line summary; ``--help`` prints the summaries, and a
command's module is imported when that command is asked for. tests/test_cli_startup.py holds
the summaries to the commands' own docstrings and checks which modules stay unloaded.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import click

__all__ = ["LazyCommand", "LazyGroup"]


@dataclass(frozen=True)
class LazyCommand:
    """Where a command lives (``module``, ``attribute``) and what ``--help`` says of it."""

    module: str
    attribute: str
    summary: str

    def short_help(self, limit: int) -> str:
        """The summary cut to ``limit`` as click cuts a command's own help."""
        return click.Command(None, help=self.summary).get_short_help_str(limit)

    def load(self) -> click.Command:
        command = getattr(importlib.import_module(self.module), self.attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.module}.{self.attribute} is not a click command")
        return command


class LazyGroup(click.Group):
    """A group of :class:`LazyCommand` (by name), loaded on first use."""

    def __init__(self, *args: Any, lazy: dict[str, LazyCommand], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            self.add_command(self.lazy[cmd_name].load(), cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The commands and their summaries, without importing any of them."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            if name in self.commands:
                rows.append((name, self.commands[name].get_short_help_str(limit)))
            else:
                rows.append((name, self.lazy[name].short_help(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)
