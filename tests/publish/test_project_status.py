"""PEP 792 project status, from the upstream's pages to ours: followed, stored, published, and
honoured by a real installer (a quarantined project offers nothing to install)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, func, select

from tests.fixtures.fake_upstream import FakeUpstream
from tests.publish.states import State
from tests.publish.test_clients import clean_env
from wheelfarm.farm.jobs import schedule_project
from wheelfarm.farm.registry import list_targets
from wheelfarm.http import RetryPolicy, new_client
from wheelfarm.names import canonical
from wheelfarm.publish.regenerate import write_all
from wheelfarm.publish.simple import JSON_CONTENT_TYPE
from wheelfarm.store.schema import jobs
from wheelfarm.upstream.follow import Follower
from wheelfarm.upstream.pages import PageClient
from wheelfarm.upstream.prefetch import ChangelogSource
from wheelfarm.web.runner import serve_index_in_thread

POLICY = RetryPolicy(retries=2, initial_wait=0.01, max_wait=0.05)

# (project, status the upstream's page states (None: none), its reason)
PROJECTS = (
    ("plain", None, None),
    ("old", "archived", None),
    ("legacy", "deprecated", "use <plain> & be happy"),
    ("bad", "quarantined", "malware"),
)


class _Meta(HTMLParser):
    """The ``<meta name=... content=...>`` pairs and the link texts of a simple page."""

    def __init__(self) -> None:
        super().__init__()
        self.meta: dict[str, str] = {}
        self.links: list[str] = []
        self._in_link = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "meta" and found.get("name"):
            self.meta[str(found["name"])] = str(found.get("content"))
        self._in_link = tag == "a"

    def handle_data(self, data: str) -> None:
        if self._in_link:
            self.links.append(data)
            self._in_link = False


def _follow(engine: Engine, upstream: FakeUpstream) -> None:
    """What ``wheelfarm follow`` does once: the changelog, then the pages it made dirty."""
    with new_client(10) as client:
        pages = PageClient(
            upstream.simple_url, lambda n: f"{upstream.base_url}/pypi/{n}/json", client, POLICY
        )
        source = ChangelogSource(upstream.changelog_url, 10, POLICY)
        follower = Follower(engine, pages, source, sleep=lambda seconds: None)
        follower.catch_up()
        results = follower.sync_projects(follower.dirty_projects())
    assert all(result.error is None for result in results), results


@dataclass
class Served:
    url: str  # our index server
    upstream_simple_url: str  # what our pages' PEP 708 "tracks" start with


@pytest.fixture
def served(engine: Engine, tmp_path: Path) -> Iterator[Served]:
    """The four projects followed from a fake upstream, each with a wheel of ours, then the
    statuses stated upstream (the quarantine also as its changelog event), followed again."""
    state = State(engine, tmp_path)
    state.target()
    with FakeUpstream() as upstream:
        for name, _, _ in PROJECTS:
            upstream.create(name)
            upstream.add_file(name, "1.0", f"{name}-1.0.tar.gz")
        _follow(engine, upstream)
        for name, _, _ in PROJECTS:
            state.import_wheel(f"{name}-1.0-py3-none-any.whl")
            state.schedule(name)
        for name, status, reason in PROJECTS:
            if status is not None:
                upstream.set_status(name, status, reason)
        upstream.quarantine_project("bad")
        _follow(engine, upstream)
        # The status needs no event: a page read finds it (the first one for "bad" came with
        # its quarantine event); an archival is seen when the project's page is next read.
        for name in ("old", "legacy"):
            assert _follow_named(engine, upstream, name)
        write_all(engine, state.tree, upstream_simple_url=upstream.simple_url, base_url="")
        tracks = upstream.simple_url
    server = serve_index_in_thread(state.tree.root)
    yield Served(server.url, tracks)
    server.stop()


def _follow_named(engine: Engine, upstream: FakeUpstream, name: str) -> bool:
    with new_client(10) as client:
        pages = PageClient(
            upstream.simple_url, lambda n: f"{upstream.base_url}/pypi/{n}/json", client, POLICY
        )
        (result,) = Follower(engine, pages).sync_projects([name])
    return result.error is None


@pytest.mark.parametrize(("name", "status", "reason"), PROJECTS)
def test_our_simple_pages_state_the_upstreams_status_in_both_forms(
    served: Served, name: str, status: str | None, reason: str | None
) -> None:
    url = f"{served.url}/simple/{name}/"
    expected_files = [] if status == "quarantined" else [f"{name}-1.0-py3-none-any.whl"]
    with httpx.Client(timeout=10) as http:
        page = http.get(url, headers={"Accept": JSON_CONTENT_TYPE}).json()
        html = http.get(url, headers={"Accept": "text/html"}).text
    stated = {"status": status or "active"} | ({"reason": reason} if reason else {})
    assert page["project-status"] == stated
    assert [f["filename"] for f in page["files"]] == expected_files
    assert all(f["provenance"] is None for f in page["files"])  # PEP 740: present, null
    assert page["meta"]["tracks"] == [f"{served.upstream_simple_url}{name}/"]
    parsed = _Meta()
    parsed.feed(html)
    assert parsed.meta["pypi:repository-version"] == "1.4"
    assert parsed.meta["pypi:project-status"] == (status or "active")
    assert parsed.meta.get("pypi:project-status-reason") == reason
    assert parsed.meta["pypi:tracks"] == f"{served.upstream_simple_url}{name}/"
    assert parsed.links == expected_files


@pytest.mark.parametrize(
    ("name", "notice"),
    [("old", "Archived"), ("legacy", "Deprecated"), ("plain", None)],
)
def test_the_project_page_gives_an_archived_or_deprecated_notice(
    served: Served, name: str, notice: str | None
) -> None:
    text = httpx.get(f"{served.url}/project/{name}/", timeout=10).text
    if notice is None:
        assert "status-notice" not in text
    else:
        assert f'data-project-status="{notice.lower()}"><strong>{notice}:' in text
    if name == "legacy":
        assert "use &lt;plain&gt; &amp; be happy" in text


def test_a_quarantined_project_has_no_project_page_and_no_build(
    served: Served, engine: Engine
) -> None:
    assert httpx.get(f"{served.url}/project/bad/", timeout=10).status_code == 404
    assert httpx.get(f"{served.url}/files/bad/bad-1.0-py3-none-any.whl").status_code == 404
    with engine.begin() as connection:
        schedule_project(connection, canonical("bad"), list_targets(connection), now=0.0)
        pending = connection.execute(
            select(func.count()).where(jobs.c.project == "bad", jobs.c.state == "pending")
        ).scalar_one()
    assert pending == 0


def test_pip_cannot_install_a_quarantined_project_but_can_an_archived_one(
    served: Served, tmp_path: Path
) -> None:
    def download(name: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(tmp_path / name),
             "--index-url", f"{served.url}/simple/", name],
            env=clean_env(tmp_path), capture_output=True, text=True, timeout=300,
        )  # fmt: skip

    refused = download("bad")
    assert refused.returncode != 0
    assert "No matching distribution found for bad" in refused.stderr
    fetched = download("old")
    assert fetched.returncode == 0, fetched.stderr
    assert [p.name for p in (tmp_path / "old").iterdir()] == ["old-1.0-py3-none-any.whl"]
