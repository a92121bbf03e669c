"""The fast changelog decoder agrees with xmlrpc.client, or steps aside."""

from __future__ import annotations

import xmlrpc.client
from typing import Any
from xml.parsers.expat import ExpatError

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wheelfarm.upstream.rows import decode_rows

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)  # type: ignore[arg-type]
rows = st.lists(
    st.tuples(
        text,
        st.none() | text,
        st.integers(min_value=-(2**31), max_value=2**31 - 1),
        text,
        st.integers(min_value=0, max_value=2**31 - 1),
    ).map(list),
    max_size=20,
)


def encode(value: Any) -> bytes:
    return xmlrpc.client.dumps((value,), methodresponse=True, allow_none=True).encode()


def standard(body: bytes) -> object:
    """What xmlrpc.client makes of a body: its value, or the type of its error."""
    try:
        (result,), _ = xmlrpc.client.loads(body, use_builtin_types=True)
    except (ExpatError, ValueError) as error:
        return type(error)
    return result


def is_plain(value: list[list[object]]) -> bool:
    return all(
        character.isalnum() or character in " .-_"
        for row in value
        for field in row
        if isinstance(field, str)
        for character in field
    )


@given(rows)
def test_fast_decoder_equals_xmlrpc_client_or_declines(value: list[list[object]]) -> None:
    body = encode(value)
    decoded = decode_rows(body)
    assert decoded is None or decoded == standard(body)
    if is_plain(value):
        assert decoded == standard(body)  # plain rows take the fast path


@pytest.mark.parametrize(
    "body",
    [
        encode([["a", None, 1, "create"]]),  # a row of 4 values
        encode([["a", None, 1, "create", 2.5]]),  # a double where a serial goes
        encode({"faultCode": 1}),  # a struct, not rows
        xmlrpc.client.dumps(xmlrpc.client.Fault(-32500, "slow down"), methodresponse=True).encode(),
        encode([["a", None, 1, "create", 1]])[:-20],  # truncated
        encode([["a", None, 1, "create", 1]]).replace(b"</data>", b"<junk/></data>", 1),
        b"not xml at all",
        encode([["a\x01", None, 1, "create", 1]]),  # a control character XML forbids
        encode([["a", None, 1, "create", 1]]).replace(b"?>", b" encoding='latin-1'?>", 1),
    ],
)
def test_other_documents_go_to_the_general_decoder(body: bytes) -> None:
    assert decode_rows(body) is None
