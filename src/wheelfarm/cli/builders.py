"""The builders: ``builders`` registers and commands them; ``builder`` runs one."""

from __future__ import annotations

import json
import signal
import threading
import time
from dataclasses import asdict
from pathlib import Path

import click
import httpx

from wheelfarm.app.parts import builder_client, store_transaction
from wheelfarm.builder.loop import BuilderOptions, run_builder
from wheelfarm.builder.sandbox import BuildLimits
from wheelfarm.cli.console import out, settings_of, show_new_token
from wheelfarm.errors import NotFound
from wheelfarm.farm import registry
from wheelfarm.words import plural

__all__ = ["builder", "builders"]


@click.group()
def builders() -> None:
    """The machines that build (each with its own token)."""


@builders.command("add")
@click.argument("name")
@click.pass_context
def builders_add(ctx: click.Context, name: str) -> None:
    """Register a builder and print its token (shown only this once)."""
    with store_transaction(settings_of(ctx)) as connection:
        token = registry.add_builder(connection, name, now=time.time())
    show_new_token("builder", name, token)


@builders.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def builders_list(ctx: click.Context, as_json: bool) -> None:
    """The registered builders and when they were last seen."""
    with store_transaction(settings_of(ctx), existing=True) as connection:
        found = registry.list_builders(connection)
    if as_json:
        out.print_json(json.dumps([asdict(b) for b in found]))
        return
    for one in found:
        seen = (
            time.strftime("%Y-%m-%d %H:%M", time.gmtime(one.last_seen))
            if one.last_seen
            else "never"
        )
        told = f"  told to {one.command}" if one.command else ""
        out.print(f"{one.name}  target {one.target or '?'}  last seen {seen}{told}")
    out.print(plural(len(found), "builder"))


@builders.command("remove")
@click.argument("name")
@click.pass_context
def builders_remove(ctx: click.Context, name: str) -> None:
    """Revoke a builder's token at once."""
    with store_transaction(settings_of(ctx)) as connection:
        if not registry.remove_builder(connection, name):
            raise NotFound(f"builder {name!r}")
    out.print(f"removed builder {name}; its token no longer works")


# What each order does to the builder: the commands' help and their reply say it alike.
_SKIP = "it ends the build under way at its next heartbeat; the job fails as skipped"
_PAUSE = "it finishes the build under way, then claims nothing until resumed"
_RESUME = "it claims jobs again"
_STOP = "it ends the build under way (the job is queued again) and exits"


def _tell(ctx: click.Context, name: str, verb: str, command: str | None, effect: str) -> None:
    """Set the builder's pending ``command`` (None: none), which it hears at its next heartbeat."""
    with store_transaction(settings_of(ctx)) as connection:
        if not registry.set_command(connection, name, command):
            raise NotFound(f"builder {name!r}")
    out.print(f"told builder {name} to {verb}: {effect}")


@builders.command("skip", help=f"Tell a builder to skip: {_SKIP}.")
@click.argument("name")
@click.pass_context
def builders_skip(ctx: click.Context, name: str) -> None:
    _tell(ctx, name, "skip", "skip", _SKIP)


@builders.command("pause", help=f"Tell a builder to pause: {_PAUSE}.")
@click.argument("name")
@click.pass_context
def builders_pause(ctx: click.Context, name: str) -> None:
    _tell(ctx, name, "pause", "pause", _PAUSE)


@builders.command("resume", help=f"Tell a builder to resume: {_RESUME}.")
@click.argument("name")
@click.pass_context
def builders_resume(ctx: click.Context, name: str) -> None:
    _tell(ctx, name, "resume", None, _RESUME)


@builders.command("stop", help=f"Tell a builder to stop: {_STOP}.")
@click.argument("name")
@click.pass_context
def builders_stop(ctx: click.Context, name: str) -> None:
    _tell(ctx, name, "stop", "stop", _STOP)


@click.command("builder")
@click.option(
    "--master", required=True, help="The master's URL, e.g. http://master.example.org:8080"
)
@click.option(
    "--token",
    envvar="WHEELFARM_BUILDER_TOKEN",
    required=True,
    help="This builder's token (or $WHEELFARM_BUILDER_TOKEN, which ps does not show).",
)
@click.option("--work", type=click.Path(path_type=Path), help="Scratch space for builds.")
@click.option("--label", help="A label shown in monitoring.")
@click.option(
    "--timeout",
    type=float,
    default=3 * 3600.0,
    show_default=True,
    help="Seconds before a build is killed.",
)
@click.option(
    "--pip-option",
    "pip_options",
    multiple=True,
    help="Extra option for pip wheel (repeatable), e.g. --extra-index-url=URL.",
)
@click.option(
    "--rootfs",
    type=click.Path(path_type=Path, file_okay=False),
    help="Build inside this root file system (wheelfarm rootfs create), emulated if foreign.",
)
@click.pass_context
def builder(
    ctx: click.Context,
    master: str,
    token: str,
    work: Path | None,
    label: str | None,
    timeout: float,
    pip_options: tuple[str, ...],
    rootfs: Path | None,
) -> None:
    """Build wheels for a master until stopped (SIGINT or SIGTERM)."""
    settings = settings_of(ctx)
    options = BuilderOptions(
        workdir=work or settings.data_dir / "build",
        label=label,
        limits=BuildLimits(timeout=timeout),
        pip_options=pip_options or settings.pip_options,
        allow_unsandboxed=settings.allow_unsandboxed_builds,
        rootfs=rootfs,
    )
    stop = threading.Event()
    for signal_number in (signal.SIGTERM, signal.SIGINT):  # end the build, report, exit
        signal.signal(signal_number, lambda *_: stop.set())
    with httpx.Client(timeout=settings.http_timeout) as http:
        run_builder(builder_client(settings, master, token, http), options, stop)
    out.print("builder stopped")
