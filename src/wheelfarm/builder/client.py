"""The builder's HTTP conversation with the master: one method per exchange of the protocol.

Every exchange is a request from the builder, authenticated with its token and retried by the
shared policy; an answer retrying cannot change becomes :class:`MasterRefused`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from wheelfarm.errors import WheelfarmError
from wheelfarm.http import RetryPolicy, raise_for_status
from wheelfarm.protocol import (
    API_PREFIX,
    DEPENDENCIES_HEADER,
    BuildReport,
    BuildReportReply,
    ClaimReply,
    FileAccepted,
    Heartbeat,
    HeartbeatReply,
    Hello,
    HelloReply,
    WheelDependencies,
)

__all__ = ["MasterClient", "MasterRefused"]

M = TypeVar("M", bound=BaseModel)


class MasterRefused(WheelfarmError):
    """The master answered with an error that retrying will not change (401, 404, 409, 422)."""

    def __init__(self, what: str, status: int, detail: str) -> None:
        super().__init__(f"{what}: the master said {status}: {detail}")
        self.status = status
        self.detail = detail


class MasterClient:
    """The builder's side of the protocol, over HTTP with the shared retry policy."""

    def __init__(self, master_url: str, token: str, client: httpx.Client, policy: RetryPolicy):
        self._base = master_url.rstrip("/") + API_PREFIX
        self._client = client
        self.token = token  # the build log is scanned for it before it is sent
        self._headers = {"Authorization": f"Bearer {token}"}
        self._policy = policy

    def _send(
        self,
        method: str,
        path: str,
        reply: type[M],
        message: BaseModel | None = None,
        **kwargs: Any,
    ) -> M:
        url = self._base + path
        if message is not None:
            kwargs["content"] = message.model_dump_json()
            kwargs["headers"] = {**self._headers, "Content-Type": "application/json"}
        kwargs.setdefault("headers", self._headers)
        fixed = dict(kwargs)

        def attempt() -> M:
            content = fixed.get("content")  # a stream is started afresh for each attempt
            arguments = {**fixed, "content": content()} if callable(content) else fixed
            response = self._client.request(method, url, **arguments)
            if response.status_code in (401, 403, 404, 409, 413, 422):
                detail = response.json().get("detail", response.text) if response.content else ""
                raise MasterRefused(f"{method} {path}", response.status_code, str(detail))
            raise_for_status(response)  # 5xx and 507 (disk full) are transient: retried
            return reply.model_validate_json(response.content)

        return self._policy.run(attempt, f"{method} {url}")

    def hello(self, message: Hello) -> HelloReply:
        return self._send("POST", "/hello", HelloReply, message)

    def claim(self, message: Heartbeat | None = None) -> ClaimReply:
        """Ask for a job, with this machine's readings when given."""
        return self._send("POST", "/claim", ClaimReply, message)

    def heartbeat(self, build_id: int, message: Heartbeat) -> HeartbeatReply:
        path = f"/builds/{build_id}/heartbeat"
        return self._send("POST", path, HeartbeatReply, message)

    def upload(
        self,
        build_id: int,
        wheel: Path,
        sha256: str,
        dependencies: WheelDependencies | None = None,
    ) -> FileAccepted:
        """Stream one wheel to the master, with its system dependencies when they are known."""
        extra = {DEPENDENCIES_HEADER: dependencies.header()} if dependencies is not None else {}

        def body() -> Any:
            with wheel.open("rb") as handle:
                while chunk := handle.read(1 << 20):
                    yield chunk

        return self._send(
            "PUT",
            f"/builds/{build_id}/files/{wheel.name}",
            FileAccepted,
            content=body,
            headers={
                **self._headers,
                "X-Wheel-Sha256": sha256,
                "Content-Length": str(wheel.stat().st_size),
                **extra,
            },
        )

    def report(self, build_id: int, message: BuildReport) -> BuildReportReply:
        path = f"/builds/{build_id}/result"
        return self._send("POST", path, BuildReportReply, message)
