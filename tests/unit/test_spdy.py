"""The sandbox's SPDY/3.1 framing, against frames built by hand from the draft-3 layout."""

from __future__ import annotations

import hashlib
import struct
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

import asyncpod
from asyncpod.testing import _spdy
from asyncpod.testing._spdy import (
    Data,
    GoAway,
    Ping,
    RstStream,
    Settings,
    SpdyConnection,
    SpdyProtocolError,
    SynReply,
    SynStream,
    WindowUpdate,
)


def _control(kind: int, flags: int, payload: bytes, version: int = 3) -> bytes:
    # Control bit + 15-bit version, 16-bit type, 8-bit flags + 24-bit length.
    return struct.pack(">HHI", 0x8000 | version, kind, flags << 24 | len(payload)) + payload


def _block(pairs: list[tuple[bytes, bytes]]) -> bytes:
    # A name/value block: 32-bit count, then 32-bit lengths before each name and value.
    out = struct.pack(">I", len(pairs))
    for name, value in pairs:
        out += struct.pack(">I", len(name)) + name + struct.pack(">I", len(value)) + value
    return out


def _deflater() -> zlib._Compress:
    return zlib.compressobj(zdict=_spdy.DICTIONARY)


def _squeeze(deflater: zlib._Compress, block: bytes) -> bytes:
    return deflater.compress(block) + deflater.flush(zlib.Z_SYNC_FLUSH)


def _syn_stream(
    deflater: zlib._Compress, stream_id: int, pairs: list[tuple[bytes, bytes]]
) -> bytes:
    # Stream id, associated-to id, 3-bit priority + 5 unused bits, slot, compressed block.
    head = struct.pack(">IIBB", stream_id, 0, 0, 0)
    return _control(1, 0, head + _squeeze(deflater, _block(pairs)))


def test_the_dictionary_is_the_drafts() -> None:
    """The SPDY/3 dictionary: 1423 bytes, length-prefixed words first, the known digest."""
    assert len(_spdy.DICTIONARY) == 1423
    assert _spdy.DICTIONARY.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")
    assert _spdy.DICTIONARY.endswith(b"charset=iso-8859-1,utf-,*,enq=0.")
    digest = hashlib.sha256(_spdy.DICTIONARY).hexdigest()
    assert digest == "51d27341373f923f3cd88e1eb7162aeaa3723d7585ff2399201dc06498407f02"


def test_syn_streams_share_one_compression_context() -> None:
    """kubectl's error and data streams: the second block only inflates after the first."""
    deflater = _deflater()
    first = _syn_stream(
        deflater, 1, [(b"streamtype", b"error"), (b"port", b"80"), (b"requestid", b"0")]
    )
    second = _syn_stream(
        deflater, 3, [(b"streamtype", b"data"), (b"port", b"80"), (b"requestid", b"0")]
    )
    frames = SpdyConnection().feed(first + second)
    assert frames == [
        SynStream(1, {"streamtype": ["error"], "port": ["80"], "requestid": ["0"]}),
        SynStream(3, {"streamtype": ["data"], "port": ["80"], "requestid": ["0"]}),
    ]
    with pytest.raises(SpdyProtocolError):
        SpdyConnection().feed(second)  # a fresh context cannot read the back references


def test_syn_stream_fields_and_multiple_values() -> None:
    """Flags, associated id, priority; NUL separates the values of one name."""
    head = struct.pack(">IIBB", 5, 3, 0b101 << 5, 0)
    frame = _control(1, 0x03, head + _squeeze(_deflater(), _block([(b"Accept", b"a\x00b")])))
    (parsed,) = SpdyConnection().feed(frame)
    assert parsed == SynStream(5, {"accept": ["a", "b"]}, flags=3, associated_to=3, priority=5)


def test_data_frame() -> None:
    """No control bit: 31-bit stream id, flags and 24-bit length, then the bytes."""
    frames = SpdyConnection().feed(
        b"\x00\x00\x00\x03\x01\x00\x00\x02hi" + b"\x00\x00\x00\x05\x00\x00\x00\x00"
    )
    assert frames == [Data(3, b"hi", 1), Data(5, b"", 0)]
    assert frames[0].fin
    assert not frames[1].fin


def test_fixed_size_control_frames() -> None:
    """RST_STREAM, SETTINGS, PING, GOAWAY and WINDOW_UPDATE read as laid out in the draft."""
    raw = (
        _control(3, 0, struct.pack(">II", 7, 5))
        + _control(4, 0, struct.pack(">III", 1, 0x01000007, 65536))
        + _control(6, 0, struct.pack(">I", 9))
        + _control(7, 0, struct.pack(">II", 11, 1))
        + _control(9, 0, struct.pack(">II", 3, 1024))
    )
    assert SpdyConnection().feed(raw) == [
        RstStream(7, 5),
        Settings([(1, 7, 65536)]),
        Ping(9),
        GoAway(11, 1),
        WindowUpdate(3, 1024),
    ]


def test_encoding_is_the_hand_built_layout() -> None:
    """What the server writes is byte for byte the draft's layout."""
    conn = SpdyConnection()
    assert conn.encode(Ping(9)) == _control(6, 0, struct.pack(">I", 9))
    assert conn.encode(RstStream(7, 5)) == _control(3, 0, struct.pack(">II", 7, 5))
    assert conn.encode(GoAway(11, 1)) == _control(7, 0, struct.pack(">II", 11, 1))
    assert conn.encode(Data(3, b"hi", 1)) == b"\x00\x00\x00\x03\x01\x00\x00\x02hi"
    assert conn.encode(WindowUpdate(3, 1024)) == _control(9, 0, struct.pack(">II", 3, 1024))


def test_syn_replies_inflate_with_an_independent_zlib() -> None:
    """Two SYN_REPLY frames read back by a plain zlib stream with the dictionary."""
    conn = SpdyConnection()
    raw = [conn.encode(SynReply(1)), conn.encode(SynReply(3, {"X-Name": ["v"]}, flags=1))]
    inflater = zlib.decompressobj(zdict=_spdy.DICTIONARY)
    for frame, stream_id, flags, block in zip(
        raw, (1, 3), (0, 1), (_block([]), _block([(b"x-name", b"v")])), strict=True
    ):
        assert frame[:4] == b"\x80\x03\x00\x02"
        assert frame[4] == flags
        assert int.from_bytes(frame[5:8], "big") == len(frame) - 8
        assert int.from_bytes(frame[8:12], "big") == stream_id
        assert inflater.decompress(frame[12:]) == block


@given(st.lists(st.integers(min_value=1, max_value=200), max_size=30))
def test_any_split_gives_the_same_frames(cuts: list[int]) -> None:
    """client-go writes a frame in pieces (one WebSocket message each): any split parses."""
    peer = SpdyConnection()
    raw = b"".join(
        [
            peer.encode(SynStream(1, {"streamtype": ["error"], "port": ["80"]})),
            peer.encode(SynStream(3, {"streamtype": ["data"], "port": ["80"]})),
            peer.encode(Data(3, bytes(range(256)) * 3)),
            peer.encode(Ping(1)),
            peer.encode(Data(3, b"", 1)),
        ]
    )
    whole = SpdyConnection().feed(raw)
    conn = SpdyConnection()
    frames: list[_spdy.Frame] = []
    offset = 0
    for cut in cuts:
        frames += conn.feed(raw[offset : offset + cut])
        offset += cut
    frames += conn.feed(raw[offset:])
    assert frames == whole
    assert len(whole) == 5


def test_unknown_control_frames_are_skipped() -> None:
    """Draft 3, 2.2.1: a control frame of an unknown type is ignored (here type 10, CREDENTIAL)."""
    raw = _control(10, 0, b"\x00" * 12) + _control(6, 0, struct.pack(">I", 1))
    assert SpdyConnection().feed(raw) == [Ping(1)]


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (_control(6, 0, struct.pack(">I", 1), version=2), "version 2"),
        (_control(3, 0, b"\x00\x00\x00\x01"), "too short"),
        (_control(4, 0, struct.pack(">II", 2, 0)), "SETTINGS"),
        (_control(2, 0, struct.pack(">I", 1) + b"not zlib"), "does not inflate"),
        (
            _control(
                2, 0, struct.pack(">I", 1) + _squeeze(_deflater(), b"\x00\x00\x00\x01\x00\x00")
            ),
            "truncated",
        ),
        (
            _control(2, 0, struct.pack(">I", 1) + _squeeze(_deflater(), _block([]) + b"xx")),
            "after its 0",
        ),
        (
            _control(2, 0, struct.pack(">I", 1) + _squeeze(_deflater(), _block([(b"a", b"\xff")]))),
            "not UTF-8",
        ),
    ],
)
def test_broken_frames_raise(raw: bytes, match: str) -> None:
    """A frame that breaks the framing raises a StreamProtocolError (an AsyncpodError)."""
    with pytest.raises(SpdyProtocolError, match=match) as caught:
        SpdyConnection().feed(raw)
    assert isinstance(caught.value, asyncpod.StreamProtocolError)


def test_a_header_block_that_inflates_too_far_is_refused() -> None:
    """A small frame inflating past 64 KiB (a zlib bomb) is refused, not buffered."""
    block = _block([(b"x", b"a" * 200_000)])
    compressed = _squeeze(_deflater(), block)
    assert len(compressed) < 2000
    with pytest.raises(SpdyProtocolError, match="past 65536"):
        SpdyConnection().feed(_control(2, 0, struct.pack(">I", 1) + compressed))


def test_a_payload_larger_than_24_bits_cannot_be_encoded() -> None:
    """The length field has 24 bits: a larger data frame is refused before it is sent."""
    with pytest.raises(SpdyProtocolError, match="at most 16777215"):
        SpdyConnection().encode(Data(1, bytes(1 << 24)))
