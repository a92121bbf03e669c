"""Wiring: build the store, clients and follower from :class:`Settings`, in one place."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from wheelfarm.config import Settings
from wheelfarm.http import RetryPolicy, new_client
from wheelfarm.store.database import open_store
from wheelfarm.upstream.follow import Follower
from wheelfarm.upstream.pages import PageClient
from wheelfarm.upstream.prefetch import ChangelogSource

__all__ = ["open_follower", "retry_policy"]


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(retries=settings.retries, initial_wait=settings.retry_wait)


@contextmanager
def open_follower(settings: Settings, *, with_changelog: bool) -> Iterator[Follower]:
    """A follower on the configured store and upstream; closes both when done."""
    engine = open_store(settings.database_url)
    client = new_client(settings.http_timeout)
    policy = retry_policy(settings)
    try:
        pages = PageClient(settings.simple_url, settings.json_api_url, client, policy)
        changelog = (
            ChangelogSource(settings.changelog_url, settings.http_timeout, policy)
            if with_changelog
            else None
        )
        yield Follower(engine, pages, changelog)
    finally:
        client.close()
        engine.dispose()
