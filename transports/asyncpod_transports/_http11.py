"""One HTTP/1.1 client connection: request serialisation and response parsing.

Sans-IO: a ``_Exchange`` never awaits. The engine writes what ``request_head``
returns and feeds what it reads into ``feed``; httptools (llhttp, the parser of
Node.js) does the framing: Content-Length, chunked transfer coding, bodiless
statuses.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Mapping

import httptools

from asyncpod import Headers, ProtocolError, Request

# The most decoded bytes one take of a compressed body yields: a gzip bomb
# (1 GB of zeros is 1 MB on the wire) inflates a bounded piece at a time.
INFLATE_PIECE = 1 << 18
# zlib's window bits for "a zlib or a gzip header, detected" (zlib's inflateInit2).
_AUTO_HEADER = 32 + zlib.MAX_WBITS
# Concatenated gzip members are valid (RFC 1952 section 2.2); a body of
# thousands of empty ones only burns CPU. aiohttp stops at the same count.
MAX_MEMBERS = 1024
_CODINGS = {b"gzip": "gzip", b"x-gzip": "gzip", b"deflate": "deflate"}
_METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
_FORBIDDEN = ("\r", "\n", "\0")
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization"})
# Set by the transport itself; a caller's copy would duplicate or contradict it.
_TRANSPORT_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "keep-alive"}
)


def check_field(text: str, what: str) -> None:
    # A CR or LF in a header would let the caller's data start a new header or
    # a second request (request smuggling); refuse it before anything is sent.
    for bad in _FORBIDDEN:
        if bad in text:
            msg = f"{what} contains a control character ({bad!r}); it was not sent"
            raise ValueError(msg)


def request_head(request: Request, host: str, *, strip_credentials: bool) -> bytes:
    """The request line and header block of ``request``, ready to write.

    Args:
        request: the request to serialise.
        host: the value of the ``Host`` header.
        strip_credentials: drop ``Authorization`` and ``Proxy-Authorization``
            (a proxy or Unix socket authenticates for us: our credentials must
            never reach it).

    Raises:
        ValueError: a header or the target contains CR, LF or NUL, or a header
            is not Latin-1 (the message names it, never its value).
    """
    target = request.target
    check_field(target, "the request target")
    lines = [f"{request.method} {target} HTTP/1.1\r\nHost: {host}\r\n"]
    headers: Mapping[str, str] = request.headers
    for name, value in headers.items():
        lower = name.lower()
        if lower in _TRANSPORT_HEADERS or (strip_credentials and lower in _CREDENTIAL_HEADERS):
            continue
        check_name(name)
        check_field(value, f"header {name!r}")
        lines.append(f"{name}: {value}\r\n")
    content = request.content
    if content is not None:
        lines.append(f"Content-Length: {len(content)}\r\n\r\n")
    elif request.method in _METHODS_WITH_BODY:
        lines.append("Content-Length: 0\r\n\r\n")
    else:
        lines.append("\r\n")
    try:
        return "".join(lines).encode("latin-1")
    except UnicodeEncodeError as exc:
        msg = "a header or the request target is not Latin-1 text; it was not sent"
        raise ValueError(msg) from exc


def check_name(name: str) -> None:
    """Refuse a header name that is empty or holds a separator or control character."""
    if not name or ":" in name or " " in name or "\t" in name:
        msg = f"header name {name!r} is not a valid field name; it was not sent"
        raise ValueError(msg)
    check_field(name, f"the name of header {name!r}")


def check_request(request: Request) -> None:
    """Refuse a target or header that could break out of its field.

    Raises:
        ValueError: a header or the target contains CR, LF or NUL.
    """
    check_field(request.target, "the request target")
    for name, value in request.headers.items():
        check_name(name)
        check_field(value, f"header {name!r}")


def inflater_for(codings: list[bytes]) -> Inflater | None:
    """The decoder of a body with these ``Content-Encoding`` codings (lower case), if any.

    Raises:
        ProtocolError: a coding other than gzip, deflate and identity, or more
            than one coding.
    """
    applied = [c for c in codings if c and c != b"identity"]
    if not applied:
        return None
    if len(applied) > 1 or applied[0] not in _CODINGS:
        shown = b", ".join(codings).decode("latin-1")[:100]
        msg = f"the answer's body has Content-Encoding {shown!r}, which cannot be decoded"
        raise ProtocolError(msg)
    return Inflater()


class Inflater:
    """Decodes a gzip or deflate body, never more than asked for at a time.

    zlib's ``max_length`` keeps the rest of the input as ``unconsumed_tail``,
    so memory stays bounded by one read plus one piece, whatever the ratio.
    """

    __slots__ = ("_members", "_more", "_tail", "_zlib", "started")

    def __init__(self) -> None:
        self._zlib = zlib.decompressobj(_AUTO_HEADER)
        self._tail = b""
        # zlib may hold decoded output back when it stopped at max_length.
        self._more = False
        self._members = 1
        self.started = False

    def pending(self) -> bool:
        """Whether decoded bytes may still come without more input."""
        return self._more or bool(self._tail)

    def decode(self, data: bytes, max_size: int) -> bytes:
        """At most ``max_size`` decoded bytes of the input kept so far and ``data``.

        Raises:
            ProtocolError: the body is not valid gzip or deflate data.
        """
        if data:
            self.started = True
        buffer = self._tail + data if self._tail else data
        pieces: list[bytes] = []
        size = 0
        while size < max_size and (buffer or self._more):
            inflater = self._zlib
            if inflater.eof:
                # Another gzip member follows the one that ended.
                self._members += 1
                if self._members > MAX_MEMBERS:
                    msg = f"the answer's body has more than {MAX_MEMBERS} gzip members"
                    raise ProtocolError(msg)
                inflater = self._zlib = zlib.decompressobj(_AUTO_HEADER)
            want = max_size - size
            try:
                piece = inflater.decompress(buffer, want)
            except zlib.error as exc:
                msg = f"the answer's compressed body is corrupt: {exc}"
                raise ProtocolError(msg) from exc
            self._more = len(piece) == want
            size += len(piece)
            pieces.append(piece)
            buffer = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
            if inflater.eof:
                self._more = False
        self._tail = buffer
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def finish(self) -> None:
        """Check, once the body has ended, that the compressed data ended too.

        Raises:
            ProtocolError: the compressed data was cut short.
        """
        if self.started and not self._zlib.eof:
            msg = "the answer's compressed body ends before its compressed data does"
            raise ProtocolError(msg)


class LazyHeaders(Mapping[str, str]):
    """Response headers that are decoded only if someone looks at them.

    Most successful answers are read for their body alone; decoding a dozen
    header fields per response would be a good part of the parsing cost.
    """

    __slots__ = ("_decoded", "_raw")

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self._raw = raw
        self._decoded: Headers | None = None

    def _headers(self) -> Headers:
        decoded = self._decoded
        if decoded is None:
            decoded = self._decoded = Headers(
                (n.decode("latin-1"), v.decode("latin-1")) for n, v in self._raw
            )
        return decoded

    def __getitem__(self, name: str) -> str:
        return self._headers()[name]

    def __contains__(self, name: object) -> bool:
        return name in self._headers()

    def __iter__(self) -> Iterator[str]:
        return iter(self._headers())

    def __len__(self) -> int:
        return len(self._headers())

    def __repr__(self) -> str:
        return repr(self._headers())


class _UnaskedResponseError(Exception):
    """Raised inside the parser to stop it at a response nobody asked for."""


class Exchange:
    """The parser state of the responses read on one connection.

    ``start()`` begins a response; ``feed()`` passes bytes from the socket;
    the head and body chunks accumulate on the object until the engine takes
    them. One parser serves every response of a keep-alive connection.
    """

    __slots__ = (
        "_coding",
        "_head_only",
        "_parser",
        "_unasked",
        "body",
        "complete",
        "head_complete",
        "inflater",
        "keep_alive",
        "raw_headers",
        "reason",
        "status",
    )

    def __init__(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._head_only = False
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.reason = b""
        self.status = 0
        self.head_complete = False
        self.complete = False
        self.keep_alive = False
        self.inflater: Inflater | None = None
        self._coding: list[bytes] = []
        self._unasked = False

    def start(self, method: str) -> None:
        """Prepare for the response to a request sent with ``method``."""
        if self._head_only:
            # llhttp cannot be told that a response answers HEAD, so after one
            # the parser still waits for a body: start the next with a fresh one.
            self._parser = httptools.HttpResponseParser(self)
        self._head_only = method == "HEAD"
        self.raw_headers = []
        self.body = []
        self.reason = b""
        self.head_complete = False
        self.complete = False
        self.inflater = None
        if self._coding:
            self._coding = []

    def feed(self, data: bytes) -> None:
        """Parse bytes read from the socket.

        Raises:
            ProtocolError: the bytes are not a valid HTTP/1.1 response.
        """
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if self.complete:
                # Bytes after a complete response (a second response nobody
                # asked for, garbage): the answer stands, the connection does
                # not. on_message_begin stopped the parser there.
                self.keep_alive = False
                return
            msg = f"the server's answer is not valid HTTP/1.1: {exc}"
            raise ProtocolError(msg) from exc

    def eof(self) -> bool:
        """The server closed the connection: True if that ends the body.

        A response framed by neither Content-Length nor chunked coding ends at
        EOF (RFC 9112 section 6.3, rule 8); any other body is truncated.
        """
        if self.complete:
            return True
        if not self.head_complete:
            return False
        for name, _ in self.raw_headers:
            if name.lower() in (b"content-length", b"transfer-encoding"):
                return False
        self.complete = True
        self.keep_alive = False
        return True

    def headers(self) -> LazyHeaders:
        """The response headers, decoded when first looked at."""
        return LazyHeaders(self.raw_headers)

    def start_body(self) -> None:
        """Prepare to decode the body as its ``Content-Encoding`` says (call after the head).

        Raises:
            ProtocolError: the body is encoded in a way this engine cannot decode.
        """
        if self._coding:
            self.inflater = inflater_for(self._coding)

    @property
    def drained(self) -> bool:
        """The body has ended and every byte of it was taken."""
        if not self.complete or self.body:
            return False
        inflater = self.inflater
        return inflater is None or not inflater.pending()

    def take_body(self, max_size: int = INFLATE_PIECE) -> bytes:
        """The body bytes parsed so far, removed from the buffer.

        A compressed body is decoded here, at most ``max_size`` bytes at a
        time; without a ``Content-Encoding`` every buffered byte is returned.

        Raises:
            ProtocolError: the compressed body is corrupt or cut short.
        """
        body = self.body
        inflater = self.inflater
        if inflater is None:
            if not body:
                return b""
            self.body = []
            return body[0] if len(body) == 1 else b"".join(body)
        raw = b""
        if body:
            self.body = []
            raw = body[0] if len(body) == 1 else b"".join(body)
        data = inflater.decode(raw, max_size)
        if self.complete and not inflater.pending():
            inflater.finish()
        return data

    # httptools callbacks

    def on_message_begin(self) -> None:
        if self.complete:
            # A second response in bytes read for the first: nobody asked for
            # it. Reading it as part of the first (or as the answer to the next
            # request) would desynchronise the connection; stop the parser.
            msg = "a response that was not asked for"
            raise _UnaskedResponseError(msg)

    def on_status(self, reason: bytes) -> None:
        self.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self.raw_headers.append((name, value))
        if len(name) == 16 and name.lower() == b"content-encoding":
            self._coding.extend(c.strip().lower() for c in value.split(b","))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200:
            # An interim answer (103 Early Hints): the final one follows.
            self.raw_headers = []
            self.reason = b""
            self._coding = []
            return
        self.status = status
        self.head_complete = True
        self.keep_alive = self._parser.should_keep_alive()
        if self._head_only:
            self.complete = True

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.head_complete:
            self.complete = True
            self.keep_alive = self._parser.should_keep_alive()
