"""Keep the published tree current while ``wheelfarm up`` runs: a full write at start, then the
projects marked changed, about every second, so a change is published within a second or so."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy import Engine

from wheelfarm.config import Settings
from wheelfarm.publish.failures import PublishFailures
from wheelfarm.publish.incremental import SiteClock, publish_dirty
from wheelfarm.publish.regenerate import write_all
from wheelfarm.publish.tree import Tree

__all__ = ["start_publisher", "tree_of"]

log = logging.getLogger(__name__)


def tree_of(settings: Settings) -> Tree:
    return Tree(settings.www_dir, settings.withdrawn_dir)


def _failed(error: Exception, on_error: Callable[[Exception], bool] | None) -> None:
    """Log a failed write, unless ``on_error`` took care of it (a full disk, say)."""
    if on_error is None or not on_error(error):
        log.exception("publishing the index failed; trying again")


def _run(
    engine: Engine,
    settings: Settings,
    stop: threading.Event,
    interval: float,
    on_error: Callable[[Exception], bool] | None,
) -> None:
    tree = tree_of(settings)
    upstream, base = settings.simple_url, settings.site_url
    clock = SiteClock()
    failures = PublishFailures()  # projects that failed, tried again later
    while not stop.is_set():
        try:
            write_all(engine, tree, upstream_simple_url=upstream, base_url=base)
            break
        except Exception as error:  # a failed start is retried; the publisher must not die
            _failed(error, on_error)
            stop.wait(10 * interval)
    while not stop.wait(interval):
        try:
            report = publish_dirty(
                engine,
                tree,
                upstream_simple_url=upstream,
                base_url=base,
                clock=clock,
                failures=failures,
            )
        except Exception as error:
            _failed(error, on_error)
            continue
        if report.changed:
            log.info("published %s", ", ".join(report.changed[:10]))


def start_publisher(
    engine: Engine,
    settings: Settings,
    stop: threading.Event,
    interval: float = 1.0,
    on_error: Callable[[Exception], bool] | None = None,
) -> threading.Thread:
    """Start the publisher thread; it stops when ``stop`` is set.

    A failed write is logged and tried again; ``on_error`` sees it first, and when it returns
    True (it handled the error: a full disk, reported once a minute) nothing is logged.
    """
    thread = threading.Thread(
        target=_run,
        args=(engine, settings, stop, interval, on_error),
        name="publisher",
        daemon=True,
    )
    thread.start()
    return thread
