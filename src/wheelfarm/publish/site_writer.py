"""Write the site-wide files: the simple root, home, search, packages.json, sitemap, 404, assets.

Split in two because a full regeneration writes them at two moments: the lists
(:func:`write_listings`) need only the project list and are written while the projects are,
and the home page (:func:`write_home`) needs counts known only once every project is written.
"""

from __future__ import annotations

import re
from pathlib import Path

import orjson

from wheelfarm.publish import simple, site_pages
from wheelfarm.publish.existing import entries
from wheelfarm.publish.tree import Tree
from wheelfarm.publish.values import SiteIndex
from wheelfarm.publish.write_report import WriteReport

__all__ = ["UNLISTED", "unlisted_json", "write_home", "write_listings", "write_roots", "write_site"]

UNLISTED = "unlisted.json"
"""Under the tree's root: ``{name: serial}`` of the projects published once and not listed now,
read by the mirroring API (:mod:`wheelfarm.web.mirror_api`) for its changelog's removals."""

_SITEMAP_PART = re.compile(r"sitemap-[0-9]+\.xml")


def write_site(tree: Tree, site: SiteIndex, base_url: str) -> WriteReport:
    """The site-wide files: the simple root, home, search, packages.json, sitemap, 404, assets."""
    report = write_listings(tree, site, base_url)
    report.add(write_home(tree, site))
    return report


def write_home(tree: Tree, site: SiteIndex) -> WriteReport:
    """The home page, the one site page with counts over every project."""
    return WriteReport(
        site=True, written=tree.put(tree.root / "index.html", site_pages.render_home(site))
    )


def write_roots(tree: Tree, site: SiteIndex) -> WriteReport:
    """The pages that sum up every project's state: the simple root (each project's serial)
    and the home page (the counts). The other site pages change only with the listing."""
    report = write_home(tree, site)
    report.written += tree.put(tree.simple / "index.html", simple.root_html(site))
    report.written += tree.put(tree.simple / "index.json", simple.root_json(site))
    return report


def unlisted_json(site: SiteIndex) -> bytes:
    """The projects the site no longer lists, with their serials (see :data:`UNLISTED`)."""
    return orjson.dumps(site.unlisted, option=orjson.OPT_SORT_KEYS)


def write_listings(tree: Tree, site: SiteIndex, base_url: str) -> WriteReport:
    """Every site-wide file but the home page: these need the project list, not the counts."""
    report = WriteReport(site=True)
    outputs: list[tuple[Path, bytes]] = [
        (tree.simple / "index.html", simple.root_html(site)),
        (tree.simple / "index.json", simple.root_json(site)),
        (tree.root / "search" / "index.html", site_pages.render_search_page(site)),
        (tree.root / "packages.json", site_pages.render_packages_json(site)),
        (tree.root / "404.html", site_pages.render_not_found()),
        (tree.root / UNLISTED, unlisted_json(site)),
    ]
    sitemaps = site_pages.render_sitemap(site, base_url)
    outputs.extend((tree.root / name, data) for name, data in sitemaps.items())
    assets = site_pages.static_files()
    outputs.extend((tree.static / relative, data) for relative, data in assets.items())
    for path, data in outputs:
        report.written += tree.put(path, data)
    for entry in entries(tree.root):
        if _SITEMAP_PART.fullmatch(entry) and entry not in sitemaps:
            report.removed += tree.remove(tree.root / entry)
    for entry in entries(tree.static):
        if entry.endswith(".gz") and entry[:-3] in assets:
            continue  # an asset's gzip sibling
        if not entry.startswith(".") and entry not in assets and (tree.static / entry).is_file():
            report.removed += tree.remove(tree.static / entry)
    return report
