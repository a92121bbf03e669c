"""Follow the upstream: apply changelog batches, sync named projects, reconcile, audit.

The changelog says *that* something changed; project pages say *what is*. Events are journalled
and applied in one transaction with the position, so a kill at any moment loses nothing and
applies nothing twice. Projects an event touched are later re-read from their pages
(reconciled), which fills in what events do not carry (hashes, sizes, yank reasons) and mends
whatever the events got wrong. A page older than the event that sent us to it is refused, and
so is a 404 the changelog contradicts (:mod:`wheelfarm.upstream.missing`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field

from sqlalchemy import Engine, select

from wheelfarm.errors import MalformedResponse, StaleUpstream, WheelfarmError
from wheelfarm.names import NormalizedName, canonical
from wheelfarm.store.changes import write_changes, write_rows
from wheelfarm.store.events import Phase, order_key
from wheelfarm.store.journal import (
    POSITION,
    UPSTREAM_HEAD,
    position,
    set_state,
    timestamp_at,
    write_journal,
)
from wheelfarm.store.schema import projects
from wheelfarm.store.views import ProjectStatus, read_project
from wheelfarm.upstream.batches import PreparedBatch, prepare
from wheelfarm.upstream.changelog import ChangelogBatch
from wheelfarm.upstream.diff import Difference, changes_for, diff_project
from wheelfarm.upstream.missing import DEFAULT_MISSING_PAGE_GRACE, check_not_found
from wheelfarm.upstream.pages import PageClient, UpstreamProject
from wheelfarm.upstream.prefetch import ChangelogSource, PagePrefetcher, Prefetcher

__all__ = ["CatchUp", "Follower", "ProjectSync"]

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]

# Below this many serials to go, a child process costs more than it saves.
PREFETCH_THRESHOLD = 100_000

# A batch may reach past the serial the upstream reported at the start (events keep coming
# while we catch up), but not by more than this: a row far beyond it would move our position
# there, and every event in between would never be read.
MAX_SERIALS_PAST_TARGET = 1_000_000

# Pages read ahead of the writer, per reader thread: enough that a slow page does not leave
# the others idle, few enough that pages waiting to be written stay a handful.
READ_AHEAD_PER_WORKER = 4

DEFAULT_PAGE_WORKERS = 8
"""Page readers by default (the ``reconcile_workers`` setting); 8 readers are 5x or more the
sequential rate at 20 ms a page (``benchmarks/reconcile_pool.py``)."""


@dataclass
class CatchUp:
    """What one catch-up did: serials covered, events applied, rows rejected."""

    start_serial: int
    target_serial: int
    end_serial: int = 0
    events: int = 0
    rejected: int = 0

    def near_head(self, serials: int) -> bool:
        """Whether this catch-up started at most ``serials`` behind the upstream's head.

        Only then are its builds urgent: a first catch-up from serial 0 (or one after a long
        outage) touches the whole backlog, and marking all of it urgent would leave "urgent"
        meaning nothing.
        """
        return self.target_serial - self.start_serial <= serials


@dataclass
class ProjectSync:
    """The outcome of syncing one project from its page."""

    name: NormalizedName
    differences: list[Difference] = field(default_factory=list)
    found: bool = True
    applied: bool = False
    error: str | None = None


class Follower:
    """Applies upstream truth to the store. The clients, the clock, the page readers' number
    (``workers``) and how long a 404 the changelog contradicts is taken as stale
    (``missing_page_grace``, seconds after the project's latest event) are handed in."""

    def __init__(
        self,
        engine: Engine,
        pages: PageClient,
        changelog: ChangelogSource | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        workers: int = DEFAULT_PAGE_WORKERS,
        missing_page_grace: float = DEFAULT_MISSING_PAGE_GRACE,
    ) -> None:
        self.engine = engine
        self.pages = pages
        self.changelog = changelog
        self.clock = clock
        self.sleep = sleep
        self.workers = workers
        self.missing_page_grace = missing_page_grace

    # -- the changelog ---------------------------------------------------------------------

    def apply_batch(self, batch: ChangelogBatch) -> int:
        """Journal, apply and move the position, in one transaction. Returns events applied."""
        return self.apply_prepared(prepare(batch))

    def apply_prepared(self, batch: PreparedBatch) -> int:
        """The writer's half of :meth:`apply_batch`, for a batch the reader already folded."""
        with self.engine.begin() as connection:
            write_journal(connection, batch.journal)
            write_rows(connection, batch.tables)
            if batch.last_serial > position(connection):
                set_state(connection, POSITION, str(batch.last_serial))
        return batch.events

    def catch_up(
        self,
        until: int | None = None,
        progress: Progress | None = None,
        *,
        prefetch: bool = True,
    ) -> CatchUp:
        """Apply the changelog up to the serial the upstream had when we started (or ``until``).

        With ``prefetch`` the next batch is read in a child process while this one is applied.
        """
        if self.changelog is None:
            raise ValueError("this follower has no changelog")  # a programming error
        with self.engine.connect() as connection:
            start = position(connection)
        target = self.changelog.last_serial() if until is None else until
        if until is None:  # the upstream's head and when it was read: the monitor's lag
            with self.engine.begin() as connection:
                set_state(connection, UPSTREAM_HEAD, f"{target} {self.clock()}")
        summary = CatchUp(start_serial=start, target_serial=target, end_serial=start)
        if start >= target:
            return summary
        with contextlib.ExitStack() as stack:
            fetch = self._fetcher(stack, prefetch and target - start > PREFETCH_THRESHOLD)
            pending = fetch(start)
            current = start
            while current < target:
                batch = pending()
                if batch.last_serial > target + MAX_SERIALS_PAST_TARGET:
                    raise MalformedResponse(
                        self.changelog.url,
                        f"a row at serial {batch.last_serial} is far past the upstream's last "
                        f"serial {target}; nothing of this answer was applied",
                        after_serial=current,
                    )
                if batch.last_serial <= current:
                    log.warning(
                        "changelog has nothing after serial %d (target %d)", current, target
                    )
                    break
                if batch.last_serial < target:
                    pending = fetch(batch.last_serial)  # read ahead while we write
                summary.events += self.apply_prepared(batch)
                summary.rejected += batch.rejected
                current = summary.end_serial = batch.last_serial
                if progress:
                    progress(current - start, target - start)
        return summary

    def _fetcher(
        self, stack: contextlib.ExitStack, in_child: bool
    ) -> Callable[[int], Callable[[], PreparedBatch]]:
        """``fetch(serial)`` starts reading and returns a function that waits for the batch."""
        source = self.changelog
        if source is None:
            raise ValueError("this follower has no changelog")
        if not in_child:
            return lambda serial: functools.partial(source.since, serial)
        prefetcher = stack.enter_context(Prefetcher(source))

        def fetch(serial: int) -> Callable[[], PreparedBatch]:
            return functools.partial(prefetcher.result, prefetcher.request(serial))

        return fetch

    def dirty_projects(self) -> list[NormalizedName]:
        """Projects the changelog touched since their page was last read."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(projects.c.name)
                .where(projects.c.last_serial > projects.c.synced_serial)
                .order_by(projects.c.name)
            )
            return [NormalizedName(name) for name in rows.scalars()]

    # -- project pages ---------------------------------------------------------------------

    def _state_key(self, page_serial: int) -> int:
        """The order key of a page read: just after the event at its serial.

        With a journal we take that event's timestamp, so the read sorts right among events;
        without one (following named projects) the clock is the best we have.
        """
        with self.engine.connect() as connection:
            timestamp = timestamp_at(connection, page_serial) if page_serial else None
        if timestamp is None:
            timestamp = int(self.clock())
        return order_key(timestamp, page_serial, Phase.STATE)

    def sync_project(self, name: str, *, fix: bool = True) -> ProjectSync:
        """Read one project's page, diff it with ours, and (when ``fix``) apply the difference."""
        key_name = canonical(name)
        return self._apply_page(key_name, self.pages.fetch(key_name), fix=fix)

    def _apply_page(
        self, key_name: NormalizedName, theirs: UpstreamProject | None, *, fix: bool
    ) -> ProjectSync:
        """The writer's half of :meth:`sync_project`, for a page a reader already fetched.

        Ours is read here, after the page arrived, so the staleness check compares the page
        with everything this writer applied up to now.
        """
        url = self.pages.page_url(key_name)
        with self.engine.connect() as connection:
            ours = read_project(connection, key_name)
            if theirs is None:  # no serial to check: the changelog decides
                check_not_found(connection, url, ours, self.clock(), self.missing_page_grace)
        # A page with no serial (an upstream that does not report them) cannot be checked.
        if theirs is not None and 0 < theirs.serial < ours.last_serial:
            raise StaleUpstream(url, theirs.serial, ours.last_serial)
        result = ProjectSync(key_name, diff_project(ours, theirs), found=theirs is not None)
        if not fix or (theirs is None and ours.status is ProjectStatus.UNKNOWN):
            return result
        # A 404 believed is at least as new as anything we heard of the project.
        # And the page shows the effect of every event of the project up to its serial, so it
        # sorts after all of them, even early-history events timestamped out of order.
        key = max(
            self._state_key(theirs.serial if theirs else ours.last_serial), ours.touched_key + 1
        )
        marker_key = max(ours.status_key, ours.quarantine_key) + 1
        changes = changes_for(result.differences, theirs, key, marker_key=marker_key)
        # Read, whatever it said: the project is reconciled up to what we knew of it.
        changes.project(key_name).synced_serial = max(
            theirs.serial if theirs else 0, ours.last_serial
        )
        with self.engine.begin() as connection:
            write_changes(connection, changes)
        result.applied = True
        return result

    def sync_projects(
        self,
        names: Iterable[str],
        *,
        fix: bool = True,
        progress: Progress | None = None,
        stale_retries: int = 3,
        stale_wait: float = 5.0,
        workers: int | None = None,
    ) -> list[ProjectSync]:
        """Sync each project; a failure is recorded on its result and the others go on.

        Pages are read by ``workers`` threads (the follower's own number by default), a few
        pages ahead of the writer, which is this thread alone: it applies each page in one
        transaction as it comes, so the store sees what one sequential reader would have
        written. A stale page (or a 404 taken as stale) is read again after ``stale_wait`` times
        its attempt, at the back of the queue, while the others go on. Results come back in the
        order of ``names``.
        """
        todo = list(dict.fromkeys(canonical(n) for n in names))
        results: dict[NormalizedName, ProjectSync] = {}
        pending: deque[tuple[NormalizedName, int, Future[UpstreamProject | None]]] = deque()
        upcoming = iter(todo)
        with PagePrefetcher(self.pages, workers or self.workers, self.sleep) as reader:
            window = READ_AHEAD_PER_WORKER * reader.workers

            def top_up() -> None:
                while len(pending) < window and (name := next(upcoming, None)) is not None:
                    pending.append((name, 0, reader.read(name)))

            top_up()
            while pending:
                name, attempt, read = pending.popleft()
                try:
                    results[name] = self._apply_page(name, read.result(), fix=fix)
                except StaleUpstream as error:
                    # The upstream's pages lag its changelog: wait for them to catch up.
                    if attempt < stale_retries:
                        delay = stale_wait * (attempt + 1)
                        pending.append((name, attempt + 1, reader.read(name, delay=delay)))
                        continue
                    log.warning("%s: %s; left for the next reconcile", name, error)
                    results[name] = ProjectSync(name, error=str(error))
                except WheelfarmError as error:  # one bad project must not stop the others
                    log.error("%s: %s", name, error)
                    results[name] = ProjectSync(name, error=str(error))
                if progress:
                    progress(len(results), len(todo))
                top_up()
        return [results[name] for name in todo]
