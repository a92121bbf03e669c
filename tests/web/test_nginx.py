"""docs/nginx.conf on its own: it loads, it negotiates as wheelfarm does, its types are ours.

The behaviour suite in test_serve.py runs against nginx too; these tests cover what is only
nginx's: its configuration check, and that its regex-and-map negotiation agrees with
:func:`wheelfarm.web.negotiation.negotiate` on many generated Accept headers, not just the few
written out by hand.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.publish.servers import NGINX, NGINX_CONF, Nginx, main_conf, nginx_available, nginx_site
from wheelfarm.web.files import CONTENT_TYPES
from wheelfarm.web.negotiation import HTML, JSON, V1_HTML, negotiate

RANGES = [
    ("application/vnd.pypi.simple.v1+json", "json"),
    ("application/vnd.pypi.simple.latest+json", "json"),  # an alias: never beside the above
    ("application/vnd.pypi.simple.v1+html", "v1html"),
    ("text/html", "html"),
    ("application/*", "app"),
    ("text/*", "text"),
    ("*/*", "any"),
    ("application/json", "json-plain"),
    ("image/png", "png"),
]
# nginx compares q to the tenth; these values never tie in one server and not the other.
Q_VALUES = [None, "0", "0.0", "0.05", "0.1", "0.2", "0.3", "0.5", "0.7", "0.8", "0.9", "1", "1.0"]
VARIANT_BY_TYPE = {
    "application/vnd.pypi.simple.v1+json": JSON,
    "application/vnd.pypi.simple.v1+html": V1_HTML,
    "text/html; charset=utf-8": HTML,
}


@st.composite
def accept_headers(draw: st.DrawFn) -> str:
    """An Accept header of up to five different media ranges with assorted q-values."""
    chosen = draw(st.lists(st.sampled_from(RANGES), max_size=5, unique_by=lambda r: r[1]))
    items = []
    for media, _ in chosen:
        q = draw(st.sampled_from(Q_VALUES))
        space = draw(st.sampled_from(["", " "]))
        items.append(media if q is None else f"{media};{space}q={q}")
    separator = draw(st.sampled_from([",", ", "]))
    return separator.join(items)


def test_the_configuration_loads(tmp_path: Path) -> None:
    nginx_available()
    site = tmp_path / "wheelfarm.conf"
    site.write_text(nginx_site(tmp_path, 8081, 8080))
    conf = tmp_path / "nginx.conf"
    conf.write_text(main_conf(tmp_path, site))
    result = subprocess.run(
        [NGINX, "-t", "-p", str(tmp_path), "-c", str(conf), "-e", str(tmp_path / "error.log")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "warn" not in result.stderr, result.stderr


@settings(max_examples=300, deadline=None)
@given(accept=accept_headers())
def test_nginx_negotiates_as_wheelfarm_does(nginx: Nginx, accept: str) -> None:
    response = httpx.get(f"{nginx.url}/simple/foo-bar/", headers={"Accept": accept})
    got = None if response.status_code == 406 else VARIANT_BY_TYPE[response.headers["content-type"]]
    assert got == negotiate(accept), accept


def test_the_types_are_wheelfarms() -> None:
    """The `types` block and charset list give each ending the content type the app gives it."""
    text = NGINX_CONF.read_text()
    block = re.search(r"\n    types \{[^}]*\}", text)
    assert block is not None
    charset_line = re.search(r"charset_types ([^;]*);", text)
    assert charset_line is not None
    with_charset = {"text/html", *charset_line.group(1).split()}
    nginx_types = {}
    for line in block.group(0).splitlines()[2:-1]:
        media, *endings = line.split("#")[0].strip().rstrip(";").split()
        for ending in endings:
            shown = f"{media}; charset=utf-8" if media in with_charset else media
            nginx_types[ending] = shown
    assert nginx_types == CONTENT_TYPES


def test_placeholders_name_no_real_host() -> None:
    """The documented config uses the example domain and loopback only."""
    text = NGINX_CONF.read_text()
    hosts = set(re.findall(r"server_name ([^;]*);", text))
    assert hosts == {"index.example.org"}
    assert re.findall(r"server ([^;\s]*);", text) == ["127.0.0.1:8080"]
