"""No socket is ever left to the garbage collector, whatever ends a request.

A connection that meets a protocol error, a refused certificate, a
cancellation or a timeout (while connecting, during the TLS handshake,
waiting for the head, in the middle of the body) is closed by the engine.
Each test counts the process's open file descriptors before and after, and
collects garbage with ResourceWarnings recorded: an unclosed socket or
transport would show in both.
"""

from __future__ import annotations

import contextlib
import gc
import os
import socket
import ssl
import warnings
from collections.abc import Awaitable, Callable, Iterator

import anyio
import pytest
import trustme
from asyncpod_transports import create_transport

import asyncpod
from asyncpod import HTTPSEndpoint, ProxyEndpoint, Request, StaticTLS, Transport
from tests.servers.raw import RawServer, Reply, Seen, answer, raw_server

pytestmark = pytest.mark.anyio

FLAVOURS = [("aiohttp", "asyncio"), ("anyio", "asyncio"), ("anyio", "trio")]
GET = Request(method="GET", target="/api/v1/pods")


@pytest.fixture(params=FLAVOURS, ids=[f"{e}-{b}" for e, b in FLAVOURS])
def flavour(request: pytest.FixtureRequest) -> tuple[str, str]:
    """An engine and the event loop it runs on."""
    return tuple(request.param)  # type: ignore[return-value]


@pytest.fixture
def anyio_backend(flavour: tuple[str, str]) -> str:
    """The event loop of the flavour."""
    return flavour[1]


@pytest.fixture
def engine(flavour: tuple[str, str]) -> str:
    """The engine of the flavour."""
    return flavour[0]


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    """The CA the client trusts."""
    return trustme.CA()


def server_context(ca: trustme.CA) -> ssl.SSLContext:
    """A server context with a certificate for 127.0.0.1 from ``ca``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


def client_context(ca: trustme.CA) -> ssl.SSLContext:
    """A verifying client context that trusts ``ca``."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(context)
    return context


def open_fds() -> int:
    """How many file descriptors this process has open."""
    return len(os.listdir("/proc/self/fd"))


def hold(seen: Seen) -> Reply:
    """Read the request and never answer."""
    return Reply((), "hold")


def garbage(seen: Seen) -> Reply:
    """Answer with bytes that are not HTTP, and keep the connection open."""
    return Reply([b"SSH-2.0-OpenSSH_9.6\r\n\r\n"], "hold")


def bad_head(seen: Seen) -> Reply:
    """Answer with a head that is not valid HTTP, and keep the connection open."""
    return Reply([b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"], "hold")


def sockets_connected_to(port: int) -> int:
    """How many sockets of this process are connected to ``port`` on the loopback."""
    mine = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith("socket:["):
                mine.add(target[len("socket:[") : -1])
    with open("/proc/net/tcp") as table:
        rows = [line.split() for line in table.readlines()[1:]]
    return sum(1 for row in rows if int(row[2].split(":")[1], 16) == port and row[9] in mine)


def half_body(seen: Seen) -> Reply:
    """Announce 1,000 bytes, send 10, and wait."""
    return Reply([answer(b"x" * 1000)[:-990]], "hold")


@contextlib.contextmanager
def full_backlog() -> Iterator[str]:
    """A listener whose accept queue is full: a connect to it hangs (the SYN is dropped)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = [socket.socket() for _ in range(3)]
        try:
            for filler in fillers:
                filler.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    filler.connect(("127.0.0.1", port))
            yield f"http://127.0.0.1:{port}"
        finally:
            for filler in fillers:
                filler.close()


async def no_leak(
    engine: str,
    endpoint: Callable[[], asyncpod.Endpoint],
    action: Callable[[Transport], Awaitable[None]],
    servers: list[RawServer],
    **kwargs: object,
) -> None:
    """Run ``action`` on a new transport, close everything; assert no fd and no warning leaked."""
    transport = create_transport(endpoint(), engine=engine, **kwargs)  # type: ignore[arg-type]
    try:
        await action(transport)
    finally:
        await transport.aclose()
    for server in servers:
        server.stop()
    # asyncio closes a socket one loop iteration after close(); let it run.
    await anyio.sleep(0.05)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


async def expect(error: type[BaseException], transport: Transport, **kwargs: bool) -> None:
    """Send a GET and require ``error``."""
    with pytest.raises(error):
        await transport.send(Request(method="GET", target="/api/v1/pods", **kwargs))


async def cancelled_after(delay: float, transport: Transport, *, stream: bool = False) -> None:
    """Send a GET (reading a stream's body) and cancel it after ``delay`` seconds."""
    with anyio.move_on_after(delay) as scope:
        response = await transport.send(Request(method="GET", target="/", stream=stream))
        try:
            await response.aread()
        finally:
            await response.aclose()
    assert scope.cancelled_caught


async def test_protocol_error_closes_the_connection(engine: str, ca: trustme.CA) -> None:
    """Garbage for an answer, over TCP and TLS: the engine closes the connection itself."""
    before = open_fds()
    with raw_server(garbage) as plain, raw_server(garbage, server_context(ca)) as tls:
        for _ in range(5):
            await no_leak(
                engine,
                lambda: ProxyEndpoint(plain.url),
                lambda t: expect(asyncpod.ProtocolError, t),
                [],
            )
            await no_leak(
                engine,
                lambda: HTTPSEndpoint(tls.url, StaticTLS(client_context(ca))),
                lambda t: expect(asyncpod.ProtocolError, t),
                [],
            )
    assert await settled(before)


async def test_protocol_error_over_tls_is_closed_by_aclose(engine: str, ca: trustme.CA) -> None:
    """An invalid head over TLS from a server that keeps the connection: aclose() closes it.

    The engine's TLS shutdown would wait for the server's close_notify; the
    server never sends one, so aclose() has to end the connection itself
    rather than leave the socket to the loop's end and the garbage collector.
    """
    with raw_server(bad_head, server_context(ca)) as server:
        port = int(server.url.rsplit(":", 1)[1])
        transport = create_transport(
            HTTPSEndpoint(server.url, StaticTLS(client_context(ca))),
            engine=engine,  # type: ignore[arg-type]
        )
        try:
            await expect(asyncpod.ProtocolError, transport)
        finally:
            await transport.aclose()
        assert sockets_connected_to(port) == 0
        assert server.connections == 1


async def test_refused_certificate_closes_the_connection(engine: str, ca: trustme.CA) -> None:
    """A certificate from an unknown CA: TransportError, and the socket is closed at once."""
    before = open_fds()
    with raw_server(hold, server_context(trustme.CA())) as server:
        for _ in range(5):
            await no_leak(
                engine,
                lambda: HTTPSEndpoint(server.url, StaticTLS(client_context(ca))),
                lambda t: expect(asyncpod.TransportError, t),
                [],
            )
    assert await settled(before)


async def test_cancelled_connect_closes_the_socket(engine: str) -> None:
    """Cancelled while the TCP connect hangs: the half-open socket is closed."""
    before = open_fds()
    with full_backlog() as url:
        await no_leak(engine, lambda: ProxyEndpoint(url), lambda t: cancelled_after(0.3, t), [])
    assert await settled(before)


async def test_connect_timeout_closes_the_socket(engine: str) -> None:
    """connect_timeout passes while the TCP connect hangs: nothing is left open."""
    before = open_fds()
    with full_backlog() as url:
        await no_leak(
            engine,
            lambda: ProxyEndpoint(url),
            lambda t: expect(asyncpod.RequestTimeoutError, t),
            [],
            connect_timeout=0.3,
        )
    assert await settled(before)


@pytest.mark.parametrize("how", ["cancelled", "timeout"])
async def test_stuck_tls_handshake_closes_the_socket(engine: str, ca: trustme.CA, how: str) -> None:
    """A server that never answers the ClientHello: cancelled or timed out, nothing is left open."""
    before = open_fds()
    # A plain server never answers the handshake: it waits for an HTTP head.
    with raw_server(hold) as server:
        url = server.url.replace("http://", "https://")
        if how == "cancelled":
            await no_leak(
                engine,
                lambda: HTTPSEndpoint(url, StaticTLS(client_context(ca))),
                lambda t: cancelled_after(0.3, t),
                [],
            )
        else:
            await no_leak(
                engine,
                lambda: HTTPSEndpoint(url, StaticTLS(client_context(ca))),
                lambda t: expect(asyncpod.RequestTimeoutError, t),
                [],
                connect_timeout=0.3,
            )
    assert await settled(before)


@pytest.mark.parametrize("rule", [hold, half_body], ids=["waiting-for-head", "mid-body"])
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
async def test_cancelled_request_closes_the_connection(
    engine: str, ca: trustme.CA, rule: Callable[[Seen], Reply], stream: bool, tls: bool
) -> None:
    """Cancelled waiting for the head or in the middle of the body: the connection is closed."""
    before = open_fds()
    with raw_server(rule, server_context(ca) if tls else None) as server:

        def endpoint() -> asyncpod.Endpoint:
            if tls:
                return HTTPSEndpoint(server.url, StaticTLS(client_context(ca)))
            return ProxyEndpoint(server.url)

        await no_leak(engine, endpoint, lambda t: cancelled_after(0.3, t, stream=stream), [])
        assert len(server.seen) == 1
    assert await settled(before)


async def settled(before: int) -> bool:
    """Whether the count of open descriptors comes back to ``before`` within 5 s."""
    with anyio.move_on_after(5):
        while open_fds() > before:  # noqa: ASYNC110 - nothing to wait on but the kernel
            await anyio.sleep(0.02)
    return open_fds() <= before
