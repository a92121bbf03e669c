"""What a write of the published tree did: counts every writer adds to, and the caller reads.

One class for the project writer, the site writer, the incremental writer and the full
regeneration, so their figures add up (a chunk's report crosses back from a worker process).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["WriteReport"]


@dataclass
class WriteReport:
    """What a write of the tree did."""

    projects: int = 0  # projects looked at
    written: int = 0  # files created or replaced
    removed: int = 0  # files removed (or wheels withdrawn)
    site: bool = False  # whether the site-wide pages were written
    changed: list[str] = field(default_factory=list)  # projects with a file written or removed
    releases: int = 0  # visible releases of the live projects written
    wheels: int = 0  # wheels those releases carry
    failed: dict[str, str] = field(default_factory=dict)  # project -> why it was not published

    def add(self, other: WriteReport) -> None:
        self.projects += other.projects
        self.written += other.written
        self.removed += other.removed
        self.releases += other.releases
        self.wheels += other.wheels
        self.site = self.site or other.site
        self.changed.extend(other.changed)
        self.failed.update(other.failed)
