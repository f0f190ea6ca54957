"""The aiohttp engine: the fastest way to carry requests on asyncio."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping

import aiohttp
from yarl import URL

from asyncpod import (
    Endpoint,
    HTTPSEndpoint,
    ProtocolError,
    Request,
    Response,
    TransportError,
    UnixEndpoint,
)

_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization"})


class _AiohttpStream:
    """A streaming body read from an aiohttp response."""

    __slots__ = ("_response", "_what")

    def __init__(self, response: aiohttp.ClientResponse, what: str) -> None:
        self._response = response
        self._what = what

    async def receive(self) -> bytes:
        try:
            return await self._response.content.readany()
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise _map_error(exc, self._what, sent=True) from exc

    async def aclose(self) -> None:
        response = self._response
        if response.content.at_eof():
            response.release()
        else:
            # An unread body cannot be skipped cheaply: drop the connection.
            response.close()


def _map_error(exc: BaseException, what: str, *, sent: bool) -> TransportError:
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return TransportError(
            f"{what}: TLS verification failed: {exc.certificate_error}", sent=False
        )
    if isinstance(exc, aiohttp.ClientConnectorSSLError | aiohttp.ClientSSLError):
        return TransportError(f"{what}: TLS handshake failed: {exc}", sent=False)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return TransportError(f"{what}: could not connect: {exc.os_error}", sent=False)
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ClientResponseError):
        return ProtocolError(f"{what}: the answer could not be read: {exc}")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return TransportError(f"{what}: the server closed the connection", sent=sent)
    return TransportError(f"{what}: {type(exc).__name__}: {exc}", sent=sent)


class AiohttpTransport:
    """Carries requests to one endpoint through an aiohttp session (asyncio only).

    Args:
        endpoint: where to send requests.
        max_connections: the size of the keep-alive pool.
        connect_timeout: seconds to open a connection, TLS handshake included.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        max_connections: int = 100,
        connect_timeout: float | None = 10.0,
    ) -> None:
        self.endpoint = endpoint
        self._strip_credentials = not isinstance(endpoint, HTTPSEndpoint)
        connector: aiohttp.BaseConnector
        if isinstance(endpoint, UnixEndpoint):
            connector = aiohttp.UnixConnector(path=endpoint.path, limit=max_connections)
            self._base = f"http://{endpoint.host_header}"
        else:
            connector = aiohttp.TCPConnector(limit=max_connections, ttl_dns_cache=None)
            self._base = endpoint.url
        self._tls = endpoint.tls if isinstance(endpoint, HTTPSEndpoint) else None
        self._server_name = endpoint.server_name if isinstance(endpoint, HTTPSEndpoint) else None
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout),
            auto_decompress=True,
            trust_env=False,
            skip_auto_headers=("User-Agent",),
        )

    def __repr__(self) -> str:
        return f"AiohttpTransport({self.endpoint!r})"

    def _headers(self, headers: Mapping[str, str]) -> Mapping[str, str]:
        if self._strip_credentials and any(name.lower() in _CREDENTIAL_HEADERS for name in headers):
            # A proxy authenticates for us: our credentials must never reach it.
            return {k: v for k, v in headers.items() if k.lower() not in _CREDENTIAL_HEADERS}
        return headers

    async def send(self, request: Request) -> Response:
        what = f"{request.method} {request.target.partition('?')[0]}"
        ssl_context: ssl.SSLContext | bool = True
        if self._tls is not None:
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
            raise _map_error(exc, what, sent=False) from exc
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise _map_error(exc, what, sent=True) from exc
        if request.stream:
            return Response(
                status=response.status,
                headers=response.headers,
                stream=_AiohttpStream(response, what),
                reason=response.reason or "",
            )
        try:
            content = await response.read()
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            response.close()
            raise _map_error(exc, what, sent=True) from exc
        except BaseException:
            response.close()
            raise
        response.release()
        return Response(
            status=response.status,
            headers=response.headers,
            content=content,
            reason=response.reason or "",
        )

    async def aclose(self) -> None:
        await self._session.close()
