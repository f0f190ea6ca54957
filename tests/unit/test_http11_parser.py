"""The anyio engine's sans-IO response parser: decoding gzip in bounded pieces, framing."""

from __future__ import annotations

import itertools
import zlib

import pytest
from asyncpod_transports._http11 import MAX_MEMBERS, Exchange
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncpod import ProtocolError

BODY = b"".join(b'{"type":"ADDED","object":{"n":%d}}\n' % i for i in range(400))
GZIPPED = zlib.compress(BODY, wbits=31)


def head(**headers: str) -> bytes:
    """A 200 head with ``headers`` (``_`` becomes ``-``)."""
    fields = "".join(f"{n.replace('_', '-')}: {v}\r\n" for n, v in headers.items())
    return f"HTTP/1.1 200 OK\r\n{fields}\r\n".encode()


def read_all(exchange: Exchange, wire: bytes, cuts: list[int], piece: int) -> list[bytes]:
    """Feed ``wire`` split at ``cuts``, taking at most ``piece`` decoded bytes at a time."""
    taken: list[bytes] = []
    bounds = sorted({0, len(wire), *(c % (len(wire) + 1) for c in cuts)})
    for start, end in itertools.pairwise(bounds):
        exchange.feed(wire[start:end])
        if exchange.head_complete and exchange.inflater is None and not taken:
            exchange.start_body()
        while data := exchange.take_body(piece):
            taken.append(data)
    return taken


def take_everything(exchange: Exchange) -> bytes:
    """Every decoded byte buffered in ``exchange``."""
    taken = b""
    while data := exchange.take_body():
        taken += data
    return taken


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 1 << 16), max_size=8), st.integers(1, 5000))
def test_chunking_and_piece_size_never_change_the_body(cuts: list[int], piece: int) -> None:
    """Any split of a gzip answer, any piece size: the decoded body, no piece over the size."""
    wire = head(Content_Length=str(len(GZIPPED)), Content_Encoding="gzip") + GZIPPED
    exchange = Exchange()
    exchange.start("GET")
    exchange.feed(wire[:10])
    taken = read_all(exchange, wire[10:], cuts, piece)
    assert b"".join(taken) == BODY
    assert max(map(len, taken)) <= piece
    assert exchange.drained


def test_truncated_gzip_is_a_protocol_error() -> None:
    """A gzip body whose framing ends before its compressed data does: ProtocolError."""
    cut = GZIPPED[: len(GZIPPED) // 2]
    exchange = Exchange()
    exchange.start("GET")
    exchange.feed(head(Content_Length=str(len(cut)), Content_Encoding="gzip"))
    exchange.start_body()
    exchange.feed(cut)
    with pytest.raises(ProtocolError, match="ends before"):
        take_everything(exchange)


def test_too_many_gzip_members_is_a_protocol_error() -> None:
    """Thousands of empty gzip members only burn CPU: refused past the limit."""
    members = zlib.compress(b"", wbits=31) * (MAX_MEMBERS + 1)
    exchange = Exchange()
    exchange.start("GET")
    exchange.feed(head(Content_Length=str(len(members)), Content_Encoding="gzip") + members)
    exchange.start_body()
    with pytest.raises(ProtocolError, match="gzip members"):
        exchange.take_body()


@pytest.mark.parametrize("coding", ["br", "gzip, br", "zstd"])
def test_unknown_content_encoding_is_a_protocol_error(coding: str) -> None:
    """A coding the engine cannot decode is refused, not handed on as if it were JSON."""
    exchange = Exchange()
    exchange.start("GET")
    exchange.feed(head(Content_Length="2", Content_Encoding=coding) + b"{}")
    with pytest.raises(ProtocolError, match="Content-Encoding"):
        exchange.start_body()


def test_identity_coding_is_plain() -> None:
    """``Content-Encoding: identity`` is the body as sent."""
    exchange = Exchange()
    exchange.start("GET")
    exchange.feed(head(Content_Length="2", Content_Encoding="identity") + b"{}")
    exchange.start_body()
    assert exchange.take_body() == b"{}"
    assert exchange.drained


def test_second_response_is_not_merged_into_the_first() -> None:
    """Bytes of a second response after the first: the first stands alone, keep-alive is off."""
    exchange = Exchange()
    exchange.start("GET")
    exchange.feed(head(Content_Length="0") + head(Content_Length="2") + b"{}")
    assert exchange.complete
    assert dict(exchange.headers()) == {"Content-Length": "0"}
    assert exchange.take_body() == b""
    assert not exchange.keep_alive
