"""When a project page's 404 means the project is gone, and when it is a cache's stale answer.

A 404 carries no serial, so the staleness check pages get (page serial against the project's
last event) cannot be made for it. Yet a cache in front of the upstream can keep answering 404
for a project created seconds or minutes ago: a request made before the project existed left a
"not found" there. Believing it deleted a project the moment it was created, and since the read
marked the project reconciled, nothing brought it back until its next event.

So a 404 is believed only when the changelog agrees or cannot say: the project's latest
journalled event is a ``remove project``, the project is not live here, or no journalled event
stands behind it (named projects followed without a changelog). Otherwise it is refused like a
stale page (read again with the same backoff, then left dirty for the next reconcile) until
``grace`` seconds have passed since that event: a cache's 404 cannot outlive its own lifetime,
so one that persists that long is taken as a deletion the changelog did not record, with a
warning in the log.
"""

from __future__ import annotations

import logging

from sqlalchemy import Connection

from wheelfarm.errors import StaleNotFound
from wheelfarm.store.events import Action, EventProblem
from wheelfarm.store.journal import journal_row_at
from wheelfarm.store.views import ProjectStatus, ProjectView
from wheelfarm.upstream.events import parse_row

__all__ = ["DEFAULT_MISSING_PAGE_GRACE", "check_not_found"]

log = logging.getLogger(__name__)

DEFAULT_MISSING_PAGE_GRACE = 3600.0
"""Seconds after a project's latest event during which a 404 for it is taken as stale (the
``missing_page_grace_seconds`` setting). The lags seen last seconds to minutes; an hour leaves
room, and a deletion the changelog never recorded still lands within the hour."""


def check_not_found(
    connection: Connection, url: str, ours: ProjectView, now: float, grace: float
) -> None:
    """Raise :class:`StaleNotFound` when a 404 for ``ours`` is more likely a cache's than true.

    Returns when the 404 is to be believed; logs a warning when it is believed only because it
    outlived ``grace``.
    """
    if ours.status is not ProjectStatus.LIVE:
        return  # deleted or unknown: the 404 agrees; quarantined: hidden upstream as well
    row = journal_row_at(connection, ours.last_serial)
    if row is None:
        return  # no changelog behind what we hold: nothing says the project exists
    serial, timestamp, name, version, action, _problem = row
    try:
        event = parse_row([name, version, timestamp, action, serial])
    except EventProblem:
        return  # a row we could not read says nothing either way
    if event.project != ours.name:
        return  # not this project's event: it says nothing of it
    if event.kind is Action.REMOVE_PROJECT:
        return  # early history: a removal timestamped before the create it follows
    age = now - event.timestamp
    if age < grace:
        raise StaleNotFound(url, event.serial, event.action, age)
    log.warning(
        "%s: page still answers 404 %.0f s after the changelog's %r at serial %d, with no "
        "removal since (grace %.0f s): taken as deleted upstream",
        ours.name,
        age,
        event.action,
        event.serial,
        grace,
    )
