"""Projects whose publishing failed: one bad project must never stop the others.

A project fails to publish when something in its data cannot be rendered (a value no page can
show, say a duration of infinity written before the builder protocol refused it). Its failure is
logged with the project and the reason, it stays marked dirty, and it is tried again after a
wait that doubles from a minute to an hour, so a broken row neither blocks the rest of the
index nor fills the log once a second. A full disk is not such a failure: it is raised, and
the caller pauses (wheelfarm.guards).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

__all__ = ["Failure", "PublishFailures"]

log = logging.getLogger(__name__)


@dataclass
class Failure:
    reason: str
    retry_at: float
    wait: float


@dataclass
class PublishFailures:
    """The failed projects of one publisher, with when each may be tried again."""

    first_wait: float = 60.0
    max_wait: float = 3600.0
    projects: dict[str, Failure] = field(default_factory=dict)

    def waiting(self, now: float) -> set[str]:
        """The projects not to try yet."""
        return {name for name, failure in self.projects.items() if failure.retry_at > now}

    def failed(self, name: str, error: Exception, now: float) -> str:
        """Note a failure; returns the reason as logged."""
        reason = f"{type(error).__name__}: {error}"[:500]
        before = self.projects.get(name)
        wait = min(self.max_wait, before.wait * 2) if before else self.first_wait
        self.projects[name] = Failure(reason, now + wait, wait)
        log.error("publishing %s failed (%s); trying again in %d s", name, reason, wait)
        return reason

    def succeeded(self, name: str) -> None:
        if self.projects.pop(name, None) is not None:
            log.info("published %s again after failures", name)
