"""A deliberately naive model of the changelog's meaning: apply events one by one, in order.

This is the specification the store must match: events applied in (timestamp, serial) order,
where a removal wipes the record (and everything under it) and later events start afresh.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from wheelfarm.names import canonical, is_prerelease
from wheelfarm.store.events import Action, ChangelogEvent

Snapshot = dict[str, object]


@dataclass
class _Release:
    alive: bool = False
    yanked: bool = False
    quarantined: bool = False
    files: set[str] = field(default_factory=set)


@dataclass
class _Project:
    alive: bool = False
    registered: str | None = None
    seen: str | None = None
    quarantined: bool = False
    releases: dict[str, _Release] = field(default_factory=dict)


def apply_in_order(events: Iterable[ChangelogEvent]) -> dict[str, _Project]:
    projects: dict[str, _Project] = {}
    for event in sorted(events, key=lambda e: (e.timestamp, e.serial)):
        kind = event.kind
        if kind is Action.METADATA:
            continue
        key = canonical(event.name)
        if kind is Action.REMOVE_PROJECT:
            projects[key] = _Project()
            continue
        project = projects.setdefault(key, _Project())
        version = event.version or ""
        if kind is Action.REMOVE_RELEASE:
            project.releases[version] = _Release()
            continue
        if kind in (Action.CREATE, Action.NEW_RELEASE, Action.ADD_FILE):
            project.alive = True
            project.seen = event.name
        if kind is Action.CREATE:
            project.registered = event.name
        elif kind in (Action.QUARANTINE_PROJECT, Action.CLEAR_PROJECT_QUARANTINE):
            project.quarantined = kind is Action.QUARANTINE_PROJECT
        else:
            release = project.releases.setdefault(version, _Release())
            if kind in (Action.NEW_RELEASE, Action.ADD_FILE):
                release.alive = True
            if kind is Action.ADD_FILE and event.filename:
                release.files.add(event.filename)
            elif kind is Action.REMOVE_FILE and event.filename:
                release.files.discard(event.filename)
            elif kind in (Action.YANK, Action.UNYANK):
                release.yanked = kind is Action.YANK
            elif kind in (Action.QUARANTINE_RELEASE, Action.CLEAR_RELEASE_QUARANTINE):
                release.quarantined = kind is Action.QUARANTINE_RELEASE
    return projects


def snapshot(projects: dict[str, _Project]) -> Snapshot:
    """The comparable view: status per project; display name and releases for live ones."""
    result: Snapshot = {}
    for key, project in sorted(projects.items()):
        if not project.alive:
            result[key] = "absent"
        elif project.quarantined:
            result[key] = "quarantined"
        else:
            result[key] = {
                "display_name": project.registered or project.seen,
                "releases": {
                    version: {
                        "yanked": release.yanked,
                        "prerelease": is_prerelease(version),
                        "files": sorted(release.files),
                    }
                    for version, release in sorted(release_items(project))
                },
            }
    return result


def release_items(project: _Project) -> list[tuple[str, _Release]]:
    return [(v, r) for v, r in project.releases.items() if r.alive and not r.quarantined]
