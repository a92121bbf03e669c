"""The conditional and range header rules of :mod:`wheelfarm.web.conditional`, as tables.

Each table holds ``(input, expected)`` rows and is named by its outcome; the test beside it
states that outcome. Rows that are malformed or ignored say why in a comment. The same rules
run over HTTP, against both servers, in test_serve.py.
"""

from __future__ import annotations

import pytest

from wheelfarm.web.conditional import etag_matches, is_fresh, not_modified_since, parse_range

ETAG = b'"17f6a2c3d4e5f600-2a"'
MTIME = 1_700_000_000  # Tue, 14 Nov 2023 22:13:20 GMT
SIZE = 1000

# --- If-None-Match ------------------------------------------------------------------------------

# (If-None-Match header, the file's ETag)
ETAG_MATCHES = [
    (ETAG, ETAG),
    (b'W/"17f6a2c3d4e5f600-2a"', ETAG),  # weak comparison: W/ on the client's tag is ignored
    (ETAG, b'W/"17f6a2c3d4e5f600-2a"'),  # and on ours
    (b'"other", "17f6a2c3d4e5f600-2a"', ETAG),
    (b' "other" ,  "17f6a2c3d4e5f600-2a" ', ETAG),
    (b"*", ETAG),
    (b" * ", ETAG),
]

ETAG_DIFFERS = [
    (b'"other"', ETAG),
    (b'"other", W/"another"', ETAG),
    # Unquoted: not an entity tag at all, so it equals no tag of ours.
    (b"17f6a2c3d4e5f600-2a", ETAG),
    # Tags are compared byte for byte: case matters.
    (b'"17F6A2C3D4E5F600-2A"', ETAG),
    # An unterminated tag.
    (b'"17f6a2c3d4e5f600-2a', ETAG),
    # Empty: names no tag.
    (b"", ETAG),
    # A star in a list is not the wildcard, only a star alone is.
    (b'*, "other"', ETAG),
]


@pytest.mark.parametrize(("header", "etag"), ETAG_MATCHES)
def test_etag_matches(header: bytes, etag: bytes) -> None:
    assert etag_matches(header, etag)


@pytest.mark.parametrize(("header", "etag"), ETAG_DIFFERS)
def test_etag_differs(header: bytes, etag: bytes) -> None:
    assert not etag_matches(header, etag)


# --- If-Modified-Since --------------------------------------------------------------------------

# (If-Modified-Since header, the file's mtime in whole seconds)
NOT_MODIFIED = [
    (b"Tue, 14 Nov 2023 22:13:20 GMT", MTIME),  # the Last-Modified we sent
    (b"Tue, 14 Nov 2023 22:13:21 GMT", MTIME),
    (b"Wed, 01 Jan 2031 00:00:00 GMT", MTIME),
    (b"Tue, 14 Nov 2023 23:13:20 +0100", MTIME),  # another zone, the same instant
    (b"Tuesday, 14-Nov-23 22:13:20 GMT", MTIME),  # RFC 850's obsolete form
    (b"Tue Nov 14 22:13:20 2023 GMT", MTIME),  # asctime's form
]

MODIFIED = [
    (b"Tue, 14 Nov 2023 22:13:19 GMT", MTIME),
    (b"Thu, 01 Jan 1970 00:00:00 GMT", MTIME),
    # Empty: no date, so no condition.
    (b"", MTIME),
    # Not a date.
    (b"yesterday", MTIME),
    # Hour and minute out of range.
    (b"Tue, 14 Nov 2023 25:61:00 GMT", MTIME),
    # Bytes that are no text date (read as Latin-1, they still do not parse).
    (b"\xff\xfe\x00", MTIME),
    # An ETag sent in the wrong header.
    (ETAG, MTIME),
]


@pytest.mark.parametrize(("header", "mtime"), NOT_MODIFIED)
def test_not_modified_since(header: bytes, mtime: int) -> None:
    assert not_modified_since(header, mtime)


@pytest.mark.parametrize(("header", "mtime"), MODIFIED)
def test_modified_since(header: bytes, mtime: int) -> None:
    assert not not_modified_since(header, mtime)


# --- both: is the client's copy fresh? ----------------------------------------------------------

OLD_DATE = b"Mon, 13 Nov 2023 00:00:00 GMT"
SAME_DATE = b"Tue, 14 Nov 2023 22:13:20 GMT"

# (If-None-Match, If-Modified-Since)
FRESH = [
    (ETAG, None),
    (ETAG, OLD_DATE),  # If-None-Match, when sent, decides alone: the date is not read
    (b"*", None),
    (None, SAME_DATE),
]

STALE = [
    # No condition at all.
    (None, None),
    (b'"other"', None),
    # If-None-Match decides alone, even against a date that would have matched.
    (b'"other"', SAME_DATE),
    (None, OLD_DATE),
    # A date that does not parse is no condition.
    (None, b"not a date"),
]


@pytest.mark.parametrize(("if_none_match", "if_modified_since"), FRESH)
def test_fresh(if_none_match: bytes | None, if_modified_since: bytes | None) -> None:
    assert is_fresh(if_none_match, if_modified_since, ETAG, MTIME)


@pytest.mark.parametrize(("if_none_match", "if_modified_since"), STALE)
def test_stale(if_none_match: bytes | None, if_modified_since: bytes | None) -> None:
    assert not is_fresh(if_none_match, if_modified_since, ETAG, MTIME)


# --- Range --------------------------------------------------------------------------------------

# (Range header, file size, (first, last) to send)
ONE_SPAN = [
    (b"bytes=0-99", SIZE, (0, 99)),
    (b"bytes=0-0", SIZE, (0, 0)),
    (b"bytes=999-999", SIZE, (999, 999)),
    (b"bytes=100-", SIZE, (100, 999)),  # open-ended: to the end
    (b"bytes=900-5000", SIZE, (900, 999)),  # past the end: cut at the end
    (b"bytes=-100", SIZE, (900, 999)),  # a suffix: the last 100 bytes
    (b"bytes=-5000", SIZE, (0, 999)),  # a suffix longer than the file: all of it
    (b"BYTES=5-9", SIZE, (5, 9)),  # the unit is case-insensitive
    (b" bytes= 5-9 ", SIZE, (5, 9)),
]

# (Range header, file size): answered with the whole file, as HTTP allows
WHOLE_FILE = [
    # Another unit than bytes.
    (b"items=0-99", SIZE),
    # Several ranges: a multipart answer is not offered.
    (b"bytes=0-9,20-29", SIZE),
    (b"bytes=0-9, 20-29", SIZE),
    # No dash.
    (b"bytes=5", SIZE),
    # Neither end given.
    (b"bytes=-", SIZE),
    # Not numbers.
    (b"bytes=a-b", SIZE),
    (b"bytes=1.5-2", SIZE),
    (b"bytes=-1-2", SIZE),
    # The last byte before the first: an invalid range, ignored.
    (b"bytes=9-5", SIZE),
    # Empty.
    (b"", SIZE),
    # The unit alone.
    (b"bytes=", SIZE),
]

# (Range header, file size): 416 Range Not Satisfiable
UNSATISFIABLE = [
    # Starts at the end of the file.
    (b"bytes=1000-", SIZE),
    # Starts past it.
    (b"bytes=5000-6000", SIZE),
    # An empty suffix.
    (b"bytes=-0", SIZE),
    # A negative suffix.
    (b"bytes=--5", SIZE),
    # An empty file has no first byte.
    (b"bytes=0-", 0),
]


@pytest.mark.parametrize(("header", "size", "expected"), ONE_SPAN)
def test_one_span(header: bytes, size: int, expected: tuple[int, int]) -> None:
    assert parse_range(header, size) == expected


@pytest.mark.parametrize(("header", "size"), WHOLE_FILE)
def test_whole_file(header: bytes, size: int) -> None:
    assert parse_range(header, size) is None


@pytest.mark.parametrize(("header", "size"), UNSATISFIABLE)
def test_unsatisfiable(header: bytes, size: int) -> None:
    assert parse_range(header, size) is False
