"""Building one release into wheels, with the build's untrusted code kept on a short leash.

A builder runs ``pip wheel NAME==VERSION --no-deps --no-binary NAME`` against the configured
index. Whatever ``setup.py`` or a build backend does runs with the builder's user, so
:func:`run_build` gives it as little as it can:

- **A scrubbed environment.** The build sees only ``PATH`` (a fixed system path after the
  interpreter's own directory), ``HOME`` and ``TMPDIR`` inside its fresh build directory,
  ``LANG=C.UTF-8``, ``PYTHONDONTWRITEBYTECODE=1``, ``PIP_CONFIG_FILE=os.devnull`` (pip then reads
  no configuration file at all, so the builder's ``pip.conf`` with its indexes or credentials
  cannot leak in), and the request's own ``environment``. Nothing of the parent's environment is
  passed on: never a ``WHEELFARM_*`` setting, never a token.
- **Resource limits.** ``RLIMIT_AS`` and ``RLIMIT_FSIZE`` (soft and hard, so the build cannot
  raise them again) are set by a tiny wrapper that then ``exec``s the build. The wrapper exists
  because ``preexec_fn`` may deadlock a child forked from a process with threads, and a builder
  has them (its lease heartbeat, say).
- **Its own process group** (``start_new_session``): on timeout the whole group is killed with
  ``SIGKILL``, and so is anything still left in it after pip exits.
- **bubblewrap when it works here** (:func:`bwrap_available`): the root file system read-only,
  only the build directory writable, fresh ``/dev``, ``/proc`` and PID namespace, killed with
  its parent. The network stays shared, since pip must reach the index. Without bwrap the build
  runs unwrapped and the log opens with a line saying so (after the truncation notice, if any).
- **A bounded log**: output is read as it comes and only its tail, ``log_bytes`` at most, is
  kept, so a build that prints gigabytes cannot exhaust the builder's memory.

The wheels are left in ``<directory>/out``; the caller uploads them, then removes the whole
build directory with :func:`cleanup`.
"""

from __future__ import annotations

import contextlib
import enum
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from wheelfarm.errors import ConfigError

__all__ = [
    "BuildLimits",
    "BuildRequest",
    "BuildResult",
    "Outcome",
    "bwrap_available",
    "cleanup",
    "run_build",
]

#: The system part of the build's ``PATH``; the interpreter's directory goes before it.
SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"

#: How long to wait for the build's output to end after its process group was killed. A
#: process that left the group (``setsid``) may hold the pipe open for ever; we stop reading.
_DRAIN_GRACE_S = 5.0
#: How often the reader looks whether pip has exited while its output is quiet.
_POLL_S = 0.1
_READ_CHUNK = 1 << 16
#: A reason is one line for a status page, not a log.
_REASON_CHARS = 300

# PEP 508 names: what a project name must look like before it goes on pip's command line
# (a name starting with "-" would be read as an option).
_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)
# pip's two ways of saying the index has no such release (yet). Both name the requirement,
# which tells a missing release apart from a missing *build dependency*: that one is
# reported the same way from the build-environment install, and is not transient.
_UNAVAILABLE = re.compile(
    rb"(?:No matching distribution found for|"
    rb"Could not find a version that satisfies the requirement) (?P<requirement>\S+)"
)

# Runs with the builder's own interpreter (-I -S: no environment, no site), sets the limits,
# then becomes the build. argv: AS FSIZE PROGRAM ARGS..., a limit of -1 meaning "leave it".
_LIMITS_WRAPPER = """\
import os, resource, sys
for which, value in ((resource.RLIMIT_AS, int(sys.argv[1])),
                     (resource.RLIMIT_FSIZE, int(sys.argv[2]))):
    if value >= 0:
        hard = resource.getrlimit(which)[1]
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, value))
os.execv(sys.argv[3], sys.argv[3:])
"""

_BWRAP_OPTIONS = (
    "--dev", "/dev",
    "--proc", "/proc",
    "--unshare-pid",
    "--die-with-parent",
    "--new-session",
)  # fmt: skip

_NO_BWRAP_NOTE = (
    b"[sandbox: bwrap is not installed or cannot create namespaces here; building without it]\n"
)


@dataclass(frozen=True)
class BuildLimits:
    """What one build may use. ``None`` leaves a resource limit as the builder has it.

    ``memory_bytes`` limits address space, not resident memory: a Python process maps far
    more than it touches, so keep it in gigabytes; a C++ compile of a large project needs a
    few.
    """

    timeout: float = 3 * 3600  # wall clock; the whole process group is killed
    memory_bytes: int | None = 4 << 30  # RLIMIT_AS
    file_bytes: int | None = 2 << 30  # RLIMIT_FSIZE: the largest file the build may write
    log_bytes: int = 1 << 20  # the log keeps its tail within this size

    def __post_init__(self) -> None:
        problems = []
        if not self.timeout > 0:
            problems.append(f"timeout must be positive, not {self.timeout!r}")
        for name in ("memory_bytes", "file_bytes"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                problems.append(f"{name} must be positive or None, not {value!r}")
        if self.log_bytes <= 0:
            problems.append(f"log_bytes must be positive, not {self.log_bytes!r}")
        if problems:
            raise ValueError("; ".join(problems))


@dataclass(frozen=True)
class BuildRequest:
    """One release to build: ``project==version`` from ``index_url``, with ``python``'s pip."""

    project: str
    version: str
    index_url: str
    pip_options: tuple[str, ...] = ()  # e.g. ("--no-build-isolation",) or extra indexes
    environment: Mapping[str, str] = field(default_factory=dict)  # extra variables for the build
    python: str = sys.executable  # the interpreter whose pip builds

    def __post_init__(self) -> None:
        problems = []
        if not _NAME.match(self.project):
            problems.append(f"project {self.project!r} is not a valid project name")
        try:
            Version(self.version)
        except InvalidVersion:
            problems.append(f"version {self.version!r} is not a PEP 440 version")
        if not self.index_url or self.index_url.startswith("-"):
            problems.append(f"index_url {self.index_url!r} is not a URL")
        problems += [
            f"environment variable name {key!r} is empty or holds '='"
            for key in self.environment
            if not key or "=" in key
        ]
        if problems:
            raise ValueError("; ".join(problems))


class Outcome(enum.Enum):
    BUILT = "built"
    FAILED = "failed"
    TIMEOUT = "timeout"
    #: "No matching distribution" for the release itself: right after a release the index
    #: (or its CDN) may not list the file yet, so this is transient and worth a retry.
    NOT_YET_AVAILABLE = "not_yet_available"
    #: Stopped on purpose (the master said skip or stop, or the builder is shutting down).
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class BuildResult:
    """What a build made and said. The wheels live in ``directory``: see :func:`cleanup`."""

    outcome: Outcome
    wheels: tuple[Path, ...]  # regular files in directory/out, sorted
    # pip's stdout+stderr, its tail within log_bytes: '[log truncated: N bytes dropped]' first
    # when cut, then the no-bwrap notice when unsandboxed (neither counts towards log_bytes)
    log: bytes
    duration: float  # seconds, wall clock
    reason: str | None  # a short human reason unless BUILT (e.g. the last error line)
    directory: Path  # the build directory, with home/, tmp/ and out/
    sandboxed: bool  # whether bwrap wrapped the build


def bwrap_available() -> bool:
    """Whether bubblewrap is installed and can make its namespaces here.

    Containers often forbid user namespaces, so being installed is not enough: the probe runs
    ``true`` with the same options a build gets.
    """
    return _usable_bwrap() is not None


def _usable_bwrap() -> str | None:
    """The absolute path of a bwrap that passed the probe, else ``None``."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return None
    bwrap = os.path.abspath(bwrap)
    try:
        probe = subprocess.run(
            [bwrap, "--ro-bind", "/", "/", *_BWRAP_OPTIONS, "true"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return bwrap if probe.returncode == 0 else None


def run_build(
    request: BuildRequest,
    workdir: Path,
    limits: BuildLimits = BuildLimits(),
    cancelled: Callable[[], str | None] = lambda: None,
) -> BuildResult:
    """Build ``request`` in a fresh directory under ``workdir`` and say how it went.

    ``cancelled`` is asked several times a second; when it returns a reason, the build's
    process group is killed and the outcome is ``CANCELLED`` with that reason.
    A build that fails, times out or finds nothing to build is a result, not an exception.
    Raises :class:`~wheelfarm.errors.ConfigError` when ``request.python`` cannot be found, and
    ``OSError`` when ``workdir`` cannot hold a build directory.
    """
    python = shutil.which(request.python)
    if python is None:
        raise ConfigError("python", request.python, "no such executable interpreter")
    python = os.path.abspath(python)

    prefix = f"build-{canonicalize_name(request.project)}-"
    directory = Path(tempfile.mkdtemp(prefix=prefix, dir=workdir)).resolve()
    out = directory / "out"
    for sub in ("home", "tmp", "out"):
        (directory / sub).mkdir()

    command = [
        python, "-m", "pip", "wheel", f"{request.project}=={request.version}",
        "--no-deps",
        "--no-binary", request.project,
        "--index-url", request.index_url,
        "--wheel-dir", str(out),
        "--no-cache-dir",
        "--disable-pip-version-check",
        "--no-input",
        "--progress-bar", "off",
        *request.pip_options,
    ]  # fmt: skip
    tail = _Tail(limits.log_bytes)
    preamble = b""
    bwrap = _usable_bwrap()
    if bwrap is not None:
        command = [
            bwrap, "--ro-bind", "/", "/", "--bind", str(directory), str(directory),
            *_BWRAP_OPTIONS, "--", *command,
        ]  # fmt: skip
    else:
        preamble = _NO_BWRAP_NOTE
    if limits.memory_bytes is not None or limits.file_bytes is not None:
        command = [
            sys.executable, "-I", "-S", "-c", _LIMITS_WRAPPER,
            str(-1 if limits.memory_bytes is None else limits.memory_bytes),
            str(-1 if limits.file_bytes is None else limits.file_bytes),
            *command,
        ]  # fmt: skip

    started = time.monotonic()
    environment = _environment(request, python, directory)
    returncode, stopped = _run(command, environment, tail, limits, cancelled)
    duration = time.monotonic() - started

    # A symlink (as a wheel, or as out/ itself) could point at the builder's secrets: the
    # caller uploads these files, so only regular files count.
    wheels: tuple[Path, ...] = ()
    if not out.is_symlink():
        wheels = tuple(sorted(p for p in out.glob("*.whl") if p.is_file() and not p.is_symlink()))
    log = tail.value(preamble)
    if stopped is _TIMED_OUT:
        verdict = _Verdict(Outcome.TIMEOUT, f"timed out after {limits.timeout:g} s")
    elif stopped is not None:
        verdict = _Verdict(Outcome.CANCELLED, stopped)
    else:
        verdict = _judge(request.project, returncode, bool(wheels), tail.value())
    return BuildResult(
        outcome=verdict.outcome,
        wheels=wheels,
        log=log,
        duration=duration,
        reason=verdict.reason,
        directory=directory,
        sandboxed=bwrap is not None,
    )


def cleanup(result: BuildResult) -> None:
    """Remove the build directory, wheels included: call it after uploading them.

    A build may leave directories without write permission; they are opened up first.
    """
    for root, dirs, _files in os.walk(result.directory):
        for name in dirs:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                os.chmod(path, 0o700)
    shutil.rmtree(result.directory)


def _environment(request: BuildRequest, python: str, directory: Path) -> dict[str, str]:
    """The build's whole environment; nothing is inherited (see the module docstring)."""
    return {
        "PATH": f"{os.path.dirname(python)}:{SAFE_PATH}",
        "HOME": str(directory / "home"),
        "TMPDIR": str(directory / "tmp"),
        "LANG": "C.UTF-8",
        "PIP_CONFIG_FILE": os.devnull,
        "PYTHONDONTWRITEBYTECODE": "1",
        **request.environment,
    }


class _Tail:
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


_TIMED_OUT = "timed out"


def _run(
    command: list[str],
    environment: dict[str, str],
    tail: _Tail,
    limits: BuildLimits,
    cancelled: Callable[[], str | None],
) -> tuple[int, str | None]:
    """Run the build to its end, its deadline or its cancellation.

    Returns the exit status and why the build was stopped: ``_TIMED_OUT``, the cancellation's
    reason, or ``None`` when it ran to its end.
    """
    deadline = time.monotonic() + limits.timeout
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=environment,
        start_new_session=True,
    )
    stdout = process.stdout
    if stdout is None:  # cannot happen (a pipe was asked for); narrows the type
        raise RuntimeError("subprocess.Popen gave no stdout pipe")
    output = stdout.fileno()
    stopped: str | None = None
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(output, selectors.EVENT_READ)
            open_ = True
            while not _has_exited(process.pid):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    stopped = _TIMED_OUT
                    break
                stopped = cancelled()
                if stopped is not None:
                    break
                if open_ and selector.select(min(remaining, _POLL_S)):
                    chunk = os.read(output, _READ_CHUNK)
                    open_ = bool(chunk)
                    tail.append(chunk)
                elif not open_:
                    time.sleep(min(remaining, _POLL_S))
            # pip (still a zombie, so its group id cannot be reused) has exited or is out of
            # time: nothing of the build may outlive this call.
            _kill_group(process.pid)
            if open_:
                _drain(output, selector, tail)
    finally:
        # Also on the way out of an exception (KeyboardInterrupt, say); pip is not reaped yet.
        _kill_group(process.pid)
        stdout.close()
        returncode = process.wait()
    return returncode, stopped


def _has_exited(pid: int) -> bool:
    """Whether the child has exited, without reaping it (``WNOWAIT``)."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # the group is already gone
        os.killpg(pgid, signal.SIGKILL)


def _drain(output: int, selector: selectors.BaseSelector, tail: _Tail) -> None:
    """Read what the killed build still had in the pipe, until its end or a short grace."""
    deadline = time.monotonic() + _DRAIN_GRACE_S
    while (remaining := deadline - time.monotonic()) > 0:
        if selector.select(remaining):
            chunk = os.read(output, _READ_CHUNK)
            if not chunk:
                return
            tail.append(chunk)


@dataclass(frozen=True)
class _Verdict:
    outcome: Outcome
    reason: str | None


def _judge(project: str, returncode: int, has_wheels: bool, log: bytes) -> _Verdict:
    """The outcome of a build that ended by itself, and the reason unless it built."""
    if returncode == 0 and has_wheels:
        return _Verdict(Outcome.BUILT, None)
    if returncode != 0:
        wanted = canonicalize_name(project)
        for match in _UNAVAILABLE.finditer(log):
            try:
                requirement = Requirement(match["requirement"].decode("utf-8", "replace"))
            except InvalidRequirement:
                continue
            if canonicalize_name(requirement.name) == wanted:
                return _Verdict(Outcome.NOT_YET_AVAILABLE, _line_around(log, match.start()))
        return _Verdict(Outcome.FAILED, _last_error_line(log) or _exit_description(returncode))
    return _Verdict(Outcome.FAILED, "pip succeeded but wrote no wheel")


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
    if returncode < 0:
        try:
            return f"pip was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"pip was killed by signal {-returncode}"
    return f"pip exited with status {returncode}"


def _short(line: bytes) -> str:
    text = line.decode("utf-8", "replace").strip()
    return text if len(text) <= _REASON_CHARS else text[: _REASON_CHARS - 1] + "…"
