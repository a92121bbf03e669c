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
"""

from __future__ import annotations

import hashlib
import logging
import platform
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import quote

from wheelfarm import __version__
from wheelfarm.builder.build_tags import BuildTagError, retag_wheel
from wheelfarm.builder.client import MasterClient, MasterRefused
from wheelfarm.builder.emulated import prepare_root
from wheelfarm.builder.health import read_health
from wheelfarm.builder.isolation import Isolation, choose_isolation
from wheelfarm.builder.libraries import SystemLibraries
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

__all__ = ["REDACTED", "BuilderOptions", "build_job", "redact", "run_builder"]

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
        environment=options.environment,
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
) -> BuildStatus:
    """Build, upload, report one job; returns the status reported.

    Setting ``stop`` (or a ``skip`` or ``stop`` from the master) ends the build under way and
    reports it ``cancelled``, so the master can hand the job out again at once.
    """
    orders = Orders(stop or threading.Event())
    beating, done = _heartbeats(client, job.build_id, heartbeat, options.workdir, orders)
    try:
        result = build_job(job, options, sleep=orders.stop.wait, cancelled=orders.cancelled)
    finally:
        done.set()
        beating.join()
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
    log_text = redact(result.log.decode("utf-8", "replace"), secrets)
    reason = None if reason is None else _shown(redact(reason, secrets))[:_REASON_CHARS]
    report = BuildReport(
        status=status,
        reason=reason,
        duration=min(result.duration, MAX_DURATION),
        log=log_text[-MAX_LOG_CHARS:],
    )
    client.report(job.build_id, report)
    return status


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
    else:
        target, python, system = local_target(), platform.python_version(), platform.platform()
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
            status = handle_job(client, job, options, reply.heartbeat_seconds, stop)
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
