"""The state after a set of events does not depend on the order they arrive in.

Random histories over a small universe (so that events collide: same project under several
spellings, same release, same file, equal timestamps, timestamps out of serial order) are
applied in random arrival orders and random batch splits, with duplicates; the result must
equal applying them sorted by (timestamp, serial), and equal the naive reference model.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, select

from tests.upstream.reference_model import apply_in_order, snapshot
from wheelfarm.store.events import ChangelogEvent
from wheelfarm.store.schema import events, files, projects, releases, state
from wheelfarm.store.views import ProjectStatus, read_project
from wheelfarm.upstream.changelog import ChangelogBatch
from wheelfarm.upstream.events import parse_row
from wheelfarm.upstream.follow import Follower

SPELLINGS = {"alpha": ["Alpha", "alpha", "ALPHA"], "beta-pkg": ["beta-pkg", "Beta_Pkg", "beta.pkg"]}
VERSIONS = ["1.0", "2.0rc1"]


def _files(name: str, version: str) -> list[str]:
    stem = f"{name.replace('-', '_').lower()}-{version}"
    return [f"{stem}.tar.gz", f"{stem}-py3-none-any.whl"]


@st.composite
def rows(draw: st.DrawFn) -> list[Any]:
    key = draw(st.sampled_from(sorted(SPELLINGS)))
    name = draw(st.sampled_from(SPELLINGS[key]))
    version = draw(st.sampled_from(VERSIONS))
    filename = draw(st.sampled_from(_files(key, version)))
    timestamp = draw(st.integers(min_value=1000, max_value=1012))
    action, with_version = draw(
        st.sampled_from(
            [
                ("create", False),
                ("new release", True),
                (f"add source file {filename}", True),
                (f"add py3 file {filename}", True),
                (f"remove file {filename}", True),
                ("remove release", True),
                ("remove project", False),
                ("remove", False),
                ("remove", True),
                ("yank release", True),
                ("unyank release", True),
                ("project quarantined", False),
                ("project quarantine cleared", False),
                ("release quarantined", True),
                ("release quarantine cleared", True),
                ("add Owner alice", False),
                ("remove Owner alice", False),
                ("docupdate", False),
            ]
        )
    )
    return [name, version if with_version else None, timestamp, action, 0]


@st.composite
def histories(draw: st.DrawFn) -> list[ChangelogEvent]:
    raw = draw(st.lists(rows(), min_size=1, max_size=25))
    serial = 0
    parsed = []
    for row in raw:
        serial += draw(st.integers(min_value=1, max_value=3))  # serials may skip numbers
        row[4] = serial
        parsed.append(parse_row(row))
    return parsed


def _reset(engine: Engine) -> None:
    with engine.begin() as connection:
        for table in (files, releases, projects, events, state):
            connection.execute(delete(table))


def _store_snapshot(engine: Engine) -> dict[str, object]:
    result: dict[str, object] = {}
    with engine.connect() as connection:
        names = connection.execute(select(projects.c.name).order_by(projects.c.name)).scalars()
        for name in list(names):
            view = read_project(connection, name)
            if view.status is ProjectStatus.LIVE:
                result[name] = {
                    "display_name": view.display_name,
                    "releases": {
                        version: {
                            "yanked": release.yanked,
                            "prerelease": release.prerelease,
                            "files": sorted(f.filename for f in release.files),
                        }
                        for version, release in sorted(view.releases.items())
                    },
                }
            elif view.status is ProjectStatus.QUARANTINED:
                result[name] = "quarantined"
            else:
                result[name] = "absent"
    return result


def _apply(engine: Engine, batches: list[list[ChangelogEvent]]) -> dict[str, object]:
    _reset(engine)
    follower = Follower(engine, pages=None)  # type: ignore[arg-type]  # no page reads here
    for batch in batches:
        serial = max((e.serial for e in batch), default=0)
        follower.apply_batch(ChangelogBatch(events=list(batch), last_serial=serial))
    return _store_snapshot(engine)


def _without_absent(state_: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in state_.items() if v != "absent"}


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=histories(), data=st.data())
def test_state_is_independent_of_arrival_order(
    engine: Engine, history: list[ChangelogEvent], data: st.DataObject
) -> None:
    in_order = sorted(history, key=lambda e: (e.timestamp, e.serial))
    expected = _apply(engine, [[event] for event in in_order])

    arrival = data.draw(st.permutations(history), label="arrival order")
    duplicates = data.draw(st.lists(st.sampled_from(history), max_size=5), label="redelivered")
    arrival = arrival + duplicates
    cuts = sorted(data.draw(st.sets(st.integers(1, len(arrival)), max_size=6), label="cuts"))
    batches = [arrival[a:b] for a, b in zip([0, *cuts], [*cuts, len(arrival)], strict=True)]
    assert _apply(engine, [b for b in batches if b]) == expected

    # And both equal the naive one-by-one model (a project only seen in removals is absent).
    assert _without_absent(expected) == _without_absent(snapshot(apply_in_order(history)))
