"""The messages between the master and its builders: one catalogue, checked on both sides.

Builders pull: every exchange is a request from the builder. Field names are the wire names.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

__all__ = [
    "API_PREFIX",
    "ClaimReply",
    "Command",
    "FileAccepted",
    "Health",
    "Heartbeat",
    "HeartbeatReply",
    "Hello",
    "HelloReply",
    "Job",
    "Report",
    "ReportReply",
]

API_PREFIX = "/api/builder/v1"

#: What the master tells a builder (``wheelfarm builders skip|pause|resume|stop``):
#: ``skip`` ends the build under way (the job fails, named as skipped by the operator);
#: ``pause`` lets it finish and claims nothing more until resumed; ``stop`` ends the build under
#: way (the job goes straight back to the queue) and the builder process exits.
Command = Literal["continue", "skip", "pause", "stop"]


class Hello(BaseModel):
    """A builder introduces itself: what it builds for, and where it runs."""

    target: str = Field(min_length=1, max_length=100, description="e.g. cp311-cp311-linux_armv7l")
    platforms: list[str] = Field(default_factory=list, max_length=500)
    python: str = Field(max_length=100, description="e.g. 3.11.7")
    os: str = Field(max_length=200, description="e.g. Debian GNU/Linux 12 (bookworm)")
    label: str | None = Field(default=None, max_length=200)


class HelloReply(BaseModel):
    builder: str
    lease_seconds: float
    heartbeat_seconds: float


class Job(BaseModel):
    build_id: int
    project: str
    version: str
    target: str
    index_url: str


class ClaimReply(BaseModel):
    """A job, or none with how long to wait before asking again (and why, in ``command``)."""

    job: Job | None = None
    retry_after: float = 0.0
    command: Command = "continue"


class Health(BaseModel):
    """Readings taken on the builder; monitoring is built on them."""

    cpu_temperature: float | None = None
    load: float | None = None
    memory_percent: float | None = Field(default=None, ge=0, le=100)
    swap_percent: float | None = Field(default=None, ge=0, le=100)
    disk_free_bytes: int | None = Field(default=None, ge=0)


class Heartbeat(BaseModel):
    health: Health = Field(default_factory=Health)


class HeartbeatReply(BaseModel):
    command: Command = "continue"


class FileAccepted(BaseModel):
    filename: str
    sha256: str
    size: int


class Report(BaseModel):
    """The end of a build.

    ``not-yet-available``: the index did not have the release yet. ``cancelled``: the build was
    stopped on the master's command or because the builder is shutting down.
    """

    status: Literal["built", "failed", "not-yet-available", "cancelled"]
    reason: str | None = Field(default=None, max_length=2000)
    duration: float = Field(ge=0)
    log: str = Field(default="", max_length=4 << 20)


class ReportReply(BaseModel):
    status: str
