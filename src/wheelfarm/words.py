"""Counted nouns for messages: ``1 target``, ``2 targets``, ``1 file missing here``.

Every command reports counts, and "1 targets" or "gave up after 1 attempts" read as careless;
one helper used everywhere keeps the grammar right. English plurals are regular for the words
wheelfarm uses, except where the caller gives the plural (``plural(n, "yank differs",
"yanks differ")``).
"""

from __future__ import annotations

__all__ = ["plural"]


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """``count`` and the noun phrase agreeing with it; the plural adds "s" unless given."""
    word = singular if count == 1 else plural_form or f"{singular}s"
    return f"{count} {word}"
