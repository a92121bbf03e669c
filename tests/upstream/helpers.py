"""Small helpers shared by the follower's scenario tests."""

from __future__ import annotations

from tests.fixtures.fake_upstream import FakeUpstream
from wheelfarm.names import canonical
from wheelfarm.store.views import ProjectView, read_project
from wheelfarm.upstream.follow import Follower


def view(follower: Follower, name: str) -> ProjectView:
    with follower.engine.connect() as connection:
        return read_project(connection, canonical(name))


def files_of(follower: Follower, name: str) -> dict[str, list[str]]:
    return {
        version: [f.filename for f in release.files]
        for version, release in view(follower, name).releases.items()
    }


def script_early_remove(upstream: FakeUpstream) -> None:
    """Early history: a remove with a higher serial but a timestamp before the create."""
    upstream.add("early", None, "create", timestamp=1_000_000_500)
    upstream.add("early", "1.0", "add source file early-1.0.tar.gz", timestamp=1_000_000_501)
    upstream.add("early", None, "remove", timestamp=1_000_000_400)
