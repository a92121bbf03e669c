"""The built-in server's recorder: hits told to it are written by its child process; a full
queue drops and counts; a store that cannot be written fails no request."""

from __future__ import annotations

import time

from sqlalchemy import Engine, create_engine

from tests.stats.lines import BROWSER_AGENT, PIP_AGENT, UV_AGENT
from wheelfarm.stats.hits import DAY
from wheelfarm.stats.recorder import HitRecorder
from wheelfarm.stats.report import summary

SECRET = b"r" * 32
WHEEL = "/files/demo/demo-1.0-py3-none-any.whl"

# (path, status, user agent, whether it is a hit)
REQUESTS = [
    (WHEEL, 200, PIP_AGENT, True),
    (WHEEL, 200, UV_AGENT, True),
    ("/simple/demo/", 200, PIP_AGENT, True),
    ("/simple/demo/", 304, UV_AGENT, True),
    ("/simple/demo/", 200, BROWSER_AGENT, False),  # not an installer: no search
    ("/project/demo/", 200, BROWSER_AGENT, True),
    ("/static/site.css", 200, BROWSER_AGENT, False),  # not a counted path
]


def tell(recorder: HitRecorder, times: int = 1) -> None:
    for _ in range(times):
        for path, status, agent, _hit in REQUESTS:
            recorder.on_hit(path, status, agent.encode(), "192.0.2.7")


def test_hits_told_to_the_recorder_are_written_by_its_child(engine: Engine) -> None:
    recorder = HitRecorder(engine, SECRET, interval=0.2).start()
    tell(recorder, 3)
    recorder.stop()
    hits = 3 * sum(hit for *_, hit in REQUESTS)
    assert (recorder.counts.queued, recorder.counts.written) == (3 * len(REQUESTS), hits)
    assert (recorder.counts.dropped, recorder.counts.failed_batches) == (0, 0)
    with engine.connect() as connection:
        found = summary(connection, int(time.time() // DAY))
    assert (found["downloads_total"], found["searches_30d"], found["page_views_30d"]) == (6, 6, 3)
    assert found["shares"]["installer"] == {"pip": 3, "uv": 3}


def test_a_full_queue_drops_the_hit_and_counts_it(engine: Engine) -> None:
    recorder = HitRecorder(engine, SECRET, capacity=4)  # not started: nothing takes the queue
    tell(recorder)
    assert (recorder.counts.queued, recorder.counts.dropped) == (4, len(REQUESTS) - 4)


def test_a_store_that_cannot_be_written_fails_no_request(tmp_path) -> None:
    """A database without the statistics tables: every write fails, each told hit returns."""
    empty = create_engine(f"sqlite:///{tmp_path / 'empty.sqlite'}")
    recorder = HitRecorder(empty, SECRET, interval=0.2).start()
    tell(recorder, 3)
    recorder.stop()  # its last write fails too
    empty.dispose()
    assert recorder.counts.queued == 3 * len(REQUESTS)
    assert recorder.counts.written == 0
    assert recorder.counts.failed_batches >= 1
