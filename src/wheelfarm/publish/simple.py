"""The simple repository API pages: HTML (PEP 503) and JSON (PEP 691), at API version 1.4.

Version 1.1 adds PEP 700's ``versions``, ``size`` and ``upload-time`` to the JSON form; 1.2
PEP 708's ``tracks`` (the upstream project's simple page, as ``meta.tracks`` and a
``pypi:tracks`` meta tag); 1.3 PEP 740's ``provenance`` (``null`` for every file: we build the
wheels, no attestation is published; the HTML form then has no ``data-provenance``); 1.4
PEP 792's project status (``project-status`` with its ``reason``, and the
``pypi:project-status`` and ``pypi:project-status-reason`` meta tags): ``active``, or what the
upstream's page states (``archived``, ``deprecated``; ``quarantined`` with no files at all). Each
file links to ``/files/<project>/<filename>#sha256=...``; its METADATA is announced for PEP 658
(``data-core-metadata``, and the older ``data-dist-info-metadata`` that PEP 714 keeps for
clients that predate the rename). Our serial is ``meta._last-serial`` in JSON and an
``<!--SERIAL n-->`` comment in HTML, as the upstream's own pages carry it.

Every string from outside (names, summaries, yank reasons, Requires-Python) is escaped, and
URL segments are percent-encoded as well, so hostile input stays text.
"""

from __future__ import annotations

import re
from operator import itemgetter
from typing import Any
from urllib.parse import quote

import orjson

from wheelfarm.publish.html import h
from wheelfarm.publish.publication import Quarantine
from wheelfarm.publish.values import ProjectIndex, SiteIndex, WheelFile

__all__ = [
    "API_VERSION",
    "JSON_CONTENT_TYPE",
    "project_html",
    "project_json",
    "quarantined_html",
    "quarantined_json",
    "root_html",
    "root_json",
]

API_VERSION = "1.4"
JSON_CONTENT_TYPE = "application/vnd.pypi.simple.v1+json"


def _dump(data: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON, written by orjson (several times faster than the standard library)."""
    return orjson.dumps(data)


_PLAIN = re.compile(r"[A-Za-z0-9_.~/-]*")


def _url(path: str) -> str:
    """A root-relative URL with each segment percent-encoded (``/`` kept as the separator)."""
    return path if _PLAIN.fullmatch(path) else quote(path, safe="/")


def _href(wheel: WheelFile) -> str:
    """A wheel's URL for an ``href``: as it is when the loader found it plain."""
    return wheel.url if wheel.plain_url else h(_url(wheel.url))


def _head(title: str, serial: int, meta: str = "") -> list[str]:
    return [
        "<!DOCTYPE html>\n<html>\n<head>\n",
        f'<meta name="pypi:repository-version" content="{API_VERSION}">\n',
        meta,
        f"<title>{h(title)}</title>\n</head>\n<body>\n",
        f"<!--SERIAL {int(serial)}-->\n",
    ]


def _project_meta(status: str, reason: str | None, tracks: str) -> str:
    """PEP 792's status (and reason) and PEP 708's tracks, as the HTML form carries them."""
    said = f'<meta name="pypi:project-status-reason" content="{h(reason)}">\n' if reason else ""
    return (
        f'<meta name="pypi:project-status" content="{h(status)}">\n'
        f"{said}"
        f'<meta name="pypi:tracks" content="{h(tracks)}">\n'
    )


def _project_status(status: str, reason: str | None) -> dict[str, str]:
    """PEP 792's ``project-status`` object: the marker, and the reason when there is one."""
    return {"status": status, "reason": reason} if reason else {"status": status}


def root_html(site: SiteIndex) -> bytes:
    """The project list: one link per live project, its display name as the text."""
    parts = _head("Simple index", site.serial)
    parts.append("<h1>Simple index</h1>\n")
    parts.extend(
        f'<a href="{h(_url(f"/simple/{project.name}/"))}">{h(project.display_name)}</a><br>\n'
        for project in site.projects
    )
    parts.append("</body>\n</html>\n")
    return "".join(parts).encode()


def root_json(site: SiteIndex) -> bytes:
    return _dump(
        {
            "meta": {"api-version": API_VERSION, "_last-serial": site.serial},
            "projects": [
                {"name": project.display_name, "_last-serial": project.serial}
                for project in site.projects
            ],
        }
    )


def _yank_attribute(yanked: bool, reason: str | None) -> str:
    if not yanked:
        return ""
    return f' data-yanked="{h(reason or "")}"'


def project_html(project: ProjectIndex) -> bytes:
    """One project's files, each with its hash, Requires-Python, yank and metadata hash."""
    title = f"Links for {project.display_name}"
    meta = _project_meta(project.status, project.status_reason, project.upstream_url)
    parts = _head(title, project.serial, meta)
    parts.append(f"<h1>{h(title)}</h1>\n")
    for release in project.releases:
        yank = _yank_attribute(release.yanked, release.yanked_reason)
        for wheel in release.files:
            requires = (
                f' data-requires-python="{h(wheel.requires_python)}"'
                if wheel.requires_python
                else ""
            )
            if wheel.metadata_sha256:
                digest = h(wheel.metadata_sha256)
                metadata = (
                    f' data-core-metadata="sha256={digest}"'
                    f' data-dist-info-metadata="sha256={digest}"'
                )
            else:
                metadata = ""
            parts.append(
                f'<a href="{_href(wheel)}#sha256={h(wheel.sha256)}"{requires}{metadata}'
                f"{yank}>{h(wheel.filename)}</a><br>\n"
            )
    parts.append("</body>\n</html>\n")
    return "".join(parts).encode()


def project_json(project: ProjectIndex) -> bytes:
    """The PEP 691 project page with PEP 700's versions, sizes and upload times."""
    entries: list[dict[str, Any]] = []
    versions: list[str] = []
    for release in project.releases:
        if not release.files:
            continue
        versions.append(release.version)
        yanked: bool | str = (release.yanked_reason or True) if release.yanked else False
        for wheel in release.files:
            metadata: dict[str, str] | bool = (
                {"sha256": wheel.metadata_sha256} if wheel.metadata_sha256 else False
            )
            url = wheel.url if wheel.plain_url else _url(wheel.url)
            # One literal per shape (keys in the same order either way): a dict built key by
            # key cost a third more, for every file of every project.
            if wheel.requires_python:
                entry: dict[str, Any] = {
                    "filename": wheel.filename,
                    "url": url,
                    "hashes": {"sha256": wheel.sha256},
                    "requires-python": wheel.requires_python,
                    "core-metadata": metadata,
                    "dist-info-metadata": metadata,
                    "yanked": yanked,
                    "size": wheel.size,
                    "upload-time": wheel.uploaded,
                    "provenance": None,
                }
            else:
                entry = {
                    "filename": wheel.filename,
                    "url": url,
                    "hashes": {"sha256": wheel.sha256},
                    "core-metadata": metadata,
                    "dist-info-metadata": metadata,
                    "yanked": yanked,
                    "size": wheel.size,
                    "upload-time": wheel.uploaded,
                    "provenance": None,
                }
            entries.append(entry)
    entries.sort(key=_BY_FILENAME)
    return _dump(
        {
            "meta": {
                "api-version": API_VERSION,
                "_last-serial": project.serial,
                "tracks": [project.upstream_url],
            },
            "name": project.name,
            "project-status": _project_status(project.status, project.status_reason),
            "versions": versions[::-1],  # oldest first, as the releases are newest first
            "files": entries,
        }
    )


def quarantined_html(name: str, serial: int, quarantine: Quarantine) -> bytes:
    """A quarantined project's page (PEP 792): its status, and no files to install."""
    title = f"Links for {quarantine.display_name}"
    meta = _project_meta("quarantined", quarantine.reason, quarantine.tracks)
    parts = _head(title, serial, meta)
    parts.append(f"<h1>{h(title)}</h1>\n</body>\n</html>\n")
    return "".join(parts).encode()


def quarantined_json(name: str, serial: int, quarantine: Quarantine) -> bytes:
    """The JSON form of :func:`quarantined_html`."""
    tracks = quarantine.tracks
    return _dump(
        {
            "meta": {"api-version": API_VERSION, "_last-serial": serial, "tracks": [tracks]},
            "name": name,
            "project-status": _project_status("quarantined", quarantine.reason),
            "versions": [],
            "files": [],
        }
    )


_BY_FILENAME = itemgetter("filename")
