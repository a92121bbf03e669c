"""``rootfs``: the root file systems emulated builders build in (create, list, remove)."""

from __future__ import annotations

import json
import sys

import click
from rich.markup import escape

from wheelfarm.builder.rootfs import create_rootfs, list_rootfs, remove_rootfs
from wheelfarm.cli.console import err, out, settings_of

__all__ = ["rootfs"]


@click.group()
def rootfs() -> None:
    """Root file systems of other architectures, for emulated builders (needs root)."""


@rootfs.command("create")
@click.argument("arch")
@click.option("--distro", default="bookworm", show_default=True, help="Debian release.")
@click.pass_context
def rootfs_create(ctx: click.Context, arch: str, distro: str) -> None:
    """Make the root for ARCH (arm64/aarch64, armhf/armv7l, amd64/x86_64) under the data dir.

    Its packages come from this machine's apt sources; emulation is enabled if it must be.
    Does nothing when a complete root is there already; a half-made one is made again.
    Ctrl-C stops it and removes the half-made root (exit status 130).
    """
    data_dir = settings_of(ctx).data_dir
    with err.status(f"making the {distro} {arch} root") as status:

        def progress(message: str) -> None:
            err.print(f"  {escape(message)}", highlight=False)
            status.update(escape(message))

        try:
            path = create_rootfs(data_dir, arch, distro, progress)
        except KeyboardInterrupt:
            status.stop()
            err.print(
                f"interrupted: the half-made {distro} {arch} root was removed",
                markup=False,
                highlight=False,
            )
            sys.exit(130)
    out.print(f"root file system ready: {path}", markup=False, highlight=False)
    out.print(f"build in it with: wheelfarm builder --rootfs {path} ...", markup=False)


@rootfs.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def rootfs_list(ctx: click.Context, as_json: bool) -> None:
    """The roots under the data dir: name, arch, distro, size, ready or broken."""
    found = list_rootfs(settings_of(ctx).data_dir)
    if as_json:
        rows = [
            {
                "name": one.name,
                "path": str(one.path),
                "arch": one.arch,
                "distro": one.distro,
                "size": one.size,
                "ready": one.ready,
                "note": one.note,
            }
            for one in found
        ]
        out.print_json(json.dumps(rows))
        return
    if not found:
        out.print("no root file systems (make one with: wheelfarm rootfs create ARCH)")
    for one in found:
        state = "ready" if one.ready else "broken"
        note = f"  ({one.note})" if one.note else ""
        out.print(
            f"{one.name}  {one.arch or '?'}  {one.distro or '?'}  "
            f"{one.size / 1e6:.0f} MB  {state}{note}",
            markup=False,
            highlight=False,
        )


@rootfs.command("remove")
@click.argument("name")
@click.pass_context
def rootfs_remove(ctx: click.Context, name: str) -> None:
    """Remove the root NAME (as ``rootfs list`` shows it)."""
    path = remove_rootfs(settings_of(ctx).data_dir, name)
    out.print(f"removed {path}", markup=False, highlight=False)
