"""The record of one measured figure, and the interleaving that measures it beside its rival.

On a shared machine the load changes from minute to minute; measuring wheelfarm for five
minutes and then its rival for five would compare two machines. So each round runs every
contender once, in turn, and a figure is the median of its rounds with their min and max.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = ["Measurement", "NotMeasured", "Race", "Samples", "interleave", "not_measured"]


class NotMeasured(Exception):
    """A contender that cannot run here; the message says why, and becomes the row's note."""


@dataclass(frozen=True)
class Samples:
    """Several runs of one contender: the median is the figure, min and max its spread."""

    values: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)


@dataclass(frozen=True)
class Measurement:
    """One row of the table: our figure, what it is compared with, and that comparison's figure.

    ``ratio`` is ours over theirs, in the figure's unit: above 1 means more of the unit (faster
    for a rate, slower for a duration). Without ``theirs`` the comparison was not measured and
    ``note`` says why.
    """

    area: str
    figure: str
    unit: str
    ours: Samples | None
    compared_with: str
    theirs: Samples | None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.ours is None or self.theirs is None or self.theirs.median == 0:
            return None
        return self.ours.median / self.theirs.median


Contender = Callable[[], float]


@dataclass(frozen=True)
class Race:
    """The samples of one interleaved run, and why any contender has none."""

    samples: Mapping[str, Samples]
    reasons: Mapping[str, str]

    def row(self, area: str, figure: str, unit: str, ours: str, theirs: str) -> Measurement:
        """The row for ``ours`` against ``theirs``; a missing side's reason becomes the note."""
        why = [self.reasons[name] for name in (ours, theirs) if name in self.reasons]
        note = "not measured: " + "; ".join(why) if why else ""
        return Measurement(
            area, figure, unit, self.samples.get(ours), theirs, self.samples.get(theirs), note
        )


def interleave(rounds: int, contenders: Mapping[str, Contender]) -> Race:
    """Run every contender once per round, in turn.

    A contender that raises :class:`NotMeasured` is dropped from then on; its message is kept
    as the reason.
    """
    values: dict[str, list[float]] = {name: [] for name in contenders}
    reasons: dict[str, str] = {}
    for round_number in range(rounds):
        names = list(contenders)
        # Alternate the order, so neither side always runs on a cache the other warmed.
        if round_number % 2:
            names.reverse()
        for name in names:
            if name in reasons:
                continue
            try:
                values[name].append(contenders[name]())
            except NotMeasured as why:
                reasons[name] = str(why)
    samples = {name: Samples(tuple(found)) for name, found in values.items() if found}
    return Race(samples, reasons)


def not_measured(area: str, figure: str, unit: str, compared_with: str, why: str) -> Measurement:
    """A row that could not be measured on this run, saying why."""
    return Measurement(area, figure, unit, None, compared_with, None, f"not measured: {why}")
