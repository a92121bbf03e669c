"""The pages people read: project page, project JSON API, badge, home, search, sitemap, 404.

Every page is parsed (html.parser, ElementTree, json) and checked for what it shows, with values
built by hand, hostile ones included: the renderers are pure functions of the model values.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from html.parser import HTMLParser
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wheelfarm.farm.jobs import JobState
from wheelfarm.publish import site_pages as pages
from wheelfarm.publish.badges import GREEN, GREY, RED, badge_message, text_width
from wheelfarm.publish.project_page import REASON_CHARS
from wheelfarm.publish.values import (
    BuildCell,
    ProjectIndex,
    ReleaseIndex,
    SiteIndex,
    SiteProject,
    WheelFile,
)

ARM = "cp311-cp311-linux_armv7l"
ARM64 = "cp312-cp312-linux_aarch64"
TARGETS = (ARM, ARM64)
HOSTILE = "<script>alert(\"x\")</script> & 'quoted' </td><b>"
FAIL_REASON = "error: command 'gcc' failed: " + "x" * 200


# --- values ---------------------------------------------------------------------------------


def wheel(
    project: str, version: str, target: str, *, apt: tuple[str, ...] = (), build_id: int = 7
) -> WheelFile:
    filename = f"{project}-{version}-{target}.whl"
    return WheelFile(
        filename=filename,
        url=f"/files/{project}/{filename}",
        sha256="0123456789abcdef" * 4,
        size=123_456,
        target=target,
        tags=(target,),
        requires_python=">=3.9",
        requires_dist=("requests>=2", "numpy; extra == 'fast'"),
        metadata_sha256="fedcba9876543210" * 4,
        uploaded="2026-11-23T10:00:00.123456Z",
        build_id=build_id,
        apt_dependencies=apt,
        unresolved_libraries=("libodd.so.1",) if apt else (),
    )


def release(
    version: str,
    builds: dict[str, BuildCell],
    files: tuple[WheelFile, ...] = (),
    **changes: Any,
) -> ReleaseIndex:
    value = ReleaseIndex(
        version=version,
        released="2026-11-20T09:00:00Z",
        prerelease=False,
        yanked=False,
        yanked_reason=None,
        requires_python=">=3.9",
        skip=None,
        binary_only=False,
        builds=builds,
        files=files,
    )
    return replace(value, **changes)


def demo(**changes: Any) -> ProjectIndex:
    """A project with one release of each kind the page must show."""
    releases = (
        release(
            "2.0rc1",
            {
                ARM: BuildCell(ARM, JobState.BUILDING, None, 30),
                ARM64: BuildCell(ARM64, JobState.PENDING, None, None),
            },
            prerelease=True,
        ),
        release(
            "1.1",
            {
                ARM: BuildCell(ARM, JobState.BUILT, None, 21),
                ARM64: BuildCell(
                    ARM64, JobState.FAILED, FAIL_REASON, 22, category="compiler-error"
                ),
            },
            (wheel("demo", "1.1", ARM, apt=("libfoo1", "libbar2"), build_id=21),),
        ),
        release(
            "1.0",
            {
                ARM: BuildCell(ARM, JobState.BUILT, None, 11),
                ARM64: BuildCell(ARM64, JobState.BUILT, None, 12),
            },
            (wheel("demo", "1.0", ARM, build_id=11), wheel("demo", "1.0", ARM64, build_id=12)),
            yanked=True,
            yanked_reason="broken on 32-bit",
        ),
        release(
            "0.9", {ARM: BuildCell(ARM, JobState.SKIPPED, "needs a GPU", None)}, skip="too old"
        ),
        release("0.1", {}, binary_only=True),
    )
    value = ProjectIndex(
        name="demo",
        display_name="Demo",
        summary="A demo project",
        serial=42,
        upstream_url="https://index.example.org/simple/demo/",
        targets=TARGETS,
        releases=releases,
    )
    return replace(value, **changes)


def site(**changes: Any) -> SiteIndex:
    value = SiteIndex(
        serial=9,
        projects=(
            SiteProject("demo", "Demo", "A demo project", 5),
            SiteProject("numpy", "NumPy", None, 9),
        ),
        targets=TARGETS,
        counts={"projects": 2, "wheels": 12_345, "failed": 3, "odd_things": 1},
        failures={"compiler-error": 2, "out-of-memory": 1, "no-space": 0},
    )
    return replace(value, **changes)


# --- a small DOM from html.parser -----------------------------------------------------------

VOID = {"meta", "link", "img", "input", "br", "hr", "source"}


class Node:
    def __init__(self, tag: str, attrs: dict[str, str | None], parent: Node | None) -> None:
        self.tag = tag
        self.attrs = attrs
        self.parent = parent
        self.children: list[Node | str] = []

    @property
    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text for c in self.children)

    @property
    def classes(self) -> list[str]:
        return (self.attrs.get("class") or "").split()

    def all(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> list[Node]:
        found = []
        for child in self.children:
            if isinstance(child, str):
                continue
            if (
                (tag is None or child.tag == tag)
                and (cls is None or cls in child.classes)
                and all(child.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items())
            ):
                found.append(child)
            found.extend(child.all(tag, cls, **attrs))
        return found

    def one(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> Node:
        found = self.all(tag, cls, **attrs)
        assert len(found) == 1, (tag, cls, attrs, len(found))
        return found[0]


class Tree(HTMLParser):
    """Parses a page into Nodes, checking every element is closed where it was opened."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {}, None)
        self.current = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, dict(attrs), self.current)
        self.current.children.append(node)
        if tag not in VOID:
            self.current = node

    def handle_endtag(self, tag: str) -> None:
        assert self.current.tag == tag, f"</{tag}> closes <{self.current.tag}>"
        assert self.current.parent is not None
        self.current = self.current.parent

    def handle_data(self, data: str) -> None:
        self.current.children.append(data)


def dom(page: bytes) -> Node:
    parser = Tree()
    parser.feed(page.decode())
    parser.close()
    assert parser.current is parser.root, "unclosed elements"
    assert page.startswith(b"<!doctype html>")
    return parser.root


def hrefs(root: Node) -> list[str]:
    return [str(a.attrs["href"]) for a in root.all("a")]


def check_links(root: Node) -> None:
    """Every link is root-relative, an in-page anchor or http(s): never javascript: or a host
    the page made up."""
    for href in hrefs(root) + [str(n.attrs["src"]) for n in root.all("img") + root.all("script")]:
        assert re.match(r"(/(?!/)|#|https?://)", href), href


# --- the project page -----------------------------------------------------------------------


def test_releases_table_has_a_column_per_target_and_a_row_per_release() -> None:
    root = dom(pages.render_project_page(demo()))
    table = root.one("table", "releases")
    heads = [th.attrs.get("data-target") for th in table.one("thead").all("th")]
    assert heads == [None, None, *TARGETS]
    rows = table.one("tbody").all("tr")
    assert [r.attrs["data-version"] for r in rows] == ["2.0rc1", "1.1", "1.0", "0.9", "0.1"]
    for row in rows:
        cells = row.all("td", "status")
        assert [c.attrs["data-target"] for c in cells] == list(TARGETS)
    check_links(root)


def cell(root: Node, version: str, target: str) -> Node:
    row = root.one("tr", data_version=version)
    return row.one("td", "status", data_target=target)


def test_status_cells_say_what_happened_in_words_and_link_to_the_wheel_or_log() -> None:
    root = dom(pages.render_project_page(demo()))
    built = cell(root, "1.1", ARM)
    assert built.attrs["data-status"] == "built"
    assert "built" in built.text
    assert built.one("a").attrs["href"] == f"/files/demo/demo-1.1-{ARM}.whl"

    failed = cell(root, "1.1", ARM64)
    assert failed.attrs["data-status"] == "failed"
    assert failed.one("a").attrs["href"] == "/logs/22.txt"
    assert "failed" in failed.one("a").text
    assert failed.attrs["title"] == FAIL_REASON  # the whole reason as a tooltip
    category = failed.one("span", "category")
    assert category.text == "compiler-error"
    assert category.attrs["title"] == "the compiler refused the code"
    shown = failed.one("span", "reason").text
    assert shown.startswith("error: command 'gcc' failed")
    assert len(shown) == REASON_CHARS and shown.endswith("…")

    building = cell(root, "2.0rc1", ARM)
    assert building.attrs["data-status"] == "building" and "building" in building.text
    assert building.one("a").attrs["href"] == "/logs/30.txt"
    pending = cell(root, "2.0rc1", ARM64)
    assert pending.attrs["data-status"] == "pending" and "pending" in pending.text
    assert pending.all("a") == []

    skipped = cell(root, "0.9", ARM)
    assert skipped.attrs["data-status"] == "skipped"
    assert skipped.one("span", "reason").text == "needs a GPU"
    none = cell(root, "0.9", ARM64)
    assert none.attrs["data-status"] == "none" and none.text.strip() == "—"


def test_a_built_cell_without_a_wheel_links_to_its_log() -> None:
    project = demo(releases=(release("3.0", {ARM: BuildCell(ARM, JobState.BUILT, None, 99)}),))
    root = dom(pages.render_project_page(project))
    assert cell(root, "3.0", ARM).one("a").attrs["href"] == "/logs/99.txt"


def test_an_attempt_outcome_that_is_no_queue_state_shows_as_unknown() -> None:
    """A release no longer built keeps its last attempt's status, which may be none of the
    queue's states (a deferred or cancelled attempt): the page says "unknown" and the word."""
    deferred = BuildCell(ARM, "deferred", None, 97)
    project = demo(releases=(release("3.0", {ARM: deferred}),))
    root = dom(pages.render_project_page(project))
    unknown = cell(root, "3.0", ARM)
    assert unknown.attrs["data-status"] == "unknown"
    assert unknown.one("a").text == "deferred" and unknown.one("a").attrs["href"] == "/logs/97.txt"
    document = json.loads(pages.render_project_json(project))
    assert document["releases"]["3.0"]["builds"][ARM]["status"] == "deferred"
    assert document["releases"]["3.0"]["builds"][ARM]["log_url"] == "/logs/97.txt"


def test_builds_whose_log_is_not_kept_link_to_no_log() -> None:
    failed = BuildCell(ARM, JobState.FAILED, "no compiler", 98, has_log=False)
    built = BuildCell(ARM64, JobState.BUILT, None, 99, has_log=False)
    imported = replace(wheel("demo", "3.0", ARM64, build_id=99), has_log=False)
    project = demo(releases=(release("3.0", {ARM: failed, ARM64: built}, (imported,)),))
    root = dom(pages.render_project_page(project))
    assert cell(root, "3.0", ARM).all("a") == []
    assert cell(root, "3.0", ARM).attrs["title"] == "no compiler"
    assert cell(root, "3.0", ARM64).one("a").attrs["href"] == imported.url  # the wheel, still
    item = root.one("li", "file")
    assert [a.attrs["href"] for a in item.all("a")] == [imported.url]
    assert "no log kept" in item.text
    document = json.loads(pages.render_project_json(project))
    builds = document["releases"]["3.0"]["builds"]
    assert builds[ARM]["log_url"] is None and builds[ARM64]["log_url"] is None


def test_badges_for_pre_releases_yanks_binary_only_and_operator_skips() -> None:
    root = dom(pages.render_project_page(demo()))
    pre = root.one("tr", data_version="2.0rc1")
    assert pre.one("span", "badge-pre").text == "pre-release"
    yanked = root.one("tr", data_version="1.0")
    assert "yanked" in yanked.classes
    badge = yanked.one("span", "badge-yanked")
    assert badge.text == "yanked" and badge.attrs["title"] == "broken on 32-bit"
    assert yanked.one("span", "yanked-reason").text == "broken on 32-bit"
    assert root.one("tr", data_version="1.1").all("span", "badge") == []
    skipped = root.one("tr", data_version="0.9")
    assert skipped.one("span", "skip-reason").text == "too old"
    binary = root.one("tr", data_version="0.1")
    assert binary.one("span", "badge-binary").text == "binary only"


def test_install_names_the_newest_stable_release_and_its_system_packages() -> None:
    root = dom(pages.render_project_page(demo()))
    install = root.one("section", "install")
    assert install.one("a", href="#v-1.1").text == "1.1"  # not the rc, not the yanked 1.0
    code = install.one("code")
    assert [line.text for line in code.all("span")] == [
        "sudo apt install libbar2 libfoo1",
        "pip3 install Demo",
    ]
    assert code.text == "sudo apt install libbar2 libfoo1\npip3 install Demo"


def test_no_apt_line_without_system_packages() -> None:
    project = demo(releases=demo().releases[2:3])  # 1.0, yanked: nothing stable to install
    root = dom(pages.render_project_page(project))
    assert root.one("section", "install").text.count("no release to install") == 1

    bare = replace(demo().releases[2], yanked=False)
    root = dom(pages.render_project_page(demo(releases=(bare,))))
    code = root.one("section", "install").one("code")
    assert code.all("span", "apt-line") == []
    assert code.text == "pip3 install Demo"


def test_apt_lines_per_target_when_targets_need_different_packages() -> None:
    files = (
        wheel("demo", "1.0", ARM, apt=("libfoo1",)),
        wheel("demo", "1.0", ARM64, apt=("libfoo2",)),
    )
    project = demo(releases=(release("1.0", {}, files),))
    code = dom(pages.render_project_page(project)).one("pre", id="install-commands")
    assert code.text.splitlines() == [
        f"# on {ARM}",
        "sudo apt install libfoo1",
        f"# on {ARM64}",
        "sudo apt install libfoo2",
        "pip3 install Demo",
    ]


def test_only_pre_releases_install_with_pre() -> None:
    project = demo(releases=demo().releases[:1])
    code = dom(pages.render_project_page(project)).one("pre", id="install-commands")
    assert code.text == "pip3 install --pre Demo"


def test_file_details_and_links() -> None:
    root = dom(pages.render_project_page(demo()))
    groups = root.all("details", "release-files")
    assert [g.attrs["data-version"] for g in groups] == ["1.1", "1.0"]
    assert "open" in groups[0].attrs and "open" not in groups[1].attrs
    item = groups[0].one("li", "file")
    text = item.text
    for expected in ("123.5 kB", "0123456789abcdef" * 4, ">=3.9", "libbar2 libfoo1", "libodd.so.1"):
        assert expected in text
    assert item.one("p", "filename").one("a").attrs["href"] == f"/files/demo/demo-1.1-{ARM}.whl"
    assert "/logs/21.txt" in hrefs(item)

    links = root.one("section", "links")
    assert links.one("a", "upstream").attrs["href"] == "https://index.example.org/project/demo/"
    assert links.one("a", "simple").attrs["href"] == "/simple/demo/"
    assert links.one("a", "json").attrs["href"] == "/project/demo/json/"
    assert links.one("img").attrs["src"] == "/badges/demo.svg"
    snippet = links.one("code", id="badge-markdown").text
    assert snippet == "[![wheelfarm](/badges/demo.svg)](/project/demo/)"  # site.js adds the host


def test_a_project_without_releases() -> None:
    root = dom(pages.render_project_page(demo(releases=(), summary=None)))
    assert root.all("table") == []
    assert "No releases yet." in root.one("section", "releases-section").text
    assert root.all("p", "summary") == []


def test_hostile_values_are_escaped_everywhere_on_the_project_page() -> None:
    evil_release = release(
        HOSTILE,
        {
            HOSTILE: BuildCell(HOSTILE, JobState.FAILED, HOSTILE, 5),
            ARM: BuildCell(ARM, HOSTILE, None, 6),
        },
        (
            replace(
                wheel("demo", "1", HOSTILE, apt=(HOSTILE,)),
                filename=HOSTILE,
                url="javascript:alert(1)",
                sha256=HOSTILE,
                requires_python=HOSTILE,
                uploaded=HOSTILE,
            ),
        ),
        yanked=True,
        yanked_reason=HOSTILE,
        skip=HOSTILE,
    )
    project = demo(
        name=HOSTILE,
        display_name=HOSTILE,
        summary=HOSTILE,
        upstream_url="javascript:alert(1)",
        targets=(HOSTILE, ARM),
        releases=(replace(evil_release, version="9", yanked=False), evil_release),
    )
    page = pages.render_project_page(project)
    assert b"<script>" not in page and b"<b>" not in page
    root = dom(page)
    assert root.one("h1").text == HOSTILE
    assert root.one("p", "summary").text == HOSTILE
    assert [r.attrs["data-version"] for r in root.one("tbody").all("tr")] == ["9", HOSTILE]
    failed = cell(root, HOSTILE, HOSTILE)
    assert failed.attrs["title"] == HOSTILE
    assert cell(root, HOSTILE, ARM).attrs["data-status"] == "unknown"
    assert root.one("span", "yanked-reason").text == HOSTILE
    assert root.all("a", "upstream") == []  # a javascript: URL is never linked
    check_links(root)
    assert "javascript" not in " ".join(hrefs(root))
    for href in hrefs(root):
        assert not set(href) & set("<>\"' "), href  # path segments are quoted
    # the command people paste into a shell quotes what is not a plain name
    code = root.one("pre", id="install-commands").text
    assert "sudo apt install '<script>" in code and "pip3 install '<script>" in code


def test_project_page_is_deterministic() -> None:
    assert pages.render_project_page(demo()) == pages.render_project_page(demo())


# --- the project JSON API -------------------------------------------------------------------

OPT_STR = (str, type(None))


def check_schema(document: dict[str, Any]) -> None:
    """The schema documented in docs/index.md, key by key and type by type."""
    assert list(document) == [
        "meta",
        "name",
        "display_name",
        "summary",
        "serial",
        "upstream_url",
        "targets",
        "target_details",
        "releases",
        "downloads",
    ]
    assert document["meta"] == {"api_version": pages.API_VERSION}
    assert list(document["downloads"]) == ["last_30_days", "total"]
    assert all(isinstance(n, int) for n in document["downloads"].values())
    assert list(document["target_details"]) == document["targets"]
    for details in document["target_details"].values():
        assert list(details) == ["description", "architecture", "distro", "distro_name"]
        assert isinstance(details["description"], str)
        assert isinstance(details["architecture"], str)
        assert isinstance(details["distro"], OPT_STR) and isinstance(
            details["distro_name"], OPT_STR
        )
    assert isinstance(document["name"], str) and isinstance(document["display_name"], str)
    assert isinstance(document["summary"], OPT_STR) and isinstance(document["serial"], int)
    assert isinstance(document["upstream_url"], str)
    assert all(isinstance(t, str) for t in document["targets"])
    for version, rel in document["releases"].items():
        assert isinstance(version, str)
        assert list(rel) == [
            "released",
            "prerelease",
            "yanked",
            "yanked_reason",
            "skip",
            "binary_only",
            "requires_python",
            "builds",
            "files",
        ]
        for key in ("released", "yanked_reason", "skip", "requires_python"):
            assert isinstance(rel[key], OPT_STR)
        for key in ("prerelease", "yanked", "binary_only"):
            assert isinstance(rel[key], bool)
        assert list(rel["builds"]) == sorted(rel["builds"])
        for build in rel["builds"].values():
            assert list(build) == [
                "status",
                "reason",
                "log_url",
                "without_extension_modules",
                "build_number",
                "rebuild_reason",
                "category",
            ]
            assert isinstance(build["status"], str)
            assert isinstance(build["build_number"], int)
            assert isinstance(build["rebuild_reason"], OPT_STR)
            assert isinstance(build["category"], str if build["status"] == "failed" else type(None))
            assert isinstance(build["without_extension_modules"], bool)
            assert isinstance(build["reason"], OPT_STR) and isinstance(build["log_url"], OPT_STR)
        for file in rel["files"]:
            assert list(file) == [
                "filename",
                "url",
                "sha256",
                "size",
                "target",
                "tags",
                "requires_python",
                "dependencies",
                "uploaded",
                "metadata_sha256",
                "without_extension_modules",
            ]
            assert isinstance(file["size"], int)
            assert isinstance(file["without_extension_modules"], bool)
            assert list(file["dependencies"]) == ["pip", "apt", "unresolved"]
            for values in [file["tags"], *file["dependencies"].values()]:
                assert all(isinstance(v, str) for v in values)
            for key in ("filename", "url", "sha256", "target", "uploaded"):
                assert isinstance(file[key], str)
            for key in ("requires_python", "metadata_sha256"):
                assert isinstance(file[key], OPT_STR)


def test_project_json_follows_the_documented_schema() -> None:
    document = json.loads(pages.render_project_json(demo()))
    check_schema(document)
    assert list(document["releases"]) == ["2.0rc1", "1.1", "1.0", "0.9", "0.1"]  # newest first
    assert document["targets"] == list(TARGETS)
    stable = document["releases"]["1.1"]
    assert stable["builds"][ARM64] == {
        "status": "failed",
        "reason": FAIL_REASON,
        "log_url": "/logs/22.txt",
        "without_extension_modules": False,
        "build_number": 0,
        "rebuild_reason": None,
        "category": "compiler-error",
    }
    assert stable["builds"][ARM]["log_url"] == "/logs/21.txt"
    assert document["releases"]["2.0rc1"]["builds"][ARM64]["log_url"] is None
    (file,) = stable["files"]
    assert file["dependencies"] == {
        "pip": ["requests>=2", "numpy; extra == 'fast'"],
        "apt": ["libbar2", "libfoo1"],
        "unresolved": ["libodd.so.1"],
    }
    assert file["url"] == f"/files/demo/demo-1.1-{ARM}.whl"
    assert document["releases"]["1.0"]["yanked_reason"] == "broken on 32-bit"


def test_project_json_matches_the_example_in_the_docs() -> None:
    """The example in docs/index.md is real output: its keys and types pass the schema."""
    from pathlib import Path

    docs = Path(__file__).parents[2] / "docs" / "index.md"
    text = docs.read_text()
    start = text.index("<!-- project-json-example -->")
    block = text[start:].split("```json\n", 1)[1].split("```", 1)[0]
    check_schema(json.loads(block))


def test_project_json_is_deterministic_and_escapes_nothing_it_should_not() -> None:
    project = demo(display_name=HOSTILE, summary="naïve ✓")
    first = pages.render_project_json(project)
    assert first == pages.render_project_json(project)
    document = json.loads(first)
    assert document["display_name"] == HOSTILE and document["summary"] == "naïve ✓"
    assert "naïve ✓".encode() in first  # UTF-8, not \\u escapes


# --- the badge ------------------------------------------------------------------------------

SVG = "{http://www.w3.org/2000/svg}"


def svg(project: ProjectIndex) -> tuple[ET.Element, list[str]]:
    root = ET.fromstring(pages.render_badge(project))
    assert root.tag == f"{SVG}svg"
    texts = [t.text or "" for t in root.iter(f"{SVG}text")]
    return root, texts


def test_badge_lists_the_pythons_the_releases_are_built_for() -> None:
    files = (wheel("demo", "1.0", ARM), wheel("demo", "1.0", "cp39-cp39-linux_armv7l"))
    builds = {t: BuildCell(t, JobState.BUILT, None, 1) for t in (ARM, ARM64)}
    project = demo(releases=(release("1.0", builds, files),))
    root, texts = svg(project)
    assert texts[-1] == "built for cp39 cp311 cp312"
    assert root.findtext(f"{SVG}title") == "wheelfarm: built for cp39 cp311 cp312"
    assert GREEN in pages.render_badge(project).decode()
    # 1.1 is built for cp311, the (yanked) 1.0 for cp311 and cp312: every release counts.
    assert badge_message(demo()) == ("built for cp311 cp312", GREEN)


@pytest.mark.parametrize(
    ("newest", "expected"),
    [
        (JobState.PENDING, ("built for cp311", GREEN)),
        (JobState.FAILED, ("built for cp311", GREEN)),
        (JobState.BUILDING, ("built for cp311", GREEN)),
    ],
)
def test_badge_counts_every_release_built_not_only_the_newest(
    newest: JobState, expected: tuple[str, str]
) -> None:
    """The newest release not built (yet, or at all) does not hide the wheels of older ones."""
    builds = {ARM: BuildCell(ARM, newest, None, None)}
    older = release(
        "1.0", {ARM: BuildCell(ARM, JobState.BUILT, None, 1)}, (wheel("demo", "1.0", ARM),)
    )
    project = demo(releases=(release("2.0", builds), older))
    assert badge_message(project) == expected


def test_badge_failed_and_no_builds() -> None:
    failed = {t: BuildCell(t, JobState.FAILED, "no", 1) for t in TARGETS}
    assert badge_message(demo(releases=(release("1.0", failed),))) == ("failed", RED)
    half = {
        ARM: BuildCell(ARM, JobState.FAILED, "no", 1),
        ARM64: BuildCell(ARM64, JobState.PENDING, None, None),
    }
    assert badge_message(demo(releases=(release("1.0", half),))) == ("no builds", GREY)
    _, texts = svg(demo(releases=()))
    assert texts[-1] == "no builds"


def test_badge_escapes_and_grows_with_its_text() -> None:
    evil = f"{HOSTILE}-x-y"
    project = demo(releases=(release("1", {evil: BuildCell(evil, JobState.BUILT, None, 1)}),))
    root, texts = svg(project)
    assert texts[-1] == "built for " + HOSTILE
    short = ET.fromstring(pages.render_badge(demo()))
    assert int(root.attrib["width"]) > int(short.attrib["width"])
    assert text_width("mmmm") > text_width("iiii")


# --- home, search, packages.json, sitemap, 404, static ----------------------------------------


def test_home_shows_figures_targets_search_and_pip_setup() -> None:
    root = dom(pages.render_home(site()))
    figures = {
        f.attrs["data-key"]: (f.one("dd").text, f.one("dt").text) for f in root.all("div", "figure")
    }
    assert figures == {
        "projects": ("2", "projects"),
        "wheels": ("12,345", "wheels"),
        "failed": ("3", "builds failed"),
        "odd_things": ("1", "odd things"),
    }
    assert [f.attrs["data-key"] for f in root.all("div", "figure")][-1] == "odd_things"
    failures = [
        (f.attrs["data-category"], f.one("dd").text, f.one("dt").text)
        for f in root.one("section", "failures").all("div", "failure")
    ]
    assert failures == [  # in the categories' order; none shown that has no failure
        ("out-of-memory", "1", "out-of-memory ran out of memory"),
        ("compiler-error", "2", "compiler-error the compiler refused the code"),
    ]
    assert [c.text for c in root.one("ul", "targets").all("code")] == list(TARGETS)
    form = root.one("form", role="search")
    assert form.attrs["action"] == "/search/" and form.one("input").attrs["name"] == "q"
    setup = root.one("section", id="pip").text
    for command in ("--extra-index-url", "--index-strategy unsafe-best-match", "[[tool.uv.index]]",
                    "poetry source add --priority=explicit", "[[tool.pdm.source]]"):  # fmt: skip
        assert command in setup, command  # tests/publish/test_client_tools.py runs each
    check_links(root)


def test_home_escapes_targets() -> None:
    page = pages.render_home(site(targets=(HOSTILE,), counts={}))
    assert b"<script>" not in page
    root = dom(page)
    assert root.one("ul", "targets").one("code").text == HOSTILE
    assert root.one("ul", "targets").one("li").attrs["data-target"] == HOSTILE
    assert root.all("div", "figure") == []


def test_home_without_failures_has_no_failures_section_and_escapes_a_stored_category() -> None:
    assert dom(pages.render_home(site(failures={}))).all("section", "failures") == []
    page = pages.render_home(site(failures={HOSTILE: 1}))
    assert b"<script>" not in page
    assert dom(page).one("div", "failure").attrs["data-category"] == HOSTILE


def test_a_failed_cell_escapes_a_stored_category_and_an_untriaged_one_has_none() -> None:
    cells = {
        ARM: BuildCell(ARM, JobState.FAILED, "x", 1, category=HOSTILE),
        ARM64: BuildCell(ARM64, JobState.FAILED, "x", 2),
    }
    page = pages.render_project_page(demo(releases=(release("3.0", cells),)))
    assert b"<script>" not in page
    root = dom(page)
    assert cell(root, "3.0", ARM).one("span", "category").text == HOSTILE
    assert cell(root, "3.0", ARM64).all("span", "category") == []


def test_search_page_has_the_elements_its_script_uses() -> None:
    root = dom(pages.render_search_page(site()))
    search = root.one("input", id="search")
    assert search.attrs["name"] == "q" and search.attrs["type"] == "search"
    assert root.one("ul", id="results").children == []
    assert root.one(id="search-status").attrs["aria-live"] == "polite"
    scripts = [s.attrs["src"] for s in root.all("script")]
    assert any(str(s).startswith("/static/search.js?v=") for s in scripts)
    script = pages.static_files()["search.js"].decode()
    for element in ("search", "results", "search-status", "search-form"):
        assert f'getElementById("{element}")' in script
    assert "/packages.json" in script and "innerHTML" not in script


def test_packages_json_lists_every_project_for_the_search() -> None:
    evil = SiteProject(HOSTILE, HOSTILE, HOSTILE, 1)
    document = json.loads(pages.render_packages_json(site(projects=(*site().projects, evil))))
    assert document == [
        ["demo", "Demo", "A demo project", 0, 0],
        ["numpy", "NumPy", "", 0, 0],
        [HOSTILE, HOSTILE, HOSTILE, 0, 0],
    ]


def test_sitemap_lists_home_search_and_every_project_as_escaped_absolute_urls() -> None:
    evil = SiteProject("a&b<c>", "x", None, 1)
    sitemap = pages.render_sitemap(
        site(projects=(*site().projects, evil)), "https://index.example.org/a&b/"
    )
    assert list(sitemap) == ["sitemap.xml"]
    root = ET.fromstring(sitemap["sitemap.xml"])
    ns = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
    assert root.tag == f"{ns}urlset"
    assert [loc.text for loc in root.iter(f"{ns}loc")] == [
        "https://index.example.org/a&b/",
        "https://index.example.org/a&b/search/",
        "https://index.example.org/a&b/project/demo/",
        "https://index.example.org/a&b/project/numpy/",
        "https://index.example.org/a&b/project/a%26b%3Cc%3E/",
    ]


def test_sitemap_beyond_one_file_is_an_index_of_parts() -> None:
    projects = tuple(SiteProject(f"p{n}", f"p{n}", None, 1) for n in range(4))
    sitemap = pages.render_sitemap(site(projects=projects), "https://index.example.org", per_file=2)
    ns = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
    index = ET.fromstring(sitemap["sitemap.xml"])
    assert index.tag == f"{ns}sitemapindex"
    assert [loc.text for loc in index.iter(f"{ns}loc")] == [
        f"https://index.example.org/sitemap-{n}.xml" for n in (1, 2, 3)
    ]
    parts = [ET.fromstring(sitemap[f"sitemap-{n}.xml"]) for n in (1, 2, 3)]
    assert all(part.tag == f"{ns}urlset" for part in parts)
    assert [[loc.text for loc in part.iter(f"{ns}loc")] for part in parts] == [
        ["https://index.example.org/", "https://index.example.org/search/"],
        ["https://index.example.org/project/p0/", "https://index.example.org/project/p1/"],
        ["https://index.example.org/project/p2/", "https://index.example.org/project/p3/"],
    ]


def test_not_found_page() -> None:
    root = dom(pages.render_not_found())
    assert root.one("h1").text == "Not found"
    assert root.one("form", role="search").attrs["action"] == "/search/"
    assert "/" in hrefs(root)


@pytest.mark.parametrize(
    "render",
    [
        lambda: pages.render_project_page(demo()),
        lambda: pages.render_home(site()),
        lambda: pages.render_search_page(site()),
        pages.render_not_found,
    ],
)
def test_pages_use_only_their_own_static_files(render: Any) -> None:
    root = dom(render())
    files = pages.static_files()
    used = [n.attrs["href"] for n in root.all("link") if n.attrs.get("rel") != "alternate"]
    used += [n.attrs["src"] for n in root.all("script")]
    for url in used:
        match = re.fullmatch(r"/static/([a-z.]+)\?v=[0-9a-f]{10}", str(url))
        assert match and match[1] in files, url
    check_links(root)


def test_static_files_are_self_contained() -> None:
    files = pages.static_files()
    assert set(files) >= {"style.css", "search.js", "site.js"}
    for name, data in files.items():
        text = data.decode()
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", ""), name
        assert "https://" not in text and "@import" not in text, name


# --- any values at all ----------------------------------------------------------------------

text = st.text(max_size=20)
cells = st.builds(
    BuildCell,
    target=text,
    status=st.sampled_from(["built", "failed", "pending", "building", "skipped", "odd"]),
    reason=st.none() | text,
    build_id=st.none() | st.integers(0, 10**9),
)
wheels = st.builds(
    WheelFile,
    filename=text,
    url=text,
    sha256=text,
    size=st.integers(0, 10**12),
    target=text,
    tags=st.lists(text, max_size=2).map(tuple),
    requires_python=st.none() | text,
    requires_dist=st.lists(text, max_size=2).map(tuple),
    metadata_sha256=st.none() | text,
    uploaded=text,
    build_id=st.integers(0, 10**9),
    apt_dependencies=st.lists(text, max_size=2).map(tuple),
    unresolved_libraries=st.lists(text, max_size=2).map(tuple),
)
releases = st.builds(
    ReleaseIndex,
    version=text,
    released=st.none() | text,
    prerelease=st.booleans(),
    yanked=st.booleans(),
    yanked_reason=st.none() | text,
    requires_python=st.none() | text,
    skip=st.none() | text,
    binary_only=st.booleans(),
    builds=st.dictionaries(text, cells, max_size=3),
    files=st.lists(wheels, max_size=3).map(tuple),
)
projects = st.builds(
    ProjectIndex,
    name=text,
    display_name=text,
    summary=st.none() | text,
    serial=st.integers(0, 10**9),
    upstream_url=text,
    targets=st.lists(text, max_size=3, unique=True).map(tuple),
    releases=st.lists(releases, max_size=3, unique_by=lambda r: r.version).map(tuple),
)


@settings(max_examples=60, deadline=None)
@given(projects)
def test_any_project_renders_to_well_formed_pages(project: ProjectIndex) -> None:
    root = dom(pages.render_project_page(project))
    assert root.one("h1").text == project.display_name
    check_links(root)
    document = json.loads(pages.render_project_json(project))
    assert document == json.loads(json.dumps(pages.project_json(project)))
    check_schema(document)
    ET.fromstring(pages.render_badge(project))
