"""The counts are a function of the set of lines ingested: any order, any batch size, twice."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from tests.stats.lines import BOT_AGENT, BROWSER_AGENT, PIP_AGENT, UV_AGENT, nginx_line
from wheelfarm.stats.hits import DAY
from wheelfarm.stats.logs import LogIngester
from wheelfarm.store.schema import stats_agents, stats_daily, stats_hits

NOW = 1_750_000_000.0
PATHS = [
    "/files/demo/demo-1.0-cp311-cp311-linux_x86_64.whl",
    "/files/demo/demo-1.0.tar.gz",
    "/files/other/other-2.0-py3-none-any.whl",
    "/simple/demo/",
    "/simple/wanted/",
    "/project/demo/",
    "/project/other/json",
]
line_strategy = st.builds(
    nginx_line,
    at=st.integers(0, 3 * DAY).map(lambda ago: NOW - ago),
    path=st.sampled_from(PATHS),
    status=st.sampled_from([200, 206, 304]),
    agent=st.sampled_from([PIP_AGENT, UV_AGENT, BROWSER_AGENT, BOT_AGENT]),
    client=st.sampled_from(["192.0.2.1", "192.0.2.2", "2001:db8::1"]),
)


def daily(engine) -> list[tuple[object, ...]]:
    with engine.connect() as connection:
        return sorted(tuple(row) for row in connection.execute(select(stats_daily)))


def run(engine, lines, batch) -> None:
    ingester = LogIngester(engine, b"k" * 32, now=NOW, batch=batch)
    ingester.feed(lines)
    ingester.flush()


def reset(engine) -> None:
    with engine.begin() as connection:
        for table in (stats_daily, stats_hits, stats_agents):
            connection.execute(delete(table))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    lines=st.lists(line_strategy, max_size=40),
    order=st.randoms(use_true_random=False),
    batches=st.tuples(st.integers(1, 7), st.integers(1, 50)),
)
def test_counts_do_not_depend_on_order_batches_or_repeats(engine, lines, order, batches):
    reset(engine)
    run(engine, lines, batch=1000)
    expected = daily(engine)
    reset(engine)
    shuffled = list(lines)
    order.shuffle(shuffled)
    run(engine, shuffled, batch=batches[0])
    run(engine, lines, batch=batches[1])  # everything again
    assert daily(engine) == expected
