"""System dependencies on the master: per-file rows, the distros' base lists, and the reader.

A wheel's analysis (:mod:`wheelfarm.builder.sysdeps`) lists every Debian package its libraries come
from. Users only need the ones their system lacks, so the reader subtracts the packages that the
base image of the wheel's target already has (``targets.distro`` -> ``distro_packages``). The
subtraction is done by the database, for many files in one query.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    delete,
    exists,
    func,
    insert,
    select,
    update,
)

from wheelfarm.errors import WheelfarmError
from wheelfarm.store.dialect import upsert
from wheelfarm.store.marks import mark_all_changed
from wheelfarm.store.schema import (
    build_files,
    distro_packages,
    distros,
    file_dependencies,
    targets,
)

if TYPE_CHECKING:
    from wheelfarm.builder.sysdeps import SystemDependencies
    from wheelfarm.protocol import WheelDependencies

__all__ = [
    "DistroInfo",
    "FileDependencies",
    "UnknownDistro",
    "dependency_details",
    "forget_dependencies",
    "list_distros",
    "load_distro",
    "project_wheel_dependencies",
    "record_dependencies",
    "set_target_distro",
    "wheel_dependencies",
]

_CHUNK = 500  # filenames per query: well inside every engine's limit on bound parameters
_TOOLS = ("apt", "unresolved", "bundled", "problem")


class FileDependencies(NamedTuple):
    """What a user must install for one wheel: Debian packages beyond the target's base image,
    and sonames no package was found for."""

    apt: tuple[str, ...]
    unresolved: tuple[str, ...]


class UnknownDistro(WheelfarmError):
    def __init__(self, name: str) -> None:
        super().__init__(f"distro {name!r} has no package list (wheelfarm distros load ...)")


@dataclass(frozen=True)
class DistroInfo:
    name: str
    packages: int
    loaded_at: float
    source: str | None
    targets: tuple[str, ...]


def record_dependencies(
    connection: Connection, filename: str, found: WheelDependencies | SystemDependencies
) -> None:
    """Store one published file's analysis, replacing any earlier one, and mark it analysed."""
    # Imported here: the analysis brings pyelftools and pydantic, which the commands that
    # only list targets and distros from this module do not need.
    from wheelfarm.builder.sysdeps import SystemDependencies, to_wire

    wire = to_wire(found) if isinstance(found, SystemDependencies) else found
    forget_dependencies(connection, [filename])
    connection.execute(
        update(build_files).where(build_files.c.filename == filename).values(analysed=True)
    )
    rows = {
        (tool, name)
        for tool, names in zip(
            _TOOLS, (wire.apt, wire.unresolved, wire.bundled, wire.problems), strict=True
        )
        for name in names
    }
    if rows:
        connection.execute(
            insert(file_dependencies),
            [{"filename": filename, "tool": tool, "name": name} for tool, name in sorted(rows)],
        )


def forget_dependencies(connection: Connection, filenames: Sequence[str]) -> None:
    """Drop the analysis of files (before they are unpublished)."""
    for start in range(0, len(filenames), _CHUNK):
        chunk = filenames[start : start + _CHUNK]
        connection.execute(delete(file_dependencies).where(file_dependencies.c.filename.in_(chunk)))


def _needed(condition: ColumnElement[bool]) -> Select[Any]:
    """(filename, tool, name) of the files meeting ``condition`` (on ``build_files``): the apt
    packages their target's distro lacks, and the unresolved sonames, in a stable order."""
    dependency, wheel = file_dependencies.c, build_files.c
    in_base = exists(
        select(distro_packages.c.package)
        .select_from(targets.join(distro_packages, distro_packages.c.distro == targets.c.distro))
        .where(targets.c.name == wheel.target, distro_packages.c.package == dependency.name)
    )
    return (
        select(dependency.filename, dependency.tool, dependency.name)
        .select_from(file_dependencies.join(build_files, wheel.filename == dependency.filename))
        .where(
            condition,
            ((dependency.tool == "apt") & ~in_base) | (dependency.tool == "unresolved"),
        )
        .order_by(dependency.filename, dependency.tool, dependency.name)
    )


def _collect(
    connection: Connection,
    query: Select[Any],
    found: dict[str, tuple[list[str], list[str]]],
) -> None:
    for filename, tool, name in connection.execute(query):
        apt, unresolved = found.setdefault(filename, ([], []))
        (apt if tool == "apt" else unresolved).append(name)


def _frozen(found: dict[str, tuple[list[str], list[str]]]) -> dict[str, FileDependencies]:
    return {
        name: FileDependencies(tuple(apt), tuple(unresolved))
        for name, (apt, unresolved) in found.items()
    }


def wheel_dependencies(
    connection: Connection, filenames: Iterable[str]
) -> dict[str, FileDependencies]:
    """Per file: the Debian packages needed beyond its target's distro, and unresolved sonames.

    Every file asked for is in the answer (empty tuples when nothing is needed or it was never
    analysed). A file whose target has no distro, or a distro with no list loaded, gets every
    package. One query per 500 files.
    """
    names = list(dict.fromkeys(filenames))
    found: dict[str, tuple[list[str], list[str]]] = {name: ([], []) for name in names}
    for start in range(0, len(names), _CHUNK):
        chunk = names[start : start + _CHUNK]
        _collect(connection, _needed(file_dependencies.c.filename.in_(chunk)), found)
    return _frozen(found)


def project_wheel_dependencies(
    connection: Connection, projects: ColumnElement[bool]
) -> dict[str, FileDependencies]:
    """As :func:`wheel_dependencies`, for every wheel whose ``build_files`` row meets
    ``projects`` (a condition on its project), in one query; files needing nothing are left out.
    """
    found: dict[str, tuple[list[str], list[str]]] = {}
    _collect(connection, _needed(projects), found)
    return _frozen(found)


def dependency_details(connection: Connection, filename: str) -> dict[str, list[str]]:
    """Everything stored about one file, by tool (``apt`` before subtraction), for operators."""
    details: dict[str, list[str]] = {tool: [] for tool in _TOOLS}
    rows = connection.execute(
        select(file_dependencies.c.tool, file_dependencies.c.name)
        .where(file_dependencies.c.filename == filename)
        .order_by(file_dependencies.c.tool, file_dependencies.c.name)
    )
    for row in rows:
        details.setdefault(row.tool, []).append(row.name)
    return details


def load_distro(
    connection: Connection, name: str, packages: Iterable[str], source: str | None
) -> int:
    """Replace a distro's package list with ``packages`` (in the caller's transaction).

    Every project's pages show dependencies net of the list, so all are published again.
    """
    unique = sorted(set(packages))
    mark_all_changed(connection)
    connection.execute(
        upsert(
            connection,
            distros,
            {"name": name, "loaded_at": time.time(), "source": source},
            ["name"],
        )
    )
    connection.execute(delete(distro_packages).where(distro_packages.c.distro == name))
    if unique:
        connection.execute(
            insert(distro_packages), [{"distro": name, "package": p} for p in unique]
        )
    return len(unique)


def list_distros(connection: Connection) -> list[DistroInfo]:
    """The loaded distros, with their package counts and the targets that use them."""
    counts: dict[str, int] = dict(
        connection.execute(
            select(distro_packages.c.distro, func.count()).group_by(distro_packages.c.distro)
        ).all()
    )
    used: dict[str, list[str]] = {}
    for row in connection.execute(
        select(targets.c.name, targets.c.distro).order_by(targets.c.name)
    ):
        if row.distro is not None:
            used.setdefault(row.distro, []).append(row.name)
    return [
        DistroInfo(
            row.name,
            int(counts.get(row.name, 0)),
            row.loaded_at,
            row.source,
            tuple(used.get(row.name, ())),
        )
        for row in connection.execute(select(distros).order_by(distros.c.name))
    ]


def set_target_distro(connection: Connection, target: str, distro: str | None) -> bool:
    """Say which distro a target's wheels run on (None: unknown); False if no such target."""
    mark_all_changed(connection)  # the install lines of every project may change
    result = connection.execute(
        update(targets).where(targets.c.name == target).values(distro=distro)
    )
    return result.rowcount > 0


def target_distros(connection: Connection) -> dict[str, str | None]:
    """target name -> its distro (or None)."""
    return {
        row.name: row.distro for row in connection.execute(select(targets.c.name, targets.c.distro))
    }
