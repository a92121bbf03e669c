"""Plain data for ``--json`` output and rich tables for people, from the store's views."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.table import Table

    from wheelfarm.farm.dependencies import FileDependencies
    from wheelfarm.store.views import ProjectView, StoreCounts
    from wheelfarm.targets import Target

__all__ = ["counts_json", "dependencies_json", "project_json", "project_table", "targets_json"]


def project_json(view: ProjectView) -> dict[str, Any]:
    """The documented shape of ``wheelfarm show NAME --json`` (docs/cli.md)."""
    return {
        "name": view.name,
        "display_name": view.display_name,
        "summary": view.summary,
        "status": view.status.value,
        "last_serial": view.last_serial,
        "releases": {
            version: {
                "yanked": release.yanked,
                "yanked_reason": release.yanked_reason,
                "prerelease": release.prerelease,
                "requires_python": release.requires_python,
                "files": [file.filename for file in release.files],
            }
            for version, release in view.releases.items()
        },
    }


def counts_json(counts: StoreCounts, last_serial: int, dirty: int) -> dict[str, Any]:
    return {**asdict(counts), "last_serial": last_serial, "unreconciled_projects": dirty}


def project_table(view: ProjectView) -> Table:
    """``wheelfarm show NAME`` for people (rich's tables are imported by the commands that
    print one, not by every command that prints)."""
    from rich.table import Table

    table = Table(title=f"{view.display_name} ({view.name})", caption=view.summary)
    table.add_column("version")
    table.add_column("flags")
    table.add_column("requires-python")
    table.add_column("files")
    for version, release in reversed(view.releases.items()):
        flags = []
        if release.prerelease:
            flags.append("pre-release")
        if release.yanked:
            flags.append(f"yanked: {release.yanked_reason}" if release.yanked_reason else "yanked")
        table.add_row(
            version,
            ", ".join(flags),
            release.requires_python or "",
            "\n".join(file.filename for file in release.files),
        )
    return table


def targets_json(
    found: Sequence[Target], distro_of: Mapping[str, str | None]
) -> list[dict[str, Any]]:
    """The shape of ``wheelfarm targets list --json``."""
    return [
        {"name": t.name, "platforms": t.platforms, "distro": distro_of.get(t.name)} for t in found
    ]


def dependencies_json(
    names: Sequence[str],
    needed: Mapping[str, FileDependencies],
    details: Mapping[str, Mapping[str, list[str]]],
) -> dict[str, dict[str, list[str]]]:
    """The shape of ``wheelfarm dependencies --json``: per file, what it needs and what is wrong."""
    return {
        name: {"apt": list(needed[name].apt), "unresolved": list(needed[name].unresolved)}
        | {"bundled": details[name]["bundled"], "problems": details[name]["problem"]}
        for name in names
    }
