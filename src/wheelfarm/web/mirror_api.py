"""What mirroring tools ask of an index beyond the simple pages: XML-RPC and the JSON API.

bandersnatch (and tools like it) list the projects and their serials with XML-RPC on ``POST
/pypi`` (``list_packages_with_serial``, ``changelog_last_serial``, ``changelog_since_serial``),
then read ``/pypi/<name>/json`` for each project that changed, and refuse a page whose
``X-PyPI-Last-Serial`` header is older than the serial they were promised. Without these they
conclude every project was deleted.

Both are answered from files the publisher writes anyway, so the server stays free of the
store: the serials from the simple root's JSON (``simple/index.json``), a project's releases and
files from its project JSON (``project/<name>/json/index.json``), reshaped here into the
upstream JSON API's shape. Wheels are linked under ``/packages/`` (an alias of ``/files/``)
because mirrors keep only files whose path starts there.

The changelog is synthesised from the root: one ``update`` row per listed project whose serial
is above the one asked for, and one ``remove project`` row per project the site no longer lists
(deleted or quarantined: the publisher writes their serials to ``unlisted.json``).
A file removed from a listed project raises that project's serial, so its ``update`` row covers
it. bandersnatch reads only the names and serials, whatever the action: a row makes it read the
project again, which drops a removed file from the mirror's simple page; a removed project
answers 404, which ``bandersnatch mirror`` skips and ``bandersnatch verify --delete
--json-update`` takes as the order to delete the project's files (docs/serving.md).
"""

from __future__ import annotations

import xmlrpc.client
from typing import Any

import orjson

from wheelfarm.errors import WheelfarmError

__all__ = [
    "UNLISTED_FILE",
    "XmlRpcError",
    "changelog_rows",
    "json_api",
    "project_serials",
    "unlisted_serials",
    "xmlrpc_answer",
]

UNLISTED_FILE = "unlisted.json"
"""Where under the tree the publisher lists the unlisted projects' serials (the publisher's
``site_writer.UNLISTED``: the server imports nothing of the publisher, a test holds them equal)."""

_NULL_INFO_KEYS = (
    "author",
    "author_email",
    "classifiers",
    "description",
    "description_content_type",
    "download_url",
    "home_page",
    "keywords",
    "license",
    "maintainer",
    "maintainer_email",
    "platform",
    "project_urls",
    "requires_dist",
)


class XmlRpcError(WheelfarmError):
    """A call we cannot answer; sent back to the client as an XML-RPC fault, not raised on."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def project_serials(root_json: bytes) -> tuple[int, dict[str, int]]:
    """The index's serial and every listed project's (by display name) from the root's JSON."""
    root = orjson.loads(root_json)
    serials = {p["name"]: int(p.get("_last-serial") or 0) for p in root.get("projects", ())}
    return int(root.get("meta", {}).get("_last-serial") or 0), serials


def changelog_rows(
    serials: dict[str, int], since: int, timestamp: int, unlisted: dict[str, int] | None = None
) -> list[list[str | int]]:
    """``changelog_since_serial``'s rows: ``[name, version, time, action, serial]``, by serial;
    ``unlisted``: the projects removed from the listing, by name, with their serials."""
    rows: list[list[str | int]] = [
        [name, "", timestamp, "update", serial]
        for name, serial in serials.items()
        if serial > since
    ]
    rows.extend(
        [name, "", timestamp, "remove project", serial]
        for name, serial in (unlisted or {}).items()
        if serial > since
    )
    rows.sort(key=lambda row: row[4])
    return rows


def unlisted_serials(unlisted_json: bytes | None) -> dict[str, int]:
    """The publisher's list of unlisted projects (absent: none, as before the first write)."""
    if not unlisted_json:
        return {}
    found = orjson.loads(unlisted_json)
    return {str(name): int(serial) for name, serial in found.items()}


def xmlrpc_answer(
    body: bytes, root_json: bytes | None, timestamp: int, unlisted_json: bytes | None = None
) -> bytes:
    """The XML-RPC response (a result or a fault) to a call in ``body``."""
    try:
        try:
            params, method = xmlrpc.client.loads(body)
        except Exception as error:  # the parser raises ExpatError, ValueError, ...
            raise XmlRpcError(-32700, f"not an XML-RPC call: {error}") from None
        if root_json is None:
            raise XmlRpcError(-32500, "the index is not published yet")
        serial, serials = project_serials(root_json)
        result: Any
        if method == "changelog_last_serial":
            result = serial
        elif method == "list_packages_with_serial":
            result = serials
        elif method == "changelog_since_serial":
            if len(params) != 1 or not isinstance(params[0], int):
                raise XmlRpcError(-32602, "changelog_since_serial takes one integer, the serial")
            unlisted = unlisted_serials(unlisted_json)
            result = changelog_rows(serials, params[0], timestamp, unlisted)
        else:
            raise XmlRpcError(-32601, f"method {method!r} is not offered here")
    except XmlRpcError as error:
        fault = xmlrpc.client.Fault(error.code, str(error))
        return xmlrpc.client.dumps(fault, methodresponse=True).encode()
    return xmlrpc.client.dumps((result,), methodresponse=True).encode()


def _file(entry: dict[str, Any], release: dict[str, Any], base: str) -> dict[str, Any]:
    uploaded: str = entry["uploaded"]
    url: str = entry["url"]
    python_tag = entry["filename"].removesuffix(".whl").split("-")[-3]
    return {
        "comment_text": "",
        "digests": {"sha256": entry["sha256"]},
        "downloads": -1,
        "filename": entry["filename"],
        "has_sig": False,
        "packagetype": "bdist_wheel",
        "python_version": python_tag,
        "requires_python": entry.get("requires_python"),
        "size": entry["size"],
        "upload_time": uploaded.split(".")[0].removesuffix("Z"),
        "upload_time_iso_8601": uploaded,
        "url": base + "/packages/" + url.removeprefix("/files/"),
        "yanked": bool(release.get("yanked")),
        "yanked_reason": release.get("yanked_reason"),
    }


def _latest(releases: dict[str, Any]) -> str | None:
    """The version ``pip install`` would get: newest with files, neither pre-release nor yanked."""
    with_files = [v for v, r in releases.items() if r.get("files")]
    for version in with_files:
        if not releases[version].get("prerelease") and not releases[version].get("yanked"):
            return version
    return with_files[0] if with_files else next(iter(releases), None)


def json_api(
    project_json: bytes, base: str, version: str | None = None
) -> tuple[bytes, int] | None:
    """``/pypi/<name>/json`` (or ``/pypi/<name>/<version>/json``) from the project's JSON, and
    its serial; None when the version is not one of the project's."""
    project = orjson.loads(project_json)
    releases: dict[str, Any] = project.get("releases", {})
    shown = version if version is not None else _latest(releases)
    if version is not None and version not in releases:
        return None
    files = {
        v: [_file(entry, release, base) for entry in release.get("files", ())]
        for v, release in releases.items()
    }
    current = releases.get(shown or "", {})
    name = project["name"]
    info: dict[str, Any] = dict.fromkeys(_NULL_INFO_KEYS)
    info.update(
        name=project.get("display_name", name),
        version=shown,
        summary=project.get("summary"),
        requires_python=current.get("requires_python"),
        yanked=bool(current.get("yanked")),
        yanked_reason=current.get("yanked_reason"),
        package_url=f"{base}/project/{name}/",
        project_url=f"{base}/project/{name}/",
        release_url=f"{base}/project/{name}/",
        bugtrack_url=None,
        docs_url=None,
        upstream_url=project.get("upstream_url"),
    )
    serial = int(project.get("serial") or 0)
    document: dict[str, Any] = {"info": info, "last_serial": serial}
    if version is None:
        document["releases"] = files
    document["urls"] = files.get(shown or "", [])
    document["vulnerabilities"] = []
    return orjson.dumps(document), serial
