"""``up``'s monitoring: the dashboard's routes on the builder API, the sampler's settings."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy import Engine

from wheelfarm.config import Settings
from wheelfarm.farm.api import FarmConfig
from wheelfarm.monitor.admins import TOKEN_FILE, ensure_local_admin
from wheelfarm.monitor.overview import Thresholds
from wheelfarm.monitor.routes import MonitorOptions, create_monitor_router
from wheelfarm.monitor.sampler import SamplerConfig

__all__ = ["attach_monitor", "sampler_config"]

log = logging.getLogger(__name__)


def sampler_config(settings: Settings) -> SamplerConfig:
    return SamplerConfig(
        data_dir=settings.data_dir,
        tree_dir=settings.www_dir,
        wheel_dir=settings.wheel_dir,
        interval=settings.monitor_seconds or 60.0,
        min_free_disk=settings.min_free_disk,
    )


def attach_monitor(
    engine: Engine, settings: Settings, api: FastAPI, farm: FarmConfig
) -> Path | None:
    """Mount the monitor's routes on the builder API; the local admin's token on a first start."""
    with engine.begin() as connection:
        token_file = ensure_local_admin(connection, settings.data_dir, now=time.time())
    options = MonitorOptions(
        thresholds=Thresholds(silent_after=3 * farm.heartbeat_seconds),
        public_metrics=settings.public_metrics,
        tree_dir=settings.www_dir,
        follow_stale_after=3 * settings.poll_seconds + 300,
    )
    api.include_router(create_monitor_router(engine, options))
    existing = settings.data_dir / TOKEN_FILE
    return token_file or (existing if existing.exists() else None)
