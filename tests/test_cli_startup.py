"""Short commands start without the heavy libraries only other commands need.

``wheelfarm --help`` and ``targets list`` once took 1-3 s, most of it importing FastAPI,
httpx, Textual and friends for commands that were not run. Which modules a command loads is a
behaviour, checked here in a fresh process; the seconds are in benchmarks/cli_startup.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from wheelfarm.cli.main import cli

# Loaded only by the commands that need them: the web stack (serve, up, the builder API),
# the upstream client (sync, follow), the terminal monitor, plots, the builder's analysis.
HEAVY = [
    "fastapi",
    "uvicorn",
    "starlette",
    "httpx",
    "textual",
    "matplotlib",
    "pydantic",
    "elftools",
]

_REPORT = """
import json, sys
from wheelfarm.cli.main import main
try:
    main(sys.argv[2:])
except SystemExit:
    pass
with open(sys.argv[1], "w") as report:
    json.dump(sorted(sys.modules), report)
"""


def loaded_by(tmp_path: Path, *args: str) -> set[str]:
    """The top-level packages in ``sys.modules`` after ``wheelfarm ARGS`` in a fresh process."""
    return {name.partition(".")[0] for name in modules_loaded_by(tmp_path, *args)}


def modules_loaded_by(tmp_path: Path, *args: str) -> set[str]:
    """Every module in ``sys.modules`` after ``wheelfarm ARGS`` in a fresh process."""
    report = tmp_path / "modules.json"
    env = {**os.environ, "WHEELFARM_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run(
        [sys.executable, "-c", _REPORT, str(report), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert report.exists(), done.stderr
    return set(json.loads(report.read_text()))


@pytest.mark.parametrize(
    ("args", "not_loaded"),
    [
        (["--help"], [*HEAVY, "sqlalchemy", "alembic", "rich"]),  # only click and the table
        (["builds", "--help"], [*HEAVY, "alembic"]),
        (["targets", "list"], [*HEAVY, "alembic"]),  # the store at its newest schema
        (["builds"], [*HEAVY, "alembic"]),
    ],
)
def test_short_commands_leave_heavy_libraries_unloaded(
    tmp_path: Path, args: list[str], not_loaded: list[str]
) -> None:
    made = loaded_by(tmp_path, "targets", "add", "cp311-cp311-linux_armv7l")
    assert "alembic" in made  # the first command made the store (and this check can fail)
    loaded = loaded_by(tmp_path, *args)
    assert "click" in loaded
    assert sorted(loaded & set(not_loaded)) == []


@pytest.mark.parametrize(
    ("args", "status", "said"),
    [
        (["targets", "list"], 0, "cp311-cp311-linux_armv7l"),  # pip is never asked
        (["builds"], 0, "0 builds"),
        (["sync"], 2, "must be an http:// or https:// URL"),  # pip is asked, its answer refused
    ],
)
def test_pip_is_asked_for_the_upstream_only_by_commands_that_need_it(
    tmp_path: Path, args: list[str], status: int, said: str
) -> None:
    """Asking pip costs a subprocess; a pip whose index is a file:// URL shows who asks."""
    env = {
        **os.environ,
        "WHEELFARM_DATA_DIR": str(tmp_path / "data"),
        "PIP_INDEX_URL": (tmp_path / "wheels").as_uri(),
    }
    run = [sys.executable, "-m", "wheelfarm"]
    subprocess.run([*run, "targets", "add", "cp311-cp311-linux_armv7l"], env=env, check=True)
    done = subprocess.run(
        [*run, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert (done.returncode, said in done.stdout + done.stderr) == (status, True), done


# Smaller than a library, still milliseconds each of a listing's start (benchmarks/cli_startup.py):
# the triage rules (compiled at import), rich's progress bar and tables.
LISTING_SPARES = ["wheelfarm.farm.triage", "rich.progress", "rich.table"]


@pytest.mark.parametrize(
    ("args", "not_loaded"),
    [
        (["targets", "list"], LISTING_SPARES),
        (["builds"], LISTING_SPARES[1:]),  # it names the triage categories
        (["stats"], LISTING_SPARES),
    ],
)
def test_listings_leave_what_they_do_not_print_unloaded(
    tmp_path: Path, args: list[str], not_loaded: list[str]
) -> None:
    loaded_by(tmp_path, "targets", "add", "cp311-cp311-linux_armv7l")
    loaded = modules_loaded_by(tmp_path, *args)
    assert "rich.console" in loaded  # they print (and this check can fail)
    assert sorted(loaded & set(not_loaded)) == []


def test_the_commands_that_need_them_still_load_them(tmp_path: Path) -> None:
    assert {"fastapi", "uvicorn"} <= loaded_by(tmp_path, "serve", "--help")
    assert "httpx" in loaded_by(tmp_path, "sync", "--help")


@pytest.mark.parametrize("limit", [30, 45, 62, 80, 400])
def test_help_lists_each_command_as_its_own_help_would(limit: int) -> None:
    """The summaries in main.py's table say what each command's docstring says."""
    ctx = click.Context(cli)
    for name in cli.list_commands(ctx):
        lazy = cli.lazy[name]
        command = lazy.load()
        assert lazy.short_help(limit) == command.get_short_help_str(limit), name


def test_every_command_is_in_the_table_and_loads() -> None:
    ctx = click.Context(cli)
    names = cli.list_commands(ctx)
    assert {"sync", "up", "builds", "targets", "serve", "monitor", "import"} <= set(names)
    for name in names:
        assert cli.get_command(ctx, name) is not None
