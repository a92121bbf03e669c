"""The run's output: the table on the terminal, BENCHMARKS.md, and the scale plot (SVG).

One table for every area, so a reader sees in one place where wheelfarm stands against what a
user would run instead; the scale points in a second table with their growth factors, and
plotted on log-log axes, where a linear cost is a line of slope one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from benchmarks.suite.machine import Machine
from benchmarks.suite.measure import Measurement, Samples
from benchmarks.suite.scale import KINDS, ScalePoint

__all__ = ["Run", "print_tables", "write_markdown", "write_plot"]

HEADERS = ("area", "figure", "unit", "wheelfarm (min-max)", "compared with", "its value (min-max)",
           "ratio")  # fmt: skip
SCALE_HEADERS = (
    "what",
    "size",
    "seconds (min-max, runs)",
    "peak memory (MB)",
    "growth of time",
    "growth of memory",
)


@dataclass(frozen=True)
class Run:
    """Everything one run measured, and where and how."""

    command: str
    size: str
    quick: bool
    started: str
    minutes: float
    machine: Machine
    load_before: str
    load_after: str
    rows: Sequence[Measurement]
    scale: Sequence[ScalePoint]


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _ratio(ratio: float) -> str:
    """Three significant digits: 0.00361 against ``wc -l`` says more than 0.00."""
    return f"{ratio:,.0f}" if ratio >= 1000 else f"{ratio:.3g}"


def _samples(samples: Samples | None) -> str:
    if samples is None:
        return "-"
    spread = f"{_number(samples.low)}-{_number(samples.high)}"
    return f"{_number(samples.median)} ({spread}, n={len(samples.values)})"


def _cells(row: Measurement) -> tuple[str, ...]:
    ratio = "-" if row.ratio is None else _ratio(row.ratio)
    theirs = _samples(row.theirs) if row.theirs else (row.note or "-")
    return (row.area, row.figure, row.unit, _samples(row.ours), row.compared_with, theirs, ratio)


def _scale_cells(points: Sequence[ScalePoint]) -> list[tuple[str, ...]]:
    cells: list[tuple[str, ...]] = []
    previous: ScalePoint | None = None
    for point in points:
        what, counted = KINDS[point.kind]
        growth_time = growth_memory = "-"
        if previous is not None and previous.kind == point.kind:
            factor = point.size / previous.size
            growth_time = f"x{point.seconds / previous.seconds:.1f} for x{factor:.0f} work"
            growth_memory = f"x{point.peak_mb / previous.peak_mb:.2f}"
        seconds = f"{point.seconds:.2f} ({point.low:.2f}-{point.high:.2f}, n={point.runs})"
        cells.append((what, f"{point.size:,} {counted}", seconds, f"{point.peak_mb:.0f}",
                      growth_time, growth_memory))  # fmt: skip
        previous = point
    return cells


def print_tables(run: Run, console: Console) -> None:
    """Both tables, on the terminal."""
    table = Table(title=f"wheelfarm benchmarks ({run.size})", show_lines=False)
    for header in HEADERS:
        table.add_column(header)
    for row in run.rows:
        table.add_row(*_cells(row))
    console.print(table)
    if run.scale:
        scale = Table(title="how the costs grow (median of each size's runs, a fresh process each)")
        for header in SCALE_HEADERS:
            scale.add_column(header)
        for cells in _scale_cells(run.scale):
            scale.add_row(*cells)
        console.print(scale)


def _markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    return "\n".join([line(headers), line(["---"] * len(headers)), *map(line, rows)])


def write_markdown(run: Run, path: Path, plot: Path | None) -> None:
    """BENCHMARKS.md: the machine, the command, the table, the scale table and its plot."""
    machine = run.machine
    physical = f" ({machine.physical_cores} physical)" if machine.physical_cores else ""
    parts = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m benchmarks.suite`); do not edit by hand, run it "
        "again. Each figure is the median of several runs (min-max and their number beside "
        "it), measured in the same run as its comparison, round by round, so both saw the same "
        "machine. The ratio is wheelfarm's figure over the comparison's, in the figure's unit "
        "(for seconds, above 1 is slower). docs/development.md says how to run it.",
        "",
        f"- **Run:** {run.started}, {run.minutes:.1f} minutes, size: {run.size}",
        f"- **Command:** `{run.command}`",
        *(
            [
                "- **Sizes scaled down:** this file holds a quick run, to check that every "
                "comparison runs; `make bench` measures at the sizes the issues ask for "
                "(up to a million events, wheels and lines) and writes this file again."
            ]
            if run.quick
            else []
        ),
        f"- **Machine:** {machine.cores} cores{physical}, {machine.cpu}, "
        f"{machine.memory_gib:.1f} GiB of memory, {machine.system}",
        f"- **Python:** {machine.python}",
        f"- **Load average** (1, 5, 15 min): {run.load_before} at the start, "
        f"{run.load_after} at the end. Other work shared the machine: absolute figures are "
        "noisy, the side-by-side ratios less so.",
        "",
        _markdown_table(HEADERS, [_cells(row) for row in run.rows]),
        "",
    ]
    if run.scale:
        parts += [
            "## How the costs grow",
            "",
            "Each size is the median of its runs (their spread beside it), each run in a fresh "
            "process (peak memory, also a median, is the largest resident size of that process "
            "or its children); input prepared outside it. The regeneration counts wheels, ten "
            "a project, and goes over an existing tree, as every start of `wheelfarm up` does; "
            "that tree is written once and kept between runs (benchmarks/suite/scale.py). A "
            "time growing x10 for x10 work is linear.",
            "",
            _markdown_table(SCALE_HEADERS, _scale_cells(run.scale)),
            "",
        ]
        if plot is not None:
            parts += [f"![time and peak memory against size]({plot.as_posix()})", ""]
    path.write_text("\n".join(parts))


def write_plot(points: Sequence[ScalePoint], path: Path) -> None:
    """Time and peak memory against size, log-log, one line per kind, as SVG."""
    import matplotlib

    matplotlib.use("Agg")  # no display; chosen before pyplot is imported
    from matplotlib import pyplot

    figure, (times, memory) = pyplot.subplots(1, 2, figsize=(10, 4))
    for kind, (what, counted) in KINDS.items():
        mine = [point for point in points if point.kind == kind]
        if not mine:
            continue
        sizes = [point.size for point in mine]
        label = f"{what} ({counted})"
        times.plot(sizes, [point.seconds for point in mine], marker="o", label=label)
        memory.plot(sizes, [point.peak_mb for point in mine], marker="o", label=label)
    for axes, title in ((times, "seconds"), (memory, "peak memory (MB)")):
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_xlabel("size (events, lines, or wheels: ten a project)")
        axes.set_title(title)
        axes.grid(True, which="both", alpha=0.3)
    times.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, format="svg", metadata={"Date": None})
    pyplot.close(figure)
