"""HTTP to the upstream: one client, one retry policy, one notion of a transient failure.

Rate limits (HTTP 429, XML-RPC fault -32500), 5xx answers, timeouts, connection errors and
malformed bodies are retried with exponential backoff and jitter; anything else fails at once.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from wheelfarm import __version__
from wheelfarm.errors import UpstreamError

__all__ = ["RetryPolicy", "TransientError", "new_client", "raise_for_status"]

log = logging.getLogger(__name__)
T = TypeVar("T")

_RESET_IN = re.compile(r"reset in (\d+) seconds?")


class TransientError(UpstreamError):
    """A failure worth retrying; ``retry_after`` is the upstream's own hint, when it gave one."""

    def __init__(self, url: str, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(url, reason)
        self.retry_after = retry_after


def retry_after_hint(text: str) -> float | None:
    """The wait the upstream asks for in a rate-limit message ('Limit may reset in 3 seconds')."""
    match = _RESET_IN.search(text)
    return float(match[1]) if match else None


def new_client(timeout: float) -> httpx.Client:
    """The HTTP client for upstream reads: a named user agent, redirects followed."""
    return httpx.Client(
        timeout=timeout,
        follow_redirects=True,
        headers={"User-Agent": f"wheelfarm/{__version__}"},
    )


def raise_for_status(response: httpx.Response) -> None:
    """Map an unwanted status to a transient (429, 5xx) or a permanent error."""
    status = response.status_code
    if status < 400:
        return
    url = str(response.request.url)
    reason = f"HTTP {status} {response.reason_phrase}".strip()
    if status == 429 or status >= 500:
        header = response.headers.get("Retry-After", "")
        hint = float(header) if header.isdigit() else None
        raise TransientError(url, reason, retry_after=hint)
    raise UpstreamError(url, reason)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry transient failures."""

    retries: int = 8
    initial_wait: float = 1.0
    max_wait: float = 120.0

    def _wait(self, state: RetryCallState) -> float:
        backoff = wait_exponential_jitter(
            multiplier=self.initial_wait, max=self.max_wait, jitter=self.initial_wait
        )(state)
        error = state.outcome.exception() if state.outcome else None
        hint = error.retry_after if isinstance(error, TransientError) else None
        return min(max(backoff, hint or 0.0), self.max_wait)

    def run(self, attempt: Callable[[], T], what: str) -> T:
        """Call ``attempt`` until it succeeds, retrying :class:`TransientError` and httpx faults."""

        def note(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            wait = state.next_action.sleep if state.next_action else 0.0
            log.warning(
                "%s failed (%s); retry %d in %.1f s", what, error, state.attempt_number, wait
            )

        retrying = Retrying(
            stop=stop_after_attempt(self.retries + 1),
            wait=self._wait,
            retry=retry_if_exception_type((TransientError, httpx.TransportError)),
            before_sleep=note,
            reraise=True,
        )
        attempts = self.retries + 1
        try:
            return retrying(attempt)
        except TransientError as error:
            raise UpstreamError(
                error.url, f"{error.reason} (gave up after {attempts} attempts)"
            ) from error
        except httpx.TransportError as error:
            raise UpstreamError(
                what, f"{type(error).__name__}: {error} (gave up after {attempts} attempts)"
            ) from error
