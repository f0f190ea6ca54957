"""The transport contract and the endpoints a transport can carry requests to.

A transport moves ``Request`` objects to one API server endpoint and returns
``Response`` objects. The core never imports a transport implementation; it
names the endpoint and the engine, and ``asyncpod_transports`` (or a third
party) builds the transport.
"""

from __future__ import annotations

import ipaddress
import ssl
from typing import Literal, Protocol
from urllib.parse import urlsplit

from attrs import field, frozen

from asyncpod._errors import ConfigError
from asyncpod._models import Request, Response

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


def _split_origin(url: str, *, schemes: tuple[str, ...], what: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    if parts.scheme not in schemes:
        msg = f"{what} {url!r} must start with {' or '.join(s + '://' for s in schemes)}"
        raise ConfigError(msg)
    if not parts.hostname:
        msg = f"{what} {url!r} has no host"
        raise ConfigError(msg)
    try:
        port = parts.port
    except ValueError as exc:
        msg = f"{what} {url!r} has an invalid port"
        raise ConfigError(msg) from exc
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        msg = f"{what} {url!r} must be an origin only (no path, query or fragment)"
        raise ConfigError(msg)
    default_port = 443 if parts.scheme == "https" else 80
    return parts.scheme, parts.hostname, port or default_port


def _host_for_url(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP literals."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
        _, host, port = _split_origin(self.url, schemes=("https",), what="API server URL")
        object.__setattr__(self, "host", host)
        object.__setattr__(self, "port", port)
        object.__setattr__(self, "url", f"https://{_host_for_url(host)}:{port}")


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
        _, host, port = _split_origin(self.url, schemes=("http",), what="proxy URL")
        if not self.allow_remote and not is_loopback(host):
            msg = (
                f"proxy URL {self.url!r} is not on loopback; a kubectl proxy serves without "
                "authentication, so pass allow_remote=True only if that host is trusted"
            )
            raise ConfigError(msg)
        object.__setattr__(self, "host", host)
        object.__setattr__(self, "port", port)
        object.__setattr__(self, "url", f"http://{_host_for_url(host)}:{port}")


@frozen
class UnixEndpoint:
    """A ``kubectl proxy --unix-socket`` listening on a Unix socket path."""

    path: str
    # kubectl proxy rejects requests whose Host is not in --accept-hosts,
    # which by default only matches localhost and loopback addresses.
    host_header: str = "localhost"


Endpoint = HTTPSEndpoint | ProxyEndpoint | UnixEndpoint


def choose_engine(running_library: str, requested: Engine | None = None) -> Engine:
    """Which engine serves a client on ``running_library`` (sniffio's name).

    The anyio engine is the default on every event loop: measured side by side
    on asyncio (docs/benchmarks.md), it costs less CPU per request than the
    aiohttp engine, matches it on LISTs and watches, and holds an idle watch in
    a fifth of the memory. The aiohttp engine runs on asyncio when asked for.
    """
    if requested is not None:
        if requested not in ENGINES:
            msg = f"engine {requested!r} is not one of {', '.join(ENGINES)}"
            raise ConfigError(msg)
        if requested == "aiohttp" and running_library != "asyncio":
            msg = f"the aiohttp engine needs asyncio, but this is running on {running_library}"
            raise ConfigError(msg)
        return requested
    return "anyio"


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
    "choose_engine",
    "is_loopback",
]
