"""Daily counts of many hits, one dimension at a time, equal each hit's dimensions summed."""

from __future__ import annotations

import itertools
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from wheelfarm.stats.agents import Agent
from wheelfarm.stats.hits import Hit
from wheelfarm.stats.record import DailyCounter, daily_counts, dimensions_of

AGENTS = {
    1: Agent(1, "pip", "24.0", "CPython", "3.11", "Debian GNU/Linux 12", "glibc 2.36", "x86_64"),
    2: Agent(2, "uv", "0.4.18", "CPython", "3.12", arch="aarch64", os="Linux", ci=True),
    3: Agent(3, "pip", ci=False),
    4: Agent(4),  # a browser: nothing said
    5: Agent(5, bot=True),
}
FILES = [
    ("download", "1.0", "demo-1.0-cp311-cp311-linux_x86_64.whl", "cp311-cp311-linux_x86_64"),
    ("download", "1.0", "demo-1.0.tar.gz", "source"),
    ("download", "2.0", "demo-2.0-py3-none-any.whl", "py3-none-any"),
    ("search", None, None, None),
    ("page", None, None, None),
    ("json", None, None, None),
]

hit_strategy = st.builds(
    lambda key, day, file, project, client, agent: Hit(
        key, day, day * 86400.0, file[0], project, file[1], file[2], file[3], client, agent
    ),
    key=st.integers(-(2**63), 2**63 - 1),
    day=st.integers(20000, 20002),
    file=st.sampled_from(FILES),
    project=st.sampled_from(["demo", "other"]),
    client=st.sampled_from(["a" * 16, "b" * 16]),
    agent=st.sampled_from(sorted(AGENTS)),
)


def naive(hits: list[Hit]) -> Counter[tuple[int, str, str, str, str]]:
    counts: Counter[tuple[int, str, str, str, str]] = Counter()
    for hit in hits:
        for pair in dimensions_of(hit.version, hit.filename, hit.target, AGENTS[hit.agent]):
            counts[(hit.day, hit.kind, hit.project, *pair)] += 1
    return counts


@settings(deadline=None)  # the first example imports numpy
@given(st.lists(hit_strategy, max_size=60))
def test_daily_counts_equal_each_hits_dimensions_summed(hits):
    assert daily_counts(hits, AGENTS) == dict(naive(hits))


def test_bots_count_only_as_bots():
    bot = Hit(1, 20000, 0.0, "download", "demo", *FILES[0][1:], "a" * 16, 5)
    assert daily_counts([bot], AGENTS) == Counter({(20000, "download", "demo", "bots", ""): 1})


@settings(deadline=None)
@given(st.lists(hit_strategy, max_size=60), st.lists(st.integers(0, 60), max_size=5))
def test_counts_added_in_parts_equal_each_hits_dimensions_summed(hits, cuts):
    """The child writer numbers a batch part by part and counts it at its end: any parts, the
    same rows as the batch counted at once."""
    counter = DailyCounter()
    bounds = [0, *sorted(cuts), len(hits)]
    for start, end in itertools.pairwise(bounds):
        # Each part comes with the agents of its own hits only, as the reader sends them.
        part = hits[start:end]
        counter.add(part, {hit.agent: AGENTS[hit.agent] for hit in part})
    rows = counter.rows(AGENTS)
    assert counter.hits == len(hits)
    assert {row[:5]: row[5] for row in rows} == dict(naive(hits))
    assert len(rows) == len(naive(hits))  # each row once
