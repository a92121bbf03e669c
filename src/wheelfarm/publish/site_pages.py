"""The pages people read: project pages, the project JSON API, badges, home, search and sitemap.

Every renderer is a pure function of the :mod:`wheelfarm.publish.values` values and returns
bytes, so the tree writer can compare bytes and skip files that did not change: identical input
gives identical bytes. Every value is treated as hostile: HTML is escaped (Jinja2 autoescape, or
:func:`~wheelfarm.publish.html.h` in the hot loops), URL path segments are percent-quoted,
and only ``http(s)`` URLs and root-relative paths are ever put in an ``href``.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any
from xml.sax.saxutils import escape as xml_escape

import orjson

from wheelfarm.farm.triage import CATEGORIES, CATEGORY_WORDS
from wheelfarm.publish.badges import render_badge
from wheelfarm.publish.html import log_url, segment, static_files, template
from wheelfarm.publish.project_page import render_project_page
from wheelfarm.publish.values import (
    BuildCell,
    ProjectIndex,
    ReleaseIndex,
    SiteIndex,
    WheelFile,
    stored_status,
    without_extension_modules,
)
from wheelfarm.targets import architecture_words, describe_target, distro_words

__all__ = [
    "API_VERSION",
    "SITEMAP_URLS",
    "project_json",
    "render_badge",
    "render_home",
    "render_not_found",
    "render_packages_json",
    "render_project_json",
    "render_project_page",
    "render_search_page",
    "render_sitemap",
    "static_files",
    "target_details",
]

API_VERSION = "1.2"
"""The project JSON API's version: a new key is a minor bump, a changed or removed one major."""

# The headline figures in the order the home page shows them, with readable labels; any other
# key of SiteIndex.counts follows, in name order, labelled from its name.
_COUNT_LABELS = {
    "projects": "projects",
    "releases": "releases",
    "wheels": "wheels",
    "built": "builds done",
    "failed": "builds failed",
    "pending": "builds waiting",
    "building": "building now",
    "skipped": "builds skipped",
}


def _dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON. orjson writes it several times faster than the standard library,
    which matters when every project's document is written again."""
    return orjson.dumps(value)


# --- the project JSON API -------------------------------------------------------------------


def _build_json(cell: BuildCell, without_extensions: bool) -> dict[str, Any]:
    status = stored_status(cell.status)
    if (
        cell.reason is None
        and cell.rebuild_reason is None
        and cell.build_number == 0
        and status != "failed"
        and log_url(cell) is None
    ):  # most cells: one shared dict per status (the documents are only ever serialised)
        return _plain_build_json(status, without_extensions)
    return _build_dict(cell, status, without_extensions)


@lru_cache(maxsize=64)
def _plain_build_json(status: str, without_extensions: bool) -> dict[str, Any]:
    """A cell with no reason, log or rebuild: the same for every such cell of a status."""
    return {
        "status": status,
        "reason": None,
        "log_url": None,
        "without_extension_modules": without_extensions,
        "build_number": 0,
        "rebuild_reason": None,
        "category": None,
    }


def _build_dict(cell: BuildCell, status: str, without_extensions: bool) -> dict[str, Any]:
    return {
        "status": status,
        "reason": cell.reason,
        "log_url": log_url(cell),
        "without_extension_modules": without_extensions,
        "build_number": cell.build_number,
        "rebuild_reason": cell.rebuild_reason,
        # why it failed (wheelfarm.farm.triage); null unless it failed
        "category": (cell.category or "unknown") if status == "failed" else None,
    }


def _sorted(values: tuple[str, ...]) -> tuple[str, ...]:
    return values if len(values) < 2 else tuple(sorted(values))


@lru_cache(maxsize=4096)
def _pip_only(requires_dist: tuple[str, ...]) -> dict[str, Any]:
    """A wheel's dependencies when it needs no system package: shared by every wheel with the
    same Requires-Dist (the loader shares their tuples), as documents are only serialised."""
    return {"pip": requires_dist, "apt": (), "unresolved": ()}


def _file_json(wheel: WheelFile, without_extensions: bool) -> dict[str, Any]:
    apt, unresolved = wheel.apt_dependencies, wheel.unresolved_libraries
    return {
        "filename": wheel.filename,
        "url": wheel.url,
        "sha256": wheel.sha256,
        "size": wheel.size,
        "target": wheel.target,
        "tags": wheel.tags,
        "requires_python": wheel.requires_python,
        "dependencies": (
            {"pip": wheel.requires_dist, "apt": _sorted(apt), "unresolved": _sorted(unresolved)}
            if apt or unresolved
            else _pip_only(wheel.requires_dist)
        ),
        "uploaded": wheel.uploaded,
        "metadata_sha256": wheel.metadata_sha256,
        "without_extension_modules": without_extensions,
    }


def _release_json(release: ReleaseIndex) -> dict[str, Any]:
    flagged = without_extension_modules(release)
    return {
        "released": release.released,
        "prerelease": release.prerelease,
        "yanked": release.yanked,
        "yanked_reason": release.yanked_reason,
        "skip": release.skip,
        "binary_only": release.binary_only,
        "requires_python": release.requires_python,
        "builds": {t: _build_json(c, t in flagged) for t, c in sorted(release.builds.items())},
        "files": [_file_json(f, f.target in flagged) for f in release.files],
    }


def target_details(target: str, distro: str | None) -> dict[str, Any]:
    """A target in words for machines and people: what the pages show beside its name."""
    platform = target.rsplit("-", 1)[-1]
    return {
        "description": describe_target(target, distro),
        "architecture": architecture_words(platform),
        "distro": distro,
        "distro_name": distro_words(distro) if distro else None,
    }


@lru_cache(maxsize=64)
def _targets_details(
    targets: tuple[str, ...], distros: tuple[str | None, ...]
) -> dict[str, dict[str, Any]]:
    """Every target's details: the same for every project of a load, so made once. The
    documents of many projects share the dict: it is only ever serialised, never changed."""
    return {t: target_details(t, d) for t, d in zip(targets, distros, strict=True)}


def project_json(project: ProjectIndex) -> dict[str, Any]:
    """The JSON API document as Python values, arrays as tuples (its schema is in
    docs/index.md)."""
    return {
        "meta": {"api_version": API_VERSION},
        "name": project.name,
        "display_name": project.display_name,
        "summary": project.summary,
        "serial": project.serial,
        "upstream_url": project.upstream_project_url,
        "targets": list(project.targets),
        "target_details": _targets_details(
            project.targets, tuple(map(project.target_distros.get, project.targets))
        ),
        "releases": {r.version: _release_json(r) for r in project.releases},
        "downloads": {
            "last_30_days": project.downloads.last_30_days,
            "total": project.downloads.total,
        },
    }


def render_project_json(project: ProjectIndex) -> bytes:
    """The JSON at ``/project/<name>/json/``: releases newest first, files by name."""
    return _dumps(project_json(project))


# --- the site-wide pages --------------------------------------------------------------------


def _figures(counts: Mapping[str, int]) -> list[tuple[str, str, str]]:
    """(key, number, label) for each headline figure, known keys first in a fixed order."""
    keys = [k for k in _COUNT_LABELS if k in counts]
    keys += sorted(k for k in counts if k not in _COUNT_LABELS)
    return [(k, f"{int(counts[k]):,}", _COUNT_LABELS.get(k, k.replace("_", " "))) for k in keys]


def _failures(counts: Mapping[str, int]) -> list[tuple[str, str, str]]:
    """(category, number, words) of failed builds, in the categories' order, none left out
    that has a count (an unknown word from the store last, as it is)."""
    known = [c for c in CATEGORIES if counts.get(c)]
    known += sorted(c for c in counts if c not in CATEGORIES and counts[c])
    return [(c, f"{int(counts[c]):,}", CATEGORY_WORDS.get(c, c)) for c in known]


def render_home(site: SiteIndex) -> bytes:
    """The home page ``/``: headline figures, the targets, a search box and how to use pip."""
    targets = [(t, describe_target(t, site.target_distros.get(t))) for t in site.targets]
    context = {
        "site": site,
        "figures": _figures(site.counts),
        "targets": targets,
        "failures": _failures(site.failures),
    }
    return template("home.html").render(context).encode()


def render_search_page(site: SiteIndex) -> bytes:
    """The page ``/search/``: the browser filters ``/packages.json`` as people type."""
    context = {"site": site, "count": f"{len(site.projects):,}"}
    return template("search.html").render(context).encode()


def render_packages_json(site: SiteIndex) -> bytes:
    """``/packages.json``: ``[[name, display_name, summary, downloads in the last 30 days,
    downloads in all], ...]`` by name, for the search and for machines."""
    return _dumps(
        [
            [p.name, p.display_name, p.summary or "", p.downloads_30d, p.downloads_total]
            for p in site.projects
        ]
    )


SITEMAP_URLS = 50_000  # the most sitemaps.org allows in one file


def render_sitemap(
    site: SiteIndex, base_url: str, *, per_file: int = SITEMAP_URLS
) -> dict[str, bytes]:
    """The sitemap files by name: ``sitemap.xml`` alone while every URL fits in one ``urlset``
    (home, search and every project page, as absolute URLs); beyond, ``sitemap.xml`` is a
    ``sitemapindex`` of ``sitemap-1.xml``, ``sitemap-2.xml``, ..."""
    base = xml_escape(base_url.rstrip("/"))
    urls = [f"{base}/", f"{base}/search/"]
    urls.extend(f"{base}/project/{xml_escape(segment(p.name))}/" for p in site.projects)
    if len(urls) <= per_file:
        return {"sitemap.xml": _urlset(urls)}
    files = {
        f"sitemap-{number}.xml": _urlset(urls[start : start + per_file])
        for number, start in enumerate(range(0, len(urls), per_file), 1)
    }
    index = [
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
    ]
    index.extend(f"<sitemap><loc>{base}/{name}</loc></sitemap>\n" for name in files)
    index.append("</sitemapindex>\n")
    return {"sitemap.xml": "".join(index).encode(), **files}


def _urlset(urls: list[str]) -> bytes:
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
    ]
    parts.extend(f"<url><loc>{url}</loc></url>\n" for url in urls)
    parts.append("</urlset>\n")
    return "".join(parts).encode()


def render_not_found() -> bytes:
    """A short 404 page that points to the search and the home page."""
    return template("not_found.html").render().encode()
