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
- **An isolation strategy** (:mod:`wheelfarm.builder.isolation`), chosen once: bubblewrap when
  it works here (:func:`bwrap_available`): the system's programs and libraries, a few files of
  ``/etc`` and the interpreter's prefix read-only, only the build directory writable, nothing
  else of the machine visible, fresh ``/dev``, ``/proc`` and PID namespace, killed with its
  parent. The network stays shared, since pip must reach the index. Without bwrap (which the
  builder allows only when the operator says so) the build runs unwrapped and the log opens
  with a line saying so (after the truncation notice, if any).
- **A bounded log**: output is read as it comes and only its tail, ``log_bytes`` at most, is
  kept (:mod:`wheelfarm.builder.build_log`), so a build that prints gigabytes cannot exhaust
  the builder's memory.

The wheels are left in ``<directory>/out``; the caller uploads them, then removes the whole
build directory with :func:`cleanup`.
"""

from __future__ import annotations

import contextlib
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

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from wheelfarm.builder.build_log import LogTail, Outcome, Verdict, judge
from wheelfarm.builder.isolation import Isolation, bwrap_available, choose_isolation
from wheelfarm.errors import ConfigError

__all__ = [
    "BuildLimits",
    "BuildRequest",
    "BuildResult",
    "Outcome",  # from build_log
    "bwrap_available",  # from isolation
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

# PEP 508 names: what a project name must look like before it goes on pip's command line
# (a name starting with "-" would be read as an option).
_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)
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


def run_build(
    request: BuildRequest,
    workdir: Path,
    limits: BuildLimits = BuildLimits(),
    cancelled: Callable[[], str | None] = lambda: None,
    isolation: Isolation | None = None,
) -> BuildResult:
    """Build ``request`` in a fresh directory under ``workdir`` and say how it went.

    ``cancelled`` is asked several times a second; when it returns a reason, the build's
    process group is killed and the outcome is ``CANCELLED`` with that reason.
    ``isolation`` wraps the build (:func:`~wheelfarm.builder.isolation.choose_isolation` when
    not given). A build that fails, times out or finds nothing to build is a result, not an
    exception.
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
    if isolation is None:
        isolation = choose_isolation()
    command = isolation.wrap(command, directory)
    command = _limited(command, limits, isolation)

    started = time.monotonic()
    environment = _environment(request, python, directory)
    tail = LogTail(limits.log_bytes)
    returncode, stopped = _run(command, environment, tail, limits, cancelled)
    duration = time.monotonic() - started

    # A symlink (as a wheel, or as out/ itself) could point at the builder's secrets: the
    # caller uploads these files, so only regular files count.
    wheels: tuple[Path, ...] = ()
    if not out.is_symlink():
        wheels = tuple(sorted(p for p in out.glob("*.whl") if p.is_file() and not p.is_symlink()))
    log = tail.value(isolation.notice)
    if stopped is _TIMED_OUT:
        verdict = Verdict(Outcome.TIMEOUT, f"timed out after {limits.timeout:g} s")
    elif stopped is not None:
        verdict = Verdict(Outcome.CANCELLED, stopped)
    else:
        verdict = judge(request.project, returncode, bool(wheels), tail.value())
    return BuildResult(
        outcome=verdict.outcome,
        wheels=wheels,
        log=log,
        duration=duration,
        reason=verdict.reason,
        directory=directory,
        sandboxed=isolation.confined,
    )


def _limited(command: list[str], limits: BuildLimits, isolation: Isolation) -> list[str]:
    """``command`` under the limits wrapper (as it is when there are no limits to set).

    An isolation may need more address space than the build itself (an emulator's own): it
    says how much with an optional ``address_space(memory_bytes)`` method.
    """
    memory = limits.memory_bytes
    address_space = getattr(isolation, "address_space", None)
    if memory is not None and address_space is not None:
        memory = address_space(memory)
    if memory is None and limits.file_bytes is None:
        return command
    return [
        sys.executable, "-I", "-S", "-c", _LIMITS_WRAPPER,
        str(-1 if memory is None else memory),
        str(-1 if limits.file_bytes is None else limits.file_bytes),
        *command,
    ]  # fmt: skip


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


_TIMED_OUT = "timed out"


def _run(
    command: list[str],
    environment: dict[str, str],
    tail: LogTail,
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


def _drain(output: int, selector: selectors.BaseSelector, tail: LogTail) -> None:
    """Read what the killed build still had in the pipe, until its end or a short grace."""
    deadline = time.monotonic() + _DRAIN_GRACE_S
    while (remaining := deadline - time.monotonic()) > 0:
        if selector.select(remaining):
            chunk = os.read(output, _READ_CHUNK)
            if not chunk:
                return
            tail.append(chunk)
