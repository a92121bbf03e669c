"""Fixtures for following a fake upstream served on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from tests.fixtures.fake_upstream import FakeUpstream
from wheelfarm.http import RetryPolicy, new_client
from wheelfarm.upstream.follow import Follower
from wheelfarm.upstream.pages import PageClient
from wheelfarm.upstream.prefetch import ChangelogSource

# Fast retries, and a client timeout well below the fake's injected hang (3 s).
POLICY = RetryPolicy(retries=3, initial_wait=0.01, max_wait=0.05)
TIMEOUT = 1.0


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream(max_rows=4) as fake:
        yield fake


@pytest.fixture
def follower(engine: Engine, upstream: FakeUpstream) -> Iterator[Follower]:
    """A follower of the fake upstream: real HTTP, real XML-RPC, no waiting between retries."""
    with new_client(TIMEOUT) as client:
        pages = PageClient(
            upstream.simple_url,
            lambda name: f"{upstream.base_url}/pypi/{name}/json",
            client,
            POLICY,
        )
        source = ChangelogSource(upstream.changelog_url, TIMEOUT, POLICY)
        yield Follower(engine, pages, source, sleep=lambda seconds: None)
