"""The aiohttp engine: the fastest way to carry requests on asyncio."""

from __future__ import annotations

import asyncio
import ssl
import sys
from collections.abc import Mapping
from typing import Any

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from asyncpod import (
    Endpoint,
    HTTPSEndpoint,
    ProtocolError,
    Request,
    RequestTimeoutError,
    Response,
    ResponseTooLargeError,
    TransportError,
    UnixEndpoint,
)
from asyncpod_transports._http11 import INFLATE_PIECE, Inflater, check_request, inflater_for

_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization"})
_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError)

# A TLS connection that aiohttp closes (``Connection: close``, a dropped
# response) is handed to asyncio to shut down and forgotten by the connector
# (aio-libs/aiohttp#1925). Before python/cpython#118960 (3.12.8, 3.13.1) that
# shutdown can outlive the session: the loop ends with the socket still open
# and "unclosed transport" is reported later, from an unrelated place. On
# these versions aiohttp can remember such transports and abort them when the
# session closes (aio-libs/aiohttp#9726); newer versions warn if asked to.
_CLEANUP_CLOSED = sys.version_info < (3, 12, 8) or (3, 13, 0) <= sys.version_info < (3, 13, 1)


def _socket_transport(transport: asyncio.BaseTransport) -> asyncio.Transport | None:
    """The transport that owns the socket: under TLS, the one below the TLS layer."""
    below = getattr(getattr(transport, "_ssl_protocol", None), "_transport", None)
    for candidate in (below, transport):
        if isinstance(candidate, asyncio.Transport):
            return candidate
    return None


class _OpenConnections:
    """Every connection the connector opened whose socket is not closed yet.

    A connection that aiohttp's protocol closes by itself (an answer that
    cannot be parsed) never returns to the connector, so neither the pool nor
    ``enable_cleanup_closed`` knows it, and the protocol forgets its transport
    once closed. Over TLS its close starts a shutdown that waits for the
    peer's close_notify (30 s by default): a server that holds the connection
    open keeps that socket past the session, and the loop ends with it open.
    The protocol factory is the one place every connection passes; each
    socket's transport is held from ``connection_made`` to ``connection_lost``.

    Closing is done on the socket's transport, under TLS: aiohttp closes a
    failed connection twice (the protocol, then the connector), and asyncio's
    TLS transport drops its link to the connection on a second ``close()``
    (CPython 3.11 to 3.13), after which its ``abort()`` does nothing.
    """

    def __init__(self, connector: aiohttp.BaseConnector) -> None:
        self._open: dict[asyncio.BaseProtocol, asyncio.Transport] = {}
        factory = connector._factory

        def tracked_factory() -> Any:
            protocol = factory()
            made, lost = protocol.connection_made, protocol.connection_lost

            def connection_made(transport: asyncio.BaseTransport) -> None:
                if (owner := _socket_transport(transport)) is not None:
                    self._open[protocol] = owner
                made(transport)

            def connection_lost(exc: BaseException | None) -> None:
                self._open.pop(protocol, None)
                lost(exc)

            protocol.connection_made = connection_made  # type: ignore[method-assign]
            protocol.connection_lost = connection_lost  # type: ignore[method-assign]
            return protocol

        connector._factory = tracked_factory  # type: ignore[assignment]

    async def abort_all(self) -> None:
        """Abort every open connection and return once their sockets are closed."""
        for transport in list(self._open.values()):
            transport.abort()
        # abort() closes the socket in a callback, and over TLS the protocol
        # hears of it one callback later: a few loop turns, never a wait on
        # the peer.
        for _ in range(10):
            if not self._open:
                return
            await asyncio.sleep(0)


def _describe(request: Request) -> str:
    return f"{request.method} {request.target.partition('?')[0]}"


def _inflater_of(response: aiohttp.ClientResponse) -> Inflater | None:
    """The decoder the answer's ``Content-Encoding`` asks for (see ``inflater_for``)."""
    coding = response.headers.get("Content-Encoding")
    if coding is None:
        return None
    raw = coding.encode("latin-1", "replace").lower()
    return inflater_for([c.strip() for c in raw.split(b",")])


async def _read_inflated(response: aiohttp.ClientResponse, inflater: Inflater) -> bytes:
    """The next decoded piece of a compressed body (``INFLATE_PIECE`` at most); b"" at its end."""
    while True:
        if inflater.pending():
            data = inflater.decode(b"", INFLATE_PIECE)
            if data:
                return data
        raw = await response.content.readany()
        if not raw:
            inflater.finish()
            return b""
        data = inflater.decode(raw, INFLATE_PIECE)
        if data:
            return data


class _AiohttpStream:
    """A streaming body read from an aiohttp response."""

    __slots__ = ("_inflater", "_request", "_response")

    def __init__(
        self, response: aiohttp.ClientResponse, request: Request, inflater: Inflater | None
    ) -> None:
        self._response: aiohttp.ClientResponse | None = response
        self._request = request
        self._inflater = inflater

    async def receive(self) -> bytes:
        response = self._response
        if response is None:
            return b""
        inflater = self._inflater
        try:
            if inflater is None:
                data = await response.content.readany()
            else:
                data = await _read_inflated(response, inflater)
        except ProtocolError as exc:
            self._response = None
            response.close()
            msg = f"{_describe(self._request)}: {exc}"
            raise ProtocolError(msg) from exc
        except _ERRORS as exc:
            self._response = None
            response.close()
            raise _map_error(exc, _describe(self._request), sent=True) from exc
        if not data:
            # The body has ended: hand the connection back at once.
            self._response = None
            response.release()
        return data

    async def aclose(self) -> None:
        response, self._response = self._response, None
        if response is None:
            return
        if response.content.at_eof():
            response.release()
        else:
            # An unread body cannot be skipped cheaply: drop the connection.
            response.close()


def _scrub(exc: BaseException) -> None:
    """Redact credentials that aiohttp keeps in an exception's request info.

    ``ClientResponseError`` carries the request headers, and the mapped error
    chains it: without this, the bearer token would be one ``repr`` away.
    """
    if isinstance(exc, aiohttp.ClientResponseError):
        info = exc.request_info
        if any(name.lower() in _CREDENTIAL_HEADERS for name in info.headers):
            headers = CIMultiDict(
                (name, "<redacted>" if name.lower() in _CREDENTIAL_HEADERS else value)
                for name, value in info.headers.items()
            )
            exc.request_info = aiohttp.RequestInfo(
                info.url, info.method, CIMultiDictProxy(headers), info.real_url
            )
            exc.args = (exc.request_info, *exc.args[1:])


def _map_error(exc: BaseException, what: str, *, sent: bool) -> TransportError:
    _scrub(exc)
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        error = exc.certificate_error
        detail = getattr(error, "verify_message", None) or str(error)
        return TransportError(f"{what}: TLS verification failed: {detail}", sent=False)
    if isinstance(exc, aiohttp.ClientSSLError):
        return TransportError(f"{what}: TLS handshake failed: {exc}", sent=False)
    if isinstance(exc, aiohttp.ClientConnectorError):
        reason = exc.os_error.strerror or str(exc.os_error)
        return TransportError(f"{what}: could not connect to {exc.host}: {reason}", sent=False)
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return RequestTimeoutError(f"{what}: connecting timed out", sent=False)
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ClientResponseError):
        return ProtocolError(f"{what}: the answer could not be read: {exc}", sent=sent)
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return TransportError(f"{what}: the server closed the connection", sent=sent)
    if isinstance(exc, asyncio.TimeoutError):
        return RequestTimeoutError(f"{what}: timed out", sent=sent)
    if isinstance(exc, OSError):
        return TransportError(f"{what}: the connection failed: {exc.strerror or exc}", sent=sent)
    return TransportError(f"{what}: {type(exc).__name__}: {exc}", sent=sent)


class AiohttpTransport:
    """Carries requests to one endpoint through an aiohttp session (asyncio only).

    Args:
        endpoint: where to send requests.
        max_connections: the size of the keep-alive pool.
        connect_timeout: seconds to open a connection, TLS handshake included.
        max_response_size: the most bytes of a non-streaming body read into
            memory; a larger body raises ``ResponseTooLargeError``.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        max_connections: int = 100,
        connect_timeout: float | None = 10.0,
        max_response_size: int | None = None,
    ) -> None:
        self.endpoint = endpoint
        self._max_size = max_response_size
        self._strip_credentials = not isinstance(endpoint, HTTPSEndpoint)
        connector: aiohttp.BaseConnector
        if isinstance(endpoint, UnixEndpoint):
            connector = aiohttp.UnixConnector(path=endpoint.path, limit=max_connections)
            self._base = f"http://{endpoint.host_header}"
        else:
            connector = aiohttp.TCPConnector(
                limit=max_connections, enable_cleanup_closed=_CLEANUP_CLOSED
            )
            self._base = endpoint.url
        self._connections = _OpenConnections(connector)
        self._tls = endpoint.tls if isinstance(endpoint, HTTPSEndpoint) else None
        self._server_name = endpoint.server_name if isinstance(endpoint, HTTPSEndpoint) else None
        self._connect_timeout = connect_timeout
        # Upgrades (exec, attach, port-forward) go through the anyio engine's
        # connection code, which runs on asyncio too: one WebSocket code path
        # for both event loops, and a failed upgrade's Status body is read as
        # any answer's (aiohttp's ws_connect raises without it).
        self._upgrades: Any = None
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout),
            # The body is decoded here, as in the anyio engine: aiohttp does
            # not notice a gzip body cut short (it checks deflate only), and
            # the codings asked for are exactly the ones decoded.
            auto_decompress=False,
            headers={"Accept-Encoding": "gzip, deflate"},
            trust_env=False,
            skip_auto_headers=("User-Agent",),
        )
        # aiohttp re-sends GET, HEAD, OPTIONS, TRACE, PUT and DELETE once when
        # the connection drops after the request was written (RFC 9112 section
        # 9.3.1 allows it for idempotent methods). A PUT or DELETE that was
        # applied must not be replayed, and reads are retried by the client's
        # RetryPolicy, the one retry loop. aiohttp has no public switch: its
        # own test client clears this attribute (aiohttp/test_utils.py), and
        # tests/test_write_replay.py fails if that stops working. Versions
        # without the attribute do not re-send.
        if hasattr(self._session, "_retry_connection"):
            self._session._retry_connection = False

    def __repr__(self) -> str:
        return f"AiohttpTransport({self.endpoint!r})"

    def _headers(self, headers: Mapping[str, str]) -> Mapping[str, str]:
        if self._strip_credentials and any(name.lower() in _CREDENTIAL_HEADERS for name in headers):
            # A proxy authenticates for us: our credentials must never reach it.
            return {k: v for k, v in headers.items() if k.lower() not in _CREDENTIAL_HEADERS}
        return headers

    async def send(self, request: Request) -> Response:
        """Send one request and return its response (see ``Transport.send``).

        Raises:
            TransportError: the request could not be carried; ``sent`` is false
                when it provably never left (connect or TLS failure).
            ProtocolError: the answer could not be read.
            RequestTimeoutError: connecting took longer than ``connect_timeout``.
        """
        if self._session.closed:
            msg = f"{_describe(request)}: the transport is closed"
            raise TransportError(msg, sent=False)
        if request.upgrade is not None:
            return await self._upgrade(request)
        try:
            check_request(request)
        except ValueError as exc:
            msg = f"{_describe(request)}: {exc}"
            raise TransportError(msg, sent=False) from exc
        ssl_context: ssl.SSLContext | bool = True
        if self._tls is not None:
            # aiohttp pools connections by SSL context: a new context (a rotated
            # CA bundle) only affects the connections opened with it.
            ssl_context = self._tls.ssl_context()
        try:
            response = await self._session.request(
                request.method,
                URL(self._base + request.target, encoded=True),
                headers=self._headers(request.headers),
                data=request.content,
                allow_redirects=False,
                ssl=ssl_context,
                server_hostname=self._server_name,
            )
        except aiohttp.ClientConnectorCertificateError as exc:
            if self._tls is not None:
                self._tls.verification_failed()
            raise _map_error(exc, _describe(request), sent=False) from exc
        except _ERRORS as exc:
            raise _map_error(exc, _describe(request), sent=True) from exc
        try:
            inflater = _inflater_of(response)
        except ProtocolError as exc:
            response.close()
            msg = f"{_describe(request)}: {exc}"
            raise ProtocolError(msg) from exc
        if request.stream:
            return Response(
                status=response.status,
                headers=response.headers,
                stream=_AiohttpStream(response, request, inflater),
                reason=response.reason or "",
            )
        try:
            if inflater is not None:
                content = await _read_decoded(response, inflater, self._max_size, request)
            elif self._max_size is None:
                content = await response.read()
            else:
                content = await _read_limited(response, self._max_size, _describe(request))
        except ResponseTooLargeError:
            response.close()
            raise
        except ProtocolError as exc:
            response.close()
            msg = f"{_describe(request)}: {exc}"
            raise ProtocolError(msg) from exc
        except _ERRORS as exc:
            response.close()
            raise _map_error(exc, _describe(request), sent=True) from exc
        except BaseException:
            # Cancelled mid-body: the connection's state is unknown, drop it.
            response.close()
            raise
        response.release()
        return Response(
            status=response.status,
            headers=response.headers,
            content=content,
            reason=response.reason or "",
        )

    async def _upgrade(self, request: Request) -> Response:
        if self._upgrades is None:
            from asyncpod_transports._anyio import AnyioTransport

            self._upgrades = AnyioTransport(self.endpoint, connect_timeout=self._connect_timeout)
        response: Response = await self._upgrades.send(request)
        return response

    async def aclose(self) -> None:
        """Close every connection: the pooled ones, and any still shutting down."""
        upgrades, self._upgrades = self._upgrades, None
        if upgrades is not None:
            await upgrades.aclose()
        await self._session.close()
        await self._connections.abort_all()


async def _read_limited(response: aiohttp.ClientResponse, limit: int, what: str) -> bytes:
    """The whole body, unless it is larger than ``limit`` bytes."""
    length = response.content_length
    if length is not None and length > limit:
        msg = f"{what}: the answer announces {length} bytes, more than the limit of {limit}"
        raise ResponseTooLargeError(msg)
    chunks: list[bytes] = []
    size = 0
    while chunk := await response.content.readany():
        size += len(chunk)
        if size > limit:
            msg = f"{what}: the answer is more than the limit of {limit} bytes"
            raise ResponseTooLargeError(msg)
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _read_decoded(
    response: aiohttp.ClientResponse, inflater: Inflater, limit: int | None, request: Request
) -> bytes:
    """The decoded body, unless it decodes to more than ``limit`` bytes.

    The size is checked after each bounded piece: a gzip bomb fails after
    ``limit`` bytes of work, not after inflating all of it.
    """
    pieces: list[bytes] = []
    size = 0
    while piece := await _read_inflated(response, inflater):
        size += len(piece)
        if limit is not None and size > limit:
            what = _describe(request)
            msg = f"{what}: the decoded answer is more than the limit of {limit} bytes"
            raise ResponseTooLargeError(msg)
        pieces.append(piece)
    return b"".join(pieces)
