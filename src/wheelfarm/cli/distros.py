"""System dependencies: ``wheelfarm distros`` (the base images) and ``wheelfarm dependencies``."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click
from sqlalchemy import select

from wheelfarm.app.parts import open_configured_store, store_transaction
from wheelfarm.builder.libraries import root_libraries
from wheelfarm.cli.console import err, out, settings_of
from wheelfarm.cli.output import dependencies_json
from wheelfarm.farm.dependencies import (
    dependency_details,
    list_distros,
    load_distro,
    wheel_dependencies,
)
from wheelfarm.farm.distros import check_distro_name, read_package_list, snapshot
from wheelfarm.farm.reanalysis import reanalyse_wheels
from wheelfarm.names import canonical
from wheelfarm.store.schema import build_files
from wheelfarm.words import plural

__all__ = ["dependencies", "distros"]


@click.group()
def distros() -> None:
    """The base images targets run on, and the packages they already have."""


@distros.command("load")
@click.argument("file")
@click.option("--name", help="The distro's name (default: the file name without .txt).")
@click.pass_context
def distros_load(ctx: click.Context, file: str, name: str | None) -> None:
    """Replace a distro's package list with FILE (a path, or a shipped list's name)."""
    default_name, packages, source = read_package_list(file)
    distro = check_distro_name(name or default_name)
    with store_transaction(settings_of(ctx)) as connection:
        count = load_distro(connection, distro, packages, source)
    out.print(f"loaded {plural(count, 'package')} for distro {distro} from {source}", markup=False)


@distros.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def distros_list(ctx: click.Context, as_json: bool) -> None:
    """The loaded distros, their package counts and the targets on them."""
    with store_transaction(settings_of(ctx), existing=True) as connection:
        found = list_distros(connection)
    if as_json:
        out.print_json(json.dumps([asdict(d) for d in found]))
        return
    for distro in found:
        used = ", ".join(distro.targets) or "no target"
        out.print(
            f"{distro.name}  {plural(distro.packages, 'package')}  ({used})  from {distro.source}",
            markup=False,
        )
    out.print(plural(len(found), "distro"))


@distros.command("snapshot")
def distros_snapshot() -> None:
    """Print this machine's installed packages, one a line (run it on a fresh base image)."""
    click.echo("\n".join(snapshot()))


@click.command("dependencies")
@click.argument("filenames", nargs=-1)
@click.option("--project", help="Every file of this project.")
@click.option("--json", "as_json", is_flag=True)
@click.option(
    "--reanalyse",
    is_flag=True,
    help="Analyse the stored wheels that have no analysis (published before it existed).",
)
@click.option("--target", help="With --reanalyse: only this target's wheels.")
@click.option(
    "--root",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    help="With --reanalyse: analyse against this root file system (a target's), not this machine.",
)
@click.option("--multiarch", help="With --root: its loader's triplet, e.g. aarch64-linux-gnu.")
@click.pass_context
def dependencies(
    ctx: click.Context,
    filenames: tuple[str, ...],
    project: str | None,
    as_json: bool,
    reanalyse: bool,
    target: str | None,
    root: Path | None,
    multiarch: str | None,
) -> None:
    """What published wheels need from the system: apt packages beyond the target's distro."""
    if reanalyse:
        _reanalyse(ctx, target, root, multiarch)
        if not filenames and project is None:
            return
    with store_transaction(settings_of(ctx), existing=True) as connection:
        names = list(filenames)
        if project is not None:
            query = select(build_files.c.filename).where(
                build_files.c.project == canonical(project)
            )
            names += connection.execute(query.order_by(build_files.c.filename)).scalars()
        needed = wheel_dependencies(connection, names)
        details = {name: dependency_details(connection, name) for name in names}
    if as_json:
        out.print_json(json.dumps(dependencies_json(names, needed, details)))
        return
    for name in names:
        apt, unresolved = needed[name]
        line = f"{name}: apt {' '.join(apt) or '-'}"
        line += f"; unresolved {' '.join(unresolved)}" if unresolved else ""
        out.print(line, markup=False, highlight=False)
        for problem in details[name]["problem"]:
            out.print(f"  problem: {problem}", markup=False, highlight=False)


def _reanalyse(
    ctx: click.Context, target: str | None, root: Path | None, multiarch: str | None
) -> None:
    """``--reanalyse``: analyse the wheels without an analysis, with a progress line."""
    settings = settings_of(ctx)
    libraries = root_libraries(root.resolve(), multiarch) if root is not None else None

    def progress(done: int, total: int) -> None:
        err.print(f"analysed {done} of {plural(total, 'wheel')}", markup=False, highlight=False)

    engine = open_configured_store(settings, existing=True)
    try:
        count = reanalyse_wheels(
            engine, settings.wheel_dir, libraries=libraries, target=target, progress=progress
        )
    finally:
        engine.dispose()
    missing = f"; {count.missing} not found in {settings.wheel_dir}" if count.missing else ""
    out.print(f"analysed {plural(count.analysed, 'wheel')}{missing}", markup=False, highlight=False)
