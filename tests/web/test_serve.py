"""Serving the published tree: one behaviour suite, run against wheelfarm's server and nginx.

Every test taking ``base_url`` runs twice, over real HTTP: once against ``create_index_app``
under uvicorn, once against nginx running docs/nginx.conf. The tests after those concern the
built-in server alone (its negotiation function, its cache, the ``serve`` command).
"""

from __future__ import annotations

import logging
import os
import re
import socket
import subprocess
import sys
import time
from email.utils import formatdate
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from tests.publish.servers import (
    METADATA,
    NOT_FOUND_HTML,
    PROJECT_HTML,
    PROJECT_JSON,
    ROOT_HTML,
    SECRET,
    SIMPLE_ROOT_HTML,
    SIMPLE_ROOT_JSON,
    WHEEL,
    WHEEL_BYTES,
    free_port,
    raw_request,
    write_tree,
)
from wheelfarm.cli.main import main
from wheelfarm.errors import ConfigError
from wheelfarm.farm.api_docs import add_offline_docs
from wheelfarm.web.index_app import ACCESS_LOGGER
from wheelfarm.web.negotiation import HTML, JSON, V1_HTML, negotiate
from wheelfarm.web.runner import serve_index_in_thread as serve
from wheelfarm.web.security import API_POLICY, DOCS_POLICY, SITE_POLICY

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
V1_HTML_TYPE = "application/vnd.pypi.simple.v1+html"
HTML_TYPE = "text/html; charset=utf-8"
PIP_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, "
    "text/html; q=0.01"
)
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

# (Accept header or None for none at all, the content type expected, 406 as None)
NEGOTIATION = [
    (None, HTML_TYPE),
    ("*/*", HTML_TYPE),
    ("text/html", HTML_TYPE),
    (BROWSER_ACCEPT, HTML_TYPE),
    ("application/vnd.pypi.simple.v1+json", JSON_TYPE),
    ("application/vnd.pypi.simple.latest+json", JSON_TYPE),
    ("application/vnd.pypi.simple.v1+html", V1_HTML_TYPE),
    (PIP_ACCEPT, JSON_TYPE),
    ("text/html, application/vnd.pypi.simple.v1+json;q=0.5", HTML_TYPE),
    ("text/html;q=0.3, application/vnd.pypi.simple.v1+json;q=0.4", JSON_TYPE),
    ("application/vnd.pypi.simple.v1+json;q=0, text/html", HTML_TYPE),
    ("application/vnd.pypi.simple.v1+json, text/html", JSON_TYPE),  # a tie: JSON
    ("application/vnd.pypi.simple.v1+html, text/html", V1_HTML_TYPE),
    ("application/*", JSON_TYPE),
    ("text/*", HTML_TYPE),
    ("*/*;q=0.9, text/html;q=0.8", JSON_TYPE),  # JSON through the wildcard, q=0.9
    ("application/vnd.pypi.simple.v1+json;charset=utf-8;q=0.7, text/html;q=0.2", JSON_TYPE),
    ("application/json", None),
    ("image/png, application/vnd.pypi.simple.v2+json", None),
    ("text/html;q=0, application/vnd.pypi.simple.v1+json;q=0", None),
    ("*/*;q=0", None),
]


def get(client: httpx.Client, url: str, **headers: str) -> httpx.Response:
    return client.get(url, headers=headers)


# --- negotiation ----------------------------------------------------------------------------


@pytest.mark.parametrize(("accept", "expected"), NEGOTIATION)
@pytest.mark.parametrize("page", ["/simple/", "/simple/foo-bar/"])
def test_simple_pages_are_negotiated_on_accept(
    base_url: str, client: httpx.Client, page: str, accept: str | None, expected: str | None
) -> None:
    headers = {} if accept is None else {"Accept": accept}
    response = client.get(base_url + page, headers=headers)
    assert response.headers["vary"] == "Accept"
    if expected is None:
        assert response.status_code == 406
        return
    assert response.status_code == 200
    assert response.headers["content-type"] == expected
    is_json = expected == JSON_TYPE
    if page == "/simple/":
        assert response.content == (SIMPLE_ROOT_JSON if is_json else SIMPLE_ROOT_HTML)
    else:
        assert response.content == (PROJECT_JSON if is_json else PROJECT_HTML)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("format=application/vnd.pypi.simple.v1%2Bjson", JSON_TYPE),
        ("format=application%2Fvnd.pypi.simple.v1%2Bjson", JSON_TYPE),
        ("format=application/vnd.pypi.simple.v1+json", JSON_TYPE),  # '+' unencoded: a space
        ("format=application/vnd.pypi.simple.v1%2Bhtml", V1_HTML_TYPE),
        ("format=text/html", HTML_TYPE),
        ("format=application/json", None),
    ],
)
def test_format_parameter_overrides_accept(
    base_url: str, client: httpx.Client, query: str, expected: str | None
) -> None:
    response = get(client, f"{base_url}/simple/foo-bar/?{query}", Accept=PIP_ACCEPT)
    if expected is None:
        assert response.status_code == 406
    else:
        assert response.status_code == 200
        assert response.headers["content-type"] == expected
    assert response.headers["vary"] == "Accept"


def test_variants_have_their_own_validators(base_url: str, client: httpx.Client) -> None:
    html = get(client, f"{base_url}/simple/foo-bar/", Accept="text/html")
    json_page = get(client, f"{base_url}/simple/foo-bar/", Accept=JSON_TYPE)
    assert html.headers["etag"] != json_page.headers["etag"]
    again = get(
        client,
        f"{base_url}/simple/foo-bar/",
        Accept=JSON_TYPE,
        **{"If-None-Match": html.headers["etag"]},
    )
    assert again.status_code == 200  # the HTML variant's tag does not validate the JSON one
    assert again.content == PROJECT_JSON


# --- validators and HEAD ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/simple/foo-bar/", f"/files/foo-bar/{WHEEL}", f"/files/foo-bar/{WHEEL}.metadata"]
)
def test_etag_and_last_modified_give_304(base_url: str, client: httpx.Client, path: str) -> None:
    first = get(client, base_url + path)
    assert first.status_code == 200
    etag = first.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"')  # a strong tag
    last_modified = first.headers["last-modified"]
    by_tag = get(client, base_url + path, **{"If-None-Match": etag})
    assert by_tag.status_code == 304
    assert by_tag.content == b""
    assert by_tag.headers["etag"] == etag
    by_list = get(client, base_url + path, **{"If-None-Match": f'"other", {etag}'})
    assert by_list.status_code == 304
    by_date = get(client, base_url + path, **{"If-Modified-Since": last_modified})
    assert by_date.status_code == 304
    stale = get(client, base_url + path, **{"If-None-Match": '"not-it"'})
    assert stale.status_code == 200
    old_date = formatdate(time.time() - 10 * 86400, usegmt=True)
    assert get(client, base_url + path, **{"If-Modified-Since": old_date}).status_code == 200
    if path.startswith("/simple/"):
        assert by_tag.headers["vary"] == "Accept"


def test_a_changed_file_is_served_anew(
    base_url: str, client: httpx.Client, tree: Path, request: pytest.FixtureRequest
) -> None:
    page = tree / "logs" / f"{request.node.callspec.id}-changing.txt"
    page.write_bytes(b"first\n")
    os.utime(page, (1_700_000_000, 1_700_000_000))
    url = f"{base_url}/logs/{page.name}"
    first = get(client, url)
    assert first.content == b"first\n"
    page.write_bytes(b"second, longer\n")
    os.utime(page, (1_700_000_100, 1_700_000_100))
    second = get(client, url, **{"If-None-Match": first.headers["etag"]})
    assert second.status_code == 200
    assert second.content == b"second, longer\n"
    assert second.headers["etag"] != first.headers["etag"]
    assert second.headers["last-modified"] == "Tue, 14 Nov 2023 22:15:00 GMT"


@pytest.mark.parametrize("path", ["/", "/simple/foo-bar/", f"/files/foo-bar/{WHEEL}", "/nope"])
def test_head_sends_the_headers_of_get_without_a_body(
    base_url: str, client: httpx.Client, path: str
) -> None:
    got = get(client, base_url + path)
    head = client.head(base_url + path)
    assert head.status_code == got.status_code
    assert head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]
    assert head.headers["content-length"] == str(len(got.content))
    assert head.headers.get("etag") == got.headers.get("etag")


def test_a_range_of_a_wheel(base_url: str, client: httpx.Client) -> None:
    url = f"{base_url}/files/foo-bar/{WHEEL}"
    part = get(client, url, Range="bytes=100-299")
    assert part.status_code == 206
    assert part.content == WHEEL_BYTES[100:300]
    assert part.headers["content-range"] == f"bytes 100-299/{len(WHEEL_BYTES)}"
    tail = get(client, url, Range="bytes=-10")
    assert tail.content == WHEEL_BYTES[-10:]
    beyond = get(client, url, Range=f"bytes={len(WHEEL_BYTES) + 5}-")
    assert beyond.status_code == 416


# --- redirects ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/simple", "/simple/"),
        ("/simple/foo-bar", "/simple/foo-bar/"),
        ("/simple/Foo_Bar/", "/simple/foo-bar/"),
        ("/simple/foo.bar/", "/simple/foo-bar/"),
        ("/simple/FOO--bar", "/simple/foo-bar/"),
        ("/simple/Foo_Bar/?format=text/html", "/simple/foo-bar/?format=text/html"),
        ("/simple/foo-bar?format=text/html", "/simple/foo-bar/?format=text/html"),
        ("/simple/nosuch", "/simple/nosuch/"),
        ("/project/Foo_Bar/", "/project/foo-bar/"),
        ("/project/Foo.Bar/json/", "/project/foo-bar/json/"),
        ("/project/foo-bar", "/project/foo-bar/"),
        ("/project/foo-bar/json", "/project/foo-bar/json/"),
        ("/search", "/search/"),
    ],
)
def test_redirects_to_the_canonical_url(
    base_url: str, client: httpx.Client, path: str, location: str
) -> None:
    response = get(client, base_url + path)
    assert response.status_code == 301
    assert response.headers["location"] == location


def test_following_redirects_reaches_the_page(base_url: str, client: httpx.Client) -> None:
    response = client.get(
        f"{base_url}/simple/Foo.Bar", headers={"Accept": JSON_TYPE}, follow_redirects=True
    )
    assert response.status_code == 200
    assert response.content == PROJECT_JSON
    assert [r.status_code for r in response.history] == [301]  # one hop


# --- files and types ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/", HTML_TYPE),
        ("/search/", HTML_TYPE),
        ("/packages.json", "application/json"),
        ("/sitemap.xml", "application/xml"),
        ("/project/foo-bar/", HTML_TYPE),
        ("/project/foo-bar/json/", "application/json"),
        ("/badges/foo-bar.svg", "image/svg+xml"),
        ("/logs/7.txt", "text/plain; charset=utf-8"),
        ("/static/site.css", "text/css; charset=utf-8"),
        ("/static/site.js", "text/javascript; charset=utf-8"),
        (f"/files/foo-bar/{WHEEL}", "application/octet-stream"),
        (f"/files/foo-bar/{WHEEL}.metadata", "text/plain; charset=utf-8"),
        ("/simple/index.json", "application/json"),
    ],
)
def test_content_types(base_url: str, client: httpx.Client, path: str, content_type: str) -> None:
    response = get(client, base_url + path)
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type


def test_wheel_and_metadata_bytes_are_served_unchanged(base_url: str, client: httpx.Client) -> None:
    assert get(client, f"{base_url}/").content == ROOT_HTML
    assert get(client, f"{base_url}/files/foo-bar/{WHEEL}").content == WHEEL_BYTES
    metadata = get(client, f"{base_url}/files/foo-bar/{WHEEL}.metadata")
    assert metadata.content == METADATA
    assert metadata.headers["content-length"] == str(len(METADATA))


@pytest.mark.parametrize(
    "path",
    ["/nope", "/simple/nosuch/", "/files/foo-bar/", "/files/", "/project/foo-bar/nope.html"],
)
def test_missing_pages_get_the_tree_404_page(base_url: str, client: httpx.Client, path: str):
    response = get(client, base_url + path)
    assert response.status_code == 404
    assert response.content == NOT_FOUND_HTML  # a directory is never listed
    assert response.headers["content-type"] == HTML_TYPE


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_only_get_and_head(base_url: str, client: httpx.Client, method: str) -> None:
    for path in ("/simple/", "/simple/foo-bar/", f"/files/foo-bar/{WHEEL}"):
        assert client.request(method, base_url + path).status_code == 405


def test_api_paths_reach_the_api(base_url: str, client: httpx.Client) -> None:
    response = client.post(f"{base_url}/api/builder/v1/claim", content=b"{}")
    assert response.status_code == 200
    assert response.json() == {"api": True, "method": "POST", "path": "/api/builder/v1/claim"}


# --- security headers -----------------------------------------------------------------------------

SECURITY_CASES = [
    ("GET", "/", {}),
    ("GET", "/simple/", {"Accept": JSON_TYPE}),
    ("GET", "/simple/foo-bar/", {"Accept": "text/html"}),
    ("GET", "/simple/foo-bar/", {"Accept": "application/json"}),  # 406
    ("GET", f"/files/foo-bar/{WHEEL}", {}),
    ("GET", f"/files/foo-bar/{WHEEL}", {"Range": "bytes=0-9"}),  # 206
    ("GET", "/no/such/page", {}),  # 404
    ("GET", "/project/Foo_Bar/", {}),  # 301, from wheelfarm's process behind nginx too
    ("POST", "/simple/", {}),  # 405
    ("POST", "/api/builder/v1/claim", {}),  # the builder API
]


@pytest.mark.parametrize(("method", "path", "headers"), SECURITY_CASES)
def test_every_response_carries_the_security_headers_once(
    base_url: str, client: httpx.Client, method: str, path: str, headers: dict[str, str]
) -> None:
    response = client.request(method, base_url + path, headers=headers)
    assert response.headers.get_list("x-content-type-options") == ["nosniff"]
    assert response.headers.get_list("referrer-policy") == ["no-referrer"]
    assert response.headers.get_list("content-security-policy") == [SITE_POLICY] or (
        path.startswith("/api/") and response.headers["content-security-policy"] == API_POLICY
    )


def test_the_api_docs_page_loads_only_what_its_policy_allows(tmp_path: Path) -> None:
    """The /docs page (Swagger UI): every script and style sheet it names is served here, it
    has no inline script or style, and its policy allows this origin only."""
    api = FastAPI(docs_url=None, redoc_url=None)
    add_offline_docs(api)
    server = serve(write_tree(tmp_path), api=api)
    try:
        response = httpx.get(server.url + "/docs")
        page = response.text
        assets = re.findall(r'<(?:script src|link rel="stylesheet" href)="([^"]+)"', page)
        served = {url: httpx.get(server.url + url) for url in assets}
    finally:
        server.stop()
    assert response.headers["content-security-policy"] == DOCS_POLICY
    policy = dict(part.strip().split(" ", 1) for part in DOCS_POLICY.split(";"))
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
    assert "<script>" not in page and "<style" not in page and " style=" not in page
    assert len(assets) == 3  # Swagger UI's style sheet and script, and the script starting it
    for url, answer in served.items():
        assert url.startswith("/") and answer.status_code == 200, url


# --- path safety ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "/../secret.txt",
        "/simple/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/%2e%2e/secret.txt",
        "/simple/%2e%2e/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "/files/foo-bar/..%2f..%2f..%2fsecret.txt",
        "/static/..%5c..%5csecret.txt",
        "/static\\..\\..\\secret.txt",
        "/link-out.txt",
        "/files/link-dir/secret.txt",
        "/index.html%00.txt",
        "/%00",
        "/simple/foo-bar%00/",
    ],
)
def test_hostile_paths_stay_inside_the_root(base_url: str, target: str) -> None:
    status, body = raw_request(base_url, target)
    assert status in (400, 404), (target, status)
    assert SECRET not in body


@pytest.mark.parametrize("target", ["/.lock", "/.gzip-siblings", "/simple/foo-bar/.index.html.tmp"])
def test_no_dot_file_is_served(base_url: str, client: httpx.Client, target: str) -> None:
    """The tree's own marks and lock, and temporary files the writer renames into place."""
    response = get(client, f"{base_url}{target}")
    assert response.status_code == 404, target
    assert response.content == NOT_FOUND_HTML


def test_no_symlink_is_followed(base_url: str, client: httpx.Client) -> None:
    """Even one pointing inside the root: the tree writer copies or hard-links instead."""
    response = get(client, f"{base_url}/link-in.html")
    assert response.status_code == 404
    assert response.content == NOT_FOUND_HTML


# --- the built-in server alone --------------------------------------------------------------------


@pytest.mark.parametrize(("accept", "expected"), NEGOTIATION)
def test_negotiate(accept: str | None, expected: str | None) -> None:
    variants = {JSON_TYPE: JSON, V1_HTML_TYPE: V1_HTML, HTML_TYPE: HTML, None: None}
    assert negotiate(accept) == variants[expected]


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("", HTML),
        ("application/vnd.pypi.simple.v1+json;q=2, text/html;q=0.1", HTML),  # q>1: ignored
        ("application/vnd.pypi.simple.v1+json;q=x, text/html;q=0.1", HTML),
        ("text/html;q=0.55, application/vnd.pypi.simple.v1+json;q=0.5", HTML),
        ("garbage, , ;;, application/vnd.pypi.simple.v1+json", JSON),
        ("APPLICATION/VND.PYPI.SIMPLE.V1+JSON", JSON),
    ],
)
def test_negotiate_odd_headers(accept: str, expected: str) -> None:
    assert negotiate(accept) == expected


def test_access_log_names_each_request(
    builtin_url: str, client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    get(client, f"{builtin_url}/files/foo-bar/{WHEEL}.metadata")
    client.head(f"{builtin_url}/nope")
    client.post(f"{builtin_url}/api/ping")
    deadline = time.monotonic() + 5
    wanted = [
        f"GET /files/foo-bar/{WHEEL}.metadata 200",
        "HEAD /nope 404",
        "POST /api/ping 200",
    ]
    while time.monotonic() < deadline:
        lines = [r.getMessage() for r in caplog.records if r.name == ACCESS_LOGGER]
        if all(line in lines for line in wanted):
            break
        time.sleep(0.02)
    assert all(line in lines for line in wanted), lines


@pytest.fixture
def builtin_url(builtin) -> str:
    url: str = builtin.url
    return url


def test_without_a_404_page_a_short_one_is_built_in(tmp_path: Path, client: httpx.Client) -> None:
    root = write_tree(tmp_path)
    (root / "404.html").unlink()
    server = serve(root)
    try:
        response = get(client, f"{server.url}/nope")
    finally:
        server.stop()
    assert response.status_code == 404
    assert b"Not found" in response.content


def test_large_files_are_streamed_and_replaced_files_seen(
    tmp_path: Path, client: httpx.Client
) -> None:
    root = write_tree(tmp_path)
    big = root / "files" / "foo-bar" / "big-1.0-py3-none-any.whl"
    content = os.urandom(3 * 1024 * 1024 + 17)
    big.write_bytes(content)
    server = serve(root)
    try:
        url = f"{server.url}/files/foo-bar/{big.name}"
        assert get(client, url).content == content
        assert get(client, url, Range="bytes=2000000-").content == content[2_000_000:]
        page = root / "simple" / "foo-bar" / "index.html"
        assert get(client, f"{server.url}/simple/foo-bar/").content == PROJECT_HTML
        replacement = root / "simple" / "foo-bar" / "index.html.new"
        replacement.write_bytes(b"<!DOCTYPE html>replaced\n")
        replacement.replace(page)  # what a tree writer does: a new inode, renamed over
        assert get(client, f"{server.url}/simple/foo-bar/").content == b"<!DOCTYPE html>replaced\n"
    finally:
        server.stop()


def test_a_busy_port_is_a_config_error(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        with pytest.raises(ConfigError, match="cannot listen"):
            serve(tmp_path, "127.0.0.1", sock.getsockname()[1])


def test_serve_command_on_a_busy_port_is_one_line_and_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(SystemExit) as exit_info:
            main(
                [
                    "--upstream",
                    "https://index.example.org/simple/",
                    "serve",
                    "--root",
                    str(tmp_path),
                    "--port",
                    str(port),
                ]
            )
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert "cannot listen" in error
    assert f"127.0.0.1:{port}" in error


def test_serve_command_serves_data_dir_www(tmp_path: Path) -> None:
    """``wheelfarm serve`` as a user runs it: the default root, then stopped by SIGTERM."""
    write_tree(tmp_path / "data")
    port = free_port()
    env = {
        **os.environ,
        "WHEELFARM_UPSTREAM": "https://index.example.org/simple/",
        "WHEELFARM_DATA_DIR": str(tmp_path / "data"),
        "WHEELFARM_PORT": str(port),
    }
    command = [sys.executable, "-m", "wheelfarm", "serve", "--access-log"]
    process = subprocess.Popen(
        command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(
                    f"http://127.0.0.1:{port}/simple/foo-bar/", headers={"Accept": JSON_TYPE}
                )
                break
            except httpx.ConnectError:
                assert process.poll() is None, process.communicate()
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert response.content == PROJECT_JSON
    finally:
        process.terminate()
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0
    assert f"http://127.0.0.1:{port}/" in out.decode()
    assert "GET /simple/foo-bar/ 200" in err.decode()
