"""Fixtures: the shared served tree of tests/publish, brought in by name for the web tests.

The tree, its two servers (wheelfarm's and nginx in front of it) and the bare HTTP client are
defined once in tests/publish/conftest.py, beside the helpers that write the tree; importing
them here makes pytest offer them to tests/web as well.
"""

from __future__ import annotations

from tests.publish.conftest import base_url, builtin, client, nginx, tree

__all__ = ["base_url", "builtin", "client", "nginx", "tree"]
