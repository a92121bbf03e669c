"""The messages between the master and its builders: one catalogue, checked on both sides.

Builders pull: every exchange is a request from the builder. Field names are the wire names.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
)

__all__ = [
    "API_PREFIX",
    "DEPENDENCIES_HEADER",
    "MAX_DEPENDENCIES_HEADER",
    "BuildReport",
    "BuildReportReply",
    "BuildStatus",
    "ClaimReply",
    "Command",
    "DebianPackage",
    "FileAccepted",
    "Health",
    "Heartbeat",
    "HeartbeatReply",
    "Hello",
    "HelloReply",
    "Job",
    "Soname",
    "WheelDependencies",
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


#: Bounds of the readings a builder sends (finite, non-negative, no larger than these).
_BYTES = 1 << 60  # an exabyte: more memory or disk than any builder has
_Seconds = Annotated[float, Field(ge=0, le=100 * 365 * 86400, allow_inf_nan=False)]
_Load = Annotated[float, Field(ge=0, le=100_000, allow_inf_nan=False)]
_Bytes = Annotated[int, Field(ge=0, le=_BYTES)]
_Percent = Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)]


class Health(BaseModel):
    """Readings taken on the builder; monitoring is built on them.

    Every field is optional, and a reading out of range (negative, NaN, infinite, too large, not
    a number) is dropped on its own, as if it was not sent: the others are kept. ``clock`` is
    the builder's time when it sent them; the master computes the offset from its own clock.
    """

    cpu_temperature: Annotated[float, Field(ge=0, le=200, allow_inf_nan=False)] | None = None
    load: _Load | None = None  # the 1-minute load average
    load5: _Load | None = None
    load15: _Load | None = None
    memory_percent: _Percent | None = None
    swap_percent: _Percent | None = None
    memory_used: _Bytes | None = None
    memory_total: _Bytes | None = None
    memory_available: _Bytes | None = None
    swap_used: _Bytes | None = None
    swap_total: _Bytes | None = None
    disk_free_bytes: _Bytes | None = None  # of the work directory's file system
    disk_used_bytes: _Bytes | None = None
    uptime: _Seconds | None = None
    clock: Annotated[float, Field(ge=0, le=1e11, allow_inf_nan=False)] | None = None

    @field_validator("*", mode="wrap")
    @classmethod
    def _drop_nonsense(cls, value: object, handler: ValidatorFunctionWrapHandler) -> object:
        try:
            return handler(value)
        except ValidationError:
            return None


class Heartbeat(BaseModel):
    health: Health = Field(default_factory=Health)


class HeartbeatReply(BaseModel):
    command: Command = "continue"


class FileAccepted(BaseModel):
    filename: str
    sha256: str
    size: int


#: How a build ended, as its builder reports it.
BuildStatus = Literal["built", "failed", "not-yet-available", "cancelled"]


class BuildReport(BaseModel):
    """A builder reports how a build ended (``POST /builds/{id}/result``).

    ``not-yet-available``: the index did not have the release yet. ``cancelled``: the build was
    stopped on the master's command or because the builder is shutting down.
    """

    status: BuildStatus
    reason: str | None = Field(default=None, max_length=2000)
    duration: float = Field(ge=0)
    log: str = Field(default="", max_length=4 << 20)


class BuildReportReply(BaseModel):
    """The outcome the master recorded (``failed`` when a ``built`` report had no wheel)."""

    status: str


#: The PUT of a wheel may carry its system dependencies in this header, as compact JSON
#: (:class:`WheelDependencies`): stored with the wheel in the same transaction.
DEPENDENCIES_HEADER = "X-Wheel-Dependencies"
MAX_DEPENDENCIES_HEADER = 8192  # characters; the builder trims to fit, the master refuses more

#: A Debian package name (Debian policy 5.6.1), without an ``:arch`` qualifier.
DebianPackage = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9+.-]+$", max_length=100)]
#: A library's file name as the loader looks it up: a plain name, no path.
Soname = Annotated[str, StringConstraints(pattern=r"^[^/\s\x00]+$", max_length=255)]
_Problem = Annotated[str, StringConstraints(max_length=300)]


class WheelDependencies(BaseModel):
    """What a built wheel needs from the system (see docs/farm.md, System dependencies)."""

    model_config = ConfigDict(extra="forbid")

    apt: list[DebianPackage] = Field(default_factory=list, max_length=500)
    unresolved: list[Soname] = Field(default_factory=list, max_length=500)
    bundled: list[Soname] = Field(default_factory=list, max_length=500)
    problems: list[_Problem] = Field(default_factory=list, max_length=51)

    def header(self) -> str:
        """Compact ASCII JSON, cut down to fit :data:`MAX_DEPENDENCIES_HEADER` if it must be.

        Bundled names go first, then problems; the packages and sonames a user needs are only
        cut when nothing else is left, and a problem then says so.
        """
        cut = "the dependency list was cut to fit the upload header"
        for attempt in (
            self,
            self.model_copy(update={"bundled": []}),
            self.model_copy(update={"bundled": [], "problems": [cut]}),
            WheelDependencies(apt=self.apt[:100], unresolved=self.unresolved[:100], problems=[cut]),
        ):
            text = json.dumps(attempt.model_dump(), separators=(",", ":"))
            if len(text) <= MAX_DEPENDENCIES_HEADER:
                return text
        return json.dumps({"problems": [cut]})
