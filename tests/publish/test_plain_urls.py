"""The regeneration's shortcuts change no page: a wheel's URL checked for quoting once by the
loader, and target words written as character references.

A wheel whose ``plain_url`` is set skips the quoting and escaping every renderer would do; the
pages must be byte for byte what they are without the flag. The loader sets it only for URLs
the renderers would leave as they are.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.publish.states import UPSTREAM, State
from tests.publish.test_pages import ARM, ARM64, demo, dom
from wheelfarm.publish import simple
from wheelfarm.publish import site_pages as pages
from wheelfarm.publish.html import ascii_html, local_href
from wheelfarm.publish.loader import load_project
from wheelfarm.publish.values import ProjectIndex, plain_path

DISTROS = {ARM: "debian-bookworm", ARM64: "debian-bullseye"}

PATHS = [
    # (path, plain: the same quoted for an href or a JSON url, and in HTML)
    ("/files/demo/demo-1.0-cp311-cp311-linux_armv7l.whl", True),
    ("/files/demo/demo_pkg-1.0~rc1-py3-none-any.whl", True),
    ("/files/demo/demo-1.0+local-py3-none-any.whl", False),  # '+': quoted in simple pages
    ("/files/demo/demo 1.0.whl", False),  # a space
    ("/files/demo/a&b.whl", False),  # escaped in HTML
    ("/files/demo/d\u00e9mo.whl", False),  # beyond ASCII
    ("//elsewhere.example/x.whl", False),  # another host
    ("files/demo/x.whl", False),  # not from the root
    ("/", False),
]


@pytest.mark.parametrize(("path", "plain"), PATHS)
def test_plain_path_accepts_only_paths_every_renderer_leaves_as_they_are(
    path: str, plain: bool
) -> None:
    assert plain_path(path) is plain
    if plain:
        assert local_href(path) == path


def _renders(project: ProjectIndex) -> list[bytes]:
    return [
        simple.project_html(project),
        simple.project_json(project),
        pages.render_project_page(project),
        pages.render_project_json(project),
        pages.render_badge(project),
    ]


def _with_plain_urls(project: ProjectIndex, plain: bool) -> ProjectIndex:
    releases = tuple(
        replace(r, files=tuple(replace(w, plain_url=plain) for w in r.files), flagged=None)
        for r in project.releases
    )
    return replace(project, releases=releases)


def test_pages_with_plain_urls_flagged_are_byte_for_byte_the_pages_without() -> None:
    project = demo(target_distros=DISTROS)
    assert any(r.files for r in project.releases)
    assert _renders(_with_plain_urls(project, True)) == _renders(_with_plain_urls(project, False))


def test_the_target_words_dots_are_references_in_the_page_and_dots_to_its_reader() -> None:
    page = pages.render_project_page(demo(target_distros=DISTROS))
    assert "\N{MIDDLE DOT}" not in page.decode()  # (its shortened reasons' ellipses stay)
    assert b"&#183;" in page
    words = [s.text for s in dom(page).all("span", "target-words")]
    assert words and all("\N{MIDDLE DOT}" in w for w in words)


@pytest.mark.parametrize(
    ("text", "html"),
    [
        ("Python 3.11 \N{MIDDLE DOT} 64-bit ARM", "Python 3.11 &#183; 64-bit ARM"),
        ("<b> & caf\u00e9", "&lt;b&gt; &amp; caf&#233;"),
        ("plain", "plain"),
    ],
)
def test_ascii_html_escapes_and_writes_non_ascii_as_references(text: str, html: str) -> None:
    assert ascii_html(text) == html


@pytest.fixture
def state(engine: Engine, tmp_path: Path) -> State:
    return State(engine, tmp_path)


def test_the_loader_flags_a_plain_url_and_not_one_with_a_local_version(state: State) -> None:
    state.target()
    for version in ("1.0", "1.1+local"):
        state.release("demo", version)
        state.import_wheel(f"demo-{version}-cp311-cp311-linux_armv7l.whl")
    with state.engine.connect() as connection:
        project = load_project(connection, "demo", upstream_simple_url=UPSTREAM)
    assert project is not None
    flags = {w.filename: w.plain_url for r in project.releases for w in r.files}
    assert flags == {
        "demo-1.0-cp311-cp311-linux_armv7l.whl": True,
        "demo-1.1+local-cp311-cp311-linux_armv7l.whl": False,
    }
    urls = [e["url"] for e in json.loads(simple.project_json(project))["files"]]
    assert urls == [
        "/files/demo/demo-1.0-cp311-cp311-linux_armv7l.whl",
        "/files/demo/demo-1.1%2Blocal-cp311-cp311-linux_armv7l.whl",
    ]
