"""The exception tree: every error carries the input at fault and the reason.

The shared errors are defined here; each stage defines its own beside the code that raises it,
and every one is listed here (a test holds this list to the code)::

    WheelfarmError
        ConfigError
        NotFound
        UpstreamError
            MalformedResponse
            StaleUpstream
                StaleNotFound
            `TransientError` (wheelfarm.http)
        `InvalidTarget` (wheelfarm.targets)
        `StoreNotMigrated` (wheelfarm.store.database)
        `DuplicateName` (wheelfarm.farm.registry)
        `IntakeError` (wheelfarm.farm.intake)
        `BuildRefused` (wheelfarm.farm.refusals): the builder API maps each to its status
            `NotYourBuild` (wheelfarm.farm.refusals)
            `BuildConflict` (wheelfarm.farm.refusals)
                `BuildOver` (wheelfarm.farm.refusals)
                `TargetNotConfigured` (wheelfarm.farm.refusals)
                `HelloFirst` (wheelfarm.farm.refusals)
                `AlreadyPublished` (wheelfarm.farm.refusals)
                `TargetRemoved` (wheelfarm.farm.refusals)
                `TooManyWheels` (wheelfarm.farm.refusals)
            `WheelTooLarge` (wheelfarm.farm.refusals)
            `MasterDiskFull` (wheelfarm.farm.refusals)
        `ImportRefused` (wheelfarm.farm.wheels)
        `DistroFileError` (wheelfarm.farm.distros)
        `UnknownDistro` (wheelfarm.farm.dependencies)
        `MasterRefused` (wheelfarm.builder.client)
        `BuildTagError` (wheelfarm.builder.build_tags): a built wheel could not be given its tag
        `DataDirBusy` (wheelfarm.guards)
        `StoreMissing` (wheelfarm.store.database)
        `UnknownProject` (wheelfarm.cli.builds)
        `XmlRpcError` (wheelfarm.web.mirror_api): answered as an XML-RPC fault, never raised out
        `RootfsError` (wheelfarm.builder.emulation): a root file system cannot be made or used
            `UnknownArchitecture` (wheelfarm.builder.emulation)
    ValueError
        `EventProblem` (wheelfarm.store.events): one changelog row's problems, never fatal
"""

from __future__ import annotations

import re

__all__ = [
    "ConfigError",
    "MalformedResponse",
    "NotFound",
    "StaleNotFound",
    "StaleUpstream",
    "UpstreamError",
    "WheelfarmError",
    "redact_url",
]

_PASSWORD = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://)([^\s/@:]*):[^\s/@]*@")
_LONE_USER = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://)[^\s/@:]+@")


def redact_url(text: str) -> str:
    """``text`` with the credentials of every URL in it hidden: ``scheme://user:***@host``.

    A user name without a password is hidden whole (``scheme://***@host``): it is often a
    token. Errors and log lines go through this, so a database or upstream URL with a password
    in it can be shown without showing the password.
    """
    return _LONE_USER.sub(r"\1***@", _PASSWORD.sub(r"\1\2:***@", text))


class WheelfarmError(Exception):
    """Base of every error wheelfarm raises on purpose; the CLI prints these without a traceback."""


class ConfigError(WheelfarmError):
    """A setting is missing or has a value we cannot use."""

    def __init__(self, setting: str, value: object, reason: str) -> None:
        super().__init__(redact_url(f"setting {setting!r} = {value!r}: {reason}"))
        self.setting = setting
        self.value = value
        self.reason = reason


class UpstreamError(WheelfarmError):
    """The upstream index could not be read, even after retrying."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(redact_url(f"{url}: {reason}"))
        self.url = url
        self.reason = reason


class MalformedResponse(UpstreamError):
    """The upstream answered, but with something we cannot read; nothing was applied from it."""

    def __init__(self, url: str, reason: str, *, after_serial: int | None = None) -> None:
        where = f" (changelog after serial {after_serial})" if after_serial is not None else ""
        super().__init__(url, f"malformed response{where}: {reason}")
        self.after_serial = after_serial


class StaleUpstream(UpstreamError):
    """A project page is older than the changelog event that sent us to read it."""

    def __init__(
        self, url: str, page_serial: int, wanted_serial: int, reason: str | None = None
    ) -> None:
        super().__init__(
            url,
            reason
            or f"page is at serial {page_serial}, older than the event at serial {wanted_serial}",
        )
        self.page_serial = page_serial
        self.wanted_serial = wanted_serial


class StaleNotFound(StaleUpstream):
    """A project page answers 404 though the project's latest changelog event is no removal.

    A 404 carries no serial; a cache in front of the upstream can keep answering 404 for a
    while after the project was created. So it is treated as a stale page, not a deletion.
    """

    def __init__(self, url: str, event_serial: int, action: str, age: float) -> None:
        super().__init__(
            url,
            0,
            event_serial,
            f"page answers 404, but the changelog's {action!r} at serial {event_serial} "
            f"({age:.0f} s ago) says the project exists: taken as a cache's stale 404",
        )
        self.action = action
        self.age = age


class NotFound(WheelfarmError):
    """The thing a command names (a target, a builder, a skip) does not exist."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} does not exist")
        self.what = what
