"""Differences between what we hold and what a project page says, and the changes that mend them.

Used three ways: following named projects, reconciling projects the changelog touched, and
``wheelfarm audit`` (which prints the differences and, with ``--fix``, applies the changes).
"""

from __future__ import annotations

import enum
from collections import defaultdict
from dataclasses import dataclass

from wheelfarm.names import NormalizedName
from wheelfarm.store.changes import Changes
from wheelfarm.store.views import ProjectStatus, ProjectView
from wheelfarm.upstream.pages import UpstreamFile, UpstreamProject

__all__ = ["Difference", "DifferenceKind", "changes_for", "diff_project"]


class DifferenceKind(enum.Enum):
    PROJECT_MISSING = "project missing here"
    PROJECT_EXTRA = "project gone upstream"
    RELEASE_MISSING = "release missing here"
    RELEASE_EXTRA = "release gone upstream"
    FILE_MISSING = "file missing here"
    FILE_EXTRA = "file gone upstream"
    YANK = "yank differs"
    FILE_DETAILS = "file details differ"
    DISPLAY_NAME = "display name differs"
    SUMMARY = "summary differs"
    STATUS = "project status differs"
    QUARANTINED = "project quarantined upstream"


@dataclass(frozen=True)
class Difference:
    kind: DifferenceKind
    project: NormalizedName
    version: str | None = None
    filename: str | None = None
    ours: str | None = None
    theirs: str | None = None

    def __str__(self) -> str:
        where: str = self.project
        if self.version is not None:
            where += f" {self.version}"
        if self.filename is not None:
            where += f" {self.filename}"
        detail = (
            f": ours {self.ours!r}, upstream {self.theirs!r}" if self.ours or self.theirs else ""
        )
        return f"{where}: {self.kind.value}{detail}"


def _release_yank(files: list[UpstreamFile]) -> tuple[bool, str | None]:
    """Upstream yanks a release; PEP 691 shows it on each file. Yanked means every file is."""
    yanked = bool(files) and all(f.yanked for f in files)
    reason = next((f.yanked_reason for f in files if f.yanked_reason), None) if yanked else None
    return yanked, reason


def _details(file: UpstreamFile) -> tuple[str | None, int | None, str | None, str | None]:
    return (file.sha256, file.size, file.upload_time, file.requires_python)


def diff_project(ours: ProjectView, theirs: UpstreamProject | None) -> list[Difference]:
    """Every difference between our view and the upstream's (``None``: it has no such project)."""
    name = ours.name
    if theirs is None:
        if ours.status is ProjectStatus.LIVE:
            return [Difference(DifferenceKind.PROJECT_EXTRA, name)]
        return []  # a quarantined project is hidden upstream too; deleted or unknown: agreed
    if theirs.status == "quarantined":
        return _diff_quarantined(ours, theirs)
    found: list[Difference] = []
    live = ours.status is ProjectStatus.LIVE
    if not live:
        found.append(Difference(DifferenceKind.PROJECT_MISSING, name, ours=ours.status.value))
    elif ours.display_name != theirs.display_name:
        found.append(
            Difference(
                DifferenceKind.DISPLAY_NAME,
                name,
                ours=ours.display_name,
                theirs=theirs.display_name,
            )
        )
    if live and (status := _status_difference(ours, theirs)) is not None:
        found.append(status)
    if live and theirs.summary is not None and ours.summary != theirs.summary:
        found.append(
            Difference(DifferenceKind.SUMMARY, name, ours=ours.summary, theirs=theirs.summary)
        )
    their_files: dict[str, list[UpstreamFile]] = defaultdict(list)
    for file in theirs.files:
        their_files[file.version].append(file)
    our_releases = ours.releases if live else {}
    for version in sorted(set(theirs.versions) | set(their_files)):
        release = our_releases.get(version)
        yanked, reason = _release_yank(their_files[version])
        if release is None:
            found.append(Difference(DifferenceKind.RELEASE_MISSING, name, version))
        elif their_files[version] and (release.yanked, release.yanked_reason) != (yanked, reason):
            # Pages show yanks on files only: a release without files says nothing of its yank.
            found.append(
                Difference(
                    DifferenceKind.YANK,
                    name,
                    version,
                    ours=_yank_text(release.yanked, release.yanked_reason),
                    theirs=_yank_text(yanked, reason),
                )
            )
        our_files = {f.filename: f for f in release.files} if release else {}
        for file in their_files[version]:
            mine = our_files.get(file.filename)
            if mine is None:
                found.append(Difference(DifferenceKind.FILE_MISSING, name, version, file.filename))
            elif (mine.sha256, mine.size, mine.upload_time, mine.requires_python) != _details(file):
                found.append(
                    Difference(
                        DifferenceKind.FILE_DETAILS,
                        name,
                        version,
                        file.filename,
                        ours=str((mine.sha256, mine.size, mine.upload_time, mine.requires_python)),
                        theirs=str(_details(file)),
                    )
                )
        upstream_names = {f.filename for f in their_files[version]}
        found.extend(
            Difference(DifferenceKind.FILE_EXTRA, name, version, filename)
            for filename in sorted(set(our_files) - upstream_names)
        )
    found.extend(
        Difference(DifferenceKind.RELEASE_EXTRA, name, version)
        for version in sorted(set(our_releases) - set(theirs.versions) - set(their_files))
    )
    return found


def _diff_quarantined(ours: ProjectView, theirs: UpstreamProject) -> list[Difference]:
    """A page whose project is quarantined (PEP 792) offers no files: it says nothing of them,
    so only the quarantine itself (and its reason) is compared. Our releases stay as they are,
    hidden by the quarantine, and come back as they were if it is lifted."""
    theirs_text = _status_text(theirs.status, theirs.status_reason)
    if ours.status is not ProjectStatus.QUARANTINED:
        return [
            Difference(
                DifferenceKind.QUARANTINED, ours.name, ours=ours.status.value, theirs=theirs_text
            )
        ]
    status = _status_difference(ours, theirs)
    return [] if status is None else [status]


def _status_difference(ours: ProjectView, theirs: UpstreamProject) -> Difference | None:
    """PEP 792's marker (or its reason) as the page states it, when it is not what we hold."""
    ours_text = _status_text(ours.status_marker, ours.status_reason)
    theirs_text = _status_text(theirs.status, theirs.status_reason)
    if ours_text == theirs_text:
        return None
    return Difference(DifferenceKind.STATUS, ours.name, ours=ours_text, theirs=theirs_text)


def _status_text(marker: str, reason: str | None) -> str:
    return f"{marker}: {reason}" if reason else marker


def _yank_text(yanked: bool, reason: str | None) -> str:
    if not yanked:
        return "not yanked"
    return f"yanked: {reason}" if reason else "yanked"


def changes_for(
    differences: list[Difference],
    theirs: UpstreamProject | None,
    key: int,
    *,
    marker_key: int = 0,
) -> Changes:
    """Register updates at ``key`` that make our state equal the page, difference by difference.

    The project's status marker and quarantine are written at ``max(key, marker_key)``: the
    upstream journals no archival or deprecation (and a page can say "quarantined" before its
    event arrives), so two reads at one serial, with one key, can disagree. The later read is
    the truth, and ``marker_key`` (one above the keys those registers hold) lets it win.
    """
    marker_key = max(key, marker_key)
    changes = Changes()
    files = {f.filename: f for f in theirs.files} if theirs else {}
    yanks: dict[str, list[UpstreamFile]] = defaultdict(list)
    for file in files.values():
        yanks[file.version].append(file)
    if theirs is not None:
        project = changes.project(theirs.name)
        project.synced_serial = project.last_serial = theirs.serial
        project.summary = theirs.summary
    for difference in differences:
        name, version = difference.project, difference.version or ""
        kind = difference.kind
        if kind is DifferenceKind.PROJECT_EXTRA:
            changes.project(name).removed_key = key
        elif kind in (DifferenceKind.PROJECT_MISSING, DifferenceKind.DISPLAY_NAME) and theirs:
            changes.project(name).register(key, theirs.display_name)
            changes.project(name).set_quarantine(marker_key, False)
            changes.project(name).set_status(marker_key, theirs.status, theirs.status_reason)
        elif kind is DifferenceKind.QUARANTINED and theirs:
            changes.project(name).register(key, theirs.display_name)
            changes.project(name).set_quarantine(marker_key, True)
            changes.project(name).set_status(marker_key, theirs.status, theirs.status_reason)
        elif kind is DifferenceKind.STATUS and theirs:
            changes.project(name).set_status(marker_key, theirs.status, theirs.status_reason)
        elif kind is DifferenceKind.RELEASE_MISSING:
            release = changes.release(name, version)
            release.live_key = key
            release.set_quarantine(key, False)
            release.set_yank(key, *_release_yank(yanks[version]))
            if theirs:
                changes.project(name).assert_live(key, theirs.display_name)
        elif kind is DifferenceKind.RELEASE_EXTRA:
            changes.release(name, version).removed_key = key
        elif kind is DifferenceKind.YANK:
            changes.release(name, version).set_yank(key, *_release_yank(yanks[version]))
        elif kind in (DifferenceKind.FILE_MISSING, DifferenceKind.FILE_DETAILS):
            upstream = files[difference.filename or ""]
            change = changes.file(name, version, upstream.filename)
            if kind is DifferenceKind.FILE_MISSING:
                change.live_key = key
            change.sha256, change.size, change.upload_time, change.requires_python = _details(
                upstream
            )
        elif kind is DifferenceKind.FILE_EXTRA:
            changes.file(name, version, difference.filename or "").removed_key = key
    return changes
