"""The mirroring API: XML-RPC on POST /pypi and the upstream-shaped JSON API, on both servers.

nginx hands /pypi to the wheelfarm process and rewrites /packages/ to /files/, so every case
here runs against both; the functions that shape the answers are tested on their own below.
"""

from __future__ import annotations

import xmlrpc.client
from typing import Any

import httpx
import orjson
import pytest

from tests.publish.servers import BIG_PROJECT_JSON, BIG_SERIAL, WHEEL, WHEEL_BYTES
from wheelfarm.publish.site_writer import UNLISTED
from wheelfarm.web.mirror_api import (
    UNLISTED_FILE,
    changelog_rows,
    json_api,
    project_serials,
    unlisted_serials,
    xmlrpc_answer,
)

ROOT = orjson.dumps(
    {
        "meta": {"api-version": "1.4", "_last-serial": 9},
        "projects": [
            {"name": "Foo.Bar", "_last-serial": 4},
            {"name": "baz", "_last-serial": 9},
            {"name": "old", "_last-serial": 1},
        ],
    }
)


def call(base_url: str, method: str, *params: object) -> object:
    """A real XML-RPC call, with the standard library's client (what mirrors send)."""
    with xmlrpc.client.ServerProxy(f"{base_url}/pypi") as proxy:
        return getattr(proxy, method)(*params)


def test_xmlrpc_lists_projects_with_serials(base_url: str) -> None:
    assert call(base_url, "list_packages_with_serial") == {"Foo.Bar": 0}
    assert call(base_url, "changelog_last_serial") == 0
    assert call(base_url, "changelog_since_serial", 0) == []


def test_an_unknown_xmlrpc_method_is_a_fault(base_url: str) -> None:
    with pytest.raises(xmlrpc.client.Fault) as fault:
        call(base_url, "package_releases", "foo")
    assert fault.value.faultCode == -32601
    assert "package_releases" in fault.value.faultString


@pytest.mark.parametrize(
    ("path", "version", "all_releases"),
    [
        ("/pypi/big/json", "1.0", True),
        ("/pypi/Big/json", "1.0", True),
        ("/pypi/big/json/", "1.0", True),
        ("/pypi/big/1.0/json", "1.0", False),
        ("/pypi/big/2.0/json", "2.0", False),
    ],
)
def test_json_api_answers_in_the_upstream_shape_with_the_serial(
    base_url: str, client: httpx.Client, path: str, version: str, all_releases: bool
) -> None:
    response = client.get(base_url + path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-pypi-last-serial"] == str(BIG_SERIAL)
    document = response.json()
    assert document["info"]["name"] == "Big"
    assert document["info"]["version"] == version
    assert document["last_serial"] == BIG_SERIAL
    assert ("releases" in document) == all_releases
    if version == "1.0":
        [file] = document["urls"]
        assert file["url"] == f"{base_url}/packages/big/big-1.0-py3-none-any.whl"
        assert file["digests"] == {"sha256": "ab" * 32}
        assert file["upload_time_iso_8601"] == "2026-11-23T10:00:00.123456Z"
        assert file["packagetype"] == "bdist_wheel" and file["requires_python"] == ">=3.8"


@pytest.mark.parametrize(
    "path", ["/pypi/nope/json", "/pypi/big/9.9/json", "/pypi/big", "/pypi/big/1.0/json/x", "/pypi"]
)
def test_json_api_misses_are_404(base_url: str, client: httpx.Client, path: str) -> None:
    assert client.get(base_url + path).status_code == 404


def test_packages_is_an_alias_of_files(base_url: str, client: httpx.Client) -> None:
    response = client.get(f"{base_url}/packages/foo-bar/{WHEEL}")
    assert response.status_code == 200
    assert response.content == WHEEL_BYTES
    assert response.headers["cache-control"] == "max-age=31536000, immutable"


# --- the shaping functions ------------------------------------------------------------------


def answer(method: str, *params: int, root: bytes | None = ROOT) -> Any:
    body = xmlrpc.client.dumps(params, method).encode()
    (result,), _ = xmlrpc.client.loads(xmlrpc_answer(body, root, 1_700_000_000))
    return result


def test_project_serials_read_the_root() -> None:
    assert project_serials(ROOT) == (9, {"Foo.Bar": 4, "baz": 9, "old": 1})


@pytest.mark.parametrize(
    ("since", "expected"),
    [
        (
            0,
            [
                ["old", "", 7, "update", 1],
                ["Foo.Bar", "", 7, "update", 4],
                ["baz", "", 7, "update", 9],
            ],
        ),
        (3, [["Foo.Bar", "", 7, "update", 4], ["baz", "", 7, "update", 9]]),
        (9, []),
    ],
)
def test_changelog_rows_after_a_serial(since: int, expected: list[list[object]]) -> None:
    assert changelog_rows(project_serials(ROOT)[1], since, 7) == expected


def test_changelog_rows_name_the_projects_no_longer_listed_as_removed() -> None:
    unlisted = unlisted_serials(orjson.dumps({"gone": 6, "older": 2}))
    assert changelog_rows(project_serials(ROOT)[1], 3, 7, unlisted) == [
        ["Foo.Bar", "", 7, "update", 4],
        ["gone", "", 7, "remove project", 6],
        ["baz", "", 7, "update", 9],
    ]
    body = xmlrpc.client.dumps((0,), "changelog_since_serial").encode()
    (rows,), _ = xmlrpc.client.loads(xmlrpc_answer(body, ROOT, 7, orjson.dumps({"gone": 6})))
    assert ["gone", "", 7, "remove project", 6] in list(rows)  # type: ignore[arg-type]
    assert unlisted_serials(None) == {}  # a tree written before the file existed


def test_the_server_reads_the_file_the_publisher_writes() -> None:
    assert UNLISTED_FILE == UNLISTED


def test_xmlrpc_methods() -> None:
    assert answer("changelog_last_serial") == 9
    assert answer("list_packages_with_serial") == {"Foo.Bar": 4, "baz": 9, "old": 1}
    assert [row[0] for row in answer("changelog_since_serial", 3)] == ["Foo.Bar", "baz"]


@pytest.mark.parametrize(
    ("body", "root", "code"),
    [
        (b"<not xml", ROOT, -32700),
        (xmlrpc.client.dumps((), "changelog_last_serial").encode(), None, -32500),
        (xmlrpc.client.dumps(("x",), "changelog_since_serial").encode(), ROOT, -32602),
        (xmlrpc.client.dumps((), "system.listMethods").encode(), ROOT, -32601),
    ],
)
def test_xmlrpc_faults_name_the_problem(body: bytes, root: bytes | None, code: int) -> None:
    with pytest.raises(xmlrpc.client.Fault) as fault:
        xmlrpc.client.loads(xmlrpc_answer(body, root, 0))
    assert fault.value.faultCode == code


def test_json_api_picks_the_version_pip_would_get() -> None:
    answered = json_api(BIG_PROJECT_JSON, "http://h")
    assert answered is not None
    document = orjson.loads(answered[0])
    assert document["info"]["version"] == "1.0"  # 2.0 has no files here
    assert set(document["releases"]) == {"2.0", "1.0"}
    assert document["releases"]["2.0"] == []
    assert json_api(BIG_PROJECT_JSON, "http://h", "3.0") is None
