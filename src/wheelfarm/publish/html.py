"""What every page shares: the template environment, static files, escaping and safe links.

Templates are compiled once per process. The project page, which the writer renders for every
project, is built in Python with :func:`h`, which escapes exactly as Jinja2's autoescape does
(MarkupSafe's escaping, without the cost of a ``Markup`` object and a template call per value).
"""

from __future__ import annotations

import hashlib
import html
import re
import shlex
from functools import cache, lru_cache
from importlib import resources
from urllib.parse import quote

import jinja2

from wheelfarm.publish.values import BuildCell, WheelFile

try:  # MarkupSafe's C escaping, the one Jinja2 uses, without the Markup wrapper
    from markupsafe._speedups import _escape_inner as _escape
except ImportError:  # pragma: no cover - MarkupSafe without its C extension

    def _escape(s: str, /) -> str:
        return html.escape(s)


__all__ = [
    "ascii_html",
    "external_href",
    "files_anchor",
    "h",
    "local_href",
    "log_url",
    "release_anchor",
    "segment",
    "shell_word",
    "shorten",
    "static_files",
    "template",
    "version_html",
    "wheel_href",
]

STATIC_FILES = ("favicon.svg", "search.js", "site.js", "style.css")

_PLAIN_SEGMENT = re.compile(r"[A-Za-z0-9._~-]+\Z").match
_SHELL_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*\Z").match
_HTTP_URL = re.compile(r"https?://[^/\s\\]", re.IGNORECASE).match
_URL_SAFE = "/%:@!$&'()*+,;=-._~"
_PLAIN_PATH = re.compile(r"/[A-Za-z0-9/%@!+,;=._~-]*\Z").match


h = _escape
"""``h(text)``: ``text`` safe in element content and in a quoted attribute (``&<>"'`` escaped)."""


@lru_cache(maxsize=65536)
def segment(value: str) -> str:
    """One URL path segment: everything but unreserved characters is percent-quoted.

    Cached: versions and target names recur across thousands of pages."""
    return value if _PLAIN_SEGMENT(value) else quote(value, safe="")


def local_href(url: str) -> str | None:
    """A root-relative path safe for an ``href``, or None when it is anything else."""
    if _PLAIN_PATH(url) and not url.startswith("//"):
        return url
    if not url.startswith("/") or url.startswith("//") or "\\" in url:
        return None
    return quote(url, safe=_URL_SAFE)


def wheel_href(wheel: WheelFile) -> str | None:
    """A wheel's :func:`local_href`, escaped for HTML: its URL as it is when the loader found
    it plain (nearly every wheel), which saves a pattern match per use."""
    if wheel.plain_url:
        return wheel.url
    href = local_href(wheel.url)
    return h(href) if href is not None else None


def ascii_html(text: str) -> str:
    """``h(text)`` with every character beyond ASCII as a character reference (a browser
    shows the same). For text on every project page, such as the target words' middle dot:
    a page that stays ASCII is encoded with one copy, one with a middle dot took 3-4 us more
    (measured on a 17 kB project page)."""
    return h(text).encode("ascii", "xmlcharrefreplace").decode("ascii")


def external_href(url: str) -> str | None:
    """An ``http(s)`` URL safe for an ``href``, or None (no ``javascript:`` and friends)."""
    if not _HTTP_URL(url):
        return None
    return quote(url, safe=_URL_SAFE + "?#[]")


def log_url(build: BuildCell | WheelFile) -> str | None:
    """Where the log of a build (a release's latest attempt, or a wheel's) is published; None
    when there is no attempt yet or its log is not kept."""
    if build.build_id is None or not build.has_log:
        return None
    return f"/logs/{int(build.build_id)}.txt"


def shorten(text: str, limit: int) -> str:
    """``text`` on one line and at most ``limit`` characters, with an ellipsis when cut."""
    if len(text) <= limit and text.isprintable() and "  " not in text and text.strip(" ") == text:
        return text  # already tidy: a printable string's only whitespace is the space
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def shell_word(word: str) -> str:
    """A word for a command line people copy: plain when it is a plain name, else quoted."""
    return word if _SHELL_WORD(word) else shlex.quote(word)


@cache
def static_files() -> dict[str, bytes]:
    """The files served under ``/static/``: relative path to bytes (read once per process)."""
    folder = resources.files("wheelfarm.publish").joinpath("static")
    return {name: folder.joinpath(name).read_bytes() for name in STATIC_FILES}


@cache
def static_url(name: str) -> str:
    """A static file's URL with a short content hash, so a changed file gets a new URL."""
    digest = hashlib.sha256(static_files()[name]).hexdigest()[:10]
    return f"/static/{segment(name)}?v={digest}"


@cache
def _environment() -> jinja2.Environment:
    """One environment per process: templates are compiled once and kept."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("wheelfarm.publish", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
        cache_size=-1,
    )
    env.globals["static_url"] = static_url
    env.filters["segment"] = segment
    return env


@cache
def template(name: str) -> jinja2.Template:
    """A compiled template, loaded once per process."""
    return _environment().get_template(name)


def release_anchor(version: str) -> str:
    """The id of a release's row in the releases table."""
    return "v-" + segment(version)


def files_anchor(version: str) -> str:
    """The id of a release's group in the file list."""
    return "files-" + segment(version)


@lru_cache(maxsize=65536)
def version_html(version: str) -> tuple[str, str, str]:
    """A version escaped, and its row's and its files' anchors escaped: cached, as versions
    recur across projects ("1.0.0") and each is used several times on a page."""
    return h(version), h(release_anchor(version)), h(files_anchor(version))
