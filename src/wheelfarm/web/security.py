"""The security headers on every response of the built-in server (docs/nginx.conf sets the same).

- ``X-Content-Type-Options: nosniff``: a browser takes a file for what its type says, so an
  uploaded wheel or a build log is never run as a script or page.
- ``Referrer-Policy: no-referrer``: following a link out of the index (a project's home page,
  the upstream) tells nobody which page it was on.
- ``Content-Security-Policy``: the pages load only the index's own script, style sheet and
  images (they have no inline script or style), may not be framed, and post forms only here.
  The builder API's ``/docs`` page (Swagger UI, :mod:`wheelfarm.farm.api_docs`) loads its
  assets from here too and starts from a served script, so its policy differs only in what
  Swagger UI needs beyond the pages': images from ``data:`` URLs (its icons) and connections
  here (it reads ``/openapi.json``); no other origin, no inline script.
"""

from __future__ import annotations

__all__ = [
    "API_POLICY",
    "BROWSER_PATHS",
    "DOCS_PATHS",
    "DOCS_POLICY",
    "SITE_POLICY",
    "security_headers",
]

SITE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; manifest-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
"""The published pages: everything from here, no inline code, no framing."""

API_POLICY = "default-src 'none'; frame-ancestors 'none'"
"""The builder API answers JSON: nothing in it is ever to be loaded or run by a browser."""

DOCS_PATHS = ("/docs",)

#: Pages the builder API's app serves to people in browsers (the monitor's dashboard and the
#: public status): they get the published pages' policy, not the API's.
BROWSER_PATHS = ("/monitor", "/status")


DOCS_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
"""Swagger UI's page: its assets and its start script from here, no inline code."""

_COMMON = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]
_BY_POLICY = {
    policy: [*_COMMON, (b"content-security-policy", policy.encode())]
    for policy in (SITE_POLICY, API_POLICY, DOCS_POLICY)
}


def security_headers(path: str, *, api: bool) -> list[tuple[bytes, bytes]]:
    """The headers to add to the response to ``path`` (``api``: the builder API answers it)."""
    if not api:
        return _BY_POLICY[SITE_POLICY]
    if path.startswith(DOCS_PATHS):
        return _BY_POLICY[DOCS_POLICY]
    if path.startswith(BROWSER_PATHS):
        return _BY_POLICY[SITE_POLICY]
    return _BY_POLICY[API_POLICY]
