"""Probes inside the master, for ``benchmarks/heartbeats.py --breakdown``: where the time goes.

Installed in the master's process before its app is built, they record spans on the monotonic
clock (the same clock in every process of the machine, so the load generator can line its slow
heartbeats up with them): each heartbeat's time in the app, split into the token check, the wait
for a worker thread, the work there (the lease query in it) and the hop back to the event loop;
the event loop's lag (a task that sleeps 5 ms and notes how late it wakes); garbage collections;
every transaction, named by the thread that ran it (the presence writer's, the sampler's, the
workers'); new database connections; the presence writer's passes; the sampler's passes; the
dashboard's query. Plus the CPU each thread spent. Measurement only: nothing here changes what
the master does, apart from the cost of noting.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import psutil
from sqlalchemy import Engine, event

__all__ = ["Probes", "install_probes"]

#: Kinds noted once per request: summarised by the master, not sent span by span.
PER_REQUEST = frozenset(
    {
        "gc CPU: generation 0",
        "gc CPU: generation 1",
        "gc CPU: generation 2",
        "app: heartbeat",
        "token check",
        "thread: wait for a worker",
        "thread: work",
        "thread: back to the loop",
        "lease query",
        "txn: worker",
        "txn: index server",
    }
)
#: Event loop lags shorter than this are counted but not sent span by span (seconds).
LAG_NOTED = 0.005


class Probes:
    """Spans (start, end) by kind, on the monotonic clock; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.spans: dict[str, list[tuple[float, float]]] = defaultdict(list)
        self._cpu: dict[str, float] = {}

    def note(self, kind: str, start: float, end: float) -> None:
        with self._lock:
            self.spans[kind].append((start, end))

    def clear(self) -> None:
        """Forget what was noted (the phase before the load), and note the threads' CPU now."""
        with self._lock:
            self.spans.clear()
        self._cpu = thread_cpu()

    def report(self) -> dict[str, Any]:
        """A summary per kind, the background spans in full, and each thread's CPU since
        :meth:`clear`."""
        with self._lock:
            spans = {kind: list(found) for kind, found in self.spans.items()}
        summary = {}
        for kind, found in spans.items():
            durations = sorted(end - start for start, end in found)
            summary[kind] = {
                "count": len(durations),
                "total": sum(durations),
                "p50": statistics.median(durations),
                "p99": durations[min(len(durations) - 1, int(0.99 * len(durations)))],
                "max": durations[-1],
            }
        cpu = by_name(self._cpu, thread_cpu())
        background = {
            kind: [span for span in found if kind != "loop lag" or span[1] - span[0] >= LAG_NOTED]
            for kind, found in spans.items()
            if kind not in PER_REQUEST
        }
        kinds: dict[str, int] = defaultdict(int)
        for thing in gc.get_objects(2):
            kinds[type(thing).__name__] += 1
        largest = dict(sorted(kinds.items(), key=lambda item: -item[1])[:8])
        objects = {"generation 2": sum(kinds.values()), "frozen": gc.get_freeze_count()}
        return {
            "summary": summary,
            "spans": background,
            "cpu": cpu,
            "gc": {**objects, **{f"of which {name}": n for name, n in largest.items()}},
        }


def thread_cpu() -> dict[str, float]:
    """CPU seconds (user + system) by thread, as ``name:native id`` (a thread's id is kept until
    it ends; :func:`by_name` sums them)."""
    names = {thread.native_id: thread.name for thread in threading.enumerate()}
    return {
        f"{names.get(thread.id, 'not a Python thread')}:{thread.id}": thread.user_time
        + thread.system_time
        for thread in psutil.Process().threads()
    }


def by_name(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU spent between two :func:`thread_cpu` readings by thread name (worker threads as one;
    a thread that ended meanwhile is missing, one that started counts from zero)."""
    cpu: dict[str, float] = defaultdict(float)
    for key, seconds in after.items():
        name = key.rsplit(":", 1)[0]
        if name.startswith("AnyIO worker thread"):
            name = "AnyIO worker threads"
        cpu[name] += seconds - before.get(key, 0.0)
    return dict(cpu)


def _timed(probes: Probes, kind: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.monotonic()
        try:
            return function(*args, **kwargs)
        finally:
            probes.note(kind, start, time.monotonic())

    return timed


def _watch_engine(probes: Probes, engine: Engine) -> None:
    """Every transaction's length, by the thread that ran it; every new connection's cost."""

    def begun(connection: Any) -> None:
        connection.info["probe_begun"] = time.monotonic()

    def ended(connection: Any) -> None:
        begun_at = connection.info.pop("probe_begun", None)
        if begun_at is not None:
            name = threading.current_thread().name
            if name.startswith("AnyIO worker thread"):
                name = "worker"
            probes.note(f"txn: {name}", begun_at, time.monotonic())

    def connecting(dialect: Any, record: Any, args: Any, kwargs: Any) -> None:
        record.info["probe_connecting"] = time.monotonic()

    def connected(dbapi_connection: Any, record: Any) -> None:
        started = record.info.pop("probe_connecting", None)
        if started is not None:
            probes.note("new database connection", started, time.monotonic())

    event.listen(engine, "begin", begun)
    event.listen(engine, "commit", ended)
    event.listen(engine, "rollback", ended)
    event.listen(engine, "do_connect", connecting)
    event.listen(engine.pool, "connect", connected)


def _watch_gc(probes: Probes) -> None:
    """Each collection's wall time, and (as ``gc CPU``) the CPU its thread spent in it."""
    started: dict[str, float] = {}

    def callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started["at"], started["cpu"] = time.monotonic(), time.thread_time()
        elif "at" in started:
            end, cpu = time.monotonic(), time.thread_time() - started.pop("cpu")
            probes.note(f"gc: generation {info['generation']}", started.pop("at"), end)
            probes.note(f"gc CPU: generation {info['generation']}", end - cpu, end)

    gc.callbacks.append(callback)


async def _loop_lag(probes: Probes) -> None:
    """Sleep 5 ms at a time; how much later than asked the loop woke is its lag."""
    while True:
        asked = time.monotonic() + 0.005
        await asyncio.sleep(0.005)
        woke = time.monotonic()
        probes.note("loop lag", asked, max(asked, woke))


#: The requests timed whole, by the last part of their path: heartbeats, and the dashboard's
#: data (its query is timed apart, as ``dashboard query``: the rest is the admin check, the
#: hops to worker threads and the JSON).
_TIMED = {"heartbeat": "app: heartbeat", "data.json": "app: dashboard data"}


class _TimedApp:
    """An ASGI wrapper timing requests from the app's call to the last byte of the answer."""

    def __init__(self, app: Any, probes: Probes) -> None:
        self.app, self.probes = app, probes
        self._lag: asyncio.Task[None] | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._lag is None and scope["type"] == "http":
            self._lag = asyncio.get_running_loop().create_task(_loop_lag(self.probes))
        path = scope["path"] if scope["type"] == "http" else ""
        kind = _TIMED.get(path.rsplit("/", 1)[-1])
        if kind is None:
            await self.app(scope, receive, send)
            return
        start = time.monotonic()
        await self.app(scope, receive, send)
        self.probes.note(kind, start, time.monotonic())


def install_probes(engine: Engine) -> tuple[Probes, Callable[[Any], Any]]:
    """Patch the master's modules to note spans; returns the probes and an app wrapper."""
    import wheelfarm.farm.api as api
    import wheelfarm.farm.heartbeats as heartbeats
    import wheelfarm.monitor.routes as routes
    import wheelfarm.monitor.sampler as sampler
    from wheelfarm.farm.presence import Presence
    from wheelfarm.farm.tokens import TokenCache

    probes = Probes()
    _watch_engine(probes, engine)
    _watch_gc(probes)
    hop = vars(api)["run_in_threadpool"]  # patched where the routes look it up

    async def run_in_threadpool(function: Callable[..., Any], *args: Any) -> Any:
        times: dict[str, float] = {}

        def inside() -> Any:
            times["in"] = time.monotonic()
            try:
                return function(*args)
            finally:
                times["out"] = time.monotonic()

        asked = time.monotonic()
        result = await hop(inside)
        back = time.monotonic()
        probes.note("thread: wait for a worker", asked, times["in"])
        probes.note("thread: work", times["in"], times["out"])
        probes.note("thread: back to the loop", times["out"], back)
        return result

    vars(api)["run_in_threadpool"] = run_in_threadpool
    heartbeats.build_lease = _timed(probes, "lease query", heartbeats.build_lease)
    sampler.sample_once = _timed(probes, "sampler pass", sampler.sample_once)
    vars(routes)["overview"] = _timed(probes, "dashboard query", vars(routes)["overview"])
    Presence.flush = _timed(probes, "presence flush", Presence.flush)  # type: ignore[method-assign]
    TokenCache.known = _timed(probes, "token check", TokenCache.known)  # type: ignore[method-assign]
    return probes, lambda app: _TimedApp(app, probes)
