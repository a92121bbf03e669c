"""The plain-line fast path reads every line it takes exactly as the careful path would."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tests.stats.lines import BOT_AGENT, BROWSER_AGENT, PIP_AGENT, UV_AGENT, nginx_line
from wheelfarm.stats.hits import DAY, Hit
from wheelfarm.stats.logs import LogIngester

NOW = 1_750_000_000.0
PATHS = [
    "/files/demo/demo-1.0-cp311-cp311-linux_x86_64.whl",
    "/files/demo/demo-1.0.tar.gz",
    "/files/demo/readme.txt",
    "/simple/Demo/",
    "/project/demo/json",
    "/static/site.css",
    "/simple/d\u00e9mo/",  # not ASCII: the careful path
]
AGENTS = [
    PIP_AGENT,
    UV_AGENT,
    BROWSER_AGENT,
    BOT_AGENT,
    'pip/24.0 {"broken',
    "",
    "a\\b",
    "caf\u00e9\tbar",  # a tab: the careful path
]


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


class CarefulCounted(LogIngester):
    """The real ingester, counting the lines that take the careful path."""

    careful = 0

    def _careful_hit_of(self, line: str) -> Hit | str:
        self.careful += 1
        return super()._careful_hit_of(line)


def test_nginx_lines_take_the_plain_path_and_apache_quotes_the_careful_one():
    line = nginx_line(NOW, PATHS[0], agent='pip/24.0 {"a": "b"}')
    ingester = CarefulCounted(None, b"k" * 32, now=NOW)  # type: ignore[arg-type]
    plain = ingester.hit_of(line)
    assert isinstance(plain, Hit)
    assert ingester.careful == 0
    assert ingester.hit_of(apache(line)) == plain
    assert ingester.careful == 1
