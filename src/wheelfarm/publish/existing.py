"""What the published tree already holds: directory listings, read once where they can be.

A full regeneration checks every project's logs and withdrawn wheels; listing ``logs/`` and the
withdrawn directory once (:class:`Existing`) rather than once per project is what makes that
cheap. It also takes down projects that only the tree still has (:func:`tree_names`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from wheelfarm.publish.publication import publishable_name
from wheelfarm.publish.tree import Tree

__all__ = ["Existing", "entries", "tree_names"]


def entries(directory: Path | str) -> set[str]:
    """The names in ``directory``; none if it does not exist."""
    try:
        return set(os.listdir(directory))
    except FileNotFoundError:
        return set()


@dataclass(frozen=True)
class Existing:
    """What a full regeneration found in the tree as it began, listed once rather than once per
    project. Each project's writes touch only its own entries, so the lists stay true."""

    logs: frozenset[str]  # file names under logs/
    withdrawn: frozenset[str]  # projects with wheels kept in the withdrawn directory
    siblings: bool = False  # every page above 1 KB has its gzip sibling (tree.SIBLINGS_MARK)

    @classmethod
    def of(cls, tree: Tree) -> Existing:
        return cls(
            frozenset(entries(tree.logs)),
            frozenset(entries(tree.withdrawn)),
            tree.siblings_marked(),
        )


def tree_names(tree: Tree) -> set[str]:
    """Every project name that has something in the tree."""
    try:
        with os.scandir(tree.simple) as listing:  # the entry types come with the listing
            names = {entry.name for entry in listing if entry.is_dir(follow_symlinks=False)}
    except FileNotFoundError:
        names = set()
    names |= entries(tree.project)
    names |= {e for e in entries(tree.files) if not e.startswith(".")}
    names |= {e[: -len(".svg")] for e in entries(tree.badges) if e.endswith(".svg")}
    return {name for name in names if publishable_name(name)}
