"""A stop by signal ends a long-running command even when Python loses the signal's exception.

CI saw ``wheelfarm up`` keep following after SIGTERM: the signal came while the main thread ran
a finalizer, where an exception is printed ("Exception ignored in ...") and dropped.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

_PROGRAM = textwrap.dedent(
    """
    import os, signal, threading
    from wheelfarm.app.parts import follow_rounds
    from wheelfarm.cli.console import until_stopped

    class Finalized:
        def __del__(self):
            os.kill(os.getpid(), signal.{signal})  # its handler raises here, inside __del__
            for _ in range(10_000):  # Python runs the handler between these bytecodes
                pass

    rounds = []

    def one_round(_follower):
        rounds.append(1)
        if len(rounds) == 2:
            Finalized()  # dropped at once: __del__ runs now, in the main thread
        if len(rounds) > 20:
            raise SystemExit("the stop was lost: still following after 20 rounds")

    with until_stopped("stopped cleanly") as stopping:
        follow_rounds(None, one_round, 0.05, print, stop=stopping)
    print("rounds", len(rounds))
    """
)


def _run(program: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGINT"])
def test_a_stop_whose_exception_a_finalizer_swallowed_still_ends_the_rounds(
    signal_name: str,
) -> None:
    result = _run(_PROGRAM.format(signal=signal_name))
    assert result.returncode == 0, result.stderr
    assert "Exception ignored in" in result.stderr  # the exception was lost, as in CI
    assert "stopped cleanly" in result.stderr
    assert result.stdout.split() == ["rounds", "2"]  # the round under way, then no more


def test_sigint_stays_ignored_when_the_command_started_with_it_ignored() -> None:
    """A job started with ``&`` in a non-interactive shell ignores SIGINT: so does the command."""
    program = textwrap.dedent(
        """
        import signal
        from wheelfarm.cli.console import until_stopped
        with until_stopped("stopped"):
            print(signal.getsignal(signal.SIGINT) is signal.SIG_IGN)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    assert result.stdout.strip() == "True", result.stderr


_TWICE = textwrap.dedent(
    """
    import os, signal
    from wheelfarm.app.parts import follow_rounds
    from wheelfarm.cli.console import until_stopped

    def one_round(_follower):
        os.kill(os.getpid(), signal.SIGTERM)

    try:
        with until_stopped("stopped cleanly") as stopping:
            follow_rounds(None, one_round, 0.05, print, stop=stopping)
    finally:
        os.kill(os.getpid(), signal.{signal})  # the second of a pair, during the clean-up
        for _ in range(10_000):  # Python runs the handler between these bytecodes
            pass
        print("cleaned up")
    """
)


@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGINT"])
def test_a_second_signal_during_the_clean_up_does_not_cut_it_short(signal_name: str) -> None:
    """``timeout`` and systemd signal a whole process group, and ``make`` passes its own on:
    ``up`` under ``make`` got two SIGTERMs, the second while it handed its builds back."""
    result = _run(_TWICE.format(signal=signal_name))
    assert result.returncode == 0, result.stderr
    assert "stopped cleanly" in result.stderr
    assert result.stdout.split() == ["cleaned", "up"]
