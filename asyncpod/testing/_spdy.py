"""SPDY/3.1 framing, sans-IO: the byte stream that ``kubectl port-forward`` speaks.

kubectl 1.31+ tunnels it in the binary messages of a WebSocket (subprotocol
``SPDY/3.1+portforward.k8s.io``); older clients send it after an
``Upgrade: SPDY/3.1``. Either way the peer's writes do not follow frame
boundaries (client-go writes a frame's header and its payload separately, one
WebSocket message each), so ``SpdyConnection.feed`` takes any chunks and
returns the whole frames they complete.

Header blocks are zlib-compressed with the SPDY/3 dictionary (SPDY draft 3,
2.6.10.1), one compression context per direction for the whole connection,
each block ended by a sync flush. Only what a port-forward needs is modelled:
no flow control (client-go's spdystream has none: it ignores WINDOW_UPDATE
and SETTINGS, and so does this side), unknown control frames are skipped as
the draft asks.
"""

from __future__ import annotations

import struct
import zlib
from typing import TypeAlias

from attrs import field, frozen

from asyncpod._websocket import StreamProtocolError

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS = 1, 2, 3, 4
PING, GOAWAY, HEADERS, WINDOW_UPDATE = 6, 7, 8, 9
FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02
# RST_STREAM status codes (draft 3, 2.6.3).
PROTOCOL_ERROR, INVALID_STREAM, REFUSED_STREAM, CANCEL = 1, 2, 3, 5
GOAWAY_OK, GOAWAY_PROTOCOL_ERROR = 0, 1
MAX_LENGTH = (1 << 24) - 1  # a frame's 24-bit length field
# A port-forward stream carries three short headers; a block inflating past
# this is not one (and the bound keeps a zlib bomb out of memory).
MAX_HEADER_BLOCK = 64 * 1024

# The SPDY/3 header dictionary: length-prefixed words, then a tail of text.
_WORD_TEXT = (
    "options head post put delete trace accept accept-charset accept-encoding "
    "accept-language accept-ranges age allow authorization cache-control connection "
    "content-base content-encoding content-language content-length content-location "
    "content-md5 content-range content-type date etag expect expires from host if-match "
    "if-modified-since if-none-match if-range if-unmodified-since last-modified location "
    "max-forwards pragma proxy-authenticate proxy-authorization range referer retry-after "
    "server te trailer transfer-encoding upgrade user-agent vary via warning "
    "www-authenticate method get status"
)
_WORDS = [
    *_WORD_TEXT.split(),
    *("200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive", "origin"),
]
_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417"
    "502504505203 Non-Authoritative Information204 No Content301 Moved Permanently"
    "400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error"
    "501 Not Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct "
    "Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,"
    "image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,text/javascript,"
    "publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
DICTIONARY = (
    b"".join(struct.pack(">I", len(word)) + word.encode() for word in _WORDS) + _TAIL.encode()
)

Headers: TypeAlias = "dict[str, list[str]]"


class SpdyProtocolError(StreamProtocolError):
    """The peer broke the SPDY framing; the connection cannot go on."""


@frozen
class SynStream:
    stream_id: int
    headers: Headers
    flags: int = 0
    associated_to: int = 0
    priority: int = 0


@frozen
class SynReply:
    stream_id: int
    headers: Headers = field(factory=dict)
    flags: int = 0


@frozen
class RstStream:
    stream_id: int
    status: int


@frozen
class Settings:
    # (flags, id, value) per entry
    entries: list[tuple[int, int, int]] = field(factory=list)


@frozen
class Ping:
    ping_id: int


@frozen
class GoAway:
    last_good_stream_id: int
    status: int = 0


@frozen
class HeadersFrame:
    stream_id: int
    headers: Headers
    flags: int = 0


@frozen
class WindowUpdate:
    stream_id: int
    delta: int


@frozen
class Data:
    stream_id: int
    data: bytes
    flags: int = 0

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)


Frame: TypeAlias = (
    "SynStream | SynReply | RstStream | Settings | Ping | GoAway | HeadersFrame"
    " | WindowUpdate | Data"
)


def encode_header_block(headers: Headers) -> bytes:
    """The uncompressed name/value block: names lower-cased, values joined by NUL."""
    parts = [struct.pack(">I", len(headers))]
    for name, values in headers.items():
        key = name.lower().encode()
        value = "\x00".join(values).encode()
        parts += [struct.pack(">I", len(key)), key, struct.pack(">I", len(value)), value]
    return b"".join(parts)


def _take(block: bytes, offset: int) -> tuple[bytes, int]:
    """A length-prefixed string of a header block, and the offset after it."""
    if offset + 4 > len(block):
        msg = "truncated SPDY header block"
        raise SpdyProtocolError(msg)
    (size,) = struct.unpack_from(">I", block, offset)
    end = offset + 4 + size
    if end > len(block):
        msg = "truncated SPDY header block"
        raise SpdyProtocolError(msg)
    return block[offset + 4 : end], end


def decode_header_block(block: bytes) -> Headers:
    """The inverse of ``encode_header_block``; a short or malformed block raises."""
    headers: Headers = {}
    count_bytes = block[:4]
    if len(count_bytes) < 4:
        msg = "truncated SPDY header block"
        raise SpdyProtocolError(msg)
    (count,) = struct.unpack(">I", count_bytes)
    offset = 4
    for _ in range(count):
        name, offset = _take(block, offset)
        value, offset = _take(block, offset)
        try:
            key, text = name.decode(), value.decode()
        except UnicodeDecodeError as exc:
            msg = f"SPDY header block with a name or value that is not UTF-8: {exc}"
            raise SpdyProtocolError(msg) from exc
        headers.setdefault(key.lower(), []).extend(text.split("\x00"))
    if offset != len(block):
        msg = f"SPDY header block has {len(block) - offset} bytes after its {count} headers"
        raise SpdyProtocolError(msg)
    return headers


def control_frame(kind: int, flags: int, payload: bytes) -> bytes:
    """A control frame: the control bit, version 3, the type, flags and 24-bit length."""
    if len(payload) > MAX_LENGTH:
        msg = f"a SPDY frame carries at most {MAX_LENGTH} bytes, not {len(payload)}"
        raise SpdyProtocolError(msg)
    return struct.pack(">HHI", 0x8000 | VERSION, kind, (flags << 24) | len(payload)) + payload


def data_frame(stream_id: int, data: bytes, flags: int = 0) -> bytes:
    """A data frame: no control bit, the stream id, flags and 24-bit length."""
    if len(data) > MAX_LENGTH:
        msg = f"a SPDY frame carries at most {MAX_LENGTH} bytes, not {len(data)}"
        raise SpdyProtocolError(msg)
    return struct.pack(">II", stream_id & 0x7FFFFFFF, (flags << 24) | len(data)) + data


class SpdyConnection:
    """One side of a SPDY/3.1 connection: frames in (``feed``), bytes out (``encode``)."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)
        self._deflate = zlib.compressobj(zlib.Z_BEST_COMPRESSION, zdict=DICTIONARY)

    def feed(self, data: bytes) -> list[Frame]:
        """The frames that ``data`` completes (none if it ends mid-frame)."""
        self._buffer += data
        frames: list[Frame] = []
        buffer = self._buffer
        offset = 0
        while len(buffer) - offset >= 8:
            first, word = struct.unpack_from(">II", buffer, offset)
            length = word & 0xFFFFFF
            if len(buffer) - offset - 8 < length:
                break
            payload = bytes(buffer[offset + 8 : offset + 8 + length])
            offset += 8 + length
            flags = word >> 24
            if first & 0x80000000:
                frame = self._control((first >> 16) & 0x7FFF, first & 0xFFFF, flags, payload)
                if frame is not None:
                    frames.append(frame)
            else:
                frames.append(Data(first & 0x7FFFFFFF, payload, flags))
        del buffer[:offset]
        return frames

    def _headers(self, compressed: bytes) -> Headers:
        try:
            block = self._inflate.decompress(compressed, MAX_HEADER_BLOCK)
        except zlib.error as exc:
            msg = f"SPDY header block does not inflate: {exc}"
            raise SpdyProtocolError(msg) from exc
        if self._inflate.unconsumed_tail:
            msg = f"SPDY header block inflates past {MAX_HEADER_BLOCK} bytes"
            raise SpdyProtocolError(msg)
        return decode_header_block(block)

    def _control(self, version: int, kind: int, flags: int, payload: bytes) -> Frame | None:
        if version != VERSION:
            msg = f"SPDY version {version} is not supported, only {VERSION}"
            raise SpdyProtocolError(msg)
        minimum = {SYN_STREAM: 10, SYN_REPLY: 4, RST_STREAM: 8, SETTINGS: 4, PING: 4}
        minimum.update({GOAWAY: 8, HEADERS: 4, WINDOW_UPDATE: 8})
        if kind not in minimum:
            return None  # draft 3, 2.2.1: an unknown control frame is ignored
        if len(payload) < minimum[kind]:
            msg = f"SPDY control frame of type {kind} too short: {len(payload)} bytes"
            raise SpdyProtocolError(msg)
        if kind == SYN_STREAM:
            stream_id, associated = struct.unpack_from(">II", payload)
            return SynStream(
                stream_id & 0x7FFFFFFF,
                self._headers(payload[10:]),
                flags,
                associated & 0x7FFFFFFF,
                payload[8] >> 5,
            )
        if kind in (SYN_REPLY, HEADERS):
            (stream_id,) = struct.unpack_from(">I", payload)
            cls = SynReply if kind == SYN_REPLY else HeadersFrame
            return cls(stream_id & 0x7FFFFFFF, self._headers(payload[4:]), flags)
        if kind == RST_STREAM:
            stream_id, status = struct.unpack_from(">II", payload)
            return RstStream(stream_id & 0x7FFFFFFF, status)
        if kind == SETTINGS:
            (count,) = struct.unpack_from(">I", payload)
            if len(payload) != 4 + 8 * count:
                msg = f"SPDY SETTINGS frame of {len(payload)} bytes for {count} entries"
                raise SpdyProtocolError(msg)
            entries = []
            for index in range(count):
                word, value = struct.unpack_from(">II", payload, 4 + 8 * index)
                entries.append((word >> 24, word & 0xFFFFFF, value))
            return Settings(entries)
        if kind == PING:
            return Ping(struct.unpack_from(">I", payload)[0])
        if kind == GOAWAY:
            last, status = struct.unpack_from(">II", payload)
            return GoAway(last & 0x7FFFFFFF, status)
        stream_id, delta = struct.unpack_from(">II", payload)
        return WindowUpdate(stream_id & 0x7FFFFFFF, delta & 0x7FFFFFFF)

    def _compress(self, headers: Headers) -> bytes:
        block = encode_header_block(headers)
        return self._deflate.compress(block) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    def encode(self, frame: Frame) -> bytes:
        """The bytes of ``frame``; header blocks go through this side's compression context,
        so frames must be sent in the order they were encoded."""
        if isinstance(frame, Data):
            return data_frame(frame.stream_id, frame.data, frame.flags)
        if isinstance(frame, SynStream):
            head = struct.pack(
                ">IIBB", frame.stream_id, frame.associated_to, (frame.priority & 7) << 5, 0
            )
            return control_frame(SYN_STREAM, frame.flags, head + self._compress(frame.headers))
        if isinstance(frame, (SynReply, HeadersFrame)):
            kind = SYN_REPLY if isinstance(frame, SynReply) else HEADERS
            head = struct.pack(">I", frame.stream_id)
            return control_frame(kind, frame.flags, head + self._compress(frame.headers))
        if isinstance(frame, RstStream):
            return control_frame(RST_STREAM, 0, struct.pack(">II", frame.stream_id, frame.status))
        if isinstance(frame, Settings):
            body = struct.pack(">I", len(frame.entries))
            for flags, key, value in frame.entries:
                body += struct.pack(">II", (flags << 24) | key, value)
            return control_frame(SETTINGS, 0, body)
        if isinstance(frame, Ping):
            return control_frame(PING, 0, struct.pack(">I", frame.ping_id))
        if isinstance(frame, GoAway):
            body = struct.pack(">II", frame.last_good_stream_id, frame.status)
            return control_frame(GOAWAY, 0, body)
        return control_frame(WINDOW_UPDATE, 0, struct.pack(">II", frame.stream_id, frame.delta))


__all__ = [
    "CANCEL",
    "DICTIONARY",
    "FLAG_FIN",
    "GOAWAY_PROTOCOL_ERROR",
    "PROTOCOL_ERROR",
    "REFUSED_STREAM",
    "Data",
    "Frame",
    "GoAway",
    "HeadersFrame",
    "Ping",
    "RstStream",
    "Settings",
    "SpdyConnection",
    "SpdyProtocolError",
    "SynReply",
    "SynStream",
    "WindowUpdate",
]
