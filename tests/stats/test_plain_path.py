"""The plain-line fast path reads every line it takes exactly as the careful path would."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tests.stats.lines import BOT_AGENT, BROWSER_AGENT, PIP_AGENT, UV_AGENT, nginx_line
from wheelfarm.stats.hits import DAY
from wheelfarm.stats.logs import _PLAIN, LogIngester

NOW = 1_750_000_000.0
PATHS = [
    "/files/demo/demo-1.0-cp311-cp311-linux_x86_64.whl",
    "/files/demo/demo-1.0.tar.gz",
    "/files/demo/readme.txt",
    "/simple/Demo/",
    "/project/demo/json",
    "/static/site.css",
]
AGENTS = [PIP_AGENT, UV_AGENT, BROWSER_AGENT, BOT_AGENT, 'pip/24.0 {"broken', "", "a\\b"]


def apache(line: bytes) -> bytes:
    """The same line with Apache's escaping: \\" for a quote, \\\\ for a backslash."""
    return line.replace(b"\\x22", b'\\"').replace(b"\\x5C", b"\\\\")


@given(
    at=st.integers(-100 * DAY, 2 * 3600).map(lambda ago: NOW + ago),
    path=st.sampled_from(PATHS),
    status=st.sampled_from([200, 206, 304, 404]),
    agent=st.sampled_from(AGENTS),
    method=st.sampled_from(["GET", "HEAD"]),
    escaping=st.sampled_from([bytes, apache]),
)
def test_plain_and_careful_paths_agree(at, path, status, agent, method, escaping):
    line = escaping(nginx_line(at, path, status=status, agent=agent, method=method))
    plain = LogIngester(None, b"k" * 32, now=NOW).hit_of(line)  # type: ignore[arg-type]
    careful = LogIngester(None, b"k" * 32, now=NOW)._careful_hit_of(  # type: ignore[arg-type]
        line.decode().rstrip("\n")
    )
    assert plain == careful


def test_nginx_lines_take_the_plain_path_and_apache_quotes_the_careful_one():
    line = nginx_line(NOW, PATHS[0]).decode()
    assert _PLAIN.match(line) is not None
    assert _PLAIN.match(apache(line.encode()).decode()) is None
