"""The builder's verdict on a build that ended by itself: a kill by a signal is the reason."""

from __future__ import annotations

import signal

import pytest

from wheelfarm.builder.build_log import Outcome, judge, killed_by

_LOG = b"Collecting foo==1.0\n  Preparing metadata (pyproject.toml): started\n"


@pytest.mark.parametrize(
    ("returncode", "expected"),
    [
        (-9, signal.SIGKILL),  # pip run unwrapped, killed
        (137, signal.SIGKILL),  # through bubblewrap: 128 + 9, as a shell says it
        (-15, signal.SIGTERM),
        (139, signal.SIGSEGV),
        (1, None),  # pip's own failure
        (2, None),
        (128, None),  # no signal is number 0
        (255, None),  # 127 is no signal
        (-200, None),
    ],
)
def test_the_signal_that_ended_pip_is_read_from_its_exit_status(
    returncode: int, expected: signal.Signals | None
) -> None:
    assert killed_by(returncode) is expected


@pytest.mark.parametrize(
    ("returncode", "reason"),
    [
        (137, "pip was killed by SIGKILL"),  # not the line pip was at when it died
        (-9, "pip was killed by SIGKILL"),
        (1, "Preparing metadata (pyproject.toml): started"),  # no error line: the last line
    ],
)
def test_a_killed_pip_says_so_as_its_reason(returncode: int, reason: str) -> None:
    verdict = judge("foo", returncode, False, _LOG)
    assert (verdict.outcome, verdict.reason) == (Outcome.FAILED, reason)
