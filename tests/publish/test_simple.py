"""The simple API pages (PEP 503 HTML, PEP 691/700 JSON at 1.4), from real store states."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.publish.states import UPSTREAM, State
from wheelfarm.publish.incremental import publish_dirty
from wheelfarm.publish.loader import load_project, load_site
from wheelfarm.publish.regenerate import write_all
from wheelfarm.publish.simple import project_html, project_json, root_html, root_json
from wheelfarm.publish.values import ProjectIndex


class Links(HTMLParser):
    """Collects the anchors of a page (attributes unescaped) and checks tags balance."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[dict[str, str | None], str]] = []
        self.open: list[str] = []
        self.comments: list[str] = []
        self.meta: dict[str, str | None] = {}
        self._text: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "meta":
            values = dict(attrs)
            self.meta[str(values["name"])] = values["content"]
        elif tag not in ("br",):
            self.open.append(tag)
        if tag == "a":
            self.links.append((dict(attrs), ""))
            self._text = ""

    def handle_endtag(self, tag: str) -> None:
        assert self.open.pop() == tag
        if tag == "a":
            attrs, _ = self.links[-1]
            self.links[-1] = (attrs, self._text or "")
            self._text = None

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text += data

    def handle_comment(self, data: str) -> None:
        self.comments.append(data)


def parse(page: bytes) -> Links:
    links = Links()
    links.feed(page.decode())
    links.close()
    assert links.open == []
    return links


@pytest.fixture
def state(engine: Engine, tmp_path: Path) -> State:
    state = State(engine, tmp_path)
    state.target()
    return state


def load(state: State, name: str) -> ProjectIndex:
    with state.engine.connect() as connection:
        project = load_project(connection, name, upstream_simple_url=UPSTREAM)
    assert project is not None
    return project


def test_project_pages_carry_hashes_requires_python_yanks_and_metadata(state: State) -> None:
    state.release("foo", "1.0")
    state.release("foo", "2.0")
    state.release("foo", "3.0")
    state.yank("foo", "1.0", 'bad "quote" & <tag>')
    state.yank("foo", "2.0", None)
    one = state.import_wheel("foo-1.0-py3-none-any.whl", requires_python=">=3.8,<4")
    state.import_wheel("foo-2.0-py3-none-any.whl")
    state.import_wheel("foo-3.0-py3-none-any.whl")
    project = load(state, "foo")

    html = project_html(project)
    assert b'data-requires-python="&gt;=3.8,&lt;4"' in html
    page = parse(html)
    tracks = "https://index.example.org/simple/foo/"
    assert page.meta == {
        "pypi:repository-version": "1.4",
        "pypi:project-status": "active",
        "pypi:tracks": tracks,
    }
    assert f"SERIAL {project.serial}" in page.comments
    links = {text: attrs for attrs, text in page.links}
    assert set(links) == {f.filename for f in project.files}
    first = links["foo-1.0-py3-none-any.whl"]
    wheel = next(f for f in project.files if f.filename == one.name)
    assert first["href"] == f"/files/foo/{one.name}#sha256={wheel.sha256}"
    assert first["data-requires-python"] == ">=3.8,<4"
    assert first["data-yanked"] == 'bad "quote" & <tag>'
    assert first["data-core-metadata"] == f"sha256={wheel.metadata_sha256}"
    assert first["data-dist-info-metadata"] == first["data-core-metadata"]
    assert links["foo-2.0-py3-none-any.whl"]["data-yanked"] == ""
    assert "data-yanked" not in links["foo-3.0-py3-none-any.whl"]

    data = json.loads(project_json(project))
    assert data["meta"] == {
        "api-version": "1.4",
        "_last-serial": project.serial,
        "tracks": [tracks],
    }
    assert data["project-status"] == {"status": "active"}
    assert all(f["provenance"] is None for f in data["files"])  # PEP 740: present, null
    assert "data-provenance" not in first
    assert data["name"] == "foo"
    assert data["versions"] == ["1.0", "2.0", "3.0"]
    by_name = {f["filename"]: f for f in data["files"]}
    entry = by_name[one.name]
    assert entry["url"] == f"/files/foo/{one.name}"
    assert entry["hashes"] == {"sha256": wheel.sha256}
    assert entry["requires-python"] == ">=3.8,<4"
    assert entry["yanked"] == 'bad "quote" & <tag>'
    assert (
        entry["core-metadata"] == entry["dist-info-metadata"] == {"sha256": wheel.metadata_sha256}
    )
    assert entry["size"] == one.stat().st_size
    assert entry["upload-time"] == wheel.uploaded
    assert by_name["foo-2.0-py3-none-any.whl"]["yanked"] is True
    assert by_name["foo-3.0-py3-none-any.whl"]["yanked"] is False
    assert "requires-python" not in by_name["foo-3.0-py3-none-any.whl"]


def test_hostile_names_and_summaries_stay_text(state: State) -> None:
    state.release("evil", "1.0")
    state.event("<script>alert(1)</script>", None, "create")  # normalises to a name we never use
    state.summary("evil", "</a><script>x</script>")
    state.import_wheel("evil-1.0-py3-none-any.whl")
    with state.engine.connect() as connection:
        site = load_site(connection)
    assert [p.name for p in site.projects] == ["evil"]  # an unusable name is not published
    page = root_html(site)
    assert b"<script>" not in page
    assert parse(page).links == [({"href": "/simple/evil/"}, "evil")]
    data = json.loads(root_json(site))
    assert data["meta"] == {"api-version": "1.4", "_last-serial": site.serial}
    assert data["projects"] == [{"name": "evil", "_last-serial": site.projects[0].serial}]
    assert f"SERIAL {site.serial}" in parse(page).comments


def test_a_display_name_with_markup_is_escaped(state: State) -> None:
    state.release("foo", "1.0")
    project = load(state, "foo")
    hostile = ProjectIndex(
        name=project.name,
        display_name='<img src=x onerror="alert(1)">',
        summary=None,
        serial=7,
        upstream_url=project.upstream_url,
        targets=project.targets,
        releases=project.releases,
    )
    page = project_html(hostile)
    assert b"<img" not in page
    assert "Links for <img" in page.decode().replace("&lt;", "<")
    parse(page)


def test_a_quarantined_project_says_so_and_offers_no_files(state: State) -> None:
    """PEP 792: mirrored from the upstream, the status is on both forms, the files are gone."""
    state.release("foo", "1.0")
    wheel = state.import_wheel("foo-1.0-py3-none-any.whl")
    write_all(state.engine, state.tree, upstream_simple_url=UPSTREAM, base_url="http://x")
    state.event("foo", None, "project quarantined")
    publish_dirty(state.engine, state.tree, upstream_simple_url=UPSTREAM, base_url="http://x")
    pages = state.tree.simple / "foo"
    page = parse((pages / "index.html").read_bytes())
    assert page.meta["pypi:project-status"] == "quarantined"
    assert page.meta["pypi:repository-version"] == "1.4"
    assert page.links == []
    data = json.loads((pages / "index.json").read_bytes())
    assert data["project-status"] == {"status": "quarantined"}
    assert data["files"] == [] and data["versions"] == []
    assert data["meta"]["tracks"] == ["https://index.example.org/simple/foo/"]
    assert not wheel.exists()
    assert not (state.tree.project / "foo").exists()
    assert "foo" not in (state.tree.simple / "index.html").read_text()

    state.event("foo", None, "project quarantine cleared")
    publish_dirty(state.engine, state.tree, upstream_simple_url=UPSTREAM, base_url="http://x")
    data = json.loads((pages / "index.json").read_bytes())
    assert data["project-status"] == {"status": "active"}
    assert [f["filename"] for f in data["files"]] == [wheel.name]
