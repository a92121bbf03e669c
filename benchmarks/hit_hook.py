"""Benchmark: what the hit recorder's hook costs the built-in server, per request, on its own.

``benchmarks/hit_logging.py`` measures the whole cost under wrk, where the machine's noise is as
large as what is measured. This one calls the ASGI app (``IndexApp``) directly in a loop, no
network and no wrk: pip's fetch of a simple page and of a wheel, with pip's user agent (its
header values new objects each request, as the server reads them), each a hit, with recording
and without it, in interleaved rounds (the best round of each kept). The recorder is not
started: the hook's folding is measured here, and what the recorder's sender thread does in the
server's process with what was appended (taking the batch the hook folded, pickling it for the
recorder's process) is timed after each round, per request.
Prints one line: microseconds of CPU a request without recording, with it, the difference,
and the sender's share.

    python benchmarks/hit_hook.py [--requests 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import pickle
import sys
import tempfile
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.hit_logging import PIP_ACCEPT, PIP_AGENT, write_tree  # noqa: E402
from wheelfarm.stats.recorder import HitRecorder  # noqa: E402
from wheelfarm.store.database import open_store  # noqa: E402
from wheelfarm.web.index_app import IndexApp, create_index_app  # noqa: E402

PROJECTS = 50


def scopes(wheels: list[str]) -> list[dict[str, Any]]:
    """A GET of each project's simple page and of its wheel, as uvicorn hands them over."""
    headers = [
        (b"host", b"127.0.0.1:8000"),
        (b"accept", PIP_ACCEPT.encode()),
        (b"user-agent", PIP_AGENT.encode()),
        (b"accept-encoding", b"gzip, deflate"),
    ]
    found = []
    for wheel in wheels:
        for path in (f"/simple/{wheel.split('/')[2]}/", wheel):
            found.append(
                {
                    "type": "http",
                    "asgi": {"version": "3.0"},
                    "http_version": "1.1",
                    "method": "GET",
                    "scheme": "http",
                    "path": path,
                    "raw_path": path.encode(),
                    "query_string": b"",
                    "root_path": "",
                    "headers": headers,
                    "client": ("127.0.0.1", 50000),
                    "server": ("127.0.0.1", 8000),
                }
            )
    return found


async def serve(app: IndexApp, requests: list[dict[str, Any]], count: int) -> None:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        return None

    for i in range(count):
        scope = dict(requests[i % len(requests)])
        # The header values as the server reads them: new objects each request (the hook's
        # dictionary then hashes the user agent each time, as it does under a real server).
        scope["headers"] = [(name, bytes(bytearray(value))) for name, value in scope["headers"]]
        await app(scope, receive, send)


def round_of(app: IndexApp, requests: list[dict[str, Any]], count: int) -> float:
    """CPU seconds a request of one round."""
    started = time.process_time()
    asyncio.run(serve(app, requests, count))
    return (time.process_time() - started) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        www = Path(directory) / "www"
        requests = scopes(write_tree(www, PROJECTS))
        engine = open_store(f"sqlite:///{Path(directory) / 'store.sqlite'}")
        recorder = HitRecorder(engine, b"h" * 32, capacity=options.requests + 1)
        plain = create_index_app(www)
        recording = create_index_app(www, on_hit=recorder.on_hit)
        without, with_, sender = [], [], []
        for _ in range(options.rounds):
            without.append(round_of(plain, requests, options.requests))
            with_.append(round_of(recording, requests, options.requests))
            started = time.process_time()
            batch = recorder.take()  # what the sender thread does once a second
            pickle.dumps(batch)  # as the sender thread pickles it
            recorder.sent()
            sender.append((time.process_time() - started) / options.requests)
            taken = 0 if batch is None else len(batch)
            if taken != options.requests:
                raise SystemExit(f"the hook recorded {taken} of {options.requests} requests")
        engine.dispose()
    off, on, take = min(without) * 1e6, min(with_) * 1e6, min(sender) * 1e6
    print(
        f"hit hook: {off:.1f} us of CPU a request without recording, {on:.1f} with "
        f"(+{on - off:.2f} us, {100 * (on - off) / off:+.1f} %); "
        f"the sender's take and pickle {take:.2f} us a request"
    )


if __name__ == "__main__":
    main()
