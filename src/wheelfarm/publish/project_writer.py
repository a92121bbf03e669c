"""Write one project's files into the tree, or take them all down.

A live project gets its simple pages, project page, JSON API, badge, ``.metadata`` files and
build logs; only files whose bytes differ are replaced. A project that is no longer live loses
its pages, badge, logs and ``.metadata`` files, so it answers 404 everywhere; its wheels (and
those of a release that is gone) are moved to the withdrawn directory, and come back if the
project or release does. Both the incremental writer and the full regeneration call this.
"""

from __future__ import annotations

from pathlib import Path

from wheelfarm.publish import simple, site_pages
from wheelfarm.publish.blobs import Blobs
from wheelfarm.publish.existing import Existing, entries
from wheelfarm.publish.publication import Publication, publishable_name
from wheelfarm.publish.tree import Tree
from wheelfarm.publish.values import ProjectIndex
from wheelfarm.publish.write_report import WriteReport

__all__ = ["write_project"]


def _log_name(build_id: int) -> str:
    return f"{int(build_id)}.txt"


def write_project(
    tree: Tree,
    publication: Publication,
    blobs: Blobs,
    *,
    existing: Existing | None = None,
    report: WriteReport | None = None,
) -> WriteReport:
    """Bring one project's files in line with its publication (or take them all down).

    What it did is added to ``report`` (a whole chunk's, say) and returned; a new one if None.
    ``existing``: the tree's listings as a full regeneration began (None: look at the tree).
    """
    name = publication.name
    if report is None:
        report = WriteReport()
    report.projects += 1
    if not publishable_name(name):
        return report  # never a path: nothing of it was ever written
    before = report.written + report.removed
    project = publication.project
    if project is None:
        _take_down(tree, publication, report)
    else:
        _write_live(tree, project, publication, blobs, existing, report)
    if report.written + report.removed != before:
        report.changed.append(name)
    return report


def _take_down(tree: Tree, publication: Publication, report: WriteReport) -> None:
    """Everything of the project out of the tree; a quarantined project keeps simple pages that
    say so (PEP 792) and list no files."""
    name = publication.name
    simple_pages: tuple[Path, ...] = (
        tree.simple / name / "index.html",
        tree.simple / name / "index.json",
    )
    quarantine = publication.quarantine
    if quarantine is not None:
        html = simple.quarantined_html(name, publication.serial, quarantine)
        report.written += tree.put(simple_pages[0], html)
        json = simple.quarantined_json(name, publication.serial, quarantine)
        report.written += tree.put(simple_pages[1], json)
        simple_pages = ()
    for path in (
        *simple_pages,
        tree.project / name / "json" / "index.json",
        tree.project / name / "index.html",
        tree.badges / f"{name}.svg",
    ):
        report.removed += tree.remove(path)
    for directory in (tree.simple / name, tree.project / name / "json", tree.project / name):
        tree.prune(directory)
    for filename in publication.withdrawn:
        report.removed += tree.withdraw(name, filename)
    directory = tree.files / name
    for entry in entries(directory):
        if entry.endswith(".metadata"):
            report.removed += tree.remove(directory / entry)
    tree.prune(directory)
    for build_id in publication.logs:
        report.removed += tree.remove(tree.logs / _log_name(build_id))


def _write_live(
    tree: Tree,
    project: ProjectIndex,
    publication: Publication,
    blobs: Blobs,
    existing: Existing | None,
    report: WriteReport,
) -> None:
    name = project.name
    directory = f"{tree.files}/{name}"  # strings, not Paths: this runs for every project
    present = entries(directory)
    report.releases += len(project.releases)
    for filename in publication.withdrawn:
        if filename in present:
            report.removed += tree.withdraw(name, filename)
    published = project.files
    report.wheels += len(published)
    wanted_metadata = {f"{w.filename}.metadata" for w in published if w.metadata_sha256}
    for entry in present - wanted_metadata:
        if entry.endswith(".metadata"):
            report.removed += tree.remove(Path(directory, entry))
    if existing is None or name in existing.withdrawn:  # wheels may be kept to bring back
        absent_wheels = [w.filename for w in published if w.filename not in present]
        kept = entries(tree.withdrawn / name) if absent_wheels else set()
        for filename in absent_wheels:
            if filename in kept and tree.restore(name, filename):
                report.written += 1
    missing = [entry.removesuffix(".metadata") for entry in sorted(wanted_metadata - present)]
    if missing:
        for filename, data in blobs.metadata(missing).items():
            report.written += tree.put(f"{directory}/{filename}.metadata", data)
    _write_pages(tree, project, report)
    if existing is None:
        absent = [i for i in publication.logs if not (tree.logs / _log_name(i)).exists()]
    else:
        absent = [i for i in publication.logs if _log_name(i) not in existing.logs]
    # A log is written once (they are up to a MiB), and again when a re-triage rewrote it.
    to_write = sorted({*absent, *publication.stale_logs})
    if to_write:
        for build_id, text in blobs.logs(to_write).items():
            report.written += tree.put(tree.logs / _log_name(build_id), text)


def _write_pages(tree: Tree, project: ProjectIndex, report: WriteReport) -> None:
    """The project's rendered files: simple pages, project page, JSON API and badge."""
    name = project.name
    simple_dir, project_dir = f"{tree.simple}/{name}", f"{tree.project}/{name}"
    outputs = (
        (f"{simple_dir}/index.html", simple.project_html(project)),
        (f"{simple_dir}/index.json", simple.project_json(project)),
        (f"{project_dir}/index.html", site_pages.render_project_page(project)),
        (f"{project_dir}/json/index.json", site_pages.render_project_json(project)),
        (f"{tree.badges}/{name}.svg", site_pages.render_badge(project)),
    )
    for path, data in outputs:
        report.written += tree.put(path, data)
