"""The public status: is the mirror following and building, how long are the queues.

No token needed, so nothing here names a builder or shows a reading: counts only.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from wheelfarm.farm.pause import farm_paused
from wheelfarm.monitor.overview import Thresholds, builder_views, target_views
from wheelfarm.monitor.sampler import follower_lag

if TYPE_CHECKING:
    from wheelfarm.monitor.routes import MonitorOptions

__all__ = ["farm_status", "last_publish"]


def last_publish(tree: Path | None) -> float | None:
    """When the published index last changed (its site-wide pages are rewritten then)."""
    if tree is None:
        return None
    times = []
    for page in (tree / "simple" / "index.html", tree / "index.html"):
        try:
            times.append(page.stat().st_mtime)
        except OSError:
            continue
    return max(times) if times else None


def farm_status(connection: Connection, now: float, options: MonitorOptions) -> dict[str, Any]:
    """Following? Building? The queue and builder counts per target, the lag, the last publish."""
    limits: Thresholds = options.thresholds
    views = builder_views(connection, now, limits)
    queues = target_views(connection, now, views)
    lag = follower_lag(connection, now)
    checked = lag.pop("upstream_checked_at", None)
    paused = farm_paused(connection)
    alive = [v for v in views if v.state not in ("silent", "dead")]
    return {
        "now": now,
        "following": checked is not None and now - checked <= options.follow_stale_after,
        "upstream_checked_at": checked,
        "building": paused is None and bool(alive),
        "paused": paused,
        "targets": [
            {
                "name": q.name,
                "pending": q.pending,
                "oldest_age": q.oldest_age,
                "builders": q.builders,
            }
            for q in queues
        ],
        "follower": lag,
        "last_publish": last_publish(options.tree_dir),
    }
