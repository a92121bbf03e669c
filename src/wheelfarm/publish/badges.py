"""The badge at ``/badges/<name>.svg``: a flat two-part SVG a project can put in its README.

It says which Pythons the project's releases are built for here (every release with a wheel
counts), so it is drawn without a template: a few string joins, every value escaped.
"""

from __future__ import annotations

import re
from functools import lru_cache

from markupsafe import escape

from wheelfarm.farm.jobs import JobState
from wheelfarm.publish.values import ProjectIndex, ReleaseIndex

__all__ = ["badge_message", "badge_svg", "install_release", "render_badge", "text_width"]

LABEL = "wheelfarm"
GREEN = "#2e7d32"
RED = "#c62828"
GREY = "#6b6b6b"
LABEL_COLOUR = "#444"

# Approximate advance widths (pixels) of 11px Verdana/DejaVu Sans, by character class: close
# enough to size the boxes without shipping a font or measuring text.
_NARROW = frozenset("iljI.,:;!|'` ")
_SEMI = frozenset('frt()[]{}/\\-"')
_WIDE = frozenset("mwMW%@")
_WIDTHS = {"narrow": 3.6, "semi": 4.6, "wide": 10.0, "upper": 7.6, "other": 6.8}


def text_width(text: str) -> int:
    """The estimated width in pixels of ``text`` at 11px, rounded up."""
    total = 0.0
    for char in text:
        if char in _NARROW:
            total += _WIDTHS["narrow"]
        elif char in _SEMI:
            total += _WIDTHS["semi"]
        elif char in _WIDE:
            total += _WIDTHS["wide"]
        elif char.isupper():
            total += _WIDTHS["upper"]
        else:
            total += _WIDTHS["other"]
    return int(total + 0.999)


_BUILT = JobState.BUILT


def install_release(project: ProjectIndex) -> ReleaseIndex | None:
    """The release ``pip install`` gets, which the badge and install lines are about: the newest
    stable one, else (only pre-releases) the newest not yanked."""
    for release in project.releases:
        if not release.prerelease and not release.yanked:
            return release
    for release in project.releases:
        if not release.yanked:
            return release
    return None


def _python_key(tag: str) -> tuple[int, int, str]:
    match = re.fullmatch(r"[a-z]+(\d)(\d+)", tag)
    if match:
        return int(match[1]), int(match[2]), tag
    return 99, 0, tag


def badge_message(project: ProjectIndex) -> tuple[str, str]:
    """The right-hand text and its colour.

    "built for" names the Pythons of every release we built (or imported) a wheel for, not
    only the newest: a project whose latest release is not built yet still has wheels here.
    "failed" when nothing was built and every build of the release pip gets failed.
    """
    # The targets first, then their Pythons once: a regeneration draws every project's badge,
    # and most projects' releases name the same few targets over and over.
    # Plain loops: nested comprehensions cost twice as much here (2.1 vs 0.9 us, 5 releases).
    built: set[str] = set()
    add = built.add
    for release in project.releases:
        for target, cell in release.builds.items():
            if cell.status is _BUILT:
                add(target)
        for wheel in release.files:
            add(wheel.target)
    if built:
        return _built_for(frozenset(built)), GREEN
    install = install_release(project)
    statuses = [cell.status for cell in install.builds.values()] if install is not None else []
    if statuses and all(s is JobState.FAILED for s in statuses):
        return "failed", RED
    return "no builds", GREY


@lru_cache(maxsize=1024)
def _built_for(targets: frozenset[str]) -> str:
    """The text "built for cp311 cp312": the Pythons of ``targets``, made once per set."""
    pythons = {target.split("-", 1)[0] for target in targets}
    return "built for " + " ".join(sorted(pythons, key=_python_key))


_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def render_badge(project: ProjectIndex) -> bytes:
    """The SVG badge: "wheelfarm | built for cp311 cp312", grey "no builds", red "failed"."""
    return badge_svg(*badge_message(project))


@lru_cache(maxsize=1024)
def badge_svg(message: str, colour: str) -> bytes:
    """The SVG for a message; few messages recur across projects, so each is drawn once."""
    message = _NOT_XML.sub("\ufffd", message)  # characters XML cannot hold at all
    left = text_width(LABEL) + 12
    right = text_width(message) + 12
    width = left + right
    label_x = left * 5  # text is drawn at scale(.1) for sub-pixel centring
    message_x = left * 10 + right * 5
    title = escape(f"{LABEL}: {message}")
    text = escape(message)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" '
        f'role="img" aria-label="{title}">'
        f"<title>{title}</title>"
        '<linearGradient id="s" x2="0" y2="100%">'
        '<stop offset="0" stop-color="#bbb" stop-opacity=".1"/>'
        '<stop offset="1" stop-opacity=".1"/></linearGradient>'
        f'<clipPath id="r"><rect width="{width}" height="20" rx="3" fill="#fff"/></clipPath>'
        '<g clip-path="url(#r)">'
        f'<rect width="{left}" height="20" fill="{LABEL_COLOUR}"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="{colour}"/>'
        f'<rect width="{width}" height="20" fill="url(#s)"/></g>'
        '<g fill="#fff" text-anchor="middle" '
        'font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="110">'
        f'<text x="{label_x}" y="150" fill="#010101" fill-opacity=".3" transform="scale(.1)" '
        f'textLength="{(left - 12) * 10}">{LABEL}</text>'
        f'<text x="{label_x}" y="140" transform="scale(.1)" '
        f'textLength="{(left - 12) * 10}">{LABEL}</text>'
        f'<text x="{message_x}" y="150" fill="#010101" fill-opacity=".3" '
        f'transform="scale(.1)" textLength="{(right - 12) * 10}">{text}</text>'
        f'<text x="{message_x}" y="140" transform="scale(.1)" '
        f'textLength="{(right - 12) * 10}">{text}</text>'
        "</g></svg>\n"
    ).encode()
