"""Build the published values (:mod:`wheelfarm.publish.values`) from the store, many at a time.

Loading is set-based: a handful of queries per chunk of names (:mod:`wheelfarm.publish.queries`),
whatever the chunk holds, because a full regeneration reads every project; their rows are
assembled into values by :mod:`wheelfarm.publish.assemble`. Visibility follows
:mod:`wheelfarm.store.views`: only live projects are published, only visible releases carry
wheels, and a release's yank, dates and Requires-Python are the upstream's.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import NamedTuple

from sqlalchemy import Connection

from wheelfarm.farm.listings import failure_counts
from wheelfarm.farm.unserved import shown_unserved
from wheelfarm.publish.assemble import Parts
from wheelfarm.publish.download_queries import read_downloads, read_site_downloads
from wheelfarm.publish.publication import Publication, publishable_name
from wheelfarm.publish.queries import (
    Among,
    HeadRow,
    PublishedCounts,
    chunked,
    count_built,
    count_published,
    read_builds,
    read_heads,
    read_index_rows,
    read_jobs,
    read_listing,
    read_releases,
    read_site_serial,
    read_skips,
    read_unlisted,
    read_upstream_files,
    read_wheel_dependencies,
    read_wheels,
    target_distros_of,
    target_names_of,
)
from wheelfarm.publish.values import ProjectIndex, SiteIndex, SiteProject
from wheelfarm.store.views import spelled_name

__all__ = [
    "load_listing",
    "load_project",
    "load_projects",
    "load_publications",
    "load_site",
    "site_counts",
    "today_utc",
]


def today_utc(now: float | None = None) -> int:
    """Today in days since 1970-01-01 (UTC): the day the download figures end with."""
    return int((time.time() if now is None else now) // 86400)


class _Columns(NamedTuple):
    """The releases table's columns: the targets, and the distro of each that has one."""

    names: tuple[str, ...]
    distros: dict[str, str]
    today: int  # the last day of the downloads figures
    unserved: dict[str, str]  # the targets no builder serves, and what their waiting cells say


def load_publications(
    connection: Connection,
    names: Iterable[str],
    *,
    upstream_simple_url: str,
    target_names: tuple[str, ...] | None = None,
    dense: bool = False,
    today: int | None = None,
) -> dict[str, Publication]:
    """Every named project's publication (names the store does not know come back not live).

    ``dense``: the names are (nearly) every project between the first and the last, as in a
    full regeneration, so each chunk is read by a range of names rather than a list of them.
    ``today``: the last day of the download figures (None: today, UTC).
    """
    wanted = sorted(set(names))
    if target_names is None:
        target_names = target_names_of(connection)
    day = today_utc() if today is None else today
    unserved = {target.target: target.page_words() for target in shown_unserved(connection)}
    columns = _Columns(target_names, target_distros_of(connection), day, unserved)
    found: dict[str, Publication] = {}
    for chunk in chunked(wanted):
        found.update(_load_chunk(connection, chunk, upstream_simple_url, columns, dense))
    return found


def load_projects(
    connection: Connection, names: Iterable[str], *, upstream_simple_url: str
) -> dict[str, ProjectIndex]:
    """The live projects among ``names``, by name."""
    publications = load_publications(connection, names, upstream_simple_url=upstream_simple_url)
    return {name: p.project for name, p in publications.items() if p.project is not None}


def load_project(
    connection: Connection, name: str, *, upstream_simple_url: str
) -> ProjectIndex | None:
    """One project's values; None when it is not live (deleted, quarantined or unknown)."""
    return load_projects(connection, [name], upstream_simple_url=upstream_simple_url).get(name)


def _load_chunk(
    connection: Connection,
    chunk: list[str],
    upstream_simple_url: str,
    columns: _Columns,
    dense: bool,
) -> dict[str, Publication]:
    found: dict[str, Publication] = {}
    rest = chunk
    if dense:
        # A range costs the database (and SQLAlchemy) nothing per name. The database's collation
        # may order names differently from Python, so whatever the range missed is read by name.
        first, last = chunk[0], chunk[-1]
        found = _load(
            connection,
            set(chunk),
            lambda column: column.between(first, last),
            upstream_simple_url,
            columns,
        )
        rest = [name for name in chunk if name not in found]
    if rest:
        found.update(
            _load(
                connection,
                set(rest),
                lambda column: column.in_(rest),
                upstream_simple_url,
                columns,
            )
        )
    for name in rest:  # unknown to the store: nothing to publish, nothing to take down
        if name not in found:
            found[name] = Publication(name, 0, None, None, (), ())
    return found


def _load(
    connection: Connection,
    wanted: set[str],
    among: Among,
    upstream_simple_url: str,
    columns: _Columns,
) -> dict[str, Publication]:
    """The publications of the ``wanted`` names that ``among`` finds in the store."""
    heads = _heads(connection, wanted, among)
    live = {name for name, head in heads.items() if head.live and publishable_name(name)}
    parts = Parts(live, columns.today)
    if live:
        parts.add_releases(read_releases(connection, among))
        parts.add_downloads(read_downloads(connection, among, columns.today))
        parts.add_upstream_files(read_upstream_files(connection, among))
        parts.add_jobs(read_jobs(connection, among))
        parts.add_skips(read_skips(connection, among))
    # Also for projects not live: their logs and wheels are to be taken down.
    parts.add_builds(read_builds(connection, among))
    parts.add_wheels(read_wheels(connection, among), read_wheel_dependencies(connection, among))
    upstream_url = upstream_simple_url.rstrip("/")
    return {
        name: parts.publication(
            head, upstream_url, columns.names, columns.distros, columns.unserved
        )
        for name, head in heads.items()
    }


def _heads(connection: Connection, wanted: set[str], among: Among) -> dict[str, HeadRow]:
    """The wanted projects the store knows, and the names it only has publication marks for."""
    heads = {head.name: head for head in read_heads(connection, among) if head.name in wanted}
    # Names the store does not know may still have a serial (and files to take down).
    for marks in read_index_rows(connection, among):
        name = marks.name
        if name in wanted and name not in heads:
            heads[name] = HeadRow(
                name,
                None,
                None,
                None,
                None,
                False,
                None,
                marks.serial,
                marks.listed,
                marks.dirty,
                False,
            )
    return heads


def load_site(
    connection: Connection,
    *,
    published: PublishedCounts | None = None,
    with_unlisted: bool = False,
    downloads: bool = True,
) -> SiteIndex:
    """The whole index in brief: live projects (sorted by name), targets, counts.

    ``published``: what a full regeneration just published, which saves counting it again over
    every wheel in the store. ``with_unlisted``: also the projects no longer listed (what the
    listings' writer needs, and the simple root and home page do not). ``downloads``: read each
    project's downloads (for ``packages.json``; the simple root and the home page do without).
    """
    site = load_listing(connection, with_unlisted=with_unlisted, downloads=downloads)
    site.counts = site_counts(connection, site, published)
    site.failures = failure_counts(connection)
    return site


def load_listing(
    connection: Connection,
    *,
    with_unlisted: bool = True,
    today: int | None = None,
    downloads: bool = True,
) -> SiteIndex:
    """The index without its counts: what every site-wide page but the home page shows, with
    each project's downloads unless not ``downloads`` (``today``: their last day; None: today,
    UTC), and with ``with_unlisted`` the projects it no longer lists (one more pass)."""
    day = today_utc() if today is None else today
    counted_rows = read_site_downloads(connection, day) if downloads else []
    counts = {row.project: row for row in counted_rows}
    listed = []
    for row in read_listing(connection):
        if not publishable_name(row.name):
            continue
        spelling = spelled_name(
            row.name, row.registered_name, row.registered_key, row.removed_key, row.seen_name
        )
        project = SiteProject(row.name, spelling, row.summary, row.serial or 0)
        counted = counts.get(row.name)
        if counted is not None:
            project.downloads_30d, project.downloads_total = counted.last_30_days, counted.total
        listed.append(project)
    unserved = shown_unserved(connection)  # as the project pages show it
    return SiteIndex(
        serial=read_site_serial(connection),
        projects=tuple(listed),
        targets=target_names_of(connection),
        target_distros=target_distros_of(connection),
        unlisted={
            row.name: int(row.serial)
            for row in (read_unlisted(connection) if with_unlisted else ())
            if publishable_name(row.name)
        },
        unserved=tuple(target.describe_since() for target in unserved),
    )


def site_counts(
    connection: Connection, site: SiteIndex, published: PublishedCounts | None = None
) -> dict[str, int]:
    """The home page's headline figures for ``site`` (from :func:`load_listing`);
    ``published`` as for :func:`load_site`."""
    if published is None:
        published = count_published(connection)
    return {
        "projects": len(site.projects),
        "releases": int(published.releases),
        "wheels": int(published.wheels),
        "built": count_built(connection),
        "targets": len(site.targets),
    }
