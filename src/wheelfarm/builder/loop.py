"""The builder: ask the master for work, build it in a sandbox, upload the wheels, report.

It needs no inbound connection: every exchange is a request to the master, authenticated with
the builder's token. While a build runs, a heartbeat renews the job's lease and carries the
machine's health; a builder that goes silent loses its job to another. A release the index
does not serve yet (its pages lag the changelog) is retried here with backoff before the job is
handed back as "not yet available": the job returns to the queue (the attempt is recorded as
deferred), it does not fail.

Builds run confined (:mod:`wheelfarm.builder.isolation`); where bubblewrap cannot run, the
builder refuses to start unless the operator allowed unsandboxed builds. A build's log and
reason are scanned for the builder's token and every other secret it was given, which are
redacted before they leave the machine.

Each build may run as many compilers at once as the machine's free memory holds
(:mod:`wheelfarm.builder.resources`), and its log is framed with a header and footer saying
what was built where, when and how it ended, host paths replaced by placeholders
(:mod:`wheelfarm.builder.log_frame`).
"""

from __future__ import annotations

import hashlib
import logging
import platform
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as distribution_version
from pathlib import Path
from urllib.parse import quote

from wheelfarm import __version__
from wheelfarm.builder.build_tags import BuildTagError, retag_wheel
from wheelfarm.builder.client import MasterClient, MasterRefused
from wheelfarm.builder.emulated import prepare_root
from wheelfarm.builder.health import read_health
from wheelfarm.builder.isolation import Isolation, choose_isolation
from wheelfarm.builder.libraries import SystemLibraries
from wheelfarm.builder.log_frame import BuildContext, frame_log, replace_paths
from wheelfarm.builder.resources import measured_jobs, parallel_environment
from wheelfarm.builder.sandbox import (
    BuildLimits,
    BuildRequest,
    BuildResult,
    Outcome,
    cleanup,
    run_build,
)
from wheelfarm.builder.sysdeps import analyse_wheel, to_wire
from wheelfarm.errors import ConfigError, WheelfarmError
from wheelfarm.names import shown_text as _shown
from wheelfarm.protocol import (
    MAX_DURATION,
    MAX_LOG_CHARS,
    BuildReport,
    BuildStatus,
    Command,
    Heartbeat,
    Hello,
    Job,
)
from wheelfarm.targets import local_target

__all__ = [
    "REDACTED",
    "BuilderIdentity",
    "BuilderOptions",
    "build_job",
    "pip_version",
    "redact",
    "run_builder",
]

#: What a secret found in a build's log or reason is replaced with.
REDACTED = "[redacted]"
_REASON_CHARS = 2000  # BuildReport.reason's limit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuilderOptions:
    """How this builder builds."""

    workdir: Path
    label: str | None = None
    limits: BuildLimits = field(default_factory=BuildLimits)
    pip_options: tuple[str, ...] = ()
    environment: dict[str, str] = field(default_factory=dict)
    unavailable_retries: int = 3
    unavailable_wait: float = 60.0
    #: How builds are isolated; ``None``: the best that works here, probed when the builder
    #: starts (:func:`~wheelfarm.builder.isolation.choose_isolation`).
    isolation: Isolation | None = None
    #: Whether to build where no isolation confines the build (``allow_unsandboxed_builds``).
    allow_unsandboxed: bool = False
    #: Texts a build's log must never carry (besides the builder's token), e.g. a password.
    secrets: tuple[str, ...] = ()
    #: Build inside this root file system (``wheelfarm rootfs create``), under qemu emulation
    #: when its architecture is not the machine's: the target is its interpreter's, builds run
    #: chrooted in it, and wheels are analysed against its libraries. Needs root.
    rootfs: Path | None = None
    #: The interpreter whose pip builds (set from ``rootfs`` when it is given).
    python: str = sys.executable
    #: The libraries wheels are analysed against; ``None``: this machine's.
    libraries: SystemLibraries | None = None
    #: How many compilers a build may run at once; ``None``: measured before each build
    #: (:func:`~wheelfarm.builder.resources.measured_jobs`).
    parallel_jobs: int | None = None


@dataclass(frozen=True)
class BuilderIdentity:
    """What every build log's header says of the builder (see :mod:`.log_frame`)."""

    name: str = "?"
    target: str = "?"
    distro: str = "?"
    python: str = "?"
    pip: str = "?"


def pip_version(python: str) -> str:
    """The version of ``python``'s pip (for the log's header), or ``"unknown"`` when it
    cannot be asked."""
    if python == sys.executable:
        try:
            return distribution_version("pip")
        except PackageNotFoundError:
            return "unknown"
    try:
        found = subprocess.run(
            [python, "-I", "-m", "pip", "--version"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={"PATH": "/usr/bin:/bin"},
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    words = found.stdout.split()
    return words[1] if found.returncode == 0 and len(words) > 1 else "unknown"


def _distro() -> str:
    """This machine's distribution as /etc/os-release names it, else the platform's words."""
    try:
        return platform.freedesktop_os_release().get("PRETTY_NAME") or platform.platform()
    except OSError:
        return platform.platform()


def redact(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every secret (and its common encodings) replaced by :data:`REDACTED`."""
    for secret in sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True):
        for form in {secret, quote(secret, safe=""), secret.encode().hex()}:
            text = text.replace(form, REDACTED)
    return text


def _confined(options: BuilderOptions) -> Isolation:
    """The isolation to build with; refuses none unless the operator allowed it."""
    isolation = options.isolation or choose_isolation()
    if not isolation.confined and not options.allow_unsandboxed:
        raise ConfigError(
            "allow_unsandboxed_builds",
            False,
            f"builds would run unconfined here (isolation: {isolation.name}; bubblewrap is not "
            "installed or cannot make namespaces), where a build can read everything this "
            "user can; install bubblewrap, or set WHEELFARM_ALLOW_UNSANDBOXED_BUILDS=1 to "
            "build anyway",
        )
    return isolation


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class Orders:
    """What the master (by heartbeat) and this process asked of the build under way.

    The heartbeat thread writes, the build loop reads: a plain attribute and an event suffice.
    """

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.command: Command = "continue"

    def cancelled(self) -> str | None:
        """Why the build under way must end now, or ``None`` to go on."""
        if self.command == "skip":
            return "skipped on the master's command"
        if self.command == "stop":
            return "stopped on the master's command"
        if self.stop.is_set():
            return "the builder is shutting down"
        return None


def _heartbeats(
    client: MasterClient, build_id: int, every: float, workdir: Path, orders: Orders
) -> tuple[threading.Thread, threading.Event]:
    """Renew the lease while the build runs and take the master's commands; errors are logged."""
    done = threading.Event()

    def beat() -> None:
        while not done.wait(every):
            try:
                reply = client.heartbeat(build_id, Heartbeat(health=read_health(workdir)))
            except WheelfarmError as error:
                log.warning("heartbeat for build %d failed: %s", build_id, error)
                continue
            if reply.command != orders.command:
                log.warning("the master says: %s", reply.command)
                orders.command = reply.command
            if reply.command == "stop":
                orders.stop.set()

    thread = threading.Thread(target=beat, name=f"heartbeat-{build_id}", daemon=True)
    thread.start()
    return thread, done


def build_job(
    job: Job,
    options: BuilderOptions,
    sleep: Callable[[float], object] = time.sleep,
    cancelled: Callable[[], str | None] = lambda: None,
) -> BuildResult:
    """Build one job, retrying a release the index does not serve yet (unless cancelled).

    Raises :class:`~wheelfarm.errors.ConfigError` when builds would run unconfined and the
    options do not allow that.
    """
    options = replace(options, isolation=_confined(options))
    request = BuildRequest(
        project=job.project,
        version=job.version,
        index_url=job.index_url,
        pip_options=options.pip_options,
        environment=build_environment(options),
        python=options.python,
    )
    options.workdir.mkdir(parents=True, exist_ok=True)
    result = run_build(request, options.workdir, options.limits, cancelled, options.isolation)
    for attempt in range(1, options.unavailable_retries + 1):
        if result.outcome is not Outcome.NOT_YET_AVAILABLE or cancelled() is not None:
            break
        cleanup(result)
        log.info("%s %s is not on the index yet; retry %d", job.project, job.version, attempt)
        sleep(options.unavailable_wait * attempt)
        result = run_build(request, options.workdir, options.limits, cancelled, options.isolation)
    return result


def build_environment(options: BuilderOptions) -> dict[str, str]:
    """The variables a build gets beyond the sandbox's own: the parallel jobs allowed now
    (:mod:`wheelfarm.builder.resources`), then the operator's ``environment``, which wins."""
    jobs = options.parallel_jobs if options.parallel_jobs is not None else measured_jobs()
    return {**parallel_environment(jobs), **options.environment}


_REPORTED: dict[Outcome, BuildStatus] = {
    Outcome.BUILT: "built",
    Outcome.FAILED: "failed",
    Outcome.TIMEOUT: "failed",
    Outcome.NOT_YET_AVAILABLE: "not-yet-available",
    Outcome.CANCELLED: "cancelled",
}


def handle_job(
    client: MasterClient,
    job: Job,
    options: BuilderOptions,
    heartbeat: float,
    stop: threading.Event | None = None,
    identity: BuilderIdentity = BuilderIdentity(),
) -> BuildStatus:
    """Build, upload, report one job; returns the status reported.

    Setting ``stop`` (or a ``skip`` or ``stop`` from the master) ends the build under way and
    reports it ``cancelled``, so the master can hand the job out again at once.
    """
    orders = Orders(stop or threading.Event())
    # Measured once per job, so that the header shows what the build got.
    options = replace(options, parallel_jobs=options.parallel_jobs or measured_jobs())
    beating, done = _heartbeats(client, job.build_id, heartbeat, options.workdir, orders)
    try:
        result = build_job(job, options, sleep=orders.stop.wait, cancelled=orders.cancelled)
    finally:
        done.set()
        beating.join()
    started = time.time() - result.duration  # of the last attempt, when the index lagged
    status, reason = _REPORTED[result.outcome], result.reason
    try:
        if result.outcome is Outcome.BUILT:
            for built in result.wheels:
                wheel = retag_wheel(built, job.build_number)  # a rebuild's wheels: new names
                # Cheap next to the build, and it never raises: problems are recorded in it.
                dependencies = to_wire(analyse_wheel(wheel, options.libraries))
                client.upload(job.build_id, wheel, _sha256(wheel), dependencies)
    except MasterRefused as error:
        status, reason = "failed", f"upload refused: {error.detail}"
    except BuildTagError as error:
        status, reason = "failed", f"could not give the wheel build tag {job.build_number}: {error}"
    finally:
        cleanup(result)
    secrets = (client.token, *options.secrets)
    paths = _host_paths(options, result.directory)
    duration = min(result.duration, MAX_DURATION)
    reason = None if reason is None else replace_paths(reason, paths)
    context = _context(job, options, identity)
    output = replace_paths(result.log.decode("utf-8", "replace"), paths)
    # The frame is a few hundred characters: the output gives way, never the header.
    output = output[-(MAX_LOG_CHARS - 8192) :]
    # the sandbox's word (timeout, say) unless the upload made a built job fail
    outcome = result.outcome.value if status == _REPORTED[result.outcome] else status
    log_text = frame_log(context, output, started, duration, outcome, reason)
    log_text = redact(log_text, secrets)
    reason = None if reason is None else _shown(redact(reason, secrets))[:_REASON_CHARS]
    report = BuildReport(
        status=status,
        reason=reason,
        duration=duration,
        log=log_text[-MAX_LOG_CHARS:],
    )
    client.report(job.build_id, report)
    return status


def _context(job: Job, options: BuilderOptions, identity: BuilderIdentity) -> BuildContext:
    parallel = build_environment(options)
    return BuildContext(
        project=job.project,
        version=job.version,
        target=job.target,
        builder=identity.name,
        distro=identity.distro,
        python=identity.python,
        pip=identity.pip,
        isolation=options.isolation.name if options.isolation is not None else "?",
        parallel={key: parallel[key] for key in parallel_environment(1) if key in parallel},
    )


def _host_paths(options: BuilderOptions, directory: Path) -> dict[str, Path | str | None]:
    """Placeholder -> host path, for :func:`~wheelfarm.builder.log_frame.replace_paths`."""
    own = options.python == sys.executable
    environment = Path(sys.prefix) if own else Path(options.python).parent.parent
    return {
        "<build>": directory,
        "<work>": options.workdir.resolve(),
        # a virtual environment's directory; never a system prefix such as /usr
        "<env>": environment if (environment / "pyvenv.cfg").is_file() else None,
        # the interpreter's own installation (a pyenv version, say), unless it is the system's
        "<python>": sys.base_prefix if own and sys.base_prefix not in _SYSTEM_PREFIXES else None,
        "<home>": Path.home(),
    }


_SYSTEM_PREFIXES = ("/usr", "/usr/local", "/")


def run_builder(
    client: MasterClient,
    options: BuilderOptions,
    stop: threading.Event,
    *,
    jobs: int | None = None,
) -> int:
    """Claim and build until ``stop`` is set (or ``jobs`` jobs were handled); returns the count."""
    if options.rootfs is not None:
        prepared = prepare_root(options.rootfs)  # refuses first, before anything is made
        options = replace(
            options,
            isolation=options.isolation or prepared.isolation,
            python=prepared.isolation.python,
            libraries=options.libraries or prepared.libraries,
        )
        target, python, system = prepared.target, prepared.python_version, prepared.os
        distro, pip = prepared.os, prepared.pip_version
    else:
        target, python, system = local_target(), platform.python_version(), platform.platform()
        distro, pip = _distro(), pip_version(options.python)
    isolation = _confined(options)
    options = replace(options, isolation=isolation)
    options.workdir.mkdir(parents=True, exist_ok=True)
    reply = client.hello(
        Hello(
            target=target.name,
            platforms=list(target.platforms),
            python=python,
            os=system,
            label=options.label,
        )
    )
    log.info(
        "builder %s ready for %s (wheelfarm %s, isolation: %s)",
        reply.builder,
        target.name,
        __version__,
        isolation.name,
    )
    identity = BuilderIdentity(
        name=reply.builder,
        target=target.name,
        distro=distro,
        python=python,
        pip=pip,  # a root's, from its probe (its interpreter runs only inside the root)
    )
    handled = 0
    paused = False
    while not stop.is_set() and (jobs is None or handled < jobs):
        try:
            claim = client.claim(Heartbeat(health=read_health(options.workdir)))
            if claim.command == "stop":
                log.warning("the master says: stop")
                break
            if (claim.command == "pause") != paused:
                paused = claim.command == "pause"
                log.warning("the master says: %s", "pause" if paused else "resume")
            if claim.job is None:
                stop.wait(claim.retry_after)
                continue
            job = claim.job
            log.info("building %s %s for %s", job.project, job.version, job.target)
            status = handle_job(client, job, options, reply.heartbeat_seconds, stop, identity)
            log.info("%s %s: %s", job.project, job.version, status)
            handled += 1
        except MasterRefused as error:
            if error.status == 401:
                raise  # revoked: nothing this builder can do will change that
            log.error("%s; going on", error)  # e.g. the lease ran out: the job went elsewhere
        except WheelfarmError as error:  # the master unreachable past every retry
            log.error("%s; trying again in %.0f s", error, reply.heartbeat_seconds)
            stop.wait(reply.heartbeat_seconds)
    return handled
