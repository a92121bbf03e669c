"""Serving the published index over HTTP: the last stage of the flow, which only reads.

The tree under ``<data_dir>/www`` is written by :mod:`wheelfarm.publish`; this package serves
it, and never imports what writes the truth (the follower, the farm, the store), so a server
can run on a machine that holds nothing but the tree. The modules, one per role, are listed in
docs/serving.md; import from them, this package itself exports nothing.
"""

from __future__ import annotations

__all__: list[str] = []
