"""Project pages: PEP 691 pages and JSON API pages validated whole, and fetched over real HTTP."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fixtures.fake_upstream import FakeUpstream
from wheelfarm.errors import MalformedResponse, UpstreamError
from wheelfarm.http import RetryPolicy, new_client
from wheelfarm.names import NormalizedName, canonical
from wheelfarm.upstream.pages import (
    PageClient,
    UpstreamFile,
    UpstreamProject,
    parse_project,
    version_from_filename,
)

URL = "http://127.0.0.1:9/simple/foo-bar/"
SHA = "0123456789abcdef" * 4
# Fast retries: the fake's 429 asks for a 1 s wait, max_wait caps it.
POLICY = RetryPolicy(retries=2, initial_wait=0.01, max_wait=0.05)


def simple_file(filename: str, **overrides: Any) -> dict[str, Any]:
    """A PEP 691 file entry with every key valid; ``overrides`` replace or add keys."""
    entry: dict[str, Any] = {
        "filename": filename,
        "url": f"http://127.0.0.1:9/files/{filename}",
        "hashes": {"sha256": SHA},
        "requires-python": None,
        "size": 10,
        "upload-time": "2020-09-13T12:26:40.000000Z",
        "yanked": False,
    }
    entry.update(overrides)
    return entry


def page(*files: Any, **overrides: Any) -> dict[str, Any]:
    """A PEP 691 project page for foo-bar holding ``files``."""
    result: dict[str, Any] = {
        "meta": {"api-version": "1.1", "_last-serial": 9},
        "name": "foo-bar",
        "files": list(files),
    }
    result.update(overrides)
    return result


def upstream_file(filename: str, version: str, **overrides: Any) -> UpstreamFile:
    values: dict[str, Any] = {
        "filename": filename,
        "version": version,
        "sha256": SHA,
        "size": 10,
        "upload_time": "2020-09-13T12:26:40.000000Z",
        "requires_python": None,
        "yanked": False,
        "yanked_reason": None,
    }
    values.update(overrides)
    return UpstreamFile(**values)


# --------------------------------------------------------------------------- parse_project


def test_valid_page_and_json_api_make_the_project() -> None:
    raw_page = page(
        simple_file("foo_bar-1.0-py3-none-any.whl", **{"requires-python": ">=3.8"}),
        simple_file("foo_bar-1.0.tar.gz"),
        simple_file("foo_bar-2.0.tar.gz", yanked="broken build"),
        simple_file("foo-bar-nightly.zip", yanked=True),  # only the API can place it
        versions=["1.0", "2.0", "3.0", "4.0"],  # 4.0 is a release without files
    )
    api = {
        "info": {"name": "Foo.Bar", "summary": "Bars of foo"},
        "last_serial": 9,
        "releases": {
            "1.0": [
                {"filename": "foo_bar-1.0-py3-none-any.whl"},
                {"filename": "foo_bar-1.0.tar.gz"},
            ],
            "2.0": [{"filename": "foo_bar-2.0.tar.gz"}],
            "3.0": [{"filename": "foo-bar-nightly.zip"}],
            "4.0": [],
        },
    }
    assert parse_project(URL, raw_page, 9, api) == UpstreamProject(
        name=canonical("foo-bar"),
        display_name="Foo.Bar",
        summary="Bars of foo",
        serial=9,
        versions=("1.0", "2.0", "3.0", "4.0"),
        files=(
            upstream_file("foo_bar-1.0-py3-none-any.whl", "1.0", requires_python=">=3.8"),
            upstream_file("foo_bar-1.0.tar.gz", "1.0"),
            upstream_file("foo_bar-2.0.tar.gz", "2.0", yanked=True, yanked_reason="broken build"),
            upstream_file("foo-bar-nightly.zip", "3.0", yanked=True),
        ),
    )


def test_json_api_placement_wins_over_the_filename() -> None:
    """The API knows the upstream's spelling of the version; the filename may be normalised."""
    api = {"releases": {"1.00": [{"filename": "foo_bar-1.0.tar.gz"}]}}
    project = parse_project(URL, page(simple_file("foo_bar-1.0.tar.gz")), 9, api)
    assert [f.version for f in project.files] == ["1.00"]
    assert project.versions == ("1.00",)


def test_without_json_api_files_are_placed_by_filename() -> None:
    raw_page = page(
        simple_file("foo_bar-1.0-py3-none-any.whl"),
        simple_file("foo_bar-1.1.tar.gz"),
        simple_file("Foo-Bar-0.9.zip"),  # legacy sdist spelling
        simple_file("foo-bar-0.1.tar.bz2"),  # legacy suffix, not PEP 625
    )
    project = parse_project(URL, raw_page, 9, None)
    assert [(f.filename, f.version) for f in project.files] == [
        ("foo_bar-1.0-py3-none-any.whl", "1.0"),
        ("foo_bar-1.1.tar.gz", "1.1"),
        ("Foo-Bar-0.9.zip", "0.9"),
        ("foo-bar-0.1.tar.bz2", "0.1"),
    ]
    # PEP 700 "versions" is optional: without it the files say which releases exist.
    assert project.versions == ("0.1", "0.9", "1.0", "1.1")
    assert (project.display_name, project.summary) == ("foo-bar", None)


def test_versions_also_come_from_the_api_when_the_page_has_none() -> None:
    api = {"releases": {"0.5": [], "1.0": [{"filename": "foo_bar-1.0.tar.gz"}]}}
    project = parse_project(URL, page(simple_file("foo_bar-1.0.tar.gz")), 9, api)
    assert project.versions == ("0.5", "1.0")


@pytest.mark.parametrize(
    ("yanked", "expected"),
    [
        (False, (False, None)),
        (True, (True, None)),
        ("security hole", (True, "security hole")),
    ],
)
def test_yanked_is_a_flag_or_a_reason(
    yanked: bool | str, expected: tuple[bool, str | None]
) -> None:
    project = parse_project(URL, page(simple_file("foo_bar-1.0.tar.gz", yanked=yanked)), 9, None)
    assert [(f.yanked, f.yanked_reason) for f in project.files] == [expected]


def test_optional_file_keys_may_be_absent() -> None:
    entry = {"filename": "foo_bar-1.0.tar.gz", "url": "x", "hashes": {}}
    project = parse_project(URL, page(entry), 9, None)
    assert project.files == (
        UpstreamFile("foo_bar-1.0.tar.gz", "1.0", None, None, None, None, False, None),
    )


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("foo_bar-1.0-py3-none-any.whl", "1.0"),
        ("foo_bar-1.0-cp311-cp311-manylinux_2_17_x86_64.whl", "1.0"),
        ("foo_bar-2.0rc1.tar.gz", "2.0rc1"),
        ("Foo-Bar-1.0.zip", "1.0"),
        ("foo-bar-1.0.tgz", "1.0"),
        ("foo.bar-1.0.tar.bz2", "1.0"),
        ("foo-bar-1.0.tar", "1.0"),
        ("foo-bar-2004d.tar.gz", "2004d"),  # legacy version, not PEP 440
        ("foo-bar.tar.gz", None),  # no version at all
        ("foo-bar-1.0.exe", None),  # a bdist_wininst installer
        ("foo_bar-1.0-py2.7.egg", None),  # an egg
        ("baz-1.0.tar.bz2", None),  # a legacy sdist of another project
        pytest.param(
            "baz-1.0.tar.gz",
            None,
        ),  # a PEP 625 sdist of another project
        ("foo-bar-1.0-beta.tar.bz2", None),  # a hyphen in the version cannot be told apart
        ("foo_bar-1.0-py3-none.whl", None),  # a wheel name missing its platform tag
    ],
)
def test_version_from_filename(filename: str, expected: str | None) -> None:
    assert version_from_filename(canonical("foo-bar"), filename) == expected


@pytest.mark.parametrize(
    ("raw_page", "api", "problems"),
    [
        # not a JSON object
        ([], None, ["not a JSON object"]),
        # no name
        ({"files": []}, None, ["name None is not a name"]),
        # no files list
        ({"name": "foo-bar"}, None, ["no 'files' list"]),
        # files is an object
        ({"name": "foo-bar", "files": {}}, None, ["no 'files' list"]),
        # a file that is not an object
        (page("foo_bar-1.0.tar.gz"), None, ["files[0]: expected an object"]),
        # a filename with a path in it
        (page(simple_file("../foo_bar-1.0.tar.gz")), None, ["files[0].filename"]),
        # no filename
        (page({"hashes": {}}), None, ["files[0].filename: None"]),
        # sha256 too short
        (page(simple_file("foo_bar-1.0.tar.gz", hashes={"sha256": "abc"})), None, ["sha256"]),
        # sha256 of the right length but not hex
        (page(simple_file("foo_bar-1.0.tar.gz", hashes={"sha256": "g" * 64})), None, ["sha256"]),
        # negative size
        (page(simple_file("foo_bar-1.0.tar.gz", size=-1)), None, ["size -1"]),
        # a boolean size
        (page(simple_file("foo_bar-1.0.tar.gz", size=True)), None, ["size True"]),
        # yanked as a number
        (page(simple_file("foo_bar-1.0.tar.gz", yanked=1)), None, ["yanked 1"]),
        # requires-python not a string
        (
            page(simple_file("foo_bar-1.0.tar.gz", **{"requires-python": 3})),
            None,
            ["requires-python: expected a string or null, got 3"],
        ),
        # upload-time not a string
        (
            page(simple_file("foo_bar-1.0.tar.gz", **{"upload-time": 1600000000})),
            None,
            ["upload-time"],
        ),
        # a file whose release cannot be told
        (page(simple_file("foo-bar.exe")), None, ["cannot tell which release"]),
        # versions with a number in it
        (page(versions=["1.0", 2]), None, ["versions: expected a list of strings"]),
        # versions as one string
        (page(versions="1.0"), None, ["versions: expected a list of strings"]),
        # the JSON API describes another project
        (page(), {"info": {"name": "Other"}}, ["JSON API name 'Other'"]),
        # the summary is not a string
        (page(), {"info": {"name": "Foo-Bar", "summary": 5}}, ["info.summary"]),
        # everything at once: every problem is listed
        (
            page(
                "not a file",
                simple_file("a/b.tar.gz"),
                simple_file("foo_bar-1.0.tar.gz", hashes={"sha256": "x"}, size=True, yanked=0),
                simple_file("foo_bar-1.1.tar.gz", **{"requires-python": []}),
                simple_file("mystery.bin"),
                versions=[None],
            ),
            {"info": {"name": "Other"}},
            [
                "files[0]: expected an object",
                "files[1].filename: 'a/b.tar.gz'",
                "sha256 'x'",
                "size True",
                "yanked 0",
                "requires-python",
                "file 'mystery.bin': cannot tell which release",
                "versions: expected a list of strings",
                "JSON API name 'Other'",
            ],
        ),
        pytest.param(
            page(simple_file("foo_bar-1.0.tar.gz", hashes="sha256=abc")),
            None,
            ["hashes"],
        ),  # hashes not an object
    ],
)
def test_hostile_page_is_refused_listing_every_problem(
    raw_page: object, api: dict[str, Any] | None, problems: list[str]
) -> None:
    with pytest.raises(MalformedResponse) as caught:
        parse_project(URL, raw_page, 9, api)
    message = str(caught.value)
    assert caught.value.url == URL
    for problem in problems:
        assert problem in message
    assert message.count("; ") == len(problems) - 1


# --------------------------------------------------------------------------- PageClient.fetch


@pytest.fixture
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with new_client(5.0) as http_client:
        yield http_client


@pytest.fixture
def pages(up: FakeUpstream, client: httpx.Client) -> PageClient:
    return PageClient(up.simple_url, lambda n: f"{up.base_url}/pypi/{n}/json", client, POLICY)


FOO = NormalizedName("foo")


def page_requests(up: FakeUpstream) -> int:
    return sum(1 for method, path in up.requests if (method, path) == ("GET", "/simple/foo/"))


def test_fetch_reads_the_project_from_both_pages(up: FakeUpstream, pages: PageClient) -> None:
    up.create("Foo")
    up.add_file("Foo", "1.0", "foo-1.0.tar.gz", requires_python=">=3.9")
    up.add_file("Foo", "2.0", "foo-2.0-py3-none-any.whl")
    up.release("Foo", "3.0")
    up.yank("Foo", "2.0", reason="broken")
    up.set_summary("Foo", "A foo")
    project = pages.fetch(FOO)
    assert project is not None
    assert (project.name, project.display_name, project.summary, project.serial) == (
        "foo",
        "Foo",
        "A foo",
        up.last_serial,
    )
    assert project.versions == ("1.0", "2.0", "3.0")
    by_name = {f.filename: f for f in project.files}
    assert set(by_name) == {"foo-1.0.tar.gz", "foo-2.0-py3-none-any.whl"}
    sdist, wheel = by_name["foo-1.0.tar.gz"], by_name["foo-2.0-py3-none-any.whl"]
    assert (sdist.version, sdist.requires_python, sdist.yanked) == ("1.0", ">=3.9", False)
    assert sdist.sha256 == hashlib.sha256(b"foo-1.0.tar.gz\n").hexdigest()
    assert sdist.size == len(b"foo-1.0.tar.gz\n")
    assert (wheel.version, wheel.yanked, wheel.yanked_reason) == ("2.0", True, "broken")


def test_fetch_without_a_json_api_uses_the_page_alone(
    up: FakeUpstream, client: httpx.Client
) -> None:
    up.create("Foo")
    up.add_file("Foo", "1.0", "foo-1.0.tar.gz")
    project = PageClient(up.simple_url, lambda n: None, client, POLICY).fetch(FOO)
    assert project is not None
    assert (project.display_name, project.summary, project.serial) == ("foo", None, up.last_serial)
    assert [(f.filename, f.version) for f in project.files] == [("foo-1.0.tar.gz", "1.0")]
    assert not any(path.startswith("/pypi/") for _, path in up.requests)


@pytest.mark.parametrize(
    "history",
    [
        [],  # never created
        ["create", "remove project"],  # deleted
    ],
)
def test_fetch_of_a_project_the_upstream_does_not_show_is_none(
    up: FakeUpstream, pages: PageClient, history: list[str]
) -> None:
    for action in history:
        up.add("Foo", None, action)
    assert pages.fetch(FOO) is None


def test_fetch_of_a_quarantined_project_gives_its_status_and_no_files(
    up: FakeUpstream, pages: PageClient
) -> None:
    up.create("Foo")
    up.add_file("Foo", "1.0", "foo-1.0.tar.gz")
    up.quarantine_project("Foo")
    up.set_status("Foo", "quarantined", "malware")
    project = pages.fetch(FOO)
    assert project is not None
    assert (project.status, project.status_reason, project.files) == ("quarantined", "malware", ())


@pytest.mark.parametrize(
    ("stated", "expected"),
    [
        (None, ("active", None)),  # no marker: active (PEP 792)
        ({"status": "archived"}, ("archived", None)),
        ({"status": "deprecated", "reason": "use bar"}, ("deprecated", "use bar")),
        ({"status": "active", "reason": ""}, ("active", None)),  # an empty reason is none
        ({"status": "sunset"}, ("active", None)),  # a marker we cannot honour: active
        ({"reason": "no marker"}, ("active", "no marker")),  # the default marker, with reason
    ],
)
def test_project_status_is_read_from_the_page(
    stated: dict[str, str] | None, expected: tuple[str, str | None]
) -> None:
    page: dict[str, object] = {"name": "foo", "files": []}
    if stated is not None:
        page["project-status"] = stated
    project = parse_project("u", page, 1, None)
    assert (project.status, project.status_reason) == expected


@pytest.mark.parametrize(
    "stated",
    [
        "archived",  # not an object
        {"status": 3},  # not a string
        {"status": "archived", "reason": 5},  # a reason that is not text
    ],
)
def test_a_malformed_project_status_refuses_the_page(stated: object) -> None:
    with pytest.raises(MalformedResponse, match="project-status"):
        parse_project("u", {"name": "foo", "files": [], "project-status": stated}, 1, None)


@pytest.mark.parametrize("kind", ["ratelimit", "http500"])
def test_fetch_retries_transient_failures(up: FakeUpstream, pages: PageClient, kind: str) -> None:
    up.create("Foo")
    up.fail_next(kind, 2, where="pages")
    project = pages.fetch(FOO)
    assert project is not None and project.display_name == "Foo"
    assert page_requests(up) == 3


def test_fetch_gives_up_after_its_retries(up: FakeUpstream, pages: PageClient) -> None:
    up.create("Foo")
    up.fail_next("ratelimit", 3, where="pages")
    with pytest.raises(UpstreamError, match="429"):
        pages.fetch(FOO)
    assert page_requests(up) == 3


def test_fetch_gives_up_on_a_page_that_stays_truncated(up: FakeUpstream, pages: PageClient) -> None:
    up.create("Foo")
    up.fail_next("malformed", 10, where="pages")
    with pytest.raises(UpstreamError, match=r"not JSON.*gave up") as caught:
        pages.fetch(FOO)
    assert caught.value.url == pages.page_url(FOO)


def test_fetch_retries_a_truncated_page(up: FakeUpstream, pages: PageClient) -> None:
    up.create("Foo")
    up.fail_next("malformed", 1, where="pages")
    project = pages.fetch(FOO)
    assert project is not None


class _HtmlHandler(http.server.BaseHTTPRequestHandler):
    """Answers every GET with an HTML page, as an index without PEP 691 support would."""

    def do_GET(self) -> None:
        body = b"<!DOCTYPE html><html><body><a href='foo-1.0.tar.gz'>foo-1.0.tar.gz</a></body>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def html_index() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HtmlHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/simple/"
    server.shutdown()
    server.server_close()
    thread.join()


def test_fetch_refuses_a_page_that_is_not_json(html_index: str, client: httpx.Client) -> None:
    pages = PageClient(html_index, lambda n: None, client, POLICY)
    with pytest.raises(MalformedResponse, match="Content-Type 'text/html'"):
        pages.fetch(FOO)


@pytest.mark.parametrize(
    ("page", "problem"),
    [
        ({"name": "foo", "files": [], "versions": ["1" * 300]}, "longer than 255 characters"),
        ({"name": "foo", "files": [], "versions": ["1.0\x00"]}, "contains a NUL character"),
        (
            {"name": "foo", "files": [{"filename": "foo-1.0.tar.gz", "requires-python": "\x00"}]},
            "contains a NUL character",
        ),
        ({"name": "foo", "files": [{"filename": "f" * 600 + ".tar.gz"}]}, "is not a file name"),
    ],
)
def test_pages_the_store_cannot_hold_are_refused(page: dict[str, object], problem: str) -> None:
    with pytest.raises(MalformedResponse, match=problem):
        parse_project("http://127.0.0.1/simple/foo/", page, 1, None)
