"""The project page's file list: one group per release with wheels, each wheel's details.

Part of the project page (:mod:`wheelfarm.publish.project_page`), built in Python for the
same reason: the writer renders it for every project.
"""

from __future__ import annotations

from functools import lru_cache

from wheelfarm.publish.html import ascii_html, h, log_url, version_html, wheel_href
from wheelfarm.publish.values import ProjectIndex, WheelFile, without_extension_modules
from wheelfarm.targets import describe_target

__all__ = ["WITHOUT_EXTENSIONS", "WITHOUT_EXTENSIONS_TITLE", "file_groups", "human_size"]

WITHOUT_EXTENSIONS = "built without its extension modules"
"""What a build that gave only a pure wheel, where another target's gave a platform wheel, is
called on the pages (see :func:`~wheelfarm.publish.values.without_extension_modules`)."""
WITHOUT_EXTENSIONS_TITLE = (
    "another target's build of this release has compiled extension modules; this one gave a "
    "pure-Python wheel, so an optional extension failed to compile for this target"
)


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


@lru_cache(maxsize=1024)
def _file_head(target: str, distro: str | None) -> tuple[str, str]:
    """The start of a file's item and its target row: one per target, so made once."""
    words = ascii_html(describe_target(target, distro))  # its middle dots: the page stays ASCII
    target = h(target)
    return (
        f'<li class="file" data-target="{target}">\n',
        f'<div><dt>Target</dt><dd><span class="target-words">{words}</span> '
        f"<code>{target}</code></dd></div>\n",
    )


_WITHOUT_EXTENSIONS_ROW = (
    f'<div class="without-extensions"><dt>Note</dt><dd title="{h(WITHOUT_EXTENSIONS_TITLE)}">'
    f"{WITHOUT_EXTENSIONS}</dd></div>\n"
)


def _file_item(wheel: WheelFile, distro: str | None, without_extensions: bool) -> str:
    href = wheel_href(wheel)
    name = h(wheel.filename)
    link = f'<a href="{href}">{name}</a>' if href else name
    item_start, target_row = _file_head(wheel.target, distro)
    if without_extensions:
        target_row += _WITHOUT_EXTENSIONS_ROW
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
    distros = project.target_distros
    for release in project.releases:
        if not release.files:
            continue
        count = len(release.files)
        version, _, files_anchor = version_html(release.version)
        flagged = without_extension_modules(release)
        items = "".join(
            [
                _file_item(wheel, distros.get(wheel.target), wheel.target in flagged)
                for wheel in release.files
            ]
        )
        groups.append(
            f'<details class="release-files" id="{files_anchor}" '
            f'data-version="{version}"{" open" if first else ""}>\n'
            f'<summary>{version} <span class="count">({count} '
            f"file{'' if count == 1 else 's'})</span></summary>\n"
            f'<ul class="files">\n{items}</ul>\n</details>\n'
        )
        first = False
    return "".join(groups)
