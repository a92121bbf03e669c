"""A build's output and what it means: the bounded log tail and the verdict read from it.

The builder keeps only the tail of a build's output (:class:`LogTail`), so a build that prints
gigabytes cannot exhaust its memory; a build that ended by itself is judged from its exit status,
its wheels and that tail (:func:`judge`), with a one-line reason for a status page. A build whose
pip was killed by a signal (the kernel's out-of-memory killer sends SIGKILL) says so as its
reason, since the log then just stops at whatever pip was doing.
"""

from __future__ import annotations

import enum
import re
import signal
from dataclasses import dataclass

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

__all__ = ["LogTail", "Outcome", "Verdict", "judge", "killed_by"]

#: A reason is one line for a status page, not a log.
_REASON_CHARS = 300

# pip's two ways of saying the index has no such release (yet). Both name the requirement,
# which tells a missing release apart from a missing *build dependency*: that one is
# reported the same way from the build-environment install, and is not transient.
_UNAVAILABLE = re.compile(
    rb"(?:No matching distribution found for|"
    rb"Could not find a version that satisfies the requirement) (?P<requirement>\S+)"
)


class Outcome(enum.Enum):
    BUILT = "built"
    FAILED = "failed"
    TIMEOUT = "timeout"
    #: "No matching distribution" for the release itself: right after a release the index
    #: (or its CDN) may not list the file yet, so this is transient and worth a retry.
    NOT_YET_AVAILABLE = "not_yet_available"
    #: Stopped on purpose (the master said skip or stop, or the builder is shutting down).
    CANCELLED = "cancelled"


class LogTail:
    """The last ``limit`` bytes of a stream, and how many bytes came before them."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.dropped = 0
        self._buffer = bytearray()

    def append(self, chunk: bytes) -> None:
        self._buffer += chunk
        excess = len(self._buffer) - self.limit
        if excess > 0:
            del self._buffer[:excess]
            self.dropped += excess

    def value(self, preamble: bytes = b"") -> bytes:
        """``preamble`` then the tail; when cut, from its next whole line on, after a first
        line saying how much was dropped."""
        if not self.dropped:
            return preamble + self._buffer
        newline = self._buffer.find(b"\n")
        start = newline + 1 if 0 <= newline < len(self._buffer) - 1 else 0
        header = f"[log truncated: {self.dropped + start} bytes dropped]\n".encode()
        return header + preamble + self._buffer[start:]


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reason: str | None


def judge(project: str, returncode: int, has_wheels: bool, log: bytes) -> Verdict:
    """The outcome of a build that ended by itself, and the reason unless it built."""
    if returncode == 0 and has_wheels:
        return Verdict(Outcome.BUILT, None)
    if returncode != 0:
        wanted = canonicalize_name(project)
        for match in _UNAVAILABLE.finditer(log):
            try:
                requirement = Requirement(match["requirement"].decode("utf-8", "replace"))
            except InvalidRequirement:
                continue
            if canonicalize_name(requirement.name) == wanted:
                return Verdict(Outcome.NOT_YET_AVAILABLE, _line_around(log, match.start()))
        if killed_by(returncode) is not None:  # the kill is the cause, not pip's last line
            return Verdict(Outcome.FAILED, _exit_description(returncode))
        return Verdict(Outcome.FAILED, _last_error_line(log) or _exit_description(returncode))
    return Verdict(Outcome.FAILED, "pip succeeded but wrote no wheel")


def killed_by(returncode: int) -> signal.Signals | None:
    """The signal that ended pip, from its exit status: negative when pip ran unwrapped, 128
    plus the signal's number through bubblewrap (which passes a child's death on as a shell
    does). pip's own exit statuses are small (0 to 3, 23), so 129 and up are a signal's."""
    number = -returncode if returncode < 0 else returncode - 128 if returncode > 128 else 0
    try:
        return signal.Signals(number) if number else None
    except ValueError:
        return None


def _line_around(log: bytes, position: int) -> str:
    start = log.rfind(b"\n", 0, position) + 1
    end = log.find(b"\n", position)
    return _short(log[start : end if end >= 0 else len(log)])


def _last_error_line(log: bytes) -> str | None:
    """The last non-empty line mentioning "error", else the last non-empty line."""
    lines = [line.strip() for line in log.splitlines()]
    lines = [line for line in lines if line]
    for line in reversed(lines):
        if b"error" in line.lower():
            return _short(line)
    return _short(lines[-1]) if lines else None


def _exit_description(returncode: int) -> str:
    killer = killed_by(returncode)
    if killer is not None:
        return f"pip was killed by {killer.name}"
    if returncode < 0:
        return f"pip was killed by signal {-returncode}"
    return f"pip exited with status {returncode}"


def _short(line: bytes) -> str:
    text = line.decode("utf-8", "replace").strip()
    return text if len(text) <= _REASON_CHARS else text[: _REASON_CHARS - 1] + "…"
