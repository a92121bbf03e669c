"""``python -m benchmarks.suite [--quick] [--only AREAS]``: run, print, write BENCHMARKS.md.

Areas run one after another (never two at once: they would measure each other); an area that
fails outright becomes a "not measured" row with its error, and the run goes on.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from benchmarks.suite.building import measure_building
from benchmarks.suite.following import measure_following
from benchmarks.suite.machine import describe_machine, load_average
from benchmarks.suite.measure import Measurement, not_measured
from benchmarks.suite.publishing import measure_publishing
from benchmarks.suite.report import Run, print_tables, write_markdown, write_plot
from benchmarks.suite.scale import ScalePoint, measure_scale
from benchmarks.suite.serving import measure_serving
from benchmarks.suite.sizes import DEFAULT, QUICK, Sizes
from benchmarks.suite.statistics import measure_statistics

__all__ = ["main"]

REPO = Path(__file__).resolve().parents[2]
AREAS = ("serving", "following", "statistics", "publishing", "building", "scale")
PLOT = Path("docs/benchmarks-scale.svg")


def _areas(sizes: Sizes) -> dict[str, Callable[[], list[Measurement]]]:
    return {
        "serving": lambda: measure_serving(sizes.serving),
        "following": lambda: measure_following(sizes.following),
        "statistics": lambda: measure_statistics(sizes.statistics),
        "publishing": lambda: measure_publishing(sizes.publishing),
        "building": lambda: measure_building(sizes.building),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.suite", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="scaled-down sizes (minutes)")
    parser.add_argument("--only", help="comma-separated areas, from: " + ", ".join(AREAS))
    parser.add_argument(
        "--no-write", action="store_true", help="print only; leave BENCHMARKS.md as it is"
    )
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in (args.only or ",".join(AREAS)).split(",") if name]
    if unknown := sorted(set(chosen) - set(AREAS)):
        parser.error(f"unknown areas {', '.join(unknown)}; choose from {', '.join(AREAS)}")
    sizes = QUICK if args.quick else DEFAULT
    console = Console(width=None if sys.stdout.isatty() else 200)
    started = datetime.now(UTC)
    began = time.monotonic()
    load_before = load_average()
    rows: list[Measurement] = []
    scale: list[ScalePoint] = []
    for name, measure in _areas(sizes).items():
        if name not in chosen:
            continue
        console.print(f"[bold]{name}[/bold] ({time.monotonic() - began:.0f} s in)")
        try:
            rows += measure()
        except Exception as error:  # one broken area must not hide the others' figures
            traceback.print_exc()
            rows.append(not_measured(name, name, "-", "-", f"{type(error).__name__}: {error}"))
    if "scale" in chosen:
        console.print(f"[bold]scale[/bold] ({time.monotonic() - began:.0f} s in)")
        scale = measure_scale(sizes.scale, sizes.scale_rounds, sizes.scale_once_from)
    command = "make bench QUICK=1" if args.quick else "make bench"
    if args.only:
        command = "python -m benchmarks.suite" + (" --quick" if args.quick else "")
        command += f" --only {args.only}"
    run = Run(
        command=command,
        size=sizes.name,
        quick=args.quick,
        started=started.strftime("%Y-%m-%d %H:%M UTC"),
        minutes=(time.monotonic() - began) / 60,
        machine=describe_machine(),
        load_before=load_before,
        load_after=load_average(),
        rows=rows,
        scale=scale,
    )
    print_tables(run, console)
    if not args.no_write:
        plot = None
        if scale:
            write_plot(scale, REPO / PLOT)
            plot = PLOT
        write_markdown(run, REPO / "BENCHMARKS.md", plot)
        console.print(f"wrote {REPO / 'BENCHMARKS.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
