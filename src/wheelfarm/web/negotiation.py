"""PEP 691 content negotiation for the simple pages: one URL, HTML or JSON by ``Accept``.

Kept apart from the server because docs/nginx.conf must reach the same answers: the tests
compare the two on generated headers.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["HTML", "JSON", "V1_HTML", "VARIANTS", "Variant", "negotiate"]

JSON = "application/vnd.pypi.simple.v1+json"
V1_HTML = "application/vnd.pypi.simple.v1+html"
HTML = "text/html"


class Variant(NamedTuple):
    """One offered form of a simple page."""

    aliases: tuple[str, ...]  # the media types that ask for it (PEP 691's "latest" forms too)
    filename: str  # the file in the project's folder
    content_type: bytes  # the Content-Type header it is served with


VARIANTS: dict[str, Variant] = {
    JSON: Variant((JSON, "application/vnd.pypi.simple.latest+json"), "index.json", JSON.encode()),
    V1_HTML: Variant(
        (V1_HTML, "application/vnd.pypi.simple.latest+html"), "index.html", V1_HTML.encode()
    ),
    HTML: Variant((HTML,), "index.html", b"text/html; charset=utf-8"),
}
# Ties on q are settled the same way as in docs/nginx.conf: among types named outright, JSON,
# then PEP 691's HTML, then text/html; among types reached only through a wildcard, text/html
# first (the spec's recommended default), then JSON, then PEP 691's HTML.
_PREFER_EXACT = {JSON: 3, V1_HTML: 2, HTML: 1}
_PREFER_WILDCARD = {HTML: 3, JSON: 2, V1_HTML: 1}


def _parse_accept(header: str) -> list[tuple[str, float]]:
    """The media ranges of an Accept header with their q-values; malformed entries are dropped.

    A q-value that is not a number in [0, 1] makes the entry unusable, not the whole header: the
    rest of what the client said is still worth honouring.
    """
    ranges: list[tuple[str, float]] = []
    for item in header.split(","):
        media, *params = item.split(";")
        media = media.strip().lower()
        if media.count("/") != 1:
            continue
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = -1.0
                break
        if 0.0 <= q <= 1.0:
            ranges.append((media, q))
    return ranges


def negotiate(accept: str | None) -> str | None:
    """The simple-page variant to send for an Accept header (or ``?format=``); None means 406.

    Each variant takes its q from the most specific range naming it (exact, then ``type/*``,
    then ``*/*``, as HTTP says); the highest q wins, then a type named outright beats one reached
    through a wildcard, then the preference order above. No header at all means HTML.
    """
    if accept is None or not accept.strip():
        return HTML
    ranges = _parse_accept(accept)
    best: tuple[float, int, int] | None = None
    chosen: str | None = None
    for variant, offered in VARIANTS.items():
        major = variant.split("/")[0]
        q_exact = q_major = q_any = None
        for media, q in ranges:
            if media in offered.aliases:
                q_exact = q if q_exact is None else max(q_exact, q)
            elif media == f"{major}/*":
                q_major = q if q_major is None else max(q_major, q)
            elif media == "*/*":
                q_any = q if q_any is None else max(q_any, q)
        if q_exact is not None:
            key = (q_exact, 1, _PREFER_EXACT[variant])
        elif q_major is not None:
            key = (q_major, 0, _PREFER_WILDCARD[variant])
        elif q_any is not None:
            key = (q_any, 0, _PREFER_WILDCARD[variant])
        else:
            continue
        if key[0] > 0 and (best is None or key > best):
            best, chosen = key, variant
    return chosen
