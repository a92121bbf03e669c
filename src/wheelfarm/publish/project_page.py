"""The project page, ``/project/<name>/``: what people read before they install a project.

The writer renders this page for every project, thousands a second, so it is built here in
Python rather than from a template: a Jinja2 render costs several microseconds before its first
byte and about one per value, which would make this page most of the writer's time. Every value
goes through :func:`~wheelfarm.publish.html.h` (the same escaping as Jinja2's autoescape) and
every path segment through :func:`~wheelfarm.publish.html.segment`; the parts all pages share
come from ``templates/chrome.html``, rendered once per process.
"""

from __future__ import annotations

from functools import cache, lru_cache

from wheelfarm.farm.jobs import JobState
from wheelfarm.farm.triage import CATEGORY_WORDS
from wheelfarm.names import build_number
from wheelfarm.publish.badges import install_release
from wheelfarm.publish.downloads_section import downloads_section
from wheelfarm.publish.file_list import WITHOUT_EXTENSIONS, WITHOUT_EXTENSIONS_TITLE, file_groups
from wheelfarm.publish.html import (
    ascii_html,
    external_href,
    h,
    log_url,
    release_anchor,
    segment,
    shell_word,
    shorten,
    template,
    version_html,
    wheel_href,
)
from wheelfarm.publish.values import (
    BuildCell,
    ProjectIndex,
    ReleaseIndex,
    WheelFile,
    without_extension_modules,
)
from wheelfarm.targets import describe_target

__all__ = ["REASON_CHARS", "STATUS_LABELS", "install_commands", "render_project_page"]

REASON_CHARS = 80
"""How much of a failure or skip reason a table cell shows; its title holds up to TITLE_CHARS."""
TITLE_CHARS = 1000

# What a status cell says: a symbol and a word, so that colour is never the only clue.
STATUS_LABELS = {
    JobState.BUILT: "&#x2713; built",
    JobState.FAILED: "&#x2717; failed",
    JobState.PENDING: "&#x25cb; pending",
    JobState.BUILDING: "&#x25d4; building",
    JobState.SKIPPED: "&#x2013; skipped",
}
# A queue state's word (its CSS class) and label in one look-up: every cell of every project.
_WORDS: dict[JobState | str, tuple[str, str]] = {
    state: (state.value, label) for state, label in STATUS_LABELS.items()
}
_LEGEND = " &#xb7; ".join(
    [
        f"{STATUS_LABELS[JobState.BUILT]} (the link gives the wheel)",
        f"{STATUS_LABELS[JobState.FAILED]} (the link gives the build log)",
        STATUS_LABELS[JobState.PENDING],
        STATUS_LABELS[JobState.BUILDING],
        STATUS_LABELS[JobState.SKIPPED],
        "&#x2014; no build for that target",
    ]
)
_NO_JOB = (
    '<td class="status status-none" data-status="none" data-target="{t}" '
    'title="no build for this target"><span>&#x2014;</span></td>\n'
)


# --- the releases table ---------------------------------------------------------------------


def failure_category(cell: BuildCell) -> str:
    """A failed cell's category as a tag, its meaning as the tag's title ("" when untriaged).

    The category is a word of :data:`~wheelfarm.farm.triage.CATEGORIES`, but it comes from the
    store: it is escaped like every other value.
    """
    category = cell.category
    if not category:
        return ""
    words = CATEGORY_WORDS.get(category, category)
    return f' <span class="category category-{h(category)}" title="{h(words)}">{h(category)}</span>'


_WITHOUT_EXTENSIONS_NOTE = (
    f' <span class="note without-extensions" title="{h(WITHOUT_EXTENSIONS_TITLE)}">'
    f"{WITHOUT_EXTENSIONS}</span>"
)


def _status_cell(
    cell: BuildCell | None,
    wheel: WheelFile | None,
    target_html: str,
    without_extensions: bool = False,
    unserved: str | None = None,
) -> str:
    """One ``<td>``: status word (linked to the wheel or the log), reason, reason as title;
    for a build that gave only a pure wheel where another target's gave a platform wheel,
    that it was built without its extension modules; for a build waiting on a target no builder
    serves, that (``unserved``: the words)."""
    if cell is None:
        return _NO_JOB.format(t=target_html)
    words = _WORDS.get(cell.status)
    if words is not None:
        status, label = words  # the word the page shows, and its CSS class
    else:  # an attempt's outcome the queue has no state for (deferred, cancelled)
        status, label = "unknown", h(shorten(str(cell.status), 20))
    reason = cell.reason
    if status == "built":
        category = ""
        href = wheel_href(wheel) if wheel is not None else None  # escaped
        if href is not None and wheel is not None:
            title = "download " + wheel.filename
            if not wheel.plain_url or len(title) > TITLE_CHARS:  # plain: printable, no spaces
                title = h(shorten(title, TITLE_CHARS))
        else:
            href = h(log_url(cell) or "")
            title = "build log" if href else ""
    elif status == "failed":
        href = h(log_url(cell) or "")
        title = h(shorten(reason or "the build failed; the log says why", TITLE_CHARS))
        category = failure_category(cell)
    else:  # building: its log so far; skipped: the log of a last try; pending: nothing yet
        category = ""
        href = h(log_url(cell) or "") if status != "pending" else None
        if status == "pending" and unserved:
            reason = f"{reason}; {unserved}" if reason else unserved
        title = h(shorten(reason, TITLE_CHARS)) if reason else ""
    link = f'<a href="{href}">{label}</a>' if href else f"<span>{label}</span>"
    link += category
    note = (
        f' <span class="reason">{h(shorten(reason, REASON_CHARS))}</span>'
        if reason and status != "built"
        else ""
    )
    title_attribute = f' title="{title}">' if title else ">"
    if cell.build_number:
        note += _rebuild_note(cell)
    flag = ' data-unserved="true"' if unserved and status == "pending" else ""
    if without_extensions and status == "built":
        flag = ' data-without-extensions="true"'
        note += _WITHOUT_EXTENSIONS_NOTE
    return (
        f'<td class="status status-{status}" data-status="{status}" data-target="{target_html}"'
        f"{flag}{title_attribute}{link}{note}</td>\n"
    )


def _rebuild_note(cell: BuildCell) -> str:
    """Which build of the release this is, and why an operator rebuilt it: users comparing a
    lock file's wheel with the page see why there are two files (docs/farm.md, Rebuilds)."""
    reason = cell.rebuild_reason
    why = f": {h(shorten(reason, REASON_CHARS))}" if reason else ""
    title = f' title="{h(shorten(reason, TITLE_CHARS))}"' if reason else ""
    return f' <span class="note rebuild"{title}>build {cell.build_number}{why}</span>'


_PRE_BADGE = (
    ' <span class="badge badge-pre" title="a pre-release: pip installs it only when'
    ' asked with --pre or for this version">pre-release</span>'
)
_BINARY_BADGE = (
    ' <span class="badge badge-binary" title="no source distribution upstream,'
    ' so it is not built here">binary only</span>'
)


def _version_cell(release: ReleaseIndex, version: str, files_anchor: str) -> str:
    """The row's header cell; ``version`` and its files' anchor come escaped."""
    number = f'<a href="#{files_anchor}">{version}</a>' if release.files else version
    badges = _PRE_BADGE if release.prerelease else ""
    if release.yanked:
        if release.yanked_reason:
            reason = h(release.yanked_reason)
            badges += (
                f' <span class="badge badge-yanked" title="{reason}">yanked</span>'
                f' <span class="note yanked-reason">{reason}</span>'
            )
        else:
            badges += ' <span class="badge badge-yanked">yanked</span>'
    if release.binary_only:
        badges += _BINARY_BADGE
    if release.skip:
        skip = h(release.skip)
        badges += (
            f' <span class="badge badge-skip" title="{skip}">not built</span>'
            f' <span class="note skip-reason">{skip}</span>'
        )
    return (
        f'<th scope="row" class="version"><span class="version-number">{number}</span>'
        f"{badges}</th>\n"
    )


def releases_rows(project: ProjectIndex) -> str:
    """The ``<tr>`` rows of the releases table, one per release, one cell per target."""
    targets = [(t, h(t)) for t in project.targets]
    unserved = project.unserved
    rows = []
    for release in project.releases:
        version, anchor, files_anchor = version_html(release.version)
        yanked = ' class="yanked"' if release.yanked else ""
        released = release.released
        released_cell = (
            f'<td class="released"><time datetime="{h(released)}">{h(released[:10])}</time></td>\n'
            if released
            else '<td class="released"></td>\n'
        )
        builds = release.builds
        wheels: dict[str, WheelFile] = {}
        for wheel in release.files:  # per target, the highest build number: what pip takes
            known = wheels.get(wheel.target)
            if known is None or build_number(wheel.filename) > build_number(known.filename):
                wheels[wheel.target] = wheel
        flagged = without_extension_modules(release)
        cells = "".join(
            [
                _status_cell(
                    builds.get(target),
                    wheels.get(target),
                    target_html,
                    target in flagged,
                    unserved.get(target) if unserved else None,
                )
                for target, target_html in targets
            ]
        )
        rows.append(
            f'<tr id="{anchor}" data-version="{version}"{yanked}>\n'
            f"{_version_cell(release, version, files_anchor)}{released_cell}{cells}</tr>\n"
        )
    return "".join(rows)


# --- install commands and the page ----------------------------------------------------------


def _apt_lines(release: ReleaseIndex) -> list[tuple[str, str]]:
    """The ``apt install`` lines of a release: [("", line)] when every target needs the same
    packages, else one (target, line) per target that needs any; [] when none needs any."""
    per_target: dict[str, set[str]] = {}
    for wheel in release.files:
        per_target.setdefault(wheel.target, set()).update(wheel.apt_dependencies)
    needs = {t: sorted(p) for t, p in sorted(per_target.items()) if p}
    if not needs:
        return []

    def line(packages: list[str]) -> str:
        return "sudo apt install " + " ".join(shell_word(p) for p in packages)

    distinct = {tuple(p) for p in needs.values()}
    if len(distinct) == 1 and len(needs) == len(per_target):
        return [("", line(next(iter(needs.values()))))]
    return [(target, line(packages)) for target, packages in needs.items()]


def install_commands(project: ProjectIndex) -> list[tuple[str, str]]:
    """The install commands as (kind, text) lines: comment, apt (per target when they differ)
    and pip, for the release ``pip install`` gets."""
    release = install_release(project)
    commands = []
    if release is not None:
        for target, line in _apt_lines(release):
            if target:
                commands.append(("comment", f"# on {target}"))
            commands.append(("apt", line))
    pip = "pip3 install --pre " if release is not None and release.prerelease else "pip3 install "
    commands.append(("pip", pip + shell_word(project.display_name or project.name)))
    return commands


def _install_section(project: ProjectIndex) -> str:
    release = install_release(project)
    parts = [
        '<section class="install" aria-labelledby="install-heading">\n'
        '<h2 id="install-heading">Install</h2>\n'
    ]
    if release is None:
        parts.append("<p>There is no release to install.</p>\n</section>\n")
        return "".join(parts)
    which = "release (a pre-release)" if release.prerelease else "stable release"
    needs_apt = any(w.apt_dependencies for w in release.files)
    parts.append(
        f'<p>The newest {which} is <a href="#{h(release_anchor(release.version))}">'
        f"{h(release.version)}</a>. "
        + ("Its wheels need some system packages first. " if needs_apt else "")
        + 'With this index <a href="/#pip">set up for pip</a>:</p>\n'
        '<pre class="command" id="install-commands"><code data-copy>'
    )
    parts.append(
        "\n".join(
            f'<span class="{kind}-line">{h(line)}</span>'
            for kind, line in install_commands(project)
        )
    )
    parts.append("</code></pre>\n</section>\n")
    return "".join(parts)


def _releases_section(project: ProjectIndex) -> str:
    parts = [
        '<section class="releases-section" aria-labelledby="releases-heading">\n'
        '<h2 id="releases-heading">Releases</h2>\n'
    ]
    if not project.releases:
        parts.append("<p>No releases yet.</p>\n</section>\n")
        return "".join(parts)
    parts.append(
        '<div class="table-wrap">\n<table class="releases">\n<thead>\n'
        '<tr><th scope="col">Version</th><th scope="col">Released</th>\n'
    )
    distros = project.target_distros
    parts.append(_target_headers(project.targets, tuple(map(distros.get, project.targets))))
    parts.append("</tr>\n</thead>\n<tbody>\n")
    parts.append(releases_rows(project))
    parts.append(f'</tbody>\n</table>\n</div>\n<p class="legend">{_LEGEND}</p>\n</section>\n')
    return "".join(parts)


@lru_cache(maxsize=64)
def _target_headers(targets: tuple[str, ...], distros: tuple[str | None, ...]) -> str:
    """The table's column headers, a target and its words each: every project of a load has
    the same targets, so they are made once (parsing a target into words is not free)."""
    return "".join(
        f'<th scope="col" data-target="{h(t)}"><span class="target-words">'
        f"{ascii_html(describe_target(t, distro))}</span> <code>{h(t)}</code></th>\n"
        for t, distro in zip(targets, distros, strict=True)
    )


def _links_section(project: ProjectIndex, name: str) -> str:
    upstream = external_href(project.upstream_project_url)
    path = f"/project/{name}/"
    badge = f"/badges/{name}.svg"
    upstream_item = (
        f'<li><a class="upstream" href="{h(upstream)}" rel="nofollow">'
        "The project on the upstream index</a></li>\n"
        if upstream
        else ""
    )
    return (
        '<section class="links" aria-labelledby="links-heading">\n'
        '<h2 id="links-heading">Links</h2>\n<ul class="link-list">\n'
        f"{upstream_item}"
        f'<li><a class="simple" href="{path_html(f"/simple/{name}/")}">Simple index page</a>'
        " (what pip reads)</li>\n"
        f'<li><a class="json" href="{path_html(path)}json/">JSON API</a></li>\n</ul>\n'
        "<h3>Badge</h3>\n"
        f'<p><img class="badge-image" src="{path_html(badge)}" '
        f'alt="wheelfarm badge of {h(project.display_name)}" height="20"></p>\n'
        "<p>To show it in a README, copy this Markdown:</p>\n"
        '<pre class="command"><code id="badge-markdown" data-copy>'
        f'[![wheelfarm](<span class="origin"></span>{path_html(badge)})]'
        f'(<span class="origin"></span>{path_html(path)})</code></pre>\n</section>\n'
    )


# PEP 792's markers as people read them; "active" says nothing.
_STATUS_NOTICES = {
    "archived": "Archived: the project expects no more releases.",
    "deprecated": "Deprecated: the project is obsolete, perhaps superseded by another.",
}


def _status_notice(project: ProjectIndex) -> str:
    """The upstream's status marker (PEP 792), when it is one people should heed."""
    notice = _STATUS_NOTICES.get(project.status)
    if notice is None:
        return ""
    reason = f" {h(project.status_reason)}" if project.status_reason else ""
    return (
        f'<p class="status-notice" role="note" data-project-status="{h(project.status)}">'
        f"<strong>{notice}</strong>{reason}</p>\n"
    )


def path_html(path: str) -> str:
    """A path built from quoted segments, escaped for HTML all the same."""
    return h(path)


@cache
def _chrome() -> tuple[str, str, str]:
    """The parts every page shares (templates/chrome.html), rendered once per process."""
    module = template("chrome.html").module
    head_links, site_header, site_footer = (
        str(getattr(module, macro)()) for macro in ("head_links", "site_header", "site_footer")
    )
    return head_links, site_header, site_footer


def render_project_page(project: ProjectIndex) -> bytes:
    """The HTML page at ``/project/<name>/``: what people read before installing."""
    head_links, site_header, site_footer = _chrome()
    name = segment(project.name)
    display = h(project.display_name)
    summary = h(project.summary) if project.summary else ""
    files = file_groups(project)
    parts = [
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{display} &#xb7; wheelfarm</title>\n",
        f'<meta name="description" content="{summary}">\n' if summary else "",
        f'<link rel="alternate" type="application/json" href="/project/{h(name)}/json/">\n',
        head_links,
        "</head>\n<body>\n",
        site_header,
        '<main id="main">\n'
        f'<article class="project" data-project="{h(project.name)}">\n'
        f'<header class="project-header">\n<h1 id="project-name">{display}</h1>\n',
        f'<p class="summary">{summary}</p>\n' if summary else "",
        _status_notice(project),
        "</header>\n",
        _install_section(project),
        _releases_section(project),
        (
            '<section class="files-section" aria-labelledby="files-heading">\n'
            f'<h2 id="files-heading">Files</h2>\n{files}</section>\n'
            if files
            else ""
        ),
        downloads_section(project),
        _links_section(project, name),
        "</article>\n</main>\n",
        site_footer,
        "</body>\n</html>\n",
    ]
    return "".join(parts).encode()
