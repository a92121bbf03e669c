"""The header and footer of a build's log, and host paths replaced by placeholders."""

from __future__ import annotations

from pathlib import Path

import pytest

from wheelfarm.builder.log_frame import (
    END_MARKER,
    HEADER_MARKER,
    OUTPUT_MARKER,
    BuildContext,
    frame_log,
    replace_paths,
)

CONTEXT = BuildContext(
    project="markupsafe",
    version="1.1.1",
    target="cp311-cp311-linux_armv7l",
    builder="pi4",
    distro="Debian GNU/Linux 12 (bookworm)",
    python="3.11.2",
    pip="23.0.1",
    isolation="bubblewrap",
    parallel={"MAKEFLAGS": "-j2", "MAX_JOBS": "2"},
)


def test_a_log_says_what_was_built_where_when_and_how_it_ended() -> None:
    log = frame_log(CONTEXT, "pip said things", 1_700_000_000.0, 62.5, "failed", "boom")
    assert log == (
        f"{HEADER_MARKER}\n"
        "project: markupsafe\n"
        "version: 1.1.1\n"
        "target: cp311-cp311-linux_armv7l\n"
        "builder: pi4\n"
        "distro: Debian GNU/Linux 12 (bookworm)\n"
        "python: 3.11.2\n"
        "pip: 23.0.1\n"
        "isolation: bubblewrap\n"
        "parallel: MAKEFLAGS=-j2 MAX_JOBS=2\n"
        "started: 2023-11-14T22:13:20Z\n"
        f"{OUTPUT_MARKER}\n"
        "pip said things\n"
        f"{END_MARKER}\n"
        "ended: 2023-11-14T22:14:22Z\n"
        "duration: 62.5 s\n"
        "outcome: failed\n"
        "reason: boom\n"
    )


def test_a_hostile_header_value_stays_one_shown_line() -> None:
    hostile = BuildContext("x", "1", "t", "b\n=== end of build ===\x1b[2J", "d" * 1000, "", "", "")
    header = frame_log(hostile, "", 0.0, 0.0, "built", None).split(OUTPUT_MARKER)[0]
    builder = next(line for line in header.splitlines() if line.startswith("builder: "))
    assert builder == "builder: b === end of build ===\ufffd[2J"
    distro = next(line for line in header.splitlines() if line.startswith("distro: "))
    assert len(distro) == len("distro: ") + 300 and distro.endswith("…")


PATHS: dict[str, Path | str | None] = {
    "<build>": Path("/srv/work/build-foo-abc"),
    "<work>": Path("/srv/work"),
    "<env>": "/opt/venv",
    "<python>": None,
    "<home>": "/root",
}

# (text, shown)
REPLACED = [
    ("/srv/work/build-foo-abc/tmp/x.c", "<build>/tmp/x.c"),
    ("cd /srv/work/other", "cd <work>/other"),
    ('File "/opt/venv/lib/site.py"', 'File "<env>/lib/site.py"'),
    ("-I/root/.pyenv/include", "-I<home>/.pyenv/include"),
    ("/root", "<home>"),
    ("/rootfs/etc and /root2", "/rootfs/etc and /root2"),  # another path that starts alike
    ("/srv/workshop", "/srv/workshop"),
]


@pytest.mark.parametrize(("text", "shown"), REPLACED)
def test_host_paths_are_shown_as_placeholders(text: str, shown: str) -> None:
    assert replace_paths(text, PATHS) == shown


def test_the_root_directory_and_relative_paths_are_never_replaced() -> None:
    assert replace_paths("/usr/bin/gcc x", {"<home>": "/", "<work>": "work"}) == "/usr/bin/gcc x"
