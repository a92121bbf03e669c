"""HTTP to the upstream: one client, one retry policy, one notion of a transient failure.

Rate limits (HTTP 429, XML-RPC fault -32500), 5xx answers, timeouts, connection errors and
malformed bodies are retried with exponential backoff and jitter; anything else fails at once.

The upstream is not trusted with our memory or our time: bodies are read streamed and refused
past a size cap or a total deadline, and redirects are followed only within the origin (scheme,
host, port) of the URL asked for, so an upstream cannot send us to another host or to a
link-local address.

The deadline covers the whole exchange, headers included: a server trickling its status line
or headers a byte at a time is cut off like one trickling its body (each socket read waits at
most what is left of the deadline; see :class:`_DeadlineBackend`).
"""

from __future__ import annotations

import contextvars
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpcore
import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from wheelfarm import __version__
from wheelfarm.errors import UpstreamError, redact_url
from wheelfarm.words import plural

__all__ = [
    "ResponseLimits",
    "RetryPolicy",
    "SharedPause",
    "TransientError",
    "UpstreamClient",
    "new_client",
    "raise_for_status",
]

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


MAX_REDIRECTS = 5

_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class ResponseLimits:
    """How much of the upstream's answer we read: bytes (decoded) and seconds per request."""

    max_bytes: int = 64 * 1024 * 1024
    deadline: float = 120.0


#: When the current thread's request must be over (``time.monotonic()``), or None.
_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "upstream_deadline", default=None
)


def _remaining(timeout: float | None) -> float | None:
    """The socket timeout to use now: the per-read timeout, shortened to the deadline."""
    deadline = _deadline.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise httpcore.ReadTimeout("the request's deadline has passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A socket stream whose reads and writes never wait past the request's deadline."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _remaining(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _remaining(timeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: Any,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        tls = self._stream.start_tls(ssl_context, server_hostname, _remaining(timeout))
        return _DeadlineStream(tls)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's socket layer, with every stream bound by the calling thread's deadline.

    httpx's timeouts are per socket operation, so a server sending its headers a byte at a time
    keeps a request alive indefinitely; only the socket layer sees every wait, headers included.
    """

    def __init__(self, backend: httpcore.NetworkBackend) -> None:
        self._backend = backend

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._backend.connect_tcp(
            host, port, _remaining(timeout), local_address, socket_options
        )
        return _DeadlineStream(stream)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        stream = self._backend.connect_unix_socket(path, _remaining(timeout), socket_options)
        return _DeadlineStream(stream)

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def _bind_to_deadlines(transports: Iterable[httpx.BaseTransport | None]) -> None:
    """Put :class:`_DeadlineBackend` under each of httpx's own transports (direct and proxied).

    httpx offers no public way to choose httpcore's network backend, so this reaches for the
    pool httpx built (``HTTPTransport._pool``); a test fails if a new httpx moves it.
    """
    for transport in transports:
        pool = getattr(transport, "_pool", None)
        if isinstance(pool, httpcore.ConnectionPool):
            pool._network_backend = _DeadlineBackend(pool._network_backend)


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port or _DEFAULT_PORTS.get(url.scheme)


class UpstreamClient(httpx.Client):
    """An httpx client whose every answer is read under :class:`ResponseLimits`.

    Redirects are followed here rather than by httpx, so that each hop is checked against the
    first URL's origin before it is requested, and a redirect's own body is never read. The
    deadline is checked as each piece of the body arrives; a server that sends nothing at all
    is caught by the per-read timeout, so a request ends within the deadline plus that timeout.
    """

    def __init__(self, timeout: float, limits: ResponseLimits) -> None:
        super().__init__(
            timeout=timeout,
            follow_redirects=True,
            headers={"User-Agent": f"wheelfarm/{__version__}"},
        )
        self.response_limits = limits
        _bind_to_deadlines([self._transport, *self._mounts.values()])

    def send(
        self, request: httpx.Request, *, stream: bool = False, **kwargs: Any
    ) -> httpx.Response:
        """Send, follow same-origin redirects, then read the body within the limits."""
        started = time.monotonic()
        token = _deadline.set(started + self.response_limits.deadline)
        try:
            return self._send_within(request, started, stream, **kwargs)
        except httpx.TimeoutException as error:
            if time.monotonic() - started < self.response_limits.deadline:
                raise
            raise UpstreamError(
                str(request.url),
                f"answer took over {self.response_limits.deadline:g} s "
                "(upstream_deadline_seconds); stopped waiting for it",
            ) from error
        finally:
            _deadline.reset(token)

    def _send_within(
        self, request: httpx.Request, started: float, stream: bool, **kwargs: Any
    ) -> httpx.Response:
        follow = kwargs.pop("follow_redirects", True) is not False
        first = request.url
        for _ in range(MAX_REDIRECTS + 1):
            response = super().send(request, stream=True, follow_redirects=False, **kwargs)
            hop = response.next_request
            if hop is None or not follow:
                break
            response.close()
            if _origin(hop.url) != _origin(first):
                raise UpstreamError(
                    str(first),
                    f"redirected from {request.url} to {hop.url}, outside the upstream's "
                    "origin; only redirects within it are followed",
                )
            request = hop
        else:
            raise UpstreamError(str(first), f"more than {MAX_REDIRECTS} redirects")
        if stream:
            return response
        try:
            response._content = self._read_within(response, started)  # what read() would set
        finally:
            response.close()
        return response

    def _read_within(self, response: httpx.Response, started: float) -> bytes:
        limits = self.response_limits
        url = str(response.request.url)
        over = f"over the limit of {limits.max_bytes} bytes (max_upstream_response_bytes)"
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limits.max_bytes:
            raise UpstreamError(url, f"answer of {declared} bytes is {over}; not read")
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > limits.max_bytes:
                raise UpstreamError(url, f"answer is {over}; stopped reading")
            chunks.append(chunk)
            if time.monotonic() - started > limits.deadline:
                raise UpstreamError(
                    url,
                    f"answer took over {limits.deadline:g} s (upstream_deadline_seconds); "
                    f"stopped reading after {plural(size, 'byte')}",
                )
        return b"".join(chunks)


def new_client(timeout: float, limits: ResponseLimits | None = None) -> UpstreamClient:
    """The HTTP client for upstream reads: a named user agent, same-origin redirects followed,
    answers read within ``limits`` (the defaults when not given)."""
    return UpstreamClient(timeout, limits or ResponseLimits())


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


class SharedPause:
    """A wait every reader of one upstream honours: a rate limit slows the pool, not one thread.

    When the upstream answers 429 or 503 with ``Retry-After`` it is asking the *client* to hold
    off, not the one request: with eight readers, the seven others would otherwise go on and
    each collect its own 429. :meth:`hold` moves the shared "not before" time later (never
    earlier); :meth:`wait` sleeps until it has passed. The clock and the sleep are handed in.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._until = 0.0

    def hold(self, seconds: float) -> None:
        """No reader starts a request for the next ``seconds``."""
        with self._lock:
            self._until = max(self._until, self._clock() + seconds)

    def wait(self) -> float:
        """Sleep until the pause is over (it may grow meanwhile); returns the seconds slept."""
        slept = 0.0
        while True:
            with self._lock:
                remaining = self._until - self._clock()
            if remaining <= 0:
                return slept
            self._sleep(remaining)
            slept += remaining


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
                "%s failed (%s); retry %d in %.1f s",
                redact_url(what),
                redact_url(str(error)),
                state.attempt_number,
                wait,
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
                error.url, f"{error.reason} (gave up after {plural(attempts, 'attempt')})"
            ) from error
        except httpx.TransportError as error:
            raise UpstreamError(
                what,
                f"{type(error).__name__}: {error} (gave up after {plural(attempts, 'attempt')})",
            ) from error
