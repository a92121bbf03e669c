"""Access logs in, counts out: which lines are hits, which are skipped and why, and re-runs."""

from __future__ import annotations

import gzip
import time
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.stats.lines import BOT_AGENT, BROWSER_AGENT, PIP_AGENT, UV_AGENT, nginx_line
from wheelfarm.stats.hits import DAY
from wheelfarm.stats.logs import IngestReport, LogIngester
from wheelfarm.stats.report import project_downloads, summary
from wheelfarm.stats.sources import read_lines
from wheelfarm.store.schema import stats_hits

NOW = 1_750_000_000.0
TODAY = int(NOW // DAY)
SECRET = b"s" * 32
WHEEL = "/files/demo/demo-1.0-cp311-cp311-linux_x86_64.whl"


def ingest(engine, lines, **options) -> IngestReport:
    with LogIngester(engine, SECRET, now=NOW, **options) as ingester:
        ingester.feed(lines)
        ingester.flush()
    return ingester.report


def counts(engine) -> dict[str, Any]:
    with engine.connect() as connection:
        return summary(connection, TODAY)


# (line, the reason it is skipped); every one of these is read without an error.
SKIPPED = [
    (b"", "empty line"),
    (b"garbage that is no log line\n", "not the combined log format"),
    (b"x" * 20000 + b"\n", "line too long"),
    (nginx_line(NOW, WHEEL).replace(b"GET", b"G\x01T"), "control characters"),
    (nginx_line(NOW, WHEEL).replace(b"GET /files", b"\\x16\\x03 /files"), "malformed request"),
    (nginx_line(NOW, WHEEL).replace(b"+0000", b"+0000x"), "malformed time"),
    (nginx_line(NOW, WHEEL).replace(b"/2025:", b"/99999:"), "malformed time"),
    (nginx_line(NOW + 7200, WHEEL), "time in the future"),
    (nginx_line(NOW - 100 * DAY, WHEEL), "older than the kept raw hits"),
    (nginx_line(NOW, WHEEL, method="HEAD"), "not a GET"),
    (nginx_line(NOW, WHEEL, status=404), "not a counted status"),
    (nginx_line(NOW, "/files/demo/readme.txt"), "not a published file name"),
    (nginx_line(NOW, "/static/site.css"), "not a counted path"),
    (nginx_line(NOW, "/simple/demo/", agent=BROWSER_AGENT), "not an installer"),
    (nginx_line(NOW, "/simple/demo/", agent=BOT_AGENT), "not an installer"),
    (nginx_line(NOW, "/simple/demo/", agent='pip/24.0 {"broken'), "not an installer"),
]


@pytest.mark.parametrize(("line", "reason"), SKIPPED)
def test_unusable_lines_are_skipped_with_their_reason(engine, line, reason):
    report = ingest(engine, [line])
    assert report.lines == 1 and report.hits == 0
    assert dict(report.skipped) == {reason: 1}


# (path, status, agent, kind counted)
HITS = [
    (WHEEL, 200, PIP_AGENT, "download"),
    (WHEEL, 206, UV_AGENT, "download"),
    ("/files/demo/demo-1.0.tar.gz", 200, PIP_AGENT, "download"),
    ("/simple/demo/", 200, PIP_AGENT, "search"),
    ("/simple/Demo/", 304, UV_AGENT, "search"),
    ("/project/demo/", 200, BROWSER_AGENT, "page"),
    ("/project/demo/json", 200, BROWSER_AGENT, "json"),
]


@pytest.mark.parametrize(("path", "status", "agent", "kind"), HITS)
def test_each_kind_of_hit_is_counted_for_its_project(engine, path, status, agent, kind):
    report = ingest(engine, [nginx_line(NOW, path, status=status, agent=agent)])
    assert report.hits == 1, report
    with engine.connect() as connection:
        row = connection.execute(select(stats_hits.c.kind, stats_hits.c.project)).one()
    assert tuple(row) == (kind, "demo")


def test_ingesting_the_same_log_twice_counts_each_line_once(engine):
    lines = [nginx_line(NOW - i, WHEEL, client=f"198.51.100.{i}") for i in range(50)]
    first = ingest(engine, lines)
    again = ingest(engine, lines)
    assert (first.hits, first.duplicates) == (50, 0)
    assert (again.hits, again.duplicates) == (0, 50)
    assert counts(engine)["downloads_total"] == 50


def test_a_child_writer_counts_each_line_once_as_the_ingester_does(engine):
    """Batches written in a child process (``child=True``, as ``logs ingest`` does), several
    in flight one after the other: the same counts, the same re-run rule."""
    lines = [nginx_line(NOW - i, WHEEL, client=f"198.51.100.{i}") for i in range(50)]
    searches = [nginx_line(NOW - i, "/simple/demo/", agent=UV_AGENT) for i in range(7)]
    first = ingest(engine, lines[:20] + searches, child=True, batch=6)
    again = ingest(engine, lines, child=True, batch=6)
    assert (first.lines, first.hits, first.duplicates) == (27, 27, 0)
    assert (again.lines, again.hits, again.duplicates) == (50, 30, 20)
    found = counts(engine)
    assert (found["downloads_total"], found["searches_30d"]) == (50, 7)
    assert found["shares"]["installer"] == {"pip": 50}


def test_a_child_writer_sent_batches_in_parts_counts_each_line_once(engine):
    """A batch in parts (``part`` < ``batch``): a part's hits may repeat an earlier part's
    (a range request again, a line read before), and each counts once, in the batch's counts."""
    lines = [nginx_line(NOW - i, WHEEL, client=f"198.51.100.{i}") for i in range(30)]
    ranged = [nginx_line(NOW - i, WHEEL, status=206, size=100 + i) for i in range(8)]
    ingest(engine, lines[10:20], child=True, batch=4)
    again = ingest(engine, lines + ranged, child=True, batch=10, part=3)
    assert (again.lines, again.hits, again.duplicates) == (38, 21, 17)
    found = counts(engine)
    assert found["downloads_total"] == 31
    assert found["shares"]["installer"] == {"pip": 31}
    assert ingest(engine, lines + ranged, child=True, batch=7, part=2).hits == 0


def test_a_batch_of_old_and_new_lines_counts_only_the_new(engine):
    lines = [nginx_line(NOW - i, WHEEL, client=f"198.51.100.{i}") for i in range(30)]
    ingest(engine, lines[10:20])
    again = ingest(engine, lines)  # one batch: 10 known in the middle, 20 new around them
    assert (again.hits, again.duplicates) == (20, 10)
    assert counts(engine)["downloads_total"] == 30
    assert ingest(engine, lines).hits == 0


def test_range_requests_count_once_per_client_file_and_day(engine):
    ranged = [nginx_line(NOW - i, WHEEL, status=206, size=100 + i) for i in range(10)]
    other_client = nginx_line(NOW, WHEEL, status=206, client="203.0.113.9")
    next_day = nginx_line(NOW - DAY, WHEEL, status=206)
    ingest(engine, [*ranged, other_client, next_day])
    assert counts(engine)["downloads_total"] == 3


def test_summary_has_top_missed_projects_and_shares(engine):
    lines = [
        nginx_line(NOW, WHEEL),
        nginx_line(NOW - 1, WHEEL, agent=UV_AGENT),
        nginx_line(NOW - 40 * DAY, WHEEL),
        nginx_line(NOW, "/simple/demo/"),
        nginx_line(NOW, "/simple/wanted/"),
        nginx_line(NOW - 1, "/simple/wanted/", agent=UV_AGENT),
        nginx_line(NOW, WHEEL, agent=BOT_AGENT),
    ]
    ingest(engine, lines)
    found = counts(engine)
    assert found["downloads_total"] == 3 and found["downloads_30d"] == 2
    assert found["searches_30d"] == 3
    assert found["top_projects"] == [{"name": "demo", "downloads_30d": 2, "downloads_total": 3}]
    assert found["missed_projects"] == [{"name": "wanted", "searches_30d": 2}]
    assert found["shares"] == {
        "installer": {"pip": 1, "uv": 1},
        "python": {"3.11": 1, "3.12": 1},
        "distro": {"Debian GNU/Linux 12": 1, "Ubuntu 24.04": 1},
        "arch": {"aarch64": 1, "x86_64": 1},
    }
    with engine.connect() as connection:
        assert project_downloads(connection, ["demo", "other"], TODAY) == {"demo": (2, 3)}


def test_no_address_is_stored(engine):
    ingest(engine, [nginx_line(NOW, WHEEL, client="192.0.2.77")])
    with engine.connect() as connection:
        clients = connection.execute(select(stats_hits.c.client)).scalars().all()
        assert connection.execute(select(func.count()).select_from(stats_hits)).scalar() == 1
    assert len(clients) == 1 and "192.0.2" not in clients[0] and len(clients[0]) == 16


def test_gzip_logs_are_read_like_plain_ones(tmp_path, engine):
    plain = b"".join(nginx_line(NOW - i, WHEEL, client=f"192.0.2.{i}") for i in range(5))
    (tmp_path / "access.log.gz").write_bytes(gzip.compress(plain))
    (tmp_path / "access.log").write_bytes(plain)
    assert list(read_lines(tmp_path / "access.log.gz")) == list(read_lines(tmp_path / "access.log"))
    assert ingest(engine, read_lines(tmp_path / "access.log.gz")).hits == 5


def test_apache_escaped_quotes_are_read(engine):
    agent = PIP_AGENT.replace('"', '\\"')
    line = f"192.0.2.1 - - [{time.strftime('%d/%b/%Y:%H:%M:%S +0000', time.gmtime(NOW))}] "
    line += f'"GET /simple/demo/ HTTP/1.1" 200 10 "-" "{agent}"\n'
    assert ingest(engine, [line.encode()]).hits == 1
    assert counts(engine)["shares"]["installer"] == {}
    assert counts(engine)["searches_30d"] == 1
