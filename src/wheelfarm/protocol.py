"""The messages between the master and its builders: one catalogue, checked on both sides.

Builders pull: every exchange is a request from the builder. Field names are the wire names.
Every number a message carries has a type and a range: finite (no NaN, no infinity), never
negative where a negative makes no sense, and bounded, so a hostile or broken builder cannot
store a value that breaks whatever reads it later (a duration of 1e12 seconds is no date).
Every text is bounded too, and a name shown to people carries no control or bidirectional
override characters (:data:`ShownText`).
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
)

from wheelfarm.names import unsafe_text_problem

__all__ = [
    "API_PREFIX",
    "DEPENDENCIES_HEADER",
    "MAX_BUILD_ID",
    "MAX_BUILD_NUMBER",
    "MAX_BYTES",
    "MAX_DEPENDENCIES_HEADER",
    "MAX_DURATION",
    "MAX_LOG_CHARS",
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
    "Message",
    "ShownText",
    "Soname",
    "WheelDependencies",
]

API_PREFIX = "/api/builder/v1"

#: The largest build id: the store's ``builds.id`` is a 32-bit integer on PostgreSQL.
MAX_BUILD_ID = 2**31 - 1
#: The largest build number a job may carry (a build tag; far more rebuilds than any release gets).
MAX_BUILD_NUMBER = 9999
#: The longest build a builder may report, in seconds (30 days; a build times out long before).
MAX_DURATION = 30 * 86400.0
#: The longest build log a report may carry, in characters.
MAX_LOG_CHARS = 4 << 20
#: The largest size in bytes any message may carry (1 EiB: more than any disk, less than 2**63).
MAX_BYTES = 1 << 60


def _shown(value: str) -> str:
    """Refuse control and bidirectional override characters in a text people will read."""
    problem = unsafe_text_problem("text", value)
    if problem is not None:
        raise ValueError(problem)
    return value


#: A single-line text shown to people (names, labels, reasons): no control characters, no
#: bidirectional overrides, which could make a page or a terminal show something else.
ShownText = Annotated[str, AfterValidator(_shown)]


class Message(BaseModel):
    """The base of every message: NaN and infinity are refused wherever a number is read."""

    model_config = ConfigDict(allow_inf_nan=False)


#: What the master tells a builder (``wheelfarm builders skip|pause|resume|stop``):
#: ``skip`` ends the build under way (the job fails, named as skipped by the operator);
#: ``pause`` lets it finish and claims nothing more until resumed; ``stop`` ends the build under
#: way (the job goes straight back to the queue) and the builder process exits.
Command = Literal["continue", "skip", "pause", "stop"]


class Hello(Message):
    """A builder introduces itself: what it builds for, and where it runs."""

    target: ShownText = Field(
        min_length=1, max_length=100, description="e.g. cp311-cp311-linux_armv7l"
    )
    platforms: list[Annotated[ShownText, Field(max_length=200)]] = Field(
        default_factory=list, max_length=500
    )
    python: ShownText = Field(max_length=100, description="e.g. 3.11.7")
    os: ShownText = Field(max_length=200, description="e.g. Debian GNU/Linux 12 (bookworm)")
    label: ShownText | None = Field(default=None, max_length=200)


class HelloReply(Message):
    builder: str = Field(max_length=200)
    lease_seconds: float = Field(gt=0, le=MAX_DURATION)
    heartbeat_seconds: float = Field(gt=0, le=MAX_DURATION)


class Job(Message):
    build_id: int = Field(ge=1, le=MAX_BUILD_ID)
    project: ShownText = Field(min_length=1, max_length=255)
    version: ShownText = Field(min_length=1, max_length=255)
    target: ShownText = Field(min_length=1, max_length=100)
    index_url: str = Field(min_length=1, max_length=2000)
    #: The build tag the job's wheels must carry (0: none): a rebuild of a built release gets
    #: the next number, so its wheels have new file names (docs/farm.md, Rebuilds).
    build_number: int = Field(default=0, ge=0, le=MAX_BUILD_NUMBER)


class ClaimReply(Message):
    """A job, or none with how long to wait before asking again (and why, in ``command``)."""

    job: Job | None = None
    retry_after: float = Field(default=0.0, ge=0, le=MAX_DURATION)
    command: Command = "continue"


#: Bounds of the readings a builder sends (finite, non-negative, no larger than these).
_BYTES = 1 << 60  # an exabyte: more memory or disk than any builder has
_Seconds = Annotated[float, Field(ge=0, le=100 * 365 * 86400, allow_inf_nan=False)]
_Load = Annotated[float, Field(ge=0, le=100_000, allow_inf_nan=False)]
_Bytes = Annotated[int, Field(ge=0, le=_BYTES)]
_Percent = Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)]


class Health(Message):
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


class Heartbeat(Message):
    health: Health = Field(default_factory=Health)


class HeartbeatReply(Message):
    command: Command = "continue"


class FileAccepted(Message):
    filename: str = Field(max_length=512)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0, le=MAX_BYTES)


#: How a build ended, as its builder reports it.
BuildStatus = Literal["built", "failed", "not-yet-available", "cancelled"]


class BuildReport(Message):
    """A builder reports how a build ended (``POST /builds/{id}/result``).

    ``not-yet-available``: the index did not have the release yet. ``cancelled``: the build was
    stopped on the master's command or because the builder is shutting down.
    """

    status: BuildStatus
    reason: ShownText | None = Field(default=None, max_length=2000)
    duration: float = Field(ge=0, le=MAX_DURATION)
    log: str = Field(default="", max_length=MAX_LOG_CHARS)


class BuildReportReply(Message):
    """The outcome the master recorded (``failed`` when a ``built`` report had no wheel)."""

    status: str = Field(max_length=50)


#: The PUT of a wheel may carry its system dependencies in this header, as compact JSON
#: (:class:`WheelDependencies`): stored with the wheel in the same transaction.
DEPENDENCIES_HEADER = "X-Wheel-Dependencies"
MAX_DEPENDENCIES_HEADER = 8192  # characters; the builder trims to fit, the master refuses more

#: A Debian package name (Debian policy 5.6.1), without an ``:arch`` qualifier.
DebianPackage = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9+.-]+$", max_length=100)]
#: A library's file name as the loader looks it up: a plain name, no path.
Soname = Annotated[str, StringConstraints(pattern=r"^[^/\s\x00]+$", max_length=255)]
_Problem = Annotated[str, StringConstraints(max_length=300)]


class WheelDependencies(Message):
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
