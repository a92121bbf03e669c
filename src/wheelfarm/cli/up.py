"""``wheelfarm up``: everything on this machine, wired by :func:`wheelfarm.app.start_up`."""

from __future__ import annotations

import faulthandler
import logging
import time

import click

from wheelfarm.app.up import start_up
from wheelfarm.cli.console import err, out, settings_of, until_stopped
from wheelfarm.cli.follow import keep_following
from wheelfarm.errors import redact_url
from wheelfarm.words import plural

__all__ = ["farewell", "up"]


def _say(message: str) -> None:
    """What ``up`` tells its operator as it runs (a full disk, an emulated builder's progress):
    one line on standard error, with the time."""
    err.print(f"{time.strftime('%H:%M:%S')} {message}", markup=False, highlight=False)


@click.command()
@click.pass_context
def up(ctx: click.Context) -> None:
    """Run everything on this machine: follower, builder API, a local builder and the index.

    The local builder builds for this machine's interpreter; its target is added and its token
    made afresh at each start. With the ``emulate`` setting (e.g. ``WHEELFARM_EMULATE=arm64``),
    one more builder per architecture builds under qemu emulation in a root file system made on
    first use, in the background; where this machine cannot, one line says why. The index and
    the builder API share one port. Stop with Ctrl-C (or SIGTERM).
    """
    settings = settings_of(ctx)
    faulthandler.enable()  # a crash in C code prints every thread's Python stack, not just "-11"
    logging.getLogger("wheelfarm.builder.loop").setLevel(logging.INFO)  # show builds as they go
    running = start_up(settings, say=_say)
    following = ", ".join(settings.projects) if settings.projects else "the whole changelog"
    url = running.url
    out.print(f"wheelfarm is up: the index at {url}/ (pip: --index-url {url}/simple/)")
    out.print(f"builder API at {url}/docs, building for {running.target.name}")
    out.print(f"builds isolated by: {running.isolation}", markup=False)
    out.print(f"following {following} from {redact_url(settings.upstream_url)}", markup=False)
    out.print(f"store: {redact_url(settings.database_url)}", markup=False)
    out.print(f"wheels go to {running.wheel_dir}; Ctrl-C stops")
    out.print(f"monitor at {url}/monitor/, status at {url}/status/")
    if running.admin_token_file is not None:
        out.print(f"the local admin's token is in {running.admin_token_file}")
    try:
        with until_stopped(lambda: farewell(running.builds_under_way())) as stopping:
            keep_following(settings, stopping, running.space)
    finally:
        running.stop()


def farewell(under_way: int) -> str:
    """What ``up`` says as it stops: builds under way are ended only if there are any."""
    if under_way == 0:
        return "stopping: no build was under way"
    ended = "is ended and handed" if under_way == 1 else "are ended and handed"
    return f"stopping: {plural(under_way, 'build')} under way {ended} back to the queue"
