"""The command line's root: the global options, the settings, the commands, the exit status.

Each command group is in its own module (see docs/cli.md); this one only gathers them.
"""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path
from typing import Any

import click
from rich.logging import RichHandler
from sqlalchemy.exc import DBAPIError

from wheelfarm import __version__
from wheelfarm.cli.builders import builder, builders
from wheelfarm.cli.builds import builds, import_command, rebuild, remove, skip, unskip
from wheelfarm.cli.console import err
from wheelfarm.cli.database import db
from wheelfarm.cli.distros import dependencies, distros
from wheelfarm.cli.follow import add, audit, follow, show, status, sync
from wheelfarm.cli.index import serve, write
from wheelfarm.cli.monitor import admins, farm, monitor
from wheelfarm.cli.rootfs import rootfs
from wheelfarm.cli.stats import logs, stats
from wheelfarm.cli.targets import targets
from wheelfarm.cli.up import up
from wheelfarm.config import load_settings
from wheelfarm.errors import WheelfarmError, redact_url

__all__ = ["RedactCredentials", "cli", "main"]


class RedactCredentials(logging.Filter):
    """Hide the password of any URL in a log line (ours, httpx's, any library's)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_url(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


@click.group()
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


for _command in (
    # following the upstream (cli/follow.py) and running it all (cli/up.py)
    sync,
    follow,
    status,
    show,
    audit,
    add,
    up,
    # the published index (cli/index.py)
    write,
    serve,
    # the farm (cli/targets.py, cli/builders.py, cli/builds.py, cli/distros.py)
    targets,
    builders,
    builder,
    builds,
    rebuild,
    skip,
    unskip,
    remove,
    import_command,
    distros,
    dependencies,
    # monitoring (cli/monitor.py)
    admins,
    farm,
    monitor,
    rootfs,
    # the schema (cli/database.py)
    db,
    # statistics (cli/stats.py)
    stats,
    logs,
):
    cli.add_command(_command)


#: What SQLite says when it cannot write its journal or shared-memory file: most often a full disk.
_DISK_TROUBLE = re.compile(r"disk I/O error|database or disk is full")


def main(argv: list[str] | None = None) -> Any:
    """Entry point: wheelfarm errors are printed plainly and exit with status 2."""
    try:
        return cli.main(args=argv, prog_name="wheelfarm", standalone_mode=False)
    except click.exceptions.Abort:
        err.print("aborted")
        sys.exit(130)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except WheelfarmError as error:
        err.print(f"error: {error}", style="red", markup=False, highlight=False)
        sys.exit(2)
    except DBAPIError as error:  # unreachable database, wrong credentials, damaged schema
        message = redact_url(f"database error: {error.orig}")
        if _DISK_TROUBLE.search(str(error.orig)):
            message += (
                " (is the disk under the database full? SQLite needs free space even to open "
                "a database; free some and start again)"
            )
        err.print(message, style="red", markup=False, highlight=False)
        sys.exit(2)
