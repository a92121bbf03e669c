"""The command line's root: the global options, the settings, the commands, the exit status.

Each command group is in its own module (see docs/cli.md); this one only names them, and
a command's module is imported when the command runs (:class:`LazyGroup`): ``--help`` and the
commands that only read the store start without FastAPI, httpx or Textual
(benchmarks/cli_startup.py has the figures).
"""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from wheelfarm import __version__
from wheelfarm.cli.lazy import LazyCommand, LazyGroup
from wheelfarm.config import load_settings
from wheelfarm.errors import WheelfarmError, redact_url

__all__ = ["COMMANDS", "RedactCredentials", "cli", "main"]


class RedactCredentials(logging.Filter):
    """Hide the password of any URL in a log line (ours, httpx's, any library's)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_url(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


# Every command: its name, its module under wheelfarm.cli, its attribute there, and its
# summary (the first paragraph of its help; tests/test_cli_startup.py holds them equal).
_TABLE = [
    # following the upstream (cli/follow.py) and running it all (cli/up.py)
    (
        "sync",
        "follow",
        "sync",
        "Catch up with the upstream as it was when the command started, then exit.",
    ),
    (
        "follow",
        "follow",
        "follow",
        "Keep following the upstream until stopped (SIGINT or SIGTERM).",
    ),
    (
        "status",
        "follow",
        "status",
        "Counts of what we hold and the last changelog serial applied.",
    ),
    ("show", "follow", "show", "What we hold for one live project."),
    (
        "audit",
        "follow",
        "audit",
        "Compare what we hold with the upstream's pages; exit 1 when they differ (unless --fix).",
    ),
    (
        "add",
        "follow",
        "add",
        "Read a project from the upstream now and queue its builds ahead of the backlog.",
    ),
    (
        "up",
        "up",
        "up",
        "Run everything on this machine: follower, builder API, a local builder and the index.",
    ),
    # the published index (cli/index.py)
    (
        "write",
        "index",
        "write",
        "Publish the index: the projects changed since the last write (or, with --all, all).",
    ),
    (
        "serve",
        "index",
        "serve",
        "Serve the published index (simple pages, wheels, project pages) over HTTP until stopped.",
    ),
    # the farm (cli/targets.py, cli/builders.py, cli/builds.py, cli/distros.py)
    ("targets", "targets", "targets", "The platforms wheels are built for."),
    ("builders", "builders", "builders", "The machines that build (each with its own token)."),
    (
        "builder",
        "builders",
        "builder",
        "Build wheels for a master until stopped (SIGINT or SIGTERM).",
    ),
    ("builds", "builds", "builds", "The build queue and its outcomes, per release and target."),
    (
        "rebuild",
        "builds",
        "rebuild",
        "Build a project (or release) again: built wheels get the next build tag, failed "
        "builds are queued again; with --all, every built release of a target, in the "
        "background.",
    ),
    ("skip", "builds", "skip", "Do not build a project (or one release of it)."),
    ("unskip", "builds", "unskip", "Build a skipped project (or release) again."),
    (
        "remove",
        "builds",
        "remove",
        "Unpublish our wheels of a project (or release); without --skip they are built again.",
    ),
    (
        "import",
        "builds",
        "import_command",
        "Publish wheels built elsewhere, validated like a builder's upload.",
    ),
    (
        "distros",
        "distros",
        "distros",
        "The base images targets run on, and the packages they already have.",
    ),
    (
        "dependencies",
        "distros",
        "dependencies",
        "What published wheels need from the system: apt packages beyond the target's distro.",
    ),
    # monitoring (cli/monitor.py, cli/rootfs.py)
    (
        "admins",
        "monitor",
        "admins",
        "The operators who may use the dashboard, the terminal monitor and /metrics.",
    ),
    ("farm", "monitor", "farm", "The whole farm at once."),
    (
        "monitor",
        "monitor",
        "monitor",
        "The farm in the terminal: builders, their readings, and keys to command them.",
    ),
    (
        "rootfs",
        "rootfs",
        "rootfs",
        "Root file systems of other architectures, for emulated builders (needs root).",
    ),
    # the schema (cli/database.py)
    ("db", "database", "db", "Database schema commands."),
    # statistics (cli/stats.py)
    (
        "stats",
        "stats",
        "stats",
        "Downloads and searches: totals, top projects, projects searched but not downloaded.",
    ),
    ("logs", "stats", "logs", "Web server access logs."),
]
COMMANDS = {
    name: LazyCommand(f"wheelfarm.cli.{module}", attribute, summary)
    for name, module, attribute, summary in _TABLE
}


@click.group(cls=LazyGroup, lazy=COMMANDS)
@click.version_option(__version__)
@click.option("--config", type=click.Path(path_type=Path), help="Settings file (TOML).")
@click.option("--upstream", help="Upstream simple index URL.")
@click.option("--database", help="Database URL (sqlite:///... or postgresql://...).")
@click.option("--data-dir", type=click.Path(path_type=Path), help="Where wheelfarm keeps data.")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.pass_context
def cli(
    ctx: click.Context,
    config: Path | None,
    upstream: str | None,
    database: str | None,
    data_dir: Path | None,
    verbose: int,
) -> None:
    """wheelfarm: follow an upstream index, build the wheels it lacks, publish them."""
    # Only once a command runs: --help needs neither rich nor the consoles.
    from rich.logging import RichHandler

    from wheelfarm.cli.console import err

    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    handler = RichHandler(console=err, show_path=False)
    handler.addFilter(RedactCredentials())
    logging.basicConfig(level=level, format="%(message)s", handlers=[handler])
    flags = {
        "upstream": upstream,
        "database": database,
        "data_dir": str(data_dir) if data_dir else None,
    }
    ctx.obj = load_settings(config, flags=flags)


#: What SQLite says when it cannot write its journal or shared-memory file: most often a full disk.
_DISK_TROUBLE = re.compile(r"disk I/O error|database or disk is full")


def main(argv: list[str] | None = None) -> Any:
    """Entry point: wheelfarm errors are printed plainly and exit with status 2."""
    try:
        return cli.main(args=argv, prog_name="wheelfarm", standalone_mode=False)
    except click.exceptions.Abort:
        _fail("aborted", 130, style=None)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except WheelfarmError as error:
        _fail(f"error: {error}", 2)
    except Exception as error:
        if not _is_database_error(error):
            raise
        # unreachable database, wrong credentials, damaged schema
        cause = str(getattr(error, "orig", error))
        message = redact_url(f"database error: {cause}")
        if _DISK_TROUBLE.search(cause):
            message += (
                " (is the disk under the database full? SQLite needs free space even to open "
                "a database; free some and start again)"
            )
        _fail(message, 2)


def _fail(message: str, status: int, style: str | None = "red") -> NoReturn:
    """Print why on standard error and exit; the console is imported only on this way out,
    so that ``--help`` loads no rich (see the module's docstring)."""
    from wheelfarm.cli.console import err

    err.print(message, style=style, markup=False, highlight=False)
    sys.exit(status)


def _is_database_error(error: Exception) -> bool:
    """A driver's error, as SQLAlchemy raises it; checked without importing SQLAlchemy into
    commands that never touched it (then the error cannot be one)."""
    exc = sys.modules.get("sqlalchemy.exc")
    return exc is not None and isinstance(error, exc.DBAPIError)
