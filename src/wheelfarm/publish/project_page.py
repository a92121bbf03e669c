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
from wheelfarm.publish.badges import install_release
from wheelfarm.publish.html import (
    external_href,
    h,
    local_href,
    log_url,
    segment,
    shell_word,
    shorten,
    template,
)
from wheelfarm.publish.values import (
    BuildCell,
    ProjectIndex,
    ReleaseIndex,
    WheelFile,
    stored_status,
)

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
_LABELS = {state.value: label for state, label in STATUS_LABELS.items()}  # str keys hash faster
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


def _anchor(version: str) -> str:
    return "v-" + segment(version)


def _files_anchor(version: str) -> str:
    return "files-" + segment(version)


@lru_cache(maxsize=65536)
def _version_html(version: str) -> tuple[str, str, str]:
    """A version escaped, and its row's and its files' anchors escaped: cached, as versions
    recur across projects ("1.0.0") and each is used several times on a page."""
    return h(version), h(_anchor(version)), h(_files_anchor(version))


def human_size(size: int) -> str:
    """A file size for people: 950 B, 12.3 kB, 4.5 MB (powers of 1000, like pip shows)."""
    if size < 1000:
        return f"{int(size)} B"
    value = size / 1000
    if value < 999.95:  # most wheels: said at once
        return f"{value:.1f} kB"
    value *= 1000
    for unit in ("kB", "MB", "GB"):
        value /= 1000
        if value < 999.95:
            return f"{value:.1f} {unit}"
    return f"{value / 1000:.1f} TB"


# --- the releases table ---------------------------------------------------------------------


def _status_cell(cell: BuildCell | None, wheel: WheelFile | None, target_html: str) -> str:
    """One ``<td>``: status word (linked to the wheel or the log), reason, reason as title."""
    if cell is None:
        return _NO_JOB.format(t=target_html)
    if isinstance(cell.status, JobState):
        status = stored_status(cell.status)  # the word the page shows, and its CSS class
        label = _LABELS[status]
    else:  # an attempt's outcome the queue has no state for (deferred, cancelled)
        status, label = "unknown", h(shorten(cell.status, 20))
    reason = cell.reason
    if status == "built":
        href = local_href(wheel.url) if wheel is not None else None
        if href is not None and wheel is not None:
            title = h(shorten("download " + wheel.filename, TITLE_CHARS))
        else:
            href = log_url(cell)
            title = "build log" if href else ""
    elif status == "failed":
        href = log_url(cell)
        title = h(shorten(reason or "the build failed; the log says why", TITLE_CHARS))
    else:  # building: its log so far; skipped: the log of a last try; pending: nothing yet
        href = log_url(cell) if status != "pending" else None
        title = h(shorten(reason, TITLE_CHARS)) if reason else ""
    link = f'<a href="{h(href)}">{label}</a>' if href else f"<span>{label}</span>"
    note = (
        f' <span class="reason">{h(shorten(reason, REASON_CHARS))}</span>'
        if reason and status != "built"
        else ""
    )
    title_attribute = f' title="{title}">' if title else ">"
    return (
        f'<td class="status status-{status}" data-status="{status}" data-target="{target_html}"'
        f"{title_attribute}{link}{note}</td>\n"
    )


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
    rows = []
    for release in project.releases:
        version, anchor, files_anchor = _version_html(release.version)
        yanked = ' class="yanked"' if release.yanked else ""
        released = release.released
        released_cell = (
            f'<td class="released"><time datetime="{h(released)}">{h(released[:10])}</time></td>\n'
            if released
            else '<td class="released"></td>\n'
        )
        builds = release.builds
        wheels: dict[str, WheelFile] = {}
        for wheel in release.files:
            wheels.setdefault(wheel.target, wheel)  # the first, in file name order
        cells = "".join(
            _status_cell(builds.get(target), wheels.get(target), target_html)
            for target, target_html in targets
        )
        rows.append(
            f'<tr id="{anchor}" data-version="{version}"{yanked}>\n'
            f"{_version_cell(release, version, files_anchor)}{released_cell}{cells}</tr>\n"
        )
    return "".join(rows)


# --- the file list --------------------------------------------------------------------------


@lru_cache(maxsize=1024)
def _file_head(target: str) -> tuple[str, str]:
    """The start of a file's item and its target row: one per target, so made once."""
    target = h(target)
    return (
        f'<li class="file" data-target="{target}">\n',
        f"<div><dt>Target</dt><dd><code>{target}</code></dd></div>\n",
    )


def _file_item(wheel: WheelFile) -> str:
    href = local_href(wheel.url)
    name = h(wheel.filename)
    link = f'<a href="{h(href)}">{name}</a>' if href else name
    item_start, target_row = _file_head(wheel.target)
    apt = wheel.apt_dependencies
    packages = f'<code class="apt">{h(" ".join(sorted(apt)))}</code>' if apt else "none"
    unresolved = (
        "<div><dt>Libraries no package was found for</dt>"
        f'<dd><code class="unresolved">{h(" ".join(sorted(wheel.unresolved_libraries)))}'
        "</code></dd></div>\n"
        if wheel.unresolved_libraries
        else ""
    )
    uploaded = wheel.uploaded
    return (
        f'{item_start}<p class="filename">{link}</p>\n<dl class="file-details">\n{target_row}'
        f"<div><dt>Size</dt><dd>{human_size(wheel.size)}</dd></div>\n"
        f'<div class="sha256"><dt>SHA256</dt><dd><code class="hash">{h(wheel.sha256)}'
        "</code></dd></div>\n"
        f"<div><dt>Requires-Python</dt><dd>{h(wheel.requires_python or 'any')}</dd></div>\n"
        f"<div><dt>System packages</dt><dd>{packages}</dd></div>\n{unresolved}"
        f'<div><dt>Uploaded</dt><dd><time datetime="{h(uploaded)}">'
        f"{h(uploaded[:16].replace('T', ' '))}</time></dd></div>\n"
        f"<div><dt>Build</dt><dd>{_build_log(wheel)}</dd></div>\n"
        "</dl>\n</li>\n"
    )


def _build_log(wheel: WheelFile) -> str:
    href = log_url(wheel)
    return f'<a href="{href}">log</a>' if href else "no log kept"


def file_groups(project: ProjectIndex) -> str:
    """One ``<details>`` per release with wheels, the newest open, listing each wheel."""
    groups = []
    first = True
    for release in project.releases:
        if not release.files:
            continue
        count = len(release.files)
        version, _, files_anchor = _version_html(release.version)
        items = "".join([_file_item(wheel) for wheel in release.files])
        groups.append(
            f'<details class="release-files" id="{files_anchor}" '
            f'data-version="{version}"{" open" if first else ""}>\n'
            f'<summary>{version} <span class="count">({count} '
            f"file{'' if count == 1 else 's'})</span></summary>\n"
            f'<ul class="files">\n{items}</ul>\n</details>\n'
        )
        first = False
    return "".join(groups)


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
        f'<p>The newest {which} is <a href="#{h(_anchor(release.version))}">'
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
    parts.extend(
        f'<th scope="col" data-target="{h(t)}"><code>{h(t)}</code></th>\n' for t in project.targets
    )
    parts.append("</tr>\n</thead>\n<tbody>\n")
    parts.append(releases_rows(project))
    parts.append(f'</tbody>\n</table>\n</div>\n<p class="legend">{_LEGEND}</p>\n</section>\n')
    return "".join(parts)


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
        "</header>\n",
        _install_section(project),
        _releases_section(project),
        (
            '<section class="files-section" aria-labelledby="files-heading">\n'
            f'<h2 id="files-heading">Files</h2>\n{files}</section>\n'
            if files
            else ""
        ),
        _links_section(project, name),
        "</article>\n</main>\n",
        site_footer,
        "</body>\n</html>\n",
    ]
    return "".join(parts).encode()
