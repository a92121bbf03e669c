"""What the master refuses a builder, as errors: the builder API maps each kind to its HTTP code.

The services (:mod:`wheelfarm.farm.builds`, :mod:`wheelfarm.farm.uploads`) raise these; nothing
they do is committed when one is raised (the request's transaction is rolled back).
"""

from __future__ import annotations

from wheelfarm.errors import WheelfarmError

__all__ = [
    "AlreadyPublished",
    "BuildConflict",
    "BuildOver",
    "BuildRefused",
    "HelloFirst",
    "MasterDiskFull",
    "NotYourBuild",
    "TargetNotConfigured",
    "TargetRemoved",
    "TooManyWheels",
    "WheelTooLarge",
]


class BuildRefused(WheelfarmError):
    """A builder asked for something the master will not do; the message says why."""


class NotYourBuild(BuildRefused):
    """No such build, or another builder's (HTTP 404)."""

    def __init__(self, build_id: int) -> None:
        super().__init__(f"build {build_id} is not yours")
        self.build_id = build_id


class BuildConflict(BuildRefused):
    """The request does not fit the state of things on the master (HTTP 409)."""


class BuildOver(BuildConflict):
    def __init__(self, build_id: int) -> None:
        super().__init__(f"build {build_id} is already over")
        self.build_id = build_id


class TargetNotConfigured(BuildConflict):
    def __init__(self, target: str) -> None:
        super().__init__(
            f"target {target!r} is not configured on the master (wheelfarm targets add {target})"
        )
        self.target = target


class HelloFirst(BuildConflict):
    def __init__(self) -> None:
        super().__init__("say hello first")


class AlreadyPublished(BuildConflict):
    """The file name is taken, e.g. by a pure wheel another target's build already gave us."""

    def __init__(self, filename: str, sha256: str) -> None:
        super().__init__(f"{filename} is already published (sha256 {sha256})")
        self.filename = filename
        self.sha256 = sha256


class TargetRemoved(BuildConflict):
    def __init__(self, target: str) -> None:
        super().__init__("the target was removed")
        self.target = target


class TooManyWheels(BuildConflict):
    """The build has published as many wheels as one build may (``max_wheels_per_job``)."""

    def __init__(self, build_id: int, limit: int) -> None:
        super().__init__(f"build {build_id} has already uploaded {limit} wheels, the limit")
        self.build_id = build_id
        self.limit = limit


class WheelTooLarge(BuildRefused):
    """The upload is over :attr:`~wheelfarm.farm.intake.IntakeLimits.max_wheel_bytes` (413)."""

    def __init__(self, size: int) -> None:
        super().__init__("wheel too large")
        self.size = size


class MasterDiskFull(BuildRefused):
    """The master cannot store the upload now (HTTP 507, which a builder retries)."""

    def __init__(self) -> None:
        super().__init__("the master's disk is full; try again later")
