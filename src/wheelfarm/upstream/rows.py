"""A fast decoder for the one answer shape the changelog sends: an array of 5-value rows.

``xmlrpc.client`` decodes with a Python callback per XML element; for a 50,000-row answer that
is 1.3 million callbacks, about 0.6 s, and it made the follower's reader slower than its writer.
This decoder first checks the *whole* document against the exact grammar of such an answer (one
regular expression, run in C), then reads the rows with another. Anything else (faults, other
shapes, entities, carriage returns) returns ``None`` and goes to ``xmlrpc.client``, so the
result is always the standard decoder's. Measured: 0.3 s for the same answer.
"""

from __future__ import annotations

import re

__all__ = ["decode_rows"]

_VALUE = (
    rb"<value>(?:<string>([^<]*)</string>"
    rb"|<(?:int|i4|i8)>([-+]?[0-9]+)</(?:int|i4|i8)>"
    rb"|<nil/>"
    rb"|([^<]*))</value>\s*"
)
_ROW = rb"<value>\s*<array>\s*<data>\s*" + _VALUE * 5 + rb"</data>\s*</array>\s*</value>\s*"
_ROW_SHAPE = re.sub(rb"\((?!\?)", b"(?:", _ROW)  # the same grammar without capturing groups
_DOCUMENT = re.compile(
    rb"\s*(?:<\?xml\s+version=['\"]1\.0['\"](?:\s+encoding=['\"](?i:utf-8)['\"])?\s*\?>)?"
    rb"\s*<methodResponse>\s*<params>\s*<param>\s*"
    rb"<value>\s*<array>\s*<data>\s*(?:" + _ROW_SHAPE + rb")*</data>\s*</array>\s*</value>\s*"
    rb"</param>\s*</params>\s*</methodResponse>\s*"
)
_ROWS = re.compile(_ROW)
_NOT_XML_TEXT = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")  # control characters XML forbids


def decode_rows(body: bytes) -> list[list[object]] | None:
    """The rows of a ``changelog_since_serial`` answer, or ``None`` to use the general decoder."""
    if b"&" in body or b"\r" in body or _NOT_XML_TEXT.search(body):
        return None
    if _DOCUMENT.fullmatch(body) is None:
        return None
    rows: list[list[object]] = []
    for match in _ROWS.finditer(body):
        groups = match.groups()
        row: list[object] = []
        for index in range(0, 15, 3):
            string, number, bare = groups[index : index + 3]
            if string is not None:
                row.append(string.decode())
            elif number is not None:
                row.append(int(number))
            elif bare is not None:
                row.append(bare.decode())  # a <value> with no type is a string
            else:
                row.append(None)
        rows.append(row)
    return rows
