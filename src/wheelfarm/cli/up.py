"""``wheelfarm up``: everything on this machine, wired by :func:`wheelfarm.app.start_up`."""

from __future__ import annotations

import logging

import click

from wheelfarm.app import start_up
from wheelfarm.cli.console import out, settings_of, until_stopped
from wheelfarm.cli.follow import keep_following

__all__ = ["up"]


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
    logging.getLogger("wheelfarm.builder.loop").setLevel(logging.INFO)  # show builds as they go
    running = start_up(settings, say=lambda line: out.print(line, markup=False, highlight=False))
    following = ", ".join(settings.projects) if settings.projects else "the whole changelog"
    url = running.url
    out.print(f"wheelfarm is up: the index at {url}/ (pip: --index-url {url}/simple/)")
    out.print(f"builder API at {url}/docs, building for {running.target.name}")
    out.print(f"following {following}; wheels go to {running.wheel_dir}; Ctrl-C stops")
    try:
        with until_stopped("stopping: a build under way is ended and handed back to the queue"):
            keep_following(settings)
    finally:
        running.stop()
