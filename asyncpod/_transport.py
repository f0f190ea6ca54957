"""The transport contract and the endpoints a transport can carry requests to.

A transport moves ``Request`` objects to one API server endpoint and returns
``Response`` objects. The core never imports a transport implementation; it
names the endpoint and the engine, and ``asyncpod_transports`` (or a third
party) builds the transport. An endpoint's ``url`` is its origin alone:
userinfo in the URL it was given is dropped, so never shown.
"""

from __future__ import annotations

import ssl
from typing import Literal, Protocol

from attrs import field, frozen

from asyncpod._errors import ConfigError
from asyncpod._models import Request, Response
from asyncpod._urls import is_loopback, join_origin, redact, split_origin

Engine = Literal["aiohttp", "anyio"]
ENGINES: tuple[Engine, ...] = ("aiohttp", "anyio")


class Transport(Protocol):
    """Carries requests to one endpoint over pooled connections."""

    async def send(self, request: Request) -> Response:
        """Send one request and return its response.

        With ``request.stream`` false the whole body is in ``Response.content``
        and the connection is already released; otherwise the caller must
        ``aclose()`` the response.

        Raises:
            TransportError: the request could not be carried (``sent`` tells
                whether it may have reached the server).
            ProtocolError: the answer could not be read.
        """
        ...

    async def aclose(self) -> None:
        """Close every pooled connection. The transport cannot be used afterwards."""
        ...


class TLSContextSource(Protocol):
    """Hands out the SSL context for new connections.

    The context may change over time (a rotated CA bundle); a transport asks
    for it each time it opens a connection and reports verification failures so
    that the source can look for a new bundle at once.
    """

    def ssl_context(self) -> ssl.SSLContext: ...

    def verification_failed(self) -> None: ...


@frozen
class StaticTLS:
    """A TLS context source that never changes."""

    context: ssl.SSLContext

    def ssl_context(self) -> ssl.SSLContext:
        return self.context

    def verification_failed(self) -> None:
        return None


def _set_origin(endpoint: HTTPSEndpoint | ProxyEndpoint, scheme: str, what: str) -> None:
    """Fill in ``host`` and ``port`` and normalise ``url`` to the bare origin.

    The origin drops any userinfo, so that a password in the URL given is
    never shown by the endpoint.
    """
    _, host, port = split_origin(endpoint.url, schemes=(scheme,), what=what)
    object.__setattr__(endpoint, "host", host)
    object.__setattr__(endpoint, "port", port)
    object.__setattr__(endpoint, "url", join_origin(scheme, host, port))


@frozen
class HTTPSEndpoint:
    """The API server itself, over TLS, verified against ``tls``.

    Attributes:
        url: ``https://host:port`` (IPv6 literals bracketed).
        tls: where new connections get their SSL context.
        server_name: the name to verify and send as SNI when it differs from
            the URL's host (kubeconfig ``tls-server-name``).
    """

    url: str
    tls: TLSContextSource = field(eq=False)
    server_name: str | None = None
    host: str = field(init=False)
    port: int = field(init=False)

    def __attrs_post_init__(self) -> None:
        _set_origin(self, "https", "API server URL")


@frozen
class ProxyEndpoint:
    """A ``kubectl proxy`` that authenticates for us and serves plain HTTP.

    A proxy adds credentials to whatever reaches it, so a remote one would hand
    cluster access to the network: only loopback hosts are accepted unless
    ``allow_remote`` is set.
    """

    url: str
    allow_remote: bool = False
    host: str = field(init=False)
    port: int = field(init=False)

    def __attrs_post_init__(self) -> None:
        if not self.allow_remote and not is_loopback(
            split_origin(self.url, schemes=("http",), what="proxy URL")[1]
        ):
            msg = (
                f"proxy URL {redact(self.url)!r} is not on loopback; a kubectl proxy serves "
                "without authentication, so pass allow_remote=True only if that host is trusted"
            )
            raise ConfigError(msg)
        _set_origin(self, "http", "proxy URL")


@frozen
class UnixEndpoint:
    """A ``kubectl proxy --unix-socket`` listening on a Unix socket path."""

    path: str
    # kubectl proxy rejects requests whose Host is not in --accept-hosts,
    # which by default only matches localhost and loopback addresses.
    host_header: str = "localhost"


Endpoint = HTTPSEndpoint | ProxyEndpoint | UnixEndpoint


__all__ = [
    "ENGINES",
    "Endpoint",
    "Engine",
    "HTTPSEndpoint",
    "ProxyEndpoint",
    "StaticTLS",
    "TLSContextSource",
    "Transport",
    "UnixEndpoint",
]
