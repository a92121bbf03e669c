"""Keep the published tree current while ``wheelfarm up`` runs: a full write at start, then the
projects marked changed, about every second, so a change is published within a second or so;
and the download figures (:mod:`wheelfarm.publish.stats_refresh`): the pages of projects whose
downloads moved every ``stats_refresh_seconds``, ``/stats/`` every ``stats_page_seconds``."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy import Engine

from wheelfarm.config import Settings
from wheelfarm.publish.failures import PublishFailures
from wheelfarm.publish.incremental import SiteClock, publish_dirty
from wheelfarm.publish.regenerate import write_all
from wheelfarm.publish.stats_refresh import DownloadRefresh, refresh_downloads, write_statistics
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
    silence = settings.builder_silence_minutes * 60
    clock = SiteClock()
    failures = PublishFailures()  # projects that failed, tried again later
    schedule = _StatsSchedule(settings)
    while not stop.is_set():
        try:
            write_all(
                engine,
                tree,
                upstream_simple_url=upstream,
                base_url=base,
                unserved_silence_seconds=silence,
            )
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
                unserved_silence_seconds=silence,
            )
        except Exception as error:
            _failed(error, on_error)
            continue
        if report.changed:
            log.info("published %s", ", ".join(report.changed[:10]))
        schedule.run(engine, tree, upstream, on_error)
    schedule.finish()


class _StatsSchedule:
    """When the download figures are due; a setting of 0 or less turns its round off."""

    def __init__(self, settings: Settings) -> None:
        self.refresh_seconds = settings.stats_refresh_seconds
        self.page_seconds = settings.stats_page_seconds
        self.refresh = DownloadRefresh()
        self.next_refresh = 0.0
        self.next_page = 0.0  # the first round writes /stats/ at once
        self.drawing: threading.Thread | None = None

    def run(
        self,
        engine: Engine,
        tree: Tree,
        upstream: str,
        on_error: Callable[[Exception], bool] | None,
    ) -> None:
        now = time.monotonic()
        if self.refresh_seconds > 0 and now >= self.next_refresh:
            self.next_refresh = now + self.refresh_seconds
            try:
                report = refresh_downloads(engine, tree, self.refresh, upstream_simple_url=upstream)
            except Exception as error:  # the next round tries again
                _failed(error, on_error)
            else:
                if report.changed:
                    log.info("downloads moved: %s", ", ".join(report.changed[:10]))
        drawing = self.drawing is not None and self.drawing.is_alive()
        if self.page_seconds > 0 and now >= self.next_page and not drawing:
            self.next_page = now + self.page_seconds
            # In a thread of its own: drawing the plots takes a second or more of CPU, which
            # the project pages (published every second) must not wait for.
            self.drawing = threading.Thread(
                target=self._draw,
                args=(engine, tree, on_error),
                name="statistics page",
                daemon=True,
            )
            self.drawing.start()

    def finish(self) -> None:
        """Wait for the plots being drawn, if any: matplotlib must not be mid-drawing when
        the interpreter shuts down."""
        if self.drawing is not None:
            self.drawing.join()

    @staticmethod
    def _draw(engine: Engine, tree: Tree, on_error: Callable[[Exception], bool] | None) -> None:
        try:
            write_statistics(engine, tree)
        except Exception as error:  # the next round tries again
            _failed(error, on_error)


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
