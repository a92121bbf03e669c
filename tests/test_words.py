"""Counted nouns: the one helper every message uses for its counts."""

from __future__ import annotations

import pytest

from wheelfarm.words import plural


@pytest.mark.parametrize(
    ("count", "singular", "plural_form", "expected"),
    [
        (0, "target", None, "0 targets"),  # zero takes the plural in English
        (1, "target", None, "1 target"),
        (2, "target", None, "2 targets"),
        (1024, "build", None, "1024 builds"),
        (1, "attempt", None, "1 attempt"),  # "gave up after 1 attempt"
        (1, "file missing here", "files missing here", "1 file missing here"),
        (1024, "file missing here", "files missing here", "1024 files missing here"),
        (3, "yank differs", "yanks differ", "3 yanks differ"),
        (-1, "byte", None, "-1 bytes"),  # only exactly one is singular
    ],
)
def test_plural_agrees_with_its_count(
    count: int, singular: str, plural_form: str | None, expected: str
) -> None:
    assert plural(count, singular, plural_form) == expected
