"""Settings → the pieces every command needs: the store, the follower, the retry policy,
the index's writes, a builder's client.

Every command imports this module, and most only open the store: what only following,
publishing or building needs (httpx, the publisher, the builder's client) is imported in the
function that builds it, so ``wheelfarm targets list`` does not pay for them
(benchmarks/cli_startup.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine

from wheelfarm.config import Settings
from wheelfarm.errors import ConfigError, WheelfarmError
from wheelfarm.guards import SpaceWatch, disk_full
from wheelfarm.store.database import StoreMissing, open_store

if TYPE_CHECKING:
    import httpx

    from wheelfarm.builder.client import MasterClient
    from wheelfarm.http import ResponseLimits, RetryPolicy
    from wheelfarm.publish.write_report import WriteReport
    from wheelfarm.upstream.follow import Follower

__all__ = [
    "LOCAL_BUILDER",
    "builder_client",
    "follow_rounds",
    "open_configured_store",
    "open_follower",
    "publish_index",
    "response_limits",
    "retry_policy",
    "schedule_synced",
    "store_transaction",
]

log = logging.getLogger(__name__)

LOCAL_BUILDER = "local"
"""The name ``up`` registers its own builder under (its token is made afresh at each start)."""


def retry_policy(settings: Settings) -> RetryPolicy:
    from wheelfarm.http import RetryPolicy

    return RetryPolicy(retries=settings.retries, initial_wait=settings.retry_wait)


def response_limits(settings: Settings) -> ResponseLimits:
    """How much of an upstream answer is read, in bytes and seconds."""
    from wheelfarm.http import ResponseLimits

    return ResponseLimits(settings.max_upstream_response_bytes, settings.upstream_deadline_seconds)


def open_configured_store(settings: Settings, *, existing: bool = False) -> Engine:
    """The configured store; ``existing`` (commands that only read) makes none where none is.

    A missing one is a :class:`ConfigError` that says where we looked and how to point
    wheelfarm at the right place, since the usual cause is a command run from another folder.
    """
    try:
        return open_store(settings.database_url, create=not existing)
    except StoreMissing as error:
        if settings.database:
            setting, value, how = "database", error.where, "--database or WHEELFARM_DATABASE"
        else:
            setting, value = "data_dir", str(settings.data_dir)
            how = "--data-dir, WHEELFARM_DATA_DIR or data_dir in wheelfarm.toml"
        raise ConfigError(
            setting,
            value,
            f"{error} (looked from {Path.cwd()}); this command does not create one: "
            f"point wheelfarm at your data with {how}",
        ) from None


@contextmanager
def store_transaction(settings: Settings, *, existing: bool = False) -> Iterator[Connection]:
    """One transaction on the configured store, which is closed afterwards.

    ``existing``: the command only reads (or changes what must already be there), so a
    missing database is an error rather than a new, empty one.
    """
    engine = open_configured_store(settings, existing=existing)
    try:
        with engine.begin() as connection:
            yield connection
    finally:
        engine.dispose()


@contextmanager
def open_follower(
    settings: Settings, *, with_changelog: bool, existing: bool = False
) -> Iterator[Follower]:
    """A follower on the configured store and upstream; closes both when done.

    ``existing`` as for :func:`store_transaction`.
    """
    from wheelfarm.http import new_client
    from wheelfarm.upstream.follow import Follower
    from wheelfarm.upstream.pages import PageClient
    from wheelfarm.upstream.prefetch import ChangelogSource

    engine = open_configured_store(settings, existing=existing)
    limits = response_limits(settings)
    client = new_client(settings.http_timeout, limits)
    policy = retry_policy(settings)
    try:
        pages = PageClient(settings.simple_url, settings.json_api_url, client, policy)
        changelog = (
            ChangelogSource(settings.changelog_url, settings.http_timeout, policy, limits)
            if with_changelog
            else None
        )
        yield Follower(
            engine,
            pages,
            changelog,
            workers=settings.reconcile_workers,
            missing_page_grace=settings.missing_page_grace_seconds,
        )
    finally:
        client.close()
        engine.dispose()


def schedule_synced(engine: Engine, names: Iterable[str], *, urgent: bool) -> tuple[int, int]:
    """Queue the builds the synced projects now need, for every configured target.

    Returns (builds queued, targets configured); with no target nothing is queued.
    """
    from wheelfarm.farm.jobs import schedule_project
    from wheelfarm.farm.registry import list_targets
    from wheelfarm.names import canonical

    with engine.begin() as connection:
        configured = list_targets(connection)
        if not configured:
            return 0, 0
        now = time.time()
        pending = sum(
            schedule_project(connection, canonical(name), configured, now=now, urgent=urgent)
            for name in names
        )
    return pending, len(configured)


def follow_rounds(
    follower: Follower,
    one_round: Callable[[Follower], object],
    poll_seconds: float,
    on_error: Callable[[WheelfarmError], None],
    space: SpaceWatch | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Run ``one_round`` every ``poll_seconds`` until ``stop`` is set (or an exception ends it).

    A round that fails with a wheelfarm error (the upstream down past every retry) goes to
    ``on_error`` and is tried again after the interval; what earlier rounds applied stays.
    With ``space``, a round that finds the disk full pauses (:class:`SpaceWatch`) instead of
    ending the process, and no round runs until there is room again.
    """
    stop = stop or threading.Event()
    while not stop.is_set():
        if space is None or not space.paused or space.space_back():
            try:
                one_round(follower)
            except Exception as error:
                if space is not None and disk_full(error):
                    space.full("the database")
                elif isinstance(error, WheelfarmError):
                    on_error(error)
                else:
                    raise
        stop.wait(poll_seconds)


def publish_index(
    settings: Settings, *, everything: bool, progress: Callable[[int, int], None] | None = None
) -> WriteReport:
    """Write the index: the projects changed since the last write, or (``everything``) all."""
    from wheelfarm.publish.incremental import publish_dirty
    from wheelfarm.publish.regenerate import write_all
    from wheelfarm.publish.scheduler import tree_of

    engine = open_configured_store(settings, existing=True)
    tree = tree_of(settings)
    upstream, base = settings.simple_url, settings.site_url
    silence = settings.builder_silence_minutes * 60
    try:
        if everything:
            return write_all(
                engine,
                tree,
                upstream_simple_url=upstream,
                base_url=base,
                progress=progress,
                unserved_silence_seconds=silence,
            )
        return publish_dirty(
            engine,
            tree,
            upstream_simple_url=upstream,
            base_url=base,
            unserved_silence_seconds=silence,
        )
    finally:
        engine.dispose()


def builder_client(settings: Settings, master: str, token: str, http: httpx.Client) -> MasterClient:
    """A builder's client of the master's API, retrying as the settings say."""
    from wheelfarm.builder.client import MasterClient

    return MasterClient(master, token, http, retry_policy(settings))
