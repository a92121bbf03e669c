"""What the loader hands the tree writers for one project: :class:`Publication`.

Its own module because both sides use it: the loader (:mod:`wheelfarm.publish.loader`) makes
publications, the writers (:mod:`wheelfarm.publish.project_writer`, the incremental writer and
the regeneration) read them, and the naming rule that keeps a project out of the tree
(:func:`publishable_name`) is shared by both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from wheelfarm.publish.values import ProjectIndex

__all__ = ["Publication", "Quarantine", "listing_of", "publishable_name"]

# A normalised name that is safe as a path component and a URL segment. Anything else (the
# upstream is trusted to refuse such names, but is not relied on) is never published.
_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")


def publishable_name(name: str) -> bool:
    """Whether ``name`` is a normalised project name we can use as a path and URL segment."""
    return len(name) <= 255 and _NAME.fullmatch(name) is not None


@dataclass(slots=True)
class Quarantine:
    """What a quarantined project's simple pages still say (PEP 792): no files, only that."""

    display_name: str
    tracks: str  # the project's simple page on the upstream (PEP 708)
    reason: str | None  # the upstream's reason, when its page gives one


@dataclass(slots=True)
class Publication:
    """One project as the tree writer needs it: its pages' values and what to take down."""

    name: str
    serial: int  # ours, as read: the writer clears the dirty mark only if it did not move
    listed: str | None  # what the site listed for it when last written
    project: ProjectIndex | None  # None: not live (deleted, quarantined, unknown)
    withdrawn: tuple[str, ...]  # our wheels whose release (or project) is no longer visible
    logs: tuple[int, ...]  # builds of this project that have a log
    dirty: bool = True  # marked changed, or never recorded as written
    quarantine: Quarantine | None = None  # quarantined upstream: what its pages still say
    stale_logs: tuple[int, ...] = ()  # of ``logs``, those rewritten since published (re-triage)

    @property
    def to_record(self) -> bool:
        """Whether the store must note this write: a dirty mark to clear, a new listing, a
        rewritten log's flag."""
        return self.dirty or self.listed != self.listing or bool(self.stale_logs)

    @property
    def listing(self) -> str | None:
        """What the site lists for the project now; a change means the site pages change."""
        return listing_of(self.project)


def listing_of(project: ProjectIndex | None) -> str | None:
    if project is None:
        return None
    return f"{project.display_name}\n{project.summary or ''}"
