"""The upstream's XML-RPC changelog: ``changelog_last_serial`` and ``changelog_since_serial``."""

from __future__ import annotations

import logging
import xmlrpc.client
from dataclasses import dataclass, field
from xml.parsers.expat import ExpatError

import httpx

from wheelfarm.errors import MalformedResponse, UpstreamError
from wheelfarm.http import RetryPolicy, TransientError, raise_for_status, retry_after_hint
from wheelfarm.store.events import ChangelogEvent, EventProblem
from wheelfarm.upstream.events import parse_row
from wheelfarm.upstream.rows import decode_rows

__all__ = ["RATE_LIMITED", "ChangelogBatch", "ChangelogClient"]

log = logging.getLogger(__name__)

RATE_LIMITED = -32500  # the upstream's XML-RPC fault code for "too many requests"


@dataclass
class ChangelogBatch:
    """One answer of ``changelog_since_serial``: valid events, rejected rows, the serial reached."""

    events: list[ChangelogEvent] = field(default_factory=list)
    problems: list[EventProblem] = field(default_factory=list)
    last_serial: int = 0


class ChangelogClient:
    """Reads the changelog over XML-RPC with the shared retry policy."""

    def __init__(self, url: str, client: httpx.Client, policy: RetryPolicy) -> None:
        self.url = url
        self._client = client
        self._policy = policy

    def _call(self, method: str, *params: int, after_serial: int | None = None) -> object:
        body = xmlrpc.client.dumps(params, method, allow_none=True).encode()

        def attempt() -> object:
            response = self._client.post(
                self.url, content=body, headers={"Content-Type": "text/xml"}
            )
            raise_for_status(response)
            try:
                if method == "changelog_since_serial":
                    rows = decode_rows(response.content)
                    if rows is not None:
                        return rows
                (result,), _ = xmlrpc.client.loads(response.content, use_builtin_types=True)
            except xmlrpc.client.Fault as fault:
                if fault.faultCode == RATE_LIMITED:
                    raise TransientError(
                        self.url,
                        f"rate limited: {fault.faultString}",
                        retry_after=retry_after_hint(fault.faultString),
                    ) from fault
                raise UpstreamError(
                    self.url, f"{method} fault {fault.faultCode}: {fault.faultString}"
                ) from fault
            except (ExpatError, xmlrpc.client.ResponseError, ValueError) as error:
                # Logged with the serial we asked from; retried, since proxies truncate bodies.
                log.error("malformed %s response after serial %s: %s", method, after_serial, error)
                raise TransientError(
                    self.url, f"malformed {method} response after serial {after_serial}: {error}"
                ) from error
            return result

        return self._policy.run(attempt, f"{method} at {self.url}")

    def last_serial(self) -> int:
        """The upstream's newest serial."""
        result = self._call("changelog_last_serial")
        if not isinstance(result, int) or isinstance(result, bool) or result < 0:
            raise MalformedResponse(self.url, f"changelog_last_serial returned {result!r}")
        return result

    def since(self, serial: int) -> ChangelogBatch:
        """The rows after ``serial`` (the upstream caps them, 50,000 on the public index)."""
        rows = self._call("changelog_since_serial", serial, after_serial=serial)
        if not isinstance(rows, list):
            raise MalformedResponse(
                self.url, f"expected a list of rows, got {type(rows).__name__}", after_serial=serial
            )
        batch = ChangelogBatch(last_serial=serial)
        for row in rows:
            try:
                event = parse_row(row)
            except EventProblem as problem:
                log.error("changelog row after serial %d rejected: %s", serial, problem)
                batch.problems.append(problem)
                if problem.serial:
                    batch.last_serial = max(batch.last_serial, problem.serial)
                continue
            batch.events.append(event)
            batch.last_serial = max(batch.last_serial, event.serial)
        return batch
