"""The ``/stats/`` plots as SVG, drawn by matplotlib on the server.

matplotlib is imported inside the functions, never at module level: it takes about half a
second to import, which ``wheelfarm``'s other commands must not pay, and the plots are drawn
only by ``up``'s publisher, off the request path. No pyplot: each plot is its own ``Figure``
(no global figure state, safe in the publisher's thread), written by the SVG backend.

Every plot is deterministic (fixed hash salt, no date in the metadata), so an unchanged plot
gives unchanged bytes and the tree writer leaves the file alone. Text is written as SVG
``<text>`` (escaped by matplotlib's XML writer) with math parsing off, so a ``$`` in a user
agent's distro name is only a character. Each series carries an id ``series-<n>`` (bars, one
per target: ``series-<n>-<k>``), which tests count.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["LABEL_CHARS", "bar_plot", "share_plot", "stacked_bar_plot"]

LABEL_CHARS = 32  # a longer label (a user agent's distro, say) is cut

_RC: dict[Any, Any] = {
    "svg.hashsalt": "wheelfarm",
    "svg.fonttype": "none",
    "text.parse_math": False,
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def _label(text: str) -> str:
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "\u2026"


@contextmanager
def _figure(height: float = 2.6) -> Iterator[tuple[Figure, Axes]]:
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(_RC):
        figure = Figure(figsize=(7.5, height), layout="constrained")
        yield figure, figure.subplots()


def _svg(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()


def _name_bars(bars: Any, series: int) -> None:
    for index, patch in enumerate(bars.patches):
        patch.set_gid(f"series-{series}-{index}")


def _ticks(axes: Axes, labels: Sequence[str], most: int = 8) -> None:
    """At most ``most`` labels along the x axis, evenly spread, the last one always shown;
    label ``i`` sits under the middle of step ``i`` (from ``i`` to ``i + 1``)."""
    if not labels:
        return
    step = max(1, -(-len(labels) // most))
    positions = list(range(len(labels) - 1, -1, -step))[::-1]
    axes.set_xticks([p + 0.5 for p in positions], [_label(labels[i]) for i in positions])
    axes.set_xlim(0, len(labels))


def bar_plot(labels: Sequence[str], values: Sequence[float], ylabel: str) -> bytes:
    """One series as filled steps, one step per label (downloads per day, per month).

    Steps, not bars: one artist whatever the number of days, where 90 bars were 90 patches and
    most of a second to lay out and draw (measured on a busy two-core machine)."""
    from matplotlib.ticker import MaxNLocator

    with _figure() as (figure, axes):
        steps = axes.stairs(values, range(len(values) + 1), fill=True, color="#2a6f97")
        steps.set_gid("series-0")
        _ticks(axes, labels)
        axes.set_ylabel(ylabel)
        axes.set_ylim(bottom=0, top=max([*values, 1]) * 1.05)
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
        return _svg(figure)


def stacked_bar_plot(
    labels: Sequence[str], series: Sequence[tuple[str, Sequence[float]]], xlabel: str
) -> bytes:
    """Horizontal stacked bars, one stack per label (builds per target: built, failed, other)."""
    colours = ("#2b8a3e", "#c92a2a", "#868e96", "#e67700")
    with _figure(height=max(1.6, 0.45 * len(labels) + 1.0)) as (figure, axes):
        left = [0.0] * len(labels)
        for number, (name, values) in enumerate(series):
            bars = axes.barh(
                range(len(labels)),
                values,
                left=left,
                label=_label(name),
                color=colours[number % len(colours)],
            )
            _name_bars(bars, number)
            left = [a + b for a, b in zip(left, values, strict=True)]
        axes.set_yticks(range(len(labels)), [_label(label) for label in labels])
        axes.invert_yaxis()
        axes.set_xlabel(xlabel)
        if series:
            axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        return _svg(figure)


def share_plot(months: Sequence[str], series: Sequence[tuple[str, Sequence[float]]]) -> bytes:
    """Shares over time: stacked steps per month, in per cent, one series per value."""
    with _figure() as (figure, axes):
        bottom = [0.0] * len(months)
        edges = range(len(months) + 1)
        for number, (name, values) in enumerate(series):
            top = [a + b for a, b in zip(bottom, values, strict=True)]
            steps = axes.stairs(
                top, edges, baseline=bottom, fill=True, label=_label(name), color=f"C{number}"
            )
            steps.set_gid(f"series-{number}")
            bottom = top
        _ticks(axes, months, most=12)
        axes.set_ylabel("% of downloads")
        axes.set_ylim(0, 100)
        if series:
            axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        return _svg(figure)
