"""A project's state read from the upstream: its PEP 691 JSON page plus its JSON API page.

The PEP 691 page is what pip sees (files, hashes, sizes, upload times, yanks, Requires-Python,
PEP 700 ``versions``, PEP 792's ``project-status``); the JSON API adds the display name, the
summary, and which release each file belongs to. Everything is validated before use and a page
with any problem is refused whole.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion

from wheelfarm.errors import MalformedResponse
from wheelfarm.http import RetryPolicy, SharedPause, TransientError, raise_for_status
from wheelfarm.names import (
    MAX_FILENAME,
    MAX_NAME,
    SDIST_SUFFIXES,
    NormalizedName,
    canonical,
    sort_versions,
    text_problem,
)
from wheelfarm.store.events import MAX_SERIAL

__all__ = ["STATUS_MARKERS", "PageClient", "UpstreamFile", "UpstreamProject", "parse_project"]

PEP691_JSON = "application/vnd.pypi.simple.v1+json"

# PEP 792's markers. A page without one means ``active``; a marker outside this set (a later
# standard's, an index's own) is one we cannot honour, so it is read as ``active`` too.
STATUS_MARKERS = frozenset({"active", "archived", "deprecated", "quarantined"})
MAX_STATUS_REASON = 2_000


@dataclass(frozen=True)
class UpstreamFile:
    filename: str
    version: str
    sha256: str | None
    size: int | None
    upload_time: str | None
    requires_python: str | None
    yanked: bool
    yanked_reason: str | None


@dataclass(frozen=True)
class UpstreamProject:
    name: NormalizedName
    display_name: str
    summary: str | None
    serial: int
    versions: tuple[str, ...]
    files: tuple[UpstreamFile, ...]
    status: str = "active"  # PEP 792: one of STATUS_MARKERS
    status_reason: str | None = None


def version_from_filename(project: NormalizedName, filename: str) -> str | None:
    """The version a distribution file names, for files the JSON API did not place."""
    try:
        if filename.endswith(".whl"):
            name, version, *_ = parse_wheel_filename(filename)
        else:
            name, version = parse_sdist_filename(filename)
        return str(version) if name == project else None
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        pass
    for suffix in SDIST_SUFFIXES:  # legacy sdists: "<name>-<version><suffix>", any spelling
        if filename.endswith(suffix):
            stem_name, _, stem_version = filename[: -len(suffix)].rpartition("-")
            if stem_name and stem_version and canonical(stem_name) == project:
                return stem_version
    return None


def _optional_str(value: object, where: str, problems: list[str]) -> str | None:
    if isinstance(value, str) and "\x00" in value:
        problems.append(f"{where} contains a NUL character")
        return None
    if value is None or isinstance(value, str):
        return value
    problems.append(f"{where}: expected a string or null, got {value!r}")
    return None


def _parse_file(
    raw: object,
    index: int,
    project: NormalizedName,
    placed: Mapping[str, str],
    problems: list[str],
) -> UpstreamFile | None:
    where = f"files[{index}]"
    if not isinstance(raw, dict):
        problems.append(f"{where}: expected an object")
        return None
    filename = raw.get("filename")
    if (
        not isinstance(filename, str)
        or "/" in filename
        or text_problem("filename", filename, MAX_FILENAME)
    ):
        problems.append(f"{where}.filename: {filename!r} is not a file name")
        return None
    where = f"file {filename!r}"
    hashes = raw.get("hashes", {})
    if not isinstance(hashes, dict):
        problems.append(f"{where}: hashes {hashes!r} is not an object")
        hashes = {}
    sha256 = hashes.get("sha256")
    if sha256 is not None and (
        not isinstance(sha256, str) or len(sha256) != 64 or not _is_hex(sha256)
    ):
        problems.append(f"{where}: sha256 {sha256!r} is not 64 hex digits")
        sha256 = None
    size = raw.get("size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        problems.append(f"{where}: size {size!r} is not a byte count")
        size = None
    upload_time = _optional_str(raw.get("upload-time"), f"{where}.upload-time", problems)
    requires_python = _optional_str(
        raw.get("requires-python"), f"{where}.requires-python", problems
    )
    yanked_value = raw.get("yanked", False)
    if not isinstance(yanked_value, bool | str):
        problems.append(f"{where}: yanked {yanked_value!r} is neither a boolean nor a reason")
        yanked_value = False
    version = placed.get(filename) or version_from_filename(project, filename)
    if version is None:
        problems.append(f"{where}: cannot tell which release it belongs to")
        return None
    return UpstreamFile(
        filename=filename,
        version=version,
        sha256=sha256,
        size=size,
        upload_time=upload_time,
        requires_python=requires_python,
        yanked=bool(yanked_value),
        yanked_reason=yanked_value if isinstance(yanked_value, str) and yanked_value else None,
    )


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)


def _project_status(page: Mapping[str, Any], problems: list[str]) -> tuple[str, str | None]:
    """PEP 792's ``project-status`` object: its marker (``active`` when absent) and reason."""
    raw = page.get("project-status")
    if raw is None:
        return "active", None
    if not isinstance(raw, dict):
        problems.append(f"project-status: expected an object, got {raw!r:.300}")
        return "active", None
    marker = raw.get("status", "active")
    if not isinstance(marker, str):
        problems.append(f"project-status.status: expected a string, got {marker!r:.300}")
        return "active", None
    reason = _optional_str(raw.get("reason"), "project-status.reason", problems)
    if reason and len(reason) > MAX_STATUS_REASON:
        reason = reason[:MAX_STATUS_REASON]  # prose shown to people: a long one is cut, not refused
    if marker not in STATUS_MARKERS:
        return "active", None
    return marker, reason or None


def _placements(api: Mapping[str, Any] | None) -> dict[str, str]:
    """filename -> version from the JSON API's ``releases`` (tolerating its absence)."""
    placed: dict[str, str] = {}
    releases = api.get("releases") if api else None
    if isinstance(releases, dict):
        for version, release_files in releases.items():
            if isinstance(version, str) and isinstance(release_files, list):
                for entry in release_files:
                    if isinstance(entry, dict) and isinstance(entry.get("filename"), str):
                        placed[entry["filename"]] = version
    return placed


def parse_project(
    url: str,
    page: object,
    serial: int,
    api: Mapping[str, Any] | None,
) -> UpstreamProject:
    """Validate a PEP 691 page (and the JSON API page, if any) into an :class:`UpstreamProject`."""
    problems: list[str] = []
    if not isinstance(page, dict):
        raise MalformedResponse(url, "the project page is not a JSON object")
    name = page.get("name")
    if not isinstance(name, str) or text_problem("name", name, MAX_NAME):
        raise MalformedResponse(url, f"the project page's name {name!r:.300} is not a name")
    project = canonical(name)
    raw_files = page.get("files")
    if not isinstance(raw_files, list):
        raise MalformedResponse(url, "the project page has no 'files' list")
    placed = _placements(api)
    files = [
        parsed
        for index, raw in enumerate(raw_files)
        if (parsed := _parse_file(raw, index, project, placed, problems)) is not None
    ]
    raw_versions = page.get("versions")
    if raw_versions is None:  # PEP 700 is optional: fall back to what the files and API say
        versions = set(placed.values()) | {f.version for f in files}
        if api and isinstance(api.get("releases"), dict):
            versions |= {v for v in api["releases"] if isinstance(v, str)}
    elif isinstance(raw_versions, list) and all(isinstance(v, str) for v in raw_versions):
        versions = set(raw_versions) | {f.version for f in files}
    else:
        problems.append(f"versions: expected a list of strings, got {raw_versions!r}")
        versions = set()
    for version in sorted(versions):
        if problem := text_problem(f"version {version!r:.300}", version, MAX_NAME):
            problems.append(problem)
    info = api.get("info") if api else None
    info = info if isinstance(info, dict) else {}
    api_name = info.get("name")
    display_name = api_name if isinstance(api_name, str) and api_name else name
    if canonical(display_name) != project:
        problems.append(f"JSON API name {display_name!r} is not the project {project!r}")
    summary = _optional_str(info.get("summary"), "info.summary", problems)
    status, status_reason = _project_status(page, problems)
    if problems:
        raise MalformedResponse(url, "; ".join(problems))
    return UpstreamProject(
        name=project,
        display_name=display_name,
        summary=summary or None,
        serial=serial,
        versions=tuple(sort_versions(list(versions))),
        files=tuple(files),
        status=status,
        status_reason=status_reason,
    )


def _whole_number(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _serial(response: httpx.Response, page: object, api: Mapping[str, Any] | None) -> int:
    """The upstream serial a page reflects: header, then ``meta._last-serial``, then the API's."""
    meta = page.get("meta") if isinstance(page, dict) else None
    candidates = (
        response.headers.get("X-PyPI-Last-Serial"),
        meta.get("_last-serial") if isinstance(meta, dict) else None,
        api.get("last_serial") if api else None,
    )
    for candidate in candidates:
        serial = _whole_number(candidate)
        if serial is not None:
            if serial > MAX_SERIAL:
                raise MalformedResponse(str(response.url), f"serial {serial} is out of range")
            return serial
    return 0


class PageClient:
    """Fetches one project's state; ``None`` means the upstream does not have it (404).

    Safe to share between reader threads (the httpx client is): they share its connection
    pool and its :class:`SharedPause`, so a ``Retry-After`` one of them is told holds them all.
    """

    def __init__(
        self,
        simple_url: str,
        json_api_url: Callable[[str], str | None],
        client: httpx.Client,
        policy: RetryPolicy,
        pause: SharedPause | None = None,
    ) -> None:
        self._simple_url = simple_url.rstrip("/") + "/"
        self._json_api_url = json_api_url
        self._client = client
        self._policy = policy
        self.pause = pause or SharedPause()

    def page_url(self, name: NormalizedName) -> str:
        return f"{self._simple_url}{name}/"

    def _get(self, url: str, accept: str) -> tuple[httpx.Response, object] | None:
        """GET and decode a JSON page; ``None`` for 404. Undecodable bodies are retried."""

        def attempt() -> tuple[httpx.Response, object] | None:
            self.pause.wait()
            response = self._client.get(url, headers={"Accept": accept})
            if response.status_code == 404:
                return None
            try:
                raise_for_status(response)
            except TransientError as error:
                if error.retry_after:  # asked of the client, not of this one request
                    self.pause.hold(min(error.retry_after, self._policy.max_wait))
                raise
            content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
            if content_type not in (PEP691_JSON, "application/json"):
                raise MalformedResponse(url, f"expected JSON, got Content-Type {content_type!r}")
            try:
                return response, json.loads(response.content)
            except (ValueError, UnicodeDecodeError) as error:  # truncated by a proxy, often
                raise TransientError(url, f"not JSON: {error}") from error

        return self._policy.run(attempt, f"GET {url}")

    def fetch(self, name: NormalizedName) -> UpstreamProject | None:
        """Read the project's page and JSON API page; validate both."""
        url = self.page_url(name)
        got = self._get(url, PEP691_JSON)
        if got is None:
            return None
        response, page = got
        api: Mapping[str, Any] | None = None
        api_url = self._json_api_url(name)
        if api_url is not None:
            api_got = self._get(api_url, "application/json")
            if api_got is not None and isinstance(api_got[1], dict):
                api = api_got[1]
        return parse_project(url, page, _serial(response, page, api), api)
