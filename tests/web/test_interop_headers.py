"""What clients and mirrors read besides the body: Cache-Control, gzip, X-PyPI-Last-Serial.

Every test taking ``base_url`` runs against wheelfarm's server and against nginx with
docs/nginx.conf, so the two are held to each other (nginx reads the serial with
docs/nginx-serial.js, through its njs module).
"""

from __future__ import annotations

import gzip

import httpx
import pytest

from tests.publish.servers import BIG_HTML, BIG_JSON, BIG_SERIAL, HUGE_SERIAL, WHEEL
from wheelfarm.web.headers import accepts_gzip, serial_of

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
PAGE = "max-age=0, must-revalidate"
IMMUTABLE = "max-age=31536000, immutable"


def tokens(value: str | None) -> set[str]:
    """A header's comma-separated tokens, as a set (nginx sends Vary twice, we send it once)."""
    return {part.strip() for part in (value or "").split(",") if part.strip()}


@pytest.mark.parametrize(
    ("path", "accept", "expected"),
    [
        ("/simple/", JSON_TYPE, PAGE),
        ("/simple/", "text/html", PAGE),
        ("/simple/foo-bar/", JSON_TYPE, PAGE),
        ("/simple/big/", "text/html", PAGE),
        ("/simple/index.json", None, PAGE),
        ("/project/foo-bar/", None, PAGE),
        ("/project/foo-bar/json/", None, PAGE),
        ("/", None, PAGE),
        ("/static/site.css", None, PAGE),
        ("/badges/foo-bar.svg", None, PAGE),
        (f"/files/foo-bar/{WHEEL}", None, IMMUTABLE),
        (f"/files/foo-bar/{WHEEL}.metadata", None, IMMUTABLE),
    ],
)
def test_every_response_says_how_long_it_may_be_cached(
    base_url: str, client: httpx.Client, path: str, accept: str | None, expected: str
) -> None:
    headers = {} if accept is None else {"Accept": accept}
    response = client.get(base_url + path, headers=headers)
    assert response.status_code == 200
    assert response.headers["cache-control"] == expected
    again = client.get(
        base_url + path, headers={**headers, "If-None-Match": response.headers["etag"]}
    )
    assert again.status_code == 304
    assert again.headers["cache-control"] == expected


@pytest.mark.parametrize(
    ("accept", "page"), [(JSON_TYPE, BIG_JSON), ("text/html", BIG_HTML)], ids=["json", "html"]
)
def test_gzip_is_sent_to_clients_that_accept_it_with_its_own_etag(
    base_url: str, client: httpx.Client, accept: str, page: bytes
) -> None:
    url = f"{base_url}/simple/big/"
    plain = client.get(url, headers={"Accept": accept, "Accept-Encoding": "identity"})
    packed = client.get(url, headers={"Accept": accept, "Accept-Encoding": "gzip, deflate"})
    assert "content-encoding" not in plain.headers
    assert plain.content == page
    assert packed.headers["content-encoding"] == "gzip"
    assert int(packed.headers["content-length"]) < len(page)
    assert packed.content == page  # httpx decoded it
    for response in (plain, packed):
        assert tokens(response.headers["vary"]) == {"Accept", "Accept-Encoding"}
        assert response.headers["cache-control"] == PAGE
    assert packed.headers["etag"] != plain.headers["etag"]
    revalidated = client.get(
        url,
        headers={
            "Accept": accept,
            "Accept-Encoding": "gzip",
            "If-None-Match": packed.headers["etag"],
        },
    )
    assert revalidated.status_code == 304
    refused = client.get(url, headers={"Accept": accept, "Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in refused.headers


def test_small_pages_are_not_compressed(base_url: str, client: httpx.Client) -> None:
    response = client.get(
        f"{base_url}/simple/foo-bar/", headers={"Accept": JSON_TYPE, "Accept-Encoding": "gzip"}
    )
    assert "content-encoding" not in response.headers
    assert tokens(response.headers["vary"]) == {"Accept"}


def test_the_gzip_sibling_is_the_page_compressed(tree) -> None:
    for name, page in (("index.html", BIG_HTML), ("index.json", BIG_JSON)):
        assert gzip.decompress((tree / "simple" / "big" / f"{name}.gz").read_bytes()) == page


@pytest.mark.parametrize(
    ("path", "accept", "expected"),
    [
        ("/simple/big/", JSON_TYPE, BIG_SERIAL),  # negotiated: the JSON form's meta
        ("/simple/big/", "text/html", BIG_SERIAL),  # negotiated: the HTML form's comment
        ("/simple/big/index.json", None, BIG_SERIAL),  # the file itself
        ("/simple/big/index.html", None, BIG_SERIAL),
        ("/project/big/json/", None, BIG_SERIAL),  # the project JSON's "serial"
        ("/simple/huge/", JSON_TYPE, HUGE_SERIAL),  # too large to keep: its start is read
        ("/simple/huge/", "text/html", HUGE_SERIAL),
        ("/simple/foo-bar/", JSON_TYPE, None),  # a simple page that states none
        ("/project/foo-bar/", None, None),  # pages for people carry none
        ("/badges/foo-bar.svg", None, None),
        (f"/files/foo-bar/{WHEEL}", None, None),
    ],
)
@pytest.mark.parametrize("encoding", ["gzip", "identity"])
def test_pages_carry_their_serial_in_a_header_when_sent_and_when_revalidated(
    base_url: str,
    client: httpx.Client,
    path: str,
    accept: str | None,
    expected: int | None,
    encoding: str,
) -> None:
    headers = {"Accept-Encoding": encoding} | ({} if accept is None else {"Accept": accept})
    response = client.get(base_url + path, headers=headers)
    assert response.status_code == 200
    said = None if expected is None else str(expected)
    assert response.headers.get("x-pypi-last-serial") == said
    again = client.get(
        base_url + path, headers={**headers, "If-None-Match": response.headers["etag"]}
    )
    assert again.status_code == 304
    assert again.headers.get("x-pypi-last-serial") == said


def test_a_missing_page_carries_no_serial(base_url: str, client: httpx.Client) -> None:
    response = client.get(f"{base_url}/simple/no-such-project/", headers={"Accept": JSON_TYPE})
    assert response.status_code == 404
    assert "x-pypi-last-serial" not in response.headers


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, False),
        (b"", False),
        (b"gzip", True),
        (b"gzip, deflate, br", True),
        (b"deflate, br", False),
        (b"GZIP", True),
        (b"x-gzip", True),
        (b"*", True),
        (b"gzip;q=0", False),
        (b"gzip; q=0.0, deflate", False),
        (b"gzip;q=0.5", True),
        (b"br, gzip;q=0.001", True),
        (b"gzipx", False),
    ],
)
def test_accepts_gzip(header: bytes | None, expected: bool) -> None:
    assert accepts_gzip(header) is expected


@pytest.mark.parametrize(
    ("relative", "body", "expected"),
    [
        ("simple/index.html", b"<title>x</title>\n<!--SERIAL 9-->\n", b"9"),
        ("simple/foo/index.json", b'{"meta":{"api-version":"1.4","_last-serial":21}}', b"21"),
        ("simple/foo/index.json", b'{"meta":{"api-version":"1.4"}}', None),
        ("project/foo/index.html", b"<!--SERIAL 9-->", None),
        ("project/foo/json/index.json", b'{"name":"foo","summary":"x","serial":12,"a":3}', b"12"),
        ("simple/foo/index.json", b'{"meta": {"api-version": "1.4", "_last-serial": 5}}', b"5"),
        ("simple/foo/other.html", b"<!--SERIAL 9-->", None),
    ],
)
def test_serial_of(relative: str, body: bytes, expected: bytes | None) -> None:
    assert serial_of(relative, body) == expected
