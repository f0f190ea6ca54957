"""The anyio engine: a lean HTTP/1.1 keep-alive pool that runs on asyncio and trio.

Each request costs one write and, for a small answer, one read: the request
head and body go out in a single ``send``; the response is parsed by
httptools from reads of up to 256 KiB. Connections are kept in a LIFO list
(the most recently used socket is the one least likely to have been closed by
the server) and bounded by a semaphore: callers beyond ``max_connections``
wait for a connection to be released.
"""

from __future__ import annotations

import socket
import ssl
from typing import NoReturn

import anyio
import anyio.abc
from anyio.streams.tls import TLSAttribute, TLSStream

from asyncpod import (
    ConfigError,
    Endpoint,
    HTTPSEndpoint,
    ProtocolError,
    ProxyEndpoint,
    Request,
    RequestTimeoutError,
    Response,
    ResponseTooLargeError,
    TransportError,
    UnixEndpoint,
)
from asyncpod_transports._http11 import INFLATE_PIECE, Exchange, request_head, upgrade_head
from asyncpod_transports._sockets import connect_tcp, connect_unix

# asyncio's selector transports read at most 256 KiB at a time; asking for as
# much keeps large bodies to few reads.
_RECEIVE_SIZE = 1 << 18
# A body larger than this is written apart from the head instead of being
# copied into one buffer with it.
_COALESCE_LIMIT = 1 << 16
# The error answer to an upgrade is a short Status; more is not read.
_MAX_UPGRADE_ERROR = 1 << 20
# A response head larger than this is hostile or broken; kube-apiserver's
# heads are well under a kilobyte. Reading on would let a server pin memory.
MAX_HEAD_SIZE = 256 << 10


def _describe(request: Request) -> str:
    return f"{request.method} {request.target.partition('?')[0]}"


class _Connection:
    """One socket (maybe TLS-wrapped) and the parser of its responses."""

    __slots__ = ("exchange", "sock", "ssl_object", "stream")

    def __init__(self, stream: anyio.abc.ByteStream) -> None:
        self.stream = stream
        self.exchange = Exchange()
        self.ssl_object: ssl.SSLObject | None = stream.extra(TLSAttribute.ssl_object, None)  # noqa: S610
        self.sock: socket.socket | None = stream.extra(anyio.abc.SocketAttribute.raw_socket, None)  # noqa: S610 - anyio

    async def receive_body(self) -> bytes:
        """Read body bytes: what one receive brings, plus TLS records already buffered.

        Performance: a TLS stream hands out one record (at most 16 KiB) per
        ``receive``, and each costs an event-loop round; a watch of 4.5 KB
        events paid that every three or four events. The records already in
        the memory BIO are decrypted here without I/O. Anything odd (an
        incomplete record, close_notify, an error) is left to the next
        ``receive``, which reports it as usual and flushes what TLS wants sent.
        """
        data = await self.stream.receive(_RECEIVE_SIZE)
        ssl_object = self.ssl_object
        if ssl_object is None:
            return data
        parts = [data]
        size = len(data)
        read = ssl_object.read
        while size < _RECEIVE_SIZE:
            try:
                more = read(_RECEIVE_SIZE - size)
            except ssl.SSLError:
                break
            if not more:
                break
            parts.append(more)
            size += len(more)
        return data if len(parts) == 1 else b"".join(parts)

    def idle_and_open(self) -> bool:
        """False when the server closed (or wrote to) this idle connection.

        A peek at the kernel socket costs one system call and spares a request
        the round trip of discovering a closed keep-alive connection.
        """
        sock = self.sock
        if sock is None:
            return True
        if sock.fileno() < 0:
            return False
        return _peek_open(sock)


def _peek_open(sock: socket.socket) -> bool:
    try:
        sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return True
    except OSError:
        return False
    # EOF, or bytes nobody asked for: either way the connection is unusable.
    return False


async def _read_head(stream: anyio.abc.ByteStream, exchange: Exchange, request: Request) -> int:
    """Read until the answer's head is complete; return how many bytes that took.

    Raises:
        ProtocolError: the head is longer than ``MAX_HEAD_SIZE``.
    """
    received = 0
    while not exchange.head_complete:
        data = await stream.receive(_RECEIVE_SIZE)
        exchange.feed(data)
        received += len(data)
        if received > MAX_HEAD_SIZE and not exchange.head_complete:
            msg = f"{_describe(request)}: the answer's head is more than {MAX_HEAD_SIZE} bytes"
            raise ProtocolError(msg)
    return received


def _raise_mapped(exc: BaseException, request: Request, *, sent: bool) -> NoReturn:
    what = _describe(request)
    if isinstance(exc, TransportError):
        raise exc
    if isinstance(exc, anyio.EndOfStream):
        msg = f"{what}: the server closed the connection before the answer was complete"
        raise TransportError(msg, sent=sent) from exc
    if isinstance(exc, anyio.BrokenResourceError):
        cause = exc.__cause__
        detail = f": {cause}" if cause is not None else ""
        msg = f"{what}: the connection broke{detail}"
        raise TransportError(msg, sent=sent) from exc
    if isinstance(exc, anyio.ClosedResourceError):
        msg = f"{what}: the connection was closed because the transport was closed"
        raise TransportError(msg, sent=sent) from exc
    if isinstance(exc, ssl.SSLError):
        msg = f"{what}: TLS error: {exc.reason or exc}"
        raise TransportError(msg, sent=sent) from exc
    if isinstance(exc, OSError):
        msg = f"{what}: the connection failed: {exc.strerror or exc}"
        raise TransportError(msg, sent=sent) from exc
    msg = f"{what}: {type(exc).__name__}: {exc}"
    raise TransportError(msg, sent=sent) from exc


_STREAM_ERRORS = (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)


class _Body:
    """The streaming body of one response; holds its connection until the end."""

    __slots__ = ("_conn", "_request", "_transport")

    def __init__(self, transport: AnyioTransport, conn: _Connection, request: Request) -> None:
        self._transport = transport
        self._conn: _Connection | None = conn
        self._request = request

    async def receive(self) -> bytes:
        conn = self._conn
        if conn is None:
            return b""
        exchange = conn.exchange
        while True:
            try:
                data = exchange.take_body()
            except ProtocolError:
                await self._abandon()
                raise
            if exchange.drained:
                # Hand the connection back as soon as the body has ended.
                self._conn = None
                await self._transport._release(conn)
                return data
            if data:
                return data
            try:
                chunk = await conn.receive_body()
            except anyio.EndOfStream as exc:
                if exchange.eof():
                    continue
                await self._abandon()
                msg = f"{_describe(self._request)}: the server closed the connection mid-body"
                raise ProtocolError(msg) from exc
            except (*_STREAM_ERRORS, ssl.SSLError) as exc:
                await self._abandon()
                _raise_mapped(exc, self._request, sent=True)
            try:
                exchange.feed(chunk)
            except ProtocolError:
                await self._abandon()
                raise

    async def _abandon(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._transport._discard(conn)

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if conn.exchange.complete:
            # The whole body has arrived (maybe unread): the connection is clean.
            await self._transport._release(conn)
        else:
            # Skipping the rest of an unread body would cost its transfer:
            # closing the connection is cheaper and always safe.
            await self._transport._discard(conn)


class _Upgraded:
    """The connection of a ``101`` answer, handed over as a ``DuplexStream``.

    It left the pool for good: it holds no pool slot (a port-forward may keep
    hundreds open) and is closed, never reused, by ``aclose()`` or by the
    transport's.
    """

    __slots__ = ("_conn", "_tail", "_transport", "_what")

    def __init__(self, transport: AnyioTransport, conn: _Connection, what: str) -> None:
        self._transport = transport
        self._conn: _Connection | None = conn
        self._tail = conn.exchange.upgrade_tail
        self._what = what

    async def receive(self) -> bytes:
        tail = self._tail
        if tail:
            self._tail = b""
            return tail
        conn = self._conn
        if conn is None:
            return b""
        try:
            # With the TLS records already decrypted: a 32 KiB WebSocket
            # message spans two or three of them.
            return await conn.receive_body()
        except anyio.EndOfStream:
            return b""
        except (*_STREAM_ERRORS, ssl.SSLError) as exc:
            raise _mapped(exc, self._what) from exc

    async def send(self, data: bytes) -> None:
        conn = self._conn
        if conn is None:
            msg = f"{self._what}: the connection is closed"
            raise TransportError(msg)
        try:
            await conn.stream.send(data)
        except (*_STREAM_ERRORS, ssl.SSLError) as exc:
            raise _mapped(exc, self._what) from exc

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._transport._discard(conn, release_slot=False)


def _mapped(exc: BaseException, what: str) -> TransportError:
    if isinstance(exc, anyio.ClosedResourceError):
        return TransportError(f"{what}: the connection was closed")
    cause = exc.__cause__ if isinstance(exc, anyio.BrokenResourceError) else exc
    detail = f": {cause}" if cause is not None else ""
    return TransportError(f"{what}: the connection broke{detail}")


class AnyioTransport:
    """Carries requests to one endpoint over an HTTP/1.1 pool, on asyncio or trio.

    Args:
        endpoint: where to send requests.
        max_connections: the most connections open at once; further requests
            wait for one to be released.
        connect_timeout: seconds to open a connection, TLS handshake included
            (``None``: no limit).
        max_response_size: the most bytes of a non-streaming body read into
            memory; a larger body raises ``ResponseTooLargeError``.

    Raises:
        ConfigError: ``max_connections`` is below 1.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        max_connections: int = 100,
        connect_timeout: float | None = 10.0,
        max_response_size: int | None = None,
    ) -> None:
        if max_connections < 1:
            msg = f"max_connections must be at least 1, not {max_connections}"
            raise ConfigError(msg)
        self.endpoint = endpoint
        self._connect_timeout = connect_timeout
        self._max_size = max_response_size
        self._slots = anyio.Semaphore(max_connections)
        self._idle: list[_Connection] = []
        self._open: set[_Connection] = set()
        self._closed = False
        if isinstance(endpoint, UnixEndpoint):
            self._host = endpoint.host_header
        else:
            self._host = endpoint.url.partition("://")[2]
        # A proxy or Unix socket authenticates for us: our credentials must
        # never reach it.
        self._strip_credentials = not isinstance(endpoint, HTTPSEndpoint)

    def __repr__(self) -> str:
        return f"AnyioTransport({self.endpoint!r})"

    async def send(self, request: Request) -> Response:
        """Send one request and return its response (see ``Transport.send``).

        Raises:
            TransportError: the request could not be carried; ``sent`` is false
                when it provably never left (connect or TLS failure).
            ProtocolError: the answer could not be read.
            RequestTimeoutError: connecting took longer than ``connect_timeout``.
        """
        if self._closed:
            msg = f"{_describe(request)}: the transport is closed"
            raise TransportError(msg, sent=False)
        if request.upgrade is not None:
            return await self._upgrade(request)
        try:
            head = request_head(request, self._host, strip_credentials=self._strip_credentials)
        except ValueError as exc:
            msg = f"{_describe(request)}: {exc}"
            raise TransportError(msg, sent=False) from exc
        content = request.content
        body = None
        if content:
            if len(content) <= _COALESCE_LIMIT:
                head += content
            else:
                body = content

        slots = self._slots
        try:
            slots.acquire_nowait()
        except anyio.WouldBlock:
            await slots.acquire()
        conn: _Connection | None = None
        try:
            conn = await self._checkout(request)
            content = await self._roundtrip(conn, request, head, body)
            exchange = conn.exchange
            if request.stream:
                return Response(
                    status=exchange.status,
                    headers=exchange.headers(),
                    stream=_Body(self, conn, request),
                    reason=exchange.reason.decode("latin-1"),
                )
            response = Response(
                status=exchange.status,
                headers=exchange.headers(),
                content=content,
                reason=exchange.reason.decode("latin-1"),
            )
        except BaseException:
            # Also on cancellation: a connection in an unknown state is closed,
            # never pooled, and its slot is freed.
            if conn is not None:
                await self._discard(conn, release_slot=False)
            slots.release()
            raise
        await self._release(conn)
        return response

    async def _upgrade(self, request: Request) -> Response:
        """Send an upgrade request on a new connection of its own, outside the pool.

        A ``101`` hands the connection over; any other answer is read whole
        (at most 1 MiB, a Status) and its connection closed.
        """
        try:
            head = upgrade_head(request, self._host, strip_credentials=self._strip_credentials)
        except ValueError as exc:
            msg = f"{_describe(request)}: {exc}"
            raise TransportError(msg, sent=False) from exc
        if request.content:
            head += request.content
        conn = await self._connect(request)
        try:
            exchange = conn.exchange
            exchange.start(request.method)
            stream = conn.stream
            try:
                await stream.send(head)
                received = await _read_head(stream, exchange, request)
                if exchange.status == 101:
                    return Response(
                        status=101,
                        headers=exchange.headers(),
                        reason=exchange.reason.decode("latin-1"),
                        connection=_Upgraded(self, conn, _describe(request)),
                    )
                exchange.start_body()
                while not exchange.complete and received <= _MAX_UPGRADE_ERROR:
                    try:
                        data = await stream.receive(_RECEIVE_SIZE)
                    except anyio.EndOfStream:
                        exchange.eof()
                        break
                    exchange.feed(data)
                    received += len(data)
            except (*_STREAM_ERRORS, ssl.SSLError) as exc:
                _raise_mapped(exc, request, sent=True)
            return Response(
                status=exchange.status,
                headers=exchange.headers(),
                content=exchange.take_body(_MAX_UPGRADE_ERROR)[:_MAX_UPGRADE_ERROR],
                reason=exchange.reason.decode("latin-1"),
            )
        finally:
            # Also on cancellation or an error: only a 101 hands the connection over.
            if conn.exchange.status != 101:
                await self._discard(conn, release_slot=False)

    async def _checkout(self, request: Request) -> _Connection:
        idle = self._idle
        while idle:
            conn = idle.pop()
            try:
                usable = conn.idle_and_open()
            except BaseException:
                await self._discard(conn, release_slot=False)
                raise
            if usable:
                return conn
            await self._discard(conn, release_slot=False)
        return await self._connect(request)

    async def _connect(self, request: Request) -> _Connection:
        endpoint = self.endpoint
        stream: anyio.abc.ByteStream
        try:
            with anyio.fail_after(self._connect_timeout):
                if isinstance(endpoint, UnixEndpoint):
                    stream = await connect_unix(endpoint.path, _RECEIVE_SIZE)
                elif isinstance(endpoint, ProxyEndpoint):
                    stream = await connect_tcp(endpoint.host, endpoint.port, _RECEIVE_SIZE)
                else:
                    stream = await self._connect_tls(endpoint, request)
        except TimeoutError as exc:
            msg = (
                f"{_describe(request)}: could not connect to {self._where()} within "
                f"{self._connect_timeout:g} s"
            )
            raise RequestTimeoutError(msg, sent=False) from exc
        except TransportError:
            raise
        except (ssl.SSLError, anyio.EndOfStream, anyio.BrokenResourceError) as exc:
            msg = f"{_describe(request)}: TLS handshake with {self._where()} failed: {exc}"
            raise TransportError(msg, sent=False) from exc
        except OSError as exc:
            msg = f"{_describe(request)}: could not connect to {self._where()}: {_os_reason(exc)}"
            raise TransportError(msg, sent=False) from exc
        conn = _Connection(stream)
        self._open.add(conn)
        if self._closed:
            # aclose() ran while this connection was being opened.
            await self._discard(conn, release_slot=False)
            msg = f"{_describe(request)}: the transport is closed"
            raise TransportError(msg, sent=False)
        return conn

    async def _connect_tls(self, endpoint: HTTPSEndpoint, request: Request) -> anyio.abc.ByteStream:
        # Asked per new connection, so that a rotated CA bundle applies to the
        # connections opened after the rotation.
        context = endpoint.tls.ssl_context()
        server_name = endpoint.server_name or endpoint.host
        raw = await connect_tcp(endpoint.host, endpoint.port, _RECEIVE_SIZE)
        try:
            return await TLSStream.wrap(
                raw,
                server_side=False,
                hostname=server_name,
                ssl_context=context,
                # HTTP frames its own bodies; a missing close_notify at EOF is
                # not a truncation attack here (RFC 9112 section 9.8).
                standard_compatible=False,
            )
        except ssl.SSLCertVerificationError as exc:
            await anyio.aclose_forcefully(raw)
            endpoint.tls.verification_failed()
            msg = (
                f"{_describe(request)}: TLS verification of {self._where()} as "
                f"{server_name!r} failed: {exc.verify_message}"
            )
            raise TransportError(msg, sent=False) from exc
        except BaseException:
            await anyio.aclose_forcefully(raw)
            raise

    def _where(self) -> str:
        endpoint = self.endpoint
        if isinstance(endpoint, UnixEndpoint):
            return f"Unix socket {endpoint.path}"
        return endpoint.url

    async def _roundtrip(
        self, conn: _Connection, request: Request, head: bytes, body: bytes | None
    ) -> bytes:
        """Write the request, read the head and, unless streaming, return the body."""
        stream = conn.stream
        exchange = conn.exchange
        exchange.start(request.method)
        try:
            await stream.send(head)
            if body is not None:
                await stream.send(body)
            received = await _read_head(stream, exchange, request)
            exchange.start_body()
            if request.stream:
                return b""
            limit = self._max_size
            if limit is not None:
                _check_length(exchange, limit, request)
            if exchange.inflater is not None:
                return await _read_inflated(stream, exchange, limit, request)
            while not exchange.complete:
                try:
                    data = await conn.receive_body()
                except anyio.EndOfStream as exc:
                    if exchange.eof():
                        break
                    msg = f"{_describe(request)}: the server closed the connection mid-body"
                    raise ProtocolError(msg) from exc
                exchange.feed(data)
                if limit is not None:
                    received += len(data)
                    if received > limit:
                        _check_size(exchange, limit, request)
            return exchange.take_body()
        except (*_STREAM_ERRORS, ssl.SSLError) as exc:
            # Never replayed here, not even on a reused keep-alive connection
            # that gave no byte back: the whole request may have been read and
            # applied (a PUT or DELETE too). Whether to try again is the
            # RetryPolicy's decision (reads only), the one retry loop. A
            # connection the server had closed before we wrote is caught by
            # the peek in _checkout, before anything is sent.
            _raise_mapped(exc, request, sent=True)

    async def _release(self, conn: _Connection) -> None:
        """Return a connection whose response is complete, and free its slot."""
        if conn.exchange.keep_alive and not self._closed:
            self._idle.append(conn)
            self._slots.release()
        else:
            await self._discard(conn)

    async def _discard(self, conn: _Connection, *, release_slot: bool = True) -> None:
        """Close a connection (shielded from cancellation) and maybe free its slot."""
        self._open.discard(conn)
        try:
            with anyio.CancelScope(shield=True):
                await anyio.aclose_forcefully(conn.stream)
        finally:
            if release_slot:
                self._slots.release()

    async def aclose(self) -> None:
        """Close every connection, idle or busy. The transport cannot be used afterwards."""
        self._closed = True
        self._idle.clear()
        connections, self._open = self._open, set()
        with anyio.CancelScope(shield=True):
            for conn in connections:
                await anyio.aclose_forcefully(conn.stream)


def _os_reason(exc: OSError) -> str:
    if exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _check_length(exchange: Exchange, limit: int, request: Request) -> None:
    """Refuse a body whose Content-Length is over ``limit`` before reading it."""
    # Performance: this runs for every answer, so it scans the raw fields
    # rather than decoding them all (the headers stay lazy for the caller).
    length = None
    for name, value in exchange.raw_headers:
        if len(name) == 14 and name.lower() == b"content-length":
            length = value.decode("latin-1").strip()
            break
    if length is not None and length.isdigit() and int(length) > limit:
        msg = (
            f"{_describe(request)}: the answer announces {length} bytes, "
            f"more than the limit of {limit}"
        )
        raise ResponseTooLargeError(msg)


def _check_size(exchange: Exchange, limit: int, request: Request) -> None:
    """Refuse a body once the part buffered so far is over ``limit``."""
    if sum(map(len, exchange.body)) > limit:
        msg = f"{_describe(request)}: the answer is more than the limit of {limit} bytes"
        raise ResponseTooLargeError(msg)


async def _read_inflated(
    stream: anyio.abc.ByteStream, exchange: Exchange, limit: int | None, request: Request
) -> bytes:
    """The decoded body of a compressed answer, unless it decodes to more than ``limit`` bytes.

    The size is checked after each bounded piece: a gzip bomb fails after
    ``limit`` bytes of work, not after inflating all of it.
    """
    pieces: list[bytes] = []
    size = 0
    while True:
        piece = exchange.take_body(INFLATE_PIECE)
        if piece:
            size += len(piece)
            if limit is not None and size > limit:
                what = _describe(request)
                msg = f"{what}: the decoded answer is more than the limit of {limit} bytes"
                raise ResponseTooLargeError(msg)
            pieces.append(piece)
            continue
        if exchange.drained:
            return b"".join(pieces)
        try:
            data = await stream.receive(_RECEIVE_SIZE)
        except anyio.EndOfStream as exc:
            if exchange.eof():
                continue
            msg = f"{_describe(request)}: the server closed the connection mid-body"
            raise ProtocolError(msg) from exc
        exchange.feed(data)
