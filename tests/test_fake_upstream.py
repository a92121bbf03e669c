"""The fake upstream speaks the upstream's wire formats and derives its pages as the upstream does.

Everything here goes over real HTTP on loopback, because the follower will.
"""

from __future__ import annotations

import collections
import hashlib
import itertools
import math
import selectors
import subprocess
import sys
import threading
import xmlrpc.client
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast
from xml.parsers.expat import ExpatError

import httpx
import pytest
from packaging.utils import canonicalize_name

from tests.fixtures.changelog_gen import synthetic_changelog
from tests.fixtures.fake_upstream import (
    RATE_LIMIT_MESSAGE,
    START_TIMESTAMP,
    Event,
    FakeUpstream,
    _encode_rows,
)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        yield upstream


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as client:
        yield client


def proxy(upstream: FakeUpstream) -> xmlrpc.client.ServerProxy:
    return xmlrpc.client.ServerProxy(upstream.changelog_url, allow_none=True)


def simple(http: httpx.Client, upstream: FakeUpstream, name: str) -> httpx.Response:
    return http.get(f"{upstream.simple_url}{name}/")


def json_api(http: httpx.Client, upstream: FakeUpstream, name: str) -> httpx.Response:
    return http.get(f"{upstream.base_url}/pypi/{name}/json")


def iso(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.000000Z")


def since(server: xmlrpc.client.ServerProxy, serial: int) -> list[Any]:
    """``changelog_since_serial``, typed: typeshed types every answer as any XML-RPC value."""
    return cast(list[Any], server.changelog_since_serial(serial))


def page_all(upstream: FakeUpstream, start: int = 0) -> list[list[Any]]:
    """Page through the changelog the way the follower does."""
    rows: list[list[Any]] = []
    with proxy(upstream) as server:
        serial = start
        while chunk := since(server, serial):
            rows.extend(chunk)
            serial = chunk[-1][4]
    return rows


# --------------------------------------------------------------------------- the changelog


def test_last_serial_is_zero_when_empty_then_tracks_the_script(up: FakeUpstream) -> None:
    with proxy(up) as server:
        assert server.changelog_last_serial() == 0
        assert since(server, 0) == []
        up.create("a")
        up.add("a", None, "docupdate", serial=10)
        assert server.changelog_last_serial() == 10


def test_changelog_pages_by_max_rows_and_keeps_null_versions() -> None:
    with FakeUpstream(max_rows=3) as up:
        serials = [up.create(f"p{i}") if i % 2 else up.release(f"p{i}", "1.0") for i in range(7)]
        with proxy(up) as server:
            first = since(server, 0)
            assert [row[4] for row in first] == serials[:3]
            assert first[0] == ["p0", "1.0", START_TIMESTAMP, "new release", 1]
            assert first[1] == ["p1", None, START_TIMESTAMP + 1, "create", 2]
            assert [row[4] for row in since(server, first[-1][4])] == serials[3:6]
            assert [row[4] for row in since(server, serials[5])] == serials[6:]
            assert since(server, serials[6]) == []
            assert [row[4] for row in since(server, 1)] == serials[1:4]


def test_add_defaults_gaps_and_rejects_going_backwards() -> None:
    up = FakeUpstream()
    assert up.add("a", None, "create") == 1
    assert up.add("a", "1", "new release", serial=5) == 5
    assert up.add("a", "1", "yank release", timestamp=42) == 6
    assert up.add("a", "1", "unyank release") == 7
    assert [event.timestamp for event in up.events] == [
        START_TIMESTAMP,
        START_TIMESTAMP + 1,
        42,
        43,
    ]
    with pytest.raises(ValueError, match="must exceed"):
        up.add("a", None, "docupdate", serial=7)


def test_script_is_ordered_by_serial_and_serials_are_unique() -> None:
    late, early = Event("a", "1", 5, "new release", 9), Event("a", None, 9, "create", 2)
    assert FakeUpstream([late, early]).events == (early, late)
    with pytest.raises(ValueError, match="share serial 2"):
        FakeUpstream([early, Event("b", None, 1, "create", 2)])


def test_hand_encoded_rows_read_back_like_the_stdlib_encoding() -> None:
    events = [
        Event("Foo & <Bar>", None, 1, "create", 1),
        Event("foo-bar", "1.0", 2, "add source file foo_bar-1.0.tar.gz", 3),
    ]
    ours = xmlrpc.client.loads(_encode_rows(events))
    stdlib = xmlrpc.client.loads(
        xmlrpc.client.dumps(([e.row() for e in events],), methodresponse=True, allow_none=True)
    )
    assert ours == stdlib == (([e.row() for e in events],), None)
    assert xmlrpc.client.loads(_encode_rows([])) == (([],), None)


def test_unknown_method_and_bad_params_are_faults(up: FakeUpstream) -> None:
    with proxy(up) as server:
        with pytest.raises(xmlrpc.client.Fault) as unknown:
            server.list_packages()
        assert unknown.value.faultCode == -32601
        with pytest.raises(xmlrpc.client.Fault) as bad:
            server.changelog_since_serial("7")
        assert bad.value.faultCode == -32602


def test_precomputed_answers_cover_the_paging_chain_and_match_fresh_ones() -> None:
    events = synthetic_changelog(2_500, seed=3)
    with FakeUpstream(events, max_rows=1_000) as up:
        assert up.precompute_changelog() == math.ceil(2_500 / 1_000) + 1
        cached = dict(up._changelog_cache)
        assert all(body == _encode_rows(up.changelog_since_serial(s)) for s, body in cached.items())
        assert page_all(up) == [event.row() for event in events]
        up.create("late")
        assert not up._changelog_cache  # a new event makes the last chunk stale
        assert page_all(up)[-1][:4] == ["late", None, events[-1].timestamp + 1, "create"]


# --------------------------------------------------------------------------- the pages


def test_pages_follow_a_scripted_history(up: FakeUpstream, http: httpx.Client) -> None:
    up.create("Foo.Bar")
    up.release("Foo.Bar", "1.0")
    sdist = up.add_file("Foo.Bar", "1.0", "foo_bar-1.0.tar.gz", requires_python=">=3.8")
    up.add_file("foo-bar", "1.0", "foo_bar-1.0-py3-none-any.whl", content=b"wheel bytes")
    up.release("foo-bar", "2.0rc1")
    up.release("FOO_BAR", "1.10")  # no files, still a version
    up.add_file("foo-bar", "2.0rc1", "foo_bar-2.0rc1.tar.gz")
    up.remove_file("foo-bar", "2.0rc1", "foo_bar-2.0rc1.tar.gz")
    up.yank("foo-bar", "1.0", reason="broken build")
    up.add("foo-bar", None, "add Owner alice")
    last = up.add("foo-bar", None, "remove Owner alice")  # a role change, not a removal
    up.create("other")  # later serials of other projects do not count
    up.set_summary("foo-bar", "Bars of foo")

    response = simple(http, up, "foo-bar")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.pypi.simple.v1+json"
    assert response.headers["x-pypi-last-serial"] == str(last)
    page = response.json()
    assert page["meta"] == {"api-version": "1.1", "_last-serial": last}
    assert page["name"] == "foo-bar"
    assert page["versions"] == ["1.0", "1.10", "2.0rc1"]
    wheel, tarball = page["files"]
    assert tarball == {
        "filename": "foo_bar-1.0.tar.gz",
        "url": f"{up.base_url}/files/foo_bar-1.0.tar.gz",
        "hashes": {"sha256": hashlib.sha256(b"foo_bar-1.0.tar.gz\n").hexdigest()},
        "requires-python": ">=3.8",
        "size": len(b"foo_bar-1.0.tar.gz\n"),
        "upload-time": iso(up.events[sdist - 1].timestamp),
        "yanked": "broken build",
    }
    assert wheel["hashes"]["sha256"] == hashlib.sha256(b"wheel bytes").hexdigest()
    assert wheel["requires-python"] is None
    assert http.get(wheel["url"]).content == b"wheel bytes"

    response = json_api(http, up, "foo-bar")
    assert response.headers["x-pypi-last-serial"] == str(last)
    document = response.json()
    assert document["info"] == {"name": "Foo.Bar", "summary": "Bars of foo", "version": "1.10"}
    assert document["last_serial"] == last
    assert document["urls"] == []
    assert list(document["releases"]) == ["1.0", "1.10", "2.0rc1"]
    assert document["releases"]["1.10"] == document["releases"]["2.0rc1"] == []
    json_tarball = document["releases"]["1.0"][1]
    assert json_tarball == {
        "filename": "foo_bar-1.0.tar.gz",
        "digests": {"sha256": tarball["hashes"]["sha256"]},
        "size": tarball["size"],
        "upload_time_iso_8601": tarball["upload-time"],
        "requires_python": ">=3.8",
        "yanked": True,
        "yanked_reason": "broken build",
        "url": tarball["url"],
    }


def test_removed_project_is_gone_and_comes_back_under_a_new_spelling(
    up: FakeUpstream, http: httpx.Client
) -> None:
    up.create("Foo.Bar")
    up.release("Foo.Bar", "1.0")
    up.add_file("Foo.Bar", "1.0", "foo_bar-1.0.tar.gz")
    up.yank("Foo.Bar", "1.0")
    up.remove_project("foo-bar")
    assert simple(http, up, "foo-bar").status_code == 404
    assert json_api(http, up, "foo-bar").status_code == 404
    assert http.get(f"{up.base_url}/files/foo_bar-1.0.tar.gz").status_code == 404

    created = up.create("FOO_bar")
    assert simple(http, up, "foo-bar").json() | {"meta": None} == {
        "meta": None,
        "name": "foo-bar",
        "files": [],
        "versions": [],
    }
    document = json_api(http, up, "foo-bar").json()
    assert document["info"] == {"name": "FOO_bar", "summary": None, "version": None}
    assert document["releases"] == {}
    assert document["last_serial"] == created

    up.release("foo-bar", "1.0")  # nothing survives the removal: no files, no yank
    assert json_api(http, up, "foo-bar").json()["releases"] == {"1.0": []}


def test_display_name_without_create_is_the_first_spelling(
    up: FakeUpstream, http: httpx.Client
) -> None:
    up.release("Some_Thing", "1.0")
    up.release("some-thing", "1.1")
    assert json_api(http, up, "some-thing").json()["info"]["name"] == "Some_Thing"


def test_removing_a_release_drops_its_files_and_yank(up: FakeUpstream, http: httpx.Client) -> None:
    up.release("p", "3.0")
    up.add_file("p", "3.0", "p-3.0.tar.gz")
    up.yank("p", "3.0")
    assert [f["yanked"] for f in simple(http, up, "p").json()["files"]] == [True]
    assert json_api(http, up, "p").json()["releases"]["3.0"][0]["yanked_reason"] is None
    up.remove_release("p", "3.0")
    assert simple(http, up, "p").json()["versions"] == []
    up.release("p", "3.0")
    page = simple(http, up, "p").json()
    assert (page["versions"], page["files"]) == (["3.0"], [])


def test_unyank_and_legacy_bare_remove(up: FakeUpstream, http: httpx.Client) -> None:
    up.release("p", "1.0")
    up.add_file("p", "1.0", "p-1.0-py3-none-any.whl")
    up.release("p", "2.0")
    up.yank("p", "1.0", "oops")
    up.unyank("p", "1.0")
    assert simple(http, up, "p").json()["files"][0]["yanked"] is False
    up.add("p", "2.0", "remove")
    assert simple(http, up, "p").json()["versions"] == ["1.0"]
    up.add("p", None, "remove")
    assert simple(http, up, "p").status_code == 404


def test_quarantine_hides_and_clearing_restores(up: FakeUpstream, http: httpx.Client) -> None:
    up.release("p", "1.0")
    up.add_file("p", "1.0", "p-1.0.tar.gz")
    up.release("p", "2.0")
    up.add_file("p", "2.0", "p-2.0.tar.gz")

    up.quarantine_release("p", "2.0")
    page = simple(http, up, "p").json()
    assert page["versions"] == ["1.0"]
    assert [f["filename"] for f in page["files"]] == ["p-1.0.tar.gz"]
    assert list(json_api(http, up, "p").json()["releases"]) == ["1.0"]
    up.clear_release_quarantine("p", "2.0")
    assert simple(http, up, "p").json()["versions"] == ["1.0", "2.0"]

    up.quarantine_project("p")
    page = simple(http, up, "p").json()  # PEP 792: the status, and no files
    assert (page["project-status"], page["files"], page["versions"]) == (
        {"status": "quarantined"},
        [],
        [],
    )
    assert json_api(http, up, "p").status_code == 404
    last = up.clear_project_quarantine("p")
    page = simple(http, up, "p").json()
    assert (page["versions"], page["meta"]["_last-serial"]) == (["1.0", "2.0"], last)
    assert len(page["files"]) == 2


@pytest.mark.parametrize(
    ("status", "reason", "files"),
    [
        ("archived", None, ["p-1.0.tar.gz"]),
        ("deprecated", "use q", ["p-1.0.tar.gz"]),
        ("active", None, ["p-1.0.tar.gz"]),
        ("quarantined", "malware", []),  # a quarantined project offers no files
    ],
)
def test_status_markers_show_on_the_simple_page(
    up: FakeUpstream, http: httpx.Client, status: str, reason: str | None, files: list[str]
) -> None:
    up.release("p", "1.0")
    up.add_file("p", "1.0", "p-1.0.tar.gz")
    up.set_status("p", status, reason)
    page = simple(http, up, "p").json()
    expected = {"status": status} | ({"reason": reason} if reason else {})
    assert page["project-status"] == expected
    assert [f["filename"] for f in page["files"]] == files
    assert page["meta"]["api-version"] == "1.4"


def test_non_normalised_names_redirect(up: FakeUpstream, http: httpx.Client) -> None:
    up.create("Foo.Bar")
    for path in ("/simple/Foo.Bar/", "/simple/foo_bar/", "/simple/foo-bar"):
        response = http.get(up.base_url + path)
        assert response.status_code == 301, path
        assert response.headers["location"] == f"{up.simple_url}foo-bar/"
    assert http.get(up.base_url + "/simple/Foo.Bar/", follow_redirects=True).status_code == 200
    assert http.get(up.base_url + "/simple/nope/").status_code == 404


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", "/simple/"),
        ("GET", "/pypi"),
        ("GET", "/pypi/p/1.0/json"),
        ("GET", "/files/p-1.0.tar.gz"),
        ("GET", "/pypi/unknown/json"),
        ("POST", "/RPC2"),
    ],
)
def test_everything_else_is_404(
    up: FakeUpstream, http: httpx.Client, method: str, path: str
) -> None:
    up.release("p", "1.0")
    assert http.request(method, up.base_url + path).status_code == 404
    assert up.requests == [(method, path)]


def test_page_lag_shows_the_index_as_of_an_older_serial(
    up: FakeUpstream, http: httpx.Client
) -> None:
    up.create("a")
    up.release("a", "1.0")
    lagged = up.add_file("a", "1.0", "a-1.0.tar.gz")
    up.release("a", "2.0")
    up.create("b")
    up.page_lag = lagged
    response = simple(http, up, "a")
    assert response.json()["versions"] == ["1.0"]
    assert response.json()["meta"]["_last-serial"] == lagged
    assert response.headers["x-pypi-last-serial"] == str(lagged)
    assert json_api(http, up, "a").json()["last_serial"] == lagged
    assert simple(http, up, "b").status_code == 404
    with proxy(up) as server:  # the changelog itself does not lag
        assert server.changelog_last_serial() == up.last_serial
    up.page_lag = None
    assert simple(http, up, "a").json()["versions"] == ["1.0", "2.0"]
    assert simple(http, up, "b").status_code == 200


# --------------------------------------------------------------------------- faults


def test_xmlrpc_rate_limit_is_a_fault_then_clears(up: FakeUpstream) -> None:
    up.create("a")
    up.fail_next("ratelimit", count=2)
    with proxy(up) as server:
        for _ in range(2):
            with pytest.raises(xmlrpc.client.Fault) as fault:
                since(server, 0)
            assert fault.value.faultCode == -32500
            assert fault.value.faultString == RATE_LIMIT_MESSAGE
        assert server.changelog_last_serial() == 1


def test_xmlrpc_gateway_error_and_malformed_body(up: FakeUpstream) -> None:
    up.fail_next("http500")
    up.fail_next("malformed")
    with proxy(up) as server:
        with pytest.raises(xmlrpc.client.ProtocolError) as error:
            server.changelog_last_serial()
        assert error.value.errcode == 502
    with proxy(up) as server, pytest.raises(ExpatError):
        server.changelog_last_serial()
    with proxy(up) as server:
        assert server.changelog_last_serial() == 0


def test_xmlrpc_bad_rows_come_with_all_the_good_ones(up: FakeUpstream) -> None:
    good = [up.create(f"p{i}") for i in range(4)]
    up.fail_next("badrows", count=2)
    with proxy(up) as server:
        rows = since(server, 0)
        assert [row[4] for row in rows if len(row) == 5 and isinstance(row[4], int)] == good
        assert any(len(row) == 3 for row in rows)
        assert any(len(row) == 5 and isinstance(row[4], str) for row in rows)
        assert server.changelog_last_serial() == str(good[-1])  # a serial of the wrong type
        assert len(since(server, 0)) == 4


def test_timeouts_hang_longer_than_the_client_waits(up: FakeUpstream) -> None:
    up.create("a")
    up.timeout_sleep = 5.0  # closing the fake wakes the hung handler, so this costs nothing
    up.fail_next("timeout")
    up.fail_next("timeout", where="pages")
    call = xmlrpc.client.dumps((), "changelog_last_serial")
    with httpx.Client(timeout=0.3) as client:
        with pytest.raises(httpx.ReadTimeout):
            client.post(up.changelog_url, content=call)
        with pytest.raises(httpx.ReadTimeout):
            client.get(f"{up.simple_url}a/")
        assert xmlrpc.client.loads(client.post(up.changelog_url, content=call).content) == (
            (1,),
            None,
        )
        assert client.get(f"{up.simple_url}a/").status_code == 200


def test_a_short_hang_answers_normally(up: FakeUpstream, http: httpx.Client) -> None:
    up.create("a")
    up.timeout_sleep = 0.05
    up.fail_next("timeout", where="pages")
    assert simple(http, up, "a").status_code == 200


def test_page_faults(up: FakeUpstream, http: httpx.Client) -> None:
    up.create("a")
    for kind in ("ratelimit", "http500", "malformed", "notfound"):
        up.fail_next(kind, where="pages")
    limited = simple(http, up, "a")
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "1")
    assert json_api(http, up, "a").status_code == 502
    malformed = simple(http, up, "a")
    assert malformed.status_code == 200
    with pytest.raises(ValueError):
        malformed.json()
    assert simple(http, up, "a").status_code == 404  # a cache's stale 404
    with proxy(up) as server:  # page faults leave the changelog alone
        assert server.changelog_last_serial() == 1
    assert simple(http, up, "a").status_code == 200


def test_fail_next_rejects_nonsense() -> None:
    up = FakeUpstream()
    with pytest.raises(ValueError, match="unknown fault kind"):
        up.fail_next("teapot")
    with pytest.raises(ValueError, match="unknown fault target"):
        up.fail_next("http500", where="files")
    with pytest.raises(ValueError, match="XML-RPC"):
        up.fail_next("badrows", where="pages")
    with pytest.raises(ValueError, match="notfound only applies to the pages"):
        up.fail_next("notfound")
    with pytest.raises(ValueError, match="positive"):
        up.fail_next("http500", count=0)


# --------------------------------------------------------------------------- lifecycle


def test_events_can_be_added_while_clients_read(up: FakeUpstream) -> None:
    up.create("p")
    problems: list[BaseException] = []

    def read() -> None:
        try:
            with httpx.Client(timeout=5.0) as client, proxy(up) as server:
                for _ in range(15):
                    assert client.get(f"{up.simple_url}p/").status_code == 200
                    assert since(server, 0)[0][0] == "p"
        except BaseException as error:  # reported by the main thread
            problems.append(error)

    readers = [threading.Thread(target=read) for _ in range(4)]
    for reader in readers:
        reader.start()
    for number in range(200):
        up.add_file("p", f"1.{number}", f"p-1.{number}.tar.gz")
    for reader in readers:
        reader.join()
    assert problems == []
    assert len(page_all(up)) == 201


def test_close_stops_serving_and_is_idempotent() -> None:
    up = FakeUpstream().start()
    url = up.base_url
    up.close()
    up.close()
    with pytest.raises(RuntimeError):
        _ = up.base_url
    with httpx.Client(timeout=1.0) as client, pytest.raises(httpx.ConnectError):
        client.get(url + "/simple/a/")


# --------------------------------------------------------------------------- the generator


def test_synthetic_changelog_is_deterministic_and_well_formed() -> None:
    events = synthetic_changelog(20_000, seed=7, start_serial=100, start_time=1_000)
    assert events == synthetic_changelog(20_000, seed=7, start_serial=100, start_time=1_000)
    assert events != synthetic_changelog(20_000, seed=8, start_serial=100, start_time=1_000)
    assert len(events) == 20_000
    assert events[0].serial == 100
    assert events[0].timestamp == 1_000
    steps = [b.serial - a.serial for a, b in itertools.pairwise(events)]
    assert min(steps) >= 1
    assert any(step > 1 for step in steps)
    ticks = [b.timestamp - a.timestamp for a, b in itertools.pairwise(events)]
    assert sum(0 <= tick <= 2 for tick in ticks) / len(ticks) > 0.99
    assert any(name != canonicalize_name(name) for name in {e.name for e in events})
    assert synthetic_changelog(0) == []


def test_synthetic_changelog_has_the_intended_mix() -> None:
    events = synthetic_changelog(50_000, seed=1)
    kinds = collections.Counter(_kind(event.action) for event in events)
    share = {kind: count / len(events) for kind, count in kinds.items()}
    assert share["create"] == pytest.approx(0.08, abs=0.015)
    assert share["new release"] == pytest.approx(0.12, abs=0.015)
    assert share["add file"] == pytest.approx(0.70, abs=0.02)
    for kind in ("remove file", "remove release", "remove project", "yank release"):
        assert kinds[kind] > 0, kind
    for kind in ("unyank release", "add Owner", "remove Owner", "docupdate"):
        assert kinds[kind] > 0, kind
    assert any("rc" in (event.version or "") for event in events)


def _kind(action: str) -> str:
    if action.startswith("add ") and " file " in action:
        return "add file"
    if action.startswith("remove file "):
        return "remove file"
    return action.rsplit(" ", 1)[0] if "Owner" in action else action


def test_synthetic_events_only_touch_live_things() -> None:
    """Files are added to live releases, removals name live things, file names never repeat."""
    live_projects: set[str] = set()
    live_releases: set[tuple[str, str]] = set()
    live_files: set[str] = set()
    seen_files: set[str] = set()
    for event in synthetic_changelog(30_000, seed=2):
        key, kind = canonicalize_name(event.name), _kind(event.action)
        release = (key, event.version or "")
        if kind == "create":
            assert key not in live_projects
            live_projects.add(key)
        elif kind == "new release":
            assert key in live_projects and release not in live_releases
            live_releases.add(release)
        elif kind == "add file":
            filename = event.action.split(" file ", 1)[1]
            assert release in live_releases and filename not in seen_files
            assert filename.startswith(f"{key.replace('-', '_')}-{event.version}")
            live_files.add(filename)
            seen_files.add(filename)
        elif kind == "remove file":
            live_files.remove(event.action.removeprefix("remove file "))
        elif kind == "remove release":
            live_releases.remove(release)
        elif kind == "remove project":
            live_projects.remove(key)
            live_releases = {r for r in live_releases if r[0] != key}
        elif kind in ("yank release", "unyank release"):
            assert release in live_releases
        else:
            assert key in live_projects and event.version is None


def test_fake_serves_pages_for_a_synthetic_history(http: httpx.Client) -> None:
    events = synthetic_changelog(3_000, seed=5)
    recent = {canonicalize_name(event.name) for event in events[-50:]}
    with FakeUpstream(events) as up:
        statuses = collections.Counter(simple(http, up, key).status_code for key in recent)
    assert set(statuses) <= {200, 404}
    assert statuses[200] > len(recent) / 2


# --------------------------------------------------------------------------- the CLI


def _read_line(process: subprocess.Popen[str], timeout: float) -> str:
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise TimeoutError("the fake upstream did not say READY")
    return process.stdout.readline()


def test_cli_serves_a_synthetic_changelog_until_terminated() -> None:
    command = [sys.executable, "-m", "tests.fixtures.fake_upstream"]
    command += ["--events", "3000", "--seed", "4", "--max-rows", "1000"]
    with subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as process:
        try:
            ready, base_url = _read_line(process, timeout=15).split()
            assert ready == "READY"
            assert base_url.startswith("http://127.0.0.1:")
            expected = [event.row() for event in synthetic_changelog(3_000, seed=4)]
            with xmlrpc.client.ServerProxy(f"{base_url}/pypi", allow_none=True) as server:
                assert server.changelog_last_serial() == expected[-1][4]
                first = since(server, 0)
                assert first == expected[:1_000]
                assert since(server, first[-1][4]) == expected[1_000:2_000]
        finally:
            process.terminate()
            assert process.wait(timeout=10) == 0
