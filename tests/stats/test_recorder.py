"""The built-in server's recorder: hits told to it are written by its child process, which runs
at a lower priority than the server; a full queue drops and counts; hits wait while the child
gets no CPU; a store that cannot be written fails no request."""

from __future__ import annotations

import os
import signal
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


def test_the_queue_folds_into_each_distinct_request_once_and_each_hit_keeps_its_own() -> None:
    recorder = HitRecorder(create_engine("sqlite://"), SECRET)  # not started: take() by hand
    told = []
    for n in range(3):
        for path, status, agent, _hit in REQUESTS:
            recorder.on_hit(path, status, agent.encode(), f"192.0.2.{n % 2}")
            told.append((path, status, agent.encode(), f"192.0.2.{n % 2}"))
    batch = recorder.take()
    assert batch is not None and len(batch) == len(told)
    assert len(batch.requests) == 2 * len(REQUESTS)  # two clients
    assert [batch.requests[number] for number in batch.numbers] == told
    assert list(batch.times) == sorted(batch.times)
    assert recorder.take() is None  # the queue is empty


def test_range_requests_of_one_file_by_one_client_count_once(engine: Engine) -> None:
    recorder = HitRecorder(engine, SECRET, interval=0.2).start()
    for _ in range(4):
        recorder.on_hit(WHEEL, 206, PIP_AGENT.encode(), "192.0.2.7")
    recorder.on_hit(WHEEL, 206, PIP_AGENT.encode(), "192.0.2.8")  # another client
    recorder.stop()
    with engine.connect() as connection:
        found = summary(connection, int(time.time() // DAY))
    assert found["downloads_total"] == 2


def test_the_recorders_process_runs_at_a_lower_priority_than_the_server(tmp_path) -> None:
    store = create_engine(f"sqlite:///{tmp_path / 'store.sqlite'}")
    recorder = HitRecorder(store, SECRET).start()
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    try:
        assert recorder.pid is not None
        deadline = time.monotonic() + 60
        while os.getpriority(os.PRIO_PROCESS, recorder.pid) != min(ours + 10, 19):
            assert time.monotonic() < deadline, "the recorder's process never lowered its priority"
            time.sleep(0.05)
    finally:
        recorder.stop()
        store.dispose()


def test_hits_wait_while_the_recorder_gets_no_cpu_and_are_written_when_it_does(
    engine: Engine,
) -> None:
    """SIGSTOP stands for a machine so busy that the recorder gets no CPU for a while."""
    recorder = HitRecorder(engine, SECRET, interval=0.05).start()
    assert recorder.pid is not None
    os.kill(recorder.pid, signal.SIGSTOP)
    try:
        for _ in range(10):
            tell(recorder, 20)
            time.sleep(0.05)
        time.sleep(0.3)  # folded and sent: waiting in the server and in the pipe
        assert recorder.counts.written == 0
    finally:
        os.kill(recorder.pid, signal.SIGCONT)
    counts = recorder.stop()
    hits = 200 * sum(hit for *_, hit in REQUESTS)
    assert (counts.queued, counts.written, counts.dropped) == (200 * len(REQUESTS), hits, 0)


def test_the_recorders_process_outlives_a_sigterm_sent_to_the_whole_group(
    engine: Engine,
) -> None:
    """systemd and ``timeout`` signal the process group: the server stops, then tells the child,
    which must still be there to write what it holds."""
    recorder = HitRecorder(engine, SECRET, interval=0.05).start()
    assert recorder.pid is not None
    tell(recorder, 5)
    time.sleep(0.5)  # the child has started and set its signals (set before it reads a batch)
    os.kill(recorder.pid, signal.SIGTERM)
    tell(recorder, 5)
    counts = recorder.stop()
    hits = 10 * sum(hit for *_, hit in REQUESTS)
    assert (counts.queued, counts.written, counts.dropped) == (10 * len(REQUESTS), hits, 0)


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
