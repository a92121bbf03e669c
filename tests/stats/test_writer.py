"""The child writer's side of a batch sent in parts: one transaction, counted at its end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, func, select

from tests.stats.lines import PIP_AGENT, UV_AGENT, nginx_line
from wheelfarm.stats.agents import Agents
from wheelfarm.stats.hits import DAY, Hit, HitRow
from wheelfarm.stats.logs import LogIngester
from wheelfarm.stats.report import summary
from wheelfarm.stats.writer import StoreRecipe, _Child
from wheelfarm.store.schema import stats_hits

NOW = 1_750_000_000.0
WHEEL = "/files/demo/demo-1.0-cp311-cp311-linux_x86_64.whl"


def hits(engine: Engine, count: int, first: int = 0, agent: str = PIP_AGENT) -> list[HitRow]:
    """Rows of ``count`` downloads, as the log reader makes them (it writes nothing)."""
    reader = LogIngester(engine, b"s" * 32, now=NOW)
    lines = [
        nginx_line(NOW - i, WHEEL, client=f"198.51.100.{i}", agent=agent)
        for i in range(first, first + count)
    ]
    found = [reader.hit_of(line) for line in lines]
    return [tuple(hit) for hit in found if isinstance(hit, Hit)]  # type: ignore[misc]


@pytest.fixture
def child(engine: Engine) -> Iterator[_Child]:
    made = _Child(StoreRecipe(engine.url.render_as_string(hide_password=False), 90, NOW))
    yield made
    made.engine.dispose()


def stored(engine: Engine) -> tuple[int, int]:
    with engine.connect() as connection:
        raw = connection.execute(select(func.count()).select_from(stats_hits)).scalar_one()
        return raw, summary(connection, int(NOW // DAY))["downloads_total"]


def test_a_batch_is_counted_at_its_last_part_and_only_then_committed(
    engine: Engine, child: _Child
) -> None:
    agent = Agents()(PIP_AGENT)
    agents = {agent.key: agent}
    assert child.write(hits(engine, 3), agents, last=False) is None
    assert stored(engine) == (0, 0)  # not committed yet
    # The second part holds the first one's 3 again and 1 more: the batch has 4 new hits.
    assert child.write(hits(engine, 4), agents, last=True) == 4
    assert stored(engine) == (4, 4)


def test_a_part_that_fails_rolls_the_whole_batch_back(engine: Engine, child: _Child) -> None:
    agent = Agents()(PIP_AGENT)
    agents = {agent.key: agent}
    assert child.write(hits(engine, 3), agents, last=False) is None
    with pytest.raises(KeyError):  # uv's agent is not among those given: the part fails
        child.write(hits(engine, 2, 3, UV_AGENT), agents, last=False)
    with pytest.raises(KeyError):  # the batch failed: so does its last part
        child.write(hits(engine, 2, 5), agents, last=True)
    assert stored(engine) == (0, 0)
    assert child.write(hits(engine, 7), agents, last=True) == 7  # the next batch is written
    assert stored(engine) == (7, 7)
