"""The history of readings: a day at full resolution, then 5-minute and hourly averages."""

from __future__ import annotations

from sqlalchemy import Engine, func, select

from wheelfarm.monitor.history import DAY, KEEP_HOURLY, compact, record_samples, series
from wheelfarm.store.schema import samples

NOW = 1_800_000_000.0  # a multiple of 3600


def _steps(engine: Engine) -> dict[int, int]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(samples.c.step, func.count()).group_by(samples.c.step)
        ).all()
    return {int(step): int(count) for step, count in rows}


def test_old_samples_become_averages_and_the_oldest_are_pruned(engine: Engine) -> None:
    start = NOW - 8 * DAY
    with engine.begin() as connection:
        for minute in range(0, 8 * 24 * 60, 1):  # one sample a minute for eight days
            at = start + minute * 60
            record_samples(connection, at, {"master": {"load": minute % 10, "only": 1.0}})
        record_samples(connection, NOW - KEEP_HOURLY - 7200, {"master": {"load": 9.0}})
    with engine.begin() as connection:
        while compact(connection, NOW):  # each pass does a bounded batch
            pass
    steps = _steps(engine)
    assert steps[0] == 24 * 60  # the last day as taken
    assert steps[300] == 6 * 24 * 12  # 5-minute averages from a week ago to a day ago
    assert steps[3600] == 24  # the day before that, hourly; the 90-day-old one is gone
    with engine.connect() as connection:
        week = series(connection, "master", since=NOW - 9 * DAY, points=10_000)
    assert week[0][0] == start and week[0][1] == {"load": 4.5, "only": 1.0}  # an hour of 0..9
    five = [values for at, values in week if NOW - 7 * DAY <= at < NOW - DAY]
    assert five[0] == {"load": 2.0, "only": 1.0}  # minutes 0..4 of a ten-minute cycle


def test_a_series_is_thinned_to_the_points_asked(engine: Engine) -> None:
    with engine.begin() as connection:
        for second in range(0, 3600, 5):
            record_samples(connection, NOW + second, {"builder:a": {"load": 1.0}})
    with engine.connect() as connection:
        points = series(connection, "builder:a", since=NOW, points=100)
        assert series(connection, "builder:b", since=NOW) == []
    assert 95 <= len(points) <= 101
    assert all(values == {"load": 1.0} for _, values in points)
