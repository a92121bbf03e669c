"""The file cache of :mod:`wheelfarm.web.files`: what it keeps, what it drops, what it refuses.

Over HTTP these show as test_serve.py's replaced-file, large-file and symlink tests; here the
cache's budget and its entries are seen directly.
"""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import pytest

from wheelfarm.web.files import FileCache, FileEntry, content_type_of


def entry(cache: FileCache, root: Path, relative: str) -> FileEntry | None:
    full = f"{os.path.realpath(root)}/{relative}"
    return anyio.run(cache.entry, relative, full, os.stat(full), None, False)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("simple/foo/index.html", b"text/html; charset=utf-8"),
        ("files/foo/foo-1.0-py3-none-any.whl.metadata", b"text/plain; charset=utf-8"),
        ("badges/foo.SVG", b"image/svg+xml"),  # endings are case-insensitive
        ("files/foo/README", b"application/octet-stream"),  # no ending
        ("a.dir/README", b"application/octet-stream"),  # a dot in a folder is no ending
        ("archive.tar.gz", b"application/octet-stream"),  # an ending not listed
    ],
)
def test_content_type_of(path: str, expected: bytes) -> None:
    assert content_type_of(path) == expected


def test_entries_past_the_budget_drop_the_oldest(tmp_path: Path) -> None:
    for name in "abc":
        (tmp_path / f"{name}.txt").write_bytes(name.encode() * 40)
    cache = FileCache(budget=100)
    for name in "abc":
        found = entry(cache, tmp_path, f"{name}.txt")
        assert found is not None and found.body == name.encode() * 40
    assert len(cache) == 2
    assert cache.cached_bytes == 80


def test_a_changed_file_is_read_again(tmp_path: Path) -> None:
    page = tmp_path / "index.html"
    page.write_bytes(b"old")
    cache = FileCache()
    first = entry(cache, tmp_path, "index.html")
    assert entry(cache, tmp_path, "index.html") is first  # unchanged: the same entry
    replacement = tmp_path / "index.html.new"
    replacement.write_bytes(b"newer")
    replacement.replace(page)
    second = entry(cache, tmp_path, "index.html")
    assert second is not None and second.body == b"newer"
    assert first is not None and second.etag != first.etag
    assert cache.cached_bytes == len(b"newer")


def test_a_symlink_is_refused(tmp_path: Path) -> None:
    (tmp_path / "real.txt").write_bytes(b"secret")
    (tmp_path / "link.txt").symlink_to(tmp_path / "real.txt")
    cache = FileCache()
    assert entry(cache, tmp_path, "link.txt") is None
    assert len(cache) == 0
