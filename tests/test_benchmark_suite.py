"""The benchmark suite's own bookkeeping: what it reports and what it keeps between runs.

The figures themselves are measured by ``make bench``; these cases check what would make a
figure wrong without anyone noticing: a median shown without its spread, a growth factor taken
across two kinds, a half-written kept tree reused, lines the ingester skipped left uncounted.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from benchmarks.suite.report import _scale_cells
from benchmarks.suite.scale import ScalePoint, kept_tree
from benchmarks.suite.statistics import _json_per_line, ingest_file, write_log


def _point(kind: str, size: int, seconds: float, peak: float, runs: int = 3) -> ScalePoint:
    return ScalePoint(kind, size, seconds, peak, seconds / 2, seconds * 2, runs)


@pytest.mark.parametrize(
    ("points", "expected"),
    [
        (  # the first size of a kind has nothing to grow from
            [_point("follow", 1_000, 1.0, 50.0)],
            [("1,000 events", "1.00 (0.50-2.00, n=3)", "-", "-")],
        ),
        (  # ten times the work in ten times the time reads as linear
            [_point("follow", 1_000, 1.0, 50.0), _point("follow", 10_000, 10.0, 100.0, 1)],
            [
                ("1,000 events", "1.00 (0.50-2.00, n=3)", "-", "-"),
                ("10,000 events", "10.00 (5.00-20.00, n=1)", "x10.0 for x10 work", "x2.00"),
            ],
        ),
        (  # a new kind starts again: no factor across kinds
            [_point("follow", 1_000, 1.0, 50.0), _point("regenerate", 10_000, 4.0, 80.0)],
            [
                ("1,000 events", "1.00 (0.50-2.00, n=3)", "-", "-"),
                ("10,000 wheels", "4.00 (2.00-8.00, n=3)", "-", "-"),
            ],
        ),
    ],
)
def test_scale_rows_show_median_spread_and_growth_within_a_kind(
    points: list[ScalePoint], expected: list[tuple[str, str, str, str]]
) -> None:
    cells = _scale_cells(points)
    assert [(row[1], row[2], row[4], row[5]) for row in cells] == expected


def test_kept_tree_is_reused_when_complete_and_remade_when_half_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WHEELFARM_BENCH_CACHE", str(tmp_path))
    database, tree = kept_tree(20)  # two projects
    assert (tree / "www" / "simple" / "project-000001").is_dir()
    store = Path(database.removeprefix("sqlite:///"))
    made = store.stat().st_ino

    assert kept_tree(20) == (database, tree)
    assert store.stat().st_ino == made  # reused, not made again

    (store.parent / "complete").unlink()  # as if the run had stopped while writing it
    (tree / "www" / "stray").write_text("left by a stopped run")
    assert kept_tree(20) == (database, tree)
    assert not (tree / "www" / "stray").exists()
    assert (store.parent / "complete").is_file()


def test_ingestion_and_its_baseline_count_every_line_read_skipped_ones_too(
    tmp_path: Path,
) -> None:
    now = time.time()
    log = tmp_path / "access.log"
    write_log(log, 300, now)
    assert b"{" not in min(log.read_bytes().splitlines(), key=lambda line: line.count(b"{")), (
        "the synthetic log should hold a line with no installer's JSON agent"
    )
    assert ingest_file(log, f"sqlite:///{tmp_path / 'stats.sqlite'}", now) == 300
    assert _json_per_line(log) == 300
