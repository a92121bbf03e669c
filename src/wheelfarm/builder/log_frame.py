"""The header and footer a build's log is framed with, and the host paths taken out of it.

pip's output alone does not say what was built where: a log read weeks later, or one cut off,
must carry its own context. The builder wraps the output in a header (project, version, target,
builder, distro, Python and pip versions, the parallel jobs it allowed, the isolation, the start)
and a footer (the end, the duration, the outcome and the builder's reason); both are
``key: value`` lines between marker lines, so the master's triage
(:mod:`wheelfarm.farm.triage`) can tell them from the output.

Host paths say things about the builder machine (user names, where its interpreters live) and
make logs of one build differ from builder to builder: the build directory, the builder's work
directory, the interpreter's environment and prefixes and the home directory are replaced by
placeholders (:data:`PLACEHOLDERS`). A value of the header is a single line, control
characters shown as U+FFFD, whatever a builder's ``/etc/os-release`` or its label says.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from wheelfarm.log_markers import LOG_END_MARKER, LOG_HEADER_MARKER, LOG_OUTPUT_MARKER
from wheelfarm.names import shown_text

__all__ = [
    "END_MARKER",
    "HEADER_MARKER",
    "OUTPUT_MARKER",
    "PLACEHOLDERS",
    "BuildContext",
    "footer",
    "frame_log",
    "header",
    "replace_paths",
]

#: The line the header opens with, the one between header and output, and the footer's first.
HEADER_MARKER = LOG_HEADER_MARKER
OUTPUT_MARKER = LOG_OUTPUT_MARKER
END_MARKER = LOG_END_MARKER

#: What each host path is shown as, in the order they are looked for (the most specific
#: first: the build directory lies in the work directory, which may lie in the home).
PLACEHOLDERS = ("<build>", "<work>", "<env>", "<python>", "<home>")

_VALUE_CHARS = 300  # a header value is one line of a page, not a log


@dataclass(frozen=True)
class BuildContext:
    """What the header says about a build; every text is one shown line of at most 300 chars."""

    project: str
    version: str
    target: str
    builder: str
    distro: str
    python: str
    pip: str
    isolation: str
    parallel: Mapping[str, str] = field(default_factory=dict)  # MAKEFLAGS and its kin


def _value(text: object) -> str:
    line = shown_text(" ".join(str(text).split()))
    return line if len(line) <= _VALUE_CHARS else line[: _VALUE_CHARS - 1] + "…"


def _utc(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


def _lines(pairs: Sequence[tuple[str, object]]) -> str:
    return "".join(f"{key}: {_value(value)}\n" for key, value in pairs)


def header(context: BuildContext, started: float) -> str:
    """The lines before pip's output (``started``: the wall-clock time the build began)."""
    parallel = " ".join(f"{k}={v}" for k, v in sorted(context.parallel.items())) or "not set"
    pairs: list[tuple[str, object]] = [
        ("project", context.project),
        ("version", context.version),
        ("target", context.target),
        ("builder", context.builder),
        ("distro", context.distro),
        ("python", context.python),
        ("pip", context.pip),
        ("isolation", context.isolation),
        ("parallel", parallel),
        ("started", _utc(started)),
    ]
    return f"{HEADER_MARKER}\n{_lines(pairs)}{OUTPUT_MARKER}\n"


def footer(started: float, duration: float, outcome: str, reason: str | None) -> str:
    """The lines after pip's output: when and how the build ended."""
    pairs: list[tuple[str, object]] = [
        ("ended", _utc(started + duration)),
        ("duration", f"{duration:.1f} s"),
        ("outcome", outcome),
    ]
    if reason:
        pairs.append(("reason", reason))
    return f"{END_MARKER}\n{_lines(pairs)}"


def replace_paths(text: str, paths: Mapping[str, Path | str | None]) -> str:
    """``text`` with each of ``paths`` (placeholder -> host path) shown as its placeholder.

    A path is replaced only as a whole path or a path's leading part (``/root`` in
    ``/root/x``, never in ``/rootfs``); the root directory and relative paths are left alone.
    Longer paths go first, so a path inside another gets its own placeholder.
    """
    found = {
        str(path).rstrip("/"): placeholder
        for placeholder, path in paths.items()
        if path is not None and str(path).startswith("/") and str(path).rstrip("/")
    }
    if not found:
        return text
    pattern = re.compile(
        "|".join(rf"{re.escape(path)}(?![\w.-])" for path in sorted(found, key=len, reverse=True))
    )
    return pattern.sub(lambda match: found[match.group(0)], text)


def frame_log(context: BuildContext, output: str, started: float, duration: float,
              outcome: str, reason: str | None) -> str:  # fmt: skip
    """Header, output (ending in a newline) and footer: the whole log a builder reports."""
    if output and not output.endswith("\n"):
        output += "\n"
    return header(context, started) + output + footer(started, duration, outcome, reason)
