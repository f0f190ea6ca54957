"""The transports, on every engine, against a real HTTP server and the real ``kubectl proxy``.

Every test runs on each engine and event loop that can carry it: aiohttp on
asyncio, the anyio engine on asyncio and on trio. Route-independent behaviour
runs over each route: direct HTTPS, a plain-HTTP proxy, and a Unix socket.
"""

from __future__ import annotations

import base64
import gc
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import trustme
from asyncpod_transports import create_transport

import asyncpod
from asyncpod import (
    Client,
    Config,
    ConfigError,
    HTTPSEndpoint,
    NotFoundError,
    ProtocolError,
    ProxyEndpoint,
    Request,
    RequestTimeoutError,
    ServerError,
    StaticTLS,
    Transport,
    TransportError,
    UnixEndpoint,
)
from asyncpod._assemble import endpoint_for as make_endpoint
from tests.helpers.clients import FAST
from tests.servers.transport import TransportTestServer, pattern_body

pytestmark = pytest.mark.anyio

FLAVOURS = [("aiohttp", "asyncio"), ("anyio", "asyncio"), ("anyio", "trio")]
ROUTES = ["https", "proxy", "unix"]
LISTENER = {"https": "tls", "proxy": "plain", "unix": "unix"}
KUBECONFIG_TOKEN = "kubeconfig-token-0123456789"


# fixtures


@pytest.fixture(params=FLAVOURS, ids=[f"{e}-{b}" for e, b in FLAVOURS])
def flavour(request: pytest.FixtureRequest) -> tuple[str, str]:
    """An engine and the event loop it runs on."""
    return tuple(request.param)  # type: ignore[return-value]


@pytest.fixture
def anyio_backend(flavour: tuple[str, str]) -> str:
    """The event loop of the flavour (overrides the conftest parametrization)."""
    return flavour[1]


@pytest.fixture
def engine(flavour: tuple[str, str]) -> str:
    """The engine of the flavour."""
    return flavour[0]


@pytest.fixture(params=ROUTES)
def route(request: pytest.FixtureRequest) -> str:
    """How the transport reaches the server."""
    return str(request.param)


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    """The certificate authority the test server's certificates come from."""
    return trustme.CA()


@pytest.fixture(scope="session")
def server(
    tmp_path_factory: pytest.TempPathFactory, ca: trustme.CA
) -> Iterator[TransportTestServer]:
    """The test server, on TLS, plain TCP and a Unix socket."""
    srv = TransportTestServer(tmp_path_factory.mktemp("server"), ca)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def ca_file(tmp_path_factory: pytest.TempPathFactory, ca: trustme.CA) -> Path:
    """The CA certificate in a PEM file."""
    path = tmp_path_factory.mktemp("ca") / "ca.crt"
    ca.cert_pem.write_to_path(str(path))
    return path


def client_context(ca: trustme.CA) -> ssl.SSLContext:
    """A verifying client context that trusts ``ca``."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(context)
    return context


def endpoint_for(route: str, server: TransportTestServer, ca: trustme.CA) -> asyncpod.Endpoint:
    """The endpoint of ``route`` on the test server."""
    if route == "https":
        return HTTPSEndpoint(server.url("tls"), StaticTLS(client_context(ca)))
    if route == "proxy":
        return ProxyEndpoint(server.url("plain"))
    return UnixEndpoint(server.unix_path)


def config_for(route: str, server: TransportTestServer, ca_file: Path) -> Config:
    """A client config of ``route`` on the test server."""
    if route == "https":
        return Config.https(server.url("tls"), token="client-token", ca_file=ca_file)
    if route == "proxy":
        return Config.proxy(server.url("plain"))
    return Config.unix_socket(server.unix_path)


@pytest.fixture
async def make_transport(
    engine: str,
) -> AsyncIterator[Callable[..., Transport]]:
    """Builds transports on the test's engine and closes them after the test."""
    made: list[Transport] = []

    def make(endpoint: asyncpod.Endpoint, **kwargs: Any) -> Transport:
        transport = create_transport(endpoint, engine=engine, **kwargs)  # type: ignore[arg-type]
        made.append(transport)
        return transport

    yield make
    for transport in made:
        await transport.aclose()


@pytest.fixture
async def transport(
    make_transport: Callable[..., Transport],
    route: str,
    server: TransportTestServer,
    ca: trustme.CA,
) -> Transport:
    """A transport of the test's engine and route, aimed at the test server."""
    return make_transport(endpoint_for(route, server, ca))


def tag() -> str:
    """A marker that picks this test's requests out of the server's records."""
    return os.urandom(6).hex()


async def get(transport: Transport, target: str, **headers: str) -> asyncpod.Response:
    """A GET with the given headers (underscores become dashes)."""
    fields = {name.replace("_", "-"): value for name, value in headers.items()}
    return await transport.send(Request(method="GET", target=target, headers=fields))


async def eventually(condition: Callable[[], bool], limit: float = 5.0) -> bool:
    """Poll ``condition`` (it reads another thread's state) until it holds or ``limit`` passes."""
    with anyio.move_on_after(limit):
        while not condition():  # noqa: ASYNC110 - nothing to wait on across threads
            await anyio.sleep(0.01)
    return condition()


# status codes and bodies


async def test_status_codes_and_bodies_arrive_intact(transport: Transport) -> None:
    """200, a 404 Status and a 500 come back with their status and body."""
    ok = await get(transport, "/status/200")
    assert ok.status == 200
    assert ok.json() == {"kind": "Ok"}
    assert ok.headers["Content-Type"] == "application/json"
    missing = await get(transport, "/status/404")
    assert missing.status == 404
    assert missing.json()["reason"] == "NotFound"
    failed = await get(transport, "/status/500")
    assert failed.status == 500
    assert failed.json()["code"] == 500


async def test_request_body_and_method_reach_the_server(transport: Transport) -> None:
    """A POST body arrives whole with the method and target as sent."""
    body = json.dumps({"data": "x" * 100_000}).encode()
    response = await transport.send(
        Request(method="POST", target="/echo?a=1&b=%2F", content=body, headers={})
    )
    echo = response.json()
    assert (echo["method"], echo["target"], echo["body_length"]) == (
        "POST",
        "/echo?a=1&b=%2F",
        len(body),
    )


async def test_fifty_megabyte_body(
    make_transport: Callable[..., Transport], server: TransportTestServer, ca: trustme.CA
) -> None:
    """A 50 MB body over TLS arrives byte for byte."""
    size = 50 * 1024 * 1024
    transport = make_transport(endpoint_for("https", server, ca))
    response = await get(transport, f"/big?size={size}")
    assert len(response.content) == size
    assert response.content == pattern_body(size)


# streaming


async def test_streamed_body_over_tls_arrives_whole(
    make_transport: Callable[..., Transport], server: TransportTestServer, ca: trustme.CA
) -> None:
    """A 5 MB body streamed over TLS (hundreds of records) arrives byte for byte."""
    size = 5 * 1024 * 1024
    transport = make_transport(endpoint_for("https", server, ca))
    response = await transport.send(Request(method="GET", target=f"/big?size={size}", stream=True))
    try:
        assert response.stream is not None
        chunks = []
        while chunk := await response.stream.receive():
            chunks.append(chunk)
    finally:
        await response.aclose()
    assert b"".join(chunks) == pattern_body(size)


async def test_chunked_stream_line_by_line(transport: Transport) -> None:
    """A chunked body cut mid-line streams back as whole lines."""
    response = await transport.send(Request(method="GET", target="/lines?n=20", stream=True))
    try:
        lines = [json.loads(line) async for line in response.aiter_lines()]
    finally:
        await response.aclose()
    assert [event["n"] for event in lines] == list(range(20))


async def test_stream_read_to_end_returns_connection(
    transport: Transport, server: TransportTestServer
) -> None:
    """A stream read to its end hands its connection to the next request."""
    marker = tag()
    response = await transport.send(
        Request(method="GET", target=f"/echo?tag={marker}", stream=True)
    )
    await response.aread()
    await get(transport, f"/echo?tag={marker}")
    assert len({r.connection for r in server.records(marker)}) == 1


async def test_stream_closed_early_closes_connection(
    transport: Transport, server: TransportTestServer
) -> None:
    """A stream closed before its end is not reused: the next request opens a new connection."""
    marker = tag()
    response = await transport.send(
        Request(method="GET", target=f"/big?size=5000000&tag={marker}", stream=True)
    )
    await response.aclose()
    await get(transport, f"/echo?tag={marker}")
    records = server.records(marker)
    assert len(records) == 2
    assert records[0].connection != records[1].connection


# keep-alive and the pool


async def test_sequential_requests_share_one_connection(
    transport: Transport, server: TransportTestServer
) -> None:
    """Sequential requests travel on one keep-alive connection."""
    marker = tag()
    for _ in range(5):
        assert (await get(transport, f"/echo?tag={marker}")).status == 200
    assert len({r.connection for r in server.records(marker)}) == 1


async def test_pool_is_bounded(
    make_transport: Callable[..., Transport],
    route: str,
    server: TransportTestServer,
    ca: trustme.CA,
) -> None:
    """With max_connections=3, twelve concurrent requests share at most three connections."""
    transport = make_transport(endpoint_for(route, server, ca), max_connections=3)
    marker = tag()
    statuses: list[int] = []

    async def one() -> None:
        statuses.append((await get(transport, f"/echo?tag={marker}&delay=0.02")).status)

    async with anyio.create_task_group() as tg:
        for _ in range(12):
            tg.start_soon(one)
    assert statuses == [200] * 12
    assert len({r.connection for r in server.records(marker)}) <= 3


async def test_idle_connection_closed_by_server_is_replaced(
    transport: Transport, server: TransportTestServer
) -> None:
    """After the server closes an idle connection, the next request succeeds on a new one."""
    marker = tag()
    closed = server.idle_closed
    await get(transport, f"/echo?tag={marker}&close_idle=1")
    # The server closes it 10 ms after answering; under load that can take
    # longer, so wait for the close itself rather than a fixed time.
    assert await eventually(lambda: server.idle_closed > closed)
    await anyio.sleep(0.05)
    response = await get(transport, f"/echo?tag={marker}")
    assert response.status == 200
    assert len({r.connection for r in server.records(marker)}) == 2


async def test_get_on_connection_dropped_at_reuse_is_not_replayed_by_the_engine(
    transport: Transport, server: TransportTestServer
) -> None:
    """The engine sends a GET once: retrying it is the RetryPolicy's job, not a hidden loop."""
    marker = tag()
    await get(transport, f"/echo?tag={marker}&drop_next=1")
    with pytest.raises(TransportError) as caught:
        await get(transport, f"/echo?tag={marker}")
    assert caught.value.sent
    assert len(server.records(marker)) == 2
    # The next request gets its own connection and its answer.
    assert (await get(transport, f"/echo?tag={marker}")).status == 200
    records = server.records(marker)
    assert records[1].connection == records[0].connection != records[2].connection


async def test_post_on_connection_dropped_at_reuse_is_not_replayed(
    transport: Transport, server: TransportTestServer
) -> None:
    """A POST that may have reached the server is never replayed: a TransportError says sent."""
    marker = tag()
    await get(transport, f"/echo?tag={marker}&drop_next=1")
    with pytest.raises(TransportError) as caught:
        await transport.send(Request(method="POST", target=f"/echo?tag={marker}", content=b"{}"))
    assert caught.value.sent
    assert len(server.records(marker)) == 2


# broken answers


@pytest.mark.parametrize("path", ["/truncate", "/truncate-chunked"])
async def test_server_closing_mid_body_is_an_error(transport: Transport, path: str) -> None:
    """A body cut short by the server raises ProtocolError, never a short body."""
    with pytest.raises(ProtocolError) as caught:
        await get(transport, path)
    assert caught.value.sent


@pytest.mark.parametrize("path", ["/truncate", "/truncate-chunked"])
async def test_stream_closing_mid_body_is_an_error(transport: Transport, path: str) -> None:
    """A streaming body cut short raises ProtocolError from the read."""
    response = await transport.send(Request(method="GET", target=path, stream=True))
    try:
        with pytest.raises(ProtocolError):
            await response.aread()
    finally:
        await response.aclose()


async def test_malformed_answer_is_a_protocol_error(transport: Transport) -> None:
    """An answer that is not valid HTTP raises ProtocolError."""
    with pytest.raises(ProtocolError):
        await get(transport, "/garbage")


# connecting and TLS


class RecordingTLS:
    """A TLS source that counts what the transport asked of it, and can rotate."""

    def __init__(self, *contexts: ssl.SSLContext) -> None:
        self.contexts = list(contexts)
        self.handed_out = 0
        self.failures = 0

    def ssl_context(self) -> ssl.SSLContext:
        self.handed_out += 1
        return self.contexts[0]

    def verification_failed(self) -> None:
        self.failures += 1
        if len(self.contexts) > 1:
            # A rotated CA bundle: new connections use the next context.
            self.contexts.pop(0)


async def test_wrong_ca_fails_verification(
    make_transport: Callable[..., Transport], server: TransportTestServer
) -> None:
    """A server certificate from another CA is a TransportError, reported to the TLS source."""
    tls = RecordingTLS(client_context(trustme.CA()))
    transport = make_transport(HTTPSEndpoint(server.url("tls"), tls))
    with pytest.raises(TransportError) as caught:
        await get(transport, "/status/200")
    assert not caught.value.sent
    assert "certificate" in str(caught.value).lower() or "verif" in str(caught.value).lower()
    assert tls.failures == 1


async def test_rotated_ca_applies_to_new_connections(
    make_transport: Callable[..., Transport],
    engine: str,
    server: TransportTestServer,
    ca: trustme.CA,
) -> None:
    """After a verification failure, the next connection uses the source's new context."""
    tls = RecordingTLS(client_context(trustme.CA()), client_context(ca))
    transport = make_transport(HTTPSEndpoint(server.url("tls"), tls))
    with pytest.raises(TransportError):
        await get(transport, "/status/200")
    for _ in range(3):
        assert (await get(transport, "/status/200")).status == 200
    if engine == "anyio":
        # Asked once per new connection, not per request.
        assert tls.handed_out == 2


async def test_ip_san_is_checked(
    make_transport: Callable[..., Transport], server: TransportTestServer, ca: trustme.CA
) -> None:
    """An IP in the URL is matched against the certificate's IP SANs, never skipped."""
    matching = make_transport(HTTPSEndpoint(server.url("tls"), StaticTLS(client_context(ca))))
    assert (await get(matching, "/status/200")).status == 200
    # This certificate names only kubernetes.default.svc: no IP SAN.
    transport = make_transport(HTTPSEndpoint(server.url("named"), StaticTLS(client_context(ca))))
    with pytest.raises(TransportError) as caught:
        await get(transport, "/status/200")
    assert not caught.value.sent


async def test_server_name_overrides_the_checked_name(
    make_transport: Callable[..., Transport], server: TransportTestServer, ca: trustme.CA
) -> None:
    """With server_name, the certificate is checked against it; Host stays the URL's."""
    endpoint = HTTPSEndpoint(
        server.url("named"), StaticTLS(client_context(ca)), server_name="kubernetes.default.svc"
    )
    transport = make_transport(endpoint)
    echo = (await get(transport, "/echo")).json()
    assert echo["headers"]["host"] == f"127.0.0.1:{server.ports['named']}"


async def test_wrong_server_name_fails(
    make_transport: Callable[..., Transport], server: TransportTestServer, ca: trustme.CA
) -> None:
    """A server_name the certificate does not cover is refused."""
    endpoint = HTTPSEndpoint(
        server.url("tls"), StaticTLS(client_context(ca)), server_name="elsewhere.example"
    )
    transport = make_transport(endpoint)
    with pytest.raises(TransportError):
        await get(transport, "/status/200")


async def test_refused_connection_was_not_sent(
    make_transport: Callable[..., Transport], tmp_path: Path
) -> None:
    """A refused connection raises TransportError with sent=False."""
    transport = make_transport(ProxyEndpoint(f"http://127.0.0.1:{closed_port()}"))
    with pytest.raises(TransportError) as caught:
        await get(transport, "/status/200")
    assert not caught.value.sent
    transport = make_transport(UnixEndpoint(str(tmp_path / "missing.sock")))
    with pytest.raises(TransportError) as caught:
        await get(transport, "/status/200")
    assert not caught.value.sent


async def test_a_host_name_is_resolved(
    make_transport: Callable[..., Transport], server: TransportTestServer, ca: trustme.CA
) -> None:
    """A server given by name (not an IP literal) is looked up and reached, with TLS too."""
    plain = server.url("plain").replace("127.0.0.1", "localhost")
    echo = (await get(make_transport(ProxyEndpoint(plain)), "/echo")).json()
    assert echo["headers"]["host"] == f"localhost:{server.ports['plain']}"
    tls = server.url("tls").replace("127.0.0.1", "localhost")
    endpoint = HTTPSEndpoint(tls, StaticTLS(client_context(ca)))
    assert (await get(make_transport(endpoint), "/status/200")).status == 200


async def test_tls_to_a_plain_server_fails_unsent(
    make_transport: Callable[..., Transport], server: TransportTestServer, ca: trustme.CA
) -> None:
    """A TLS handshake with a server that does not speak TLS is a TransportError, sent=False."""
    url = server.url("plain").replace("http://", "https://")
    transport = make_transport(HTTPSEndpoint(url, StaticTLS(client_context(ca))))
    with pytest.raises(TransportError) as caught:
        await get(transport, "/status/200")
    assert not caught.value.sent


async def test_connect_timeout_covers_the_tls_handshake(
    make_transport: Callable[..., Transport], ca: trustme.CA
) -> None:
    """A server that accepts but never answers the handshake times out after connect_timeout."""
    with socket.socket() as listener:
        # The kernel completes TCP connections to a listening socket; nobody
        # ever reads the ClientHello.
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = f"https://127.0.0.1:{listener.getsockname()[1]}"
        transport = make_transport(
            HTTPSEndpoint(url, StaticTLS(client_context(ca))), connect_timeout=0.2
        )
        started = time.monotonic()
        with pytest.raises(RequestTimeoutError) as caught:
            await get(transport, "/status/200")
        assert time.monotonic() - started < 5
        assert not caught.value.sent
        await transport.aclose()


def closed_port() -> int:
    """A loopback port that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("library", "requested", "expected"),
    [
        ("asyncio", None, "anyio"),
        ("trio", None, "anyio"),
        ("asyncio", "aiohttp", "aiohttp"),
        ("asyncio", "anyio", "anyio"),
        ("trio", "anyio", "anyio"),
    ],
)
def test_default_engine_is_anyio_on_every_loop(library: str, requested: Any, expected: str) -> None:
    """Without a request the anyio engine runs, on asyncio as on trio; a request is honoured."""
    assert asyncpod.choose_engine(library, requested) == expected


@pytest.mark.parametrize(("library", "requested"), [("trio", "aiohttp"), ("asyncio", "httpx")])
def test_impossible_engine_is_a_config_error(library: str, requested: Any) -> None:
    """aiohttp on trio, or an unknown engine, is a ConfigError naming the engine."""
    with pytest.raises(ConfigError, match=requested):
        asyncpod.choose_engine(library, requested)


def test_proxy_refuses_remote_host_unless_allowed() -> None:
    """A proxy URL off loopback is refused unless allow_remote=True."""
    with pytest.raises(ConfigError, match="not on loopback"):
        ProxyEndpoint("http://192.0.2.10:8001")
    with pytest.raises(ConfigError, match="not on loopback"):
        make_endpoint(Config.proxy("http://192.0.2.10:8001"))
    assert ProxyEndpoint("http://192.0.2.10:8001", allow_remote=True).host == "192.0.2.10"
    assert ProxyEndpoint("http://localhost:8001").host == "localhost"


# headers


async def test_credentials_never_reach_a_proxy_or_socket(transport: Transport, route: str) -> None:
    """Authorization and Proxy-Authorization go only to the API server itself."""
    echo = (
        await get(
            transport, "/echo", Authorization="Bearer secret", Proxy_Authorization="Basic eA=="
        )
    ).json()
    if route == "https":
        assert echo["headers"]["authorization"] == "Bearer secret"
    else:
        assert "authorization" not in echo["headers"]
        assert "proxy-authorization" not in echo["headers"]


async def test_host_header(transport: Transport, route: str, server: TransportTestServer) -> None:
    """Host is the URL's host and port, or ``localhost`` on a Unix socket."""
    echo = (await get(transport, "/echo")).json()
    expected = "localhost" if route == "unix" else f"127.0.0.1:{server.ports[LISTENER[route]]}"
    assert echo["headers"]["host"] == expected


async def test_header_injection_is_refused(transport: Transport) -> None:
    """A header value with CR/LF is refused before anything is sent."""
    with pytest.raises(TransportError) as caught:
        await get(transport, "/echo", X_Test="a\r\nX-Injected: 1")
    assert not caught.value.sent
    with pytest.raises(TransportError) as caught:
        await transport.send(Request(method="GET", target="/echo", headers={"X-A: b": "c"}))
    assert not caught.value.sent
    # The connection pool is unharmed.
    assert (await get(transport, "/status/200")).status == 200


async def test_head_and_no_content_answers_keep_the_connection(
    transport: Transport, server: TransportTestServer
) -> None:
    """HEAD and 204 answers have no body, and the connection serves the next request."""
    marker = tag()
    head = await transport.send(Request(method="HEAD", target=f"/status/200?tag={marker}"))
    assert (head.status, head.content) == (200, b"")
    assert head.headers["content-length"] == "13"
    empty = await get(transport, f"/status/204?tag={marker}")
    assert (empty.status, empty.content) == (204, b"")
    assert (await get(transport, f"/echo?tag={marker}")).json()["method"] == "GET"
    assert len({r.connection for r in server.records(marker)}) == 1


async def test_redirects_are_not_followed(transport: Transport) -> None:
    """A 3xx comes back as it is."""
    response = await get(transport, "/status/302")
    assert response.status == 302


# cancellation


@pytest.mark.parametrize("route", ["https", "unix"])
async def test_cancelling_inflight_requests_leaks_no_connection(
    make_transport: Callable[..., Transport],
    route: str,
    server: TransportTestServer,
    ca: trustme.CA,
) -> None:
    """Cancelling 200 in-flight requests closes every connection they held."""
    listener = LISTENER[route]
    assert await eventually(lambda: server.open_connections(listener) == 0)
    # 200 TLS handshakes can take long on a loaded machine: generous limits.
    transport = make_transport(endpoint_for(route, server, ca), connect_timeout=60)
    async with anyio.create_task_group() as tg:
        for _ in range(200):
            tg.start_soon(get, transport, "/slow")
        assert await eventually(lambda: server.slow_waiting >= 100, limit=60)
        tg.cancel_scope.cancel()
    # The connections close because of the cancellation, before aclose().
    assert await eventually(lambda: server.open_connections(listener) == 0, limit=30)
    assert (await get(transport, "/status/200")).status == 200
    await transport.aclose()
    gc.collect()


async def test_cancelled_stream_read_closes_connection(
    transport: Transport, route: str, server: TransportTestServer
) -> None:
    """Cancelling a read of a streaming body and closing it releases the connection."""
    response = await transport.send(Request(method="GET", target="/lines?n=500", stream=True))
    with anyio.move_on_after(0.05):
        async for _ in response.aiter_bytes():
            pass
    await response.aclose()
    await transport.aclose()
    assert await eventually(lambda: server.open_connections(LISTENER[route]) == 0)


async def test_closed_transport_refuses_requests(transport: Transport) -> None:
    """A request after aclose() raises TransportError with sent=False."""
    await transport.aclose()
    with pytest.raises(TransportError) as caught:
        await get(transport, "/status/200")
    assert not caught.value.sent


# through asyncpod.Client


async def test_client_on_every_route(
    engine: str, route: str, server: TransportTestServer, ca_file: Path
) -> None:
    """Client.request, get_json and stream work on every route and engine."""
    config = config_for(route, server, ca_file)
    async with Client(config, engine=engine, retries=FAST) as k8s:  # type: ignore[arg-type]
        echo = await k8s.get_json("/echo", params={"q": "a b"})
        assert echo["target"] == "/echo?q=a+b" or echo["target"] == "/echo?q=a%20b"
        if route == "https":
            assert echo["headers"]["authorization"] == "Bearer client-token"
        else:
            assert "authorization" not in echo["headers"]
        response = await k8s.request("POST", "/echo", json={"kind": "ConfigMap"})
        assert response.json()["body_length"] == len(b'{"kind":"ConfigMap"}')
        with pytest.raises(NotFoundError) as missing:
            await k8s.request("GET", "/status/404")
        assert missing.value.reason == "NotFound"
        with pytest.raises(ServerError):
            await k8s.get_json("/status/500")
        async with k8s.stream("GET", "/lines", params={"n": 5}) as stream:
            lines = [json.loads(line)["n"] async for line in stream.aiter_lines()]
        assert lines == list(range(5))


async def test_client_maps_truncation_to_transport_error(
    engine: str, route: str, server: TransportTestServer, ca_file: Path
) -> None:
    """Through the client, a body cut short raises TransportError."""
    async with Client(config_for(route, server, ca_file), engine=engine) as k8s:  # type: ignore[arg-type]
        with pytest.raises(TransportError):
            await k8s.get_json("/truncate")


# the real kubectl proxy


def _find_kubectl() -> str:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        if os.environ.get("CI") == "true":
            pytest.fail("kubectl is not installed, and CI=true requires the kubectl tests")
        pytest.skip("kubectl is not installed")
    return kubectl


def _start_proxy(kubectl: str, kubeconfig: Path, home: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [kubectl, "proxy", f"--kubeconfig={kubeconfig}", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(home)},
    )


def _wait_serving(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("Starting to serve on "):
        process.kill()
        _, err = process.communicate(5)
        pytest.fail(f"kubectl proxy did not start: {line!r} {err!r}")
    return line.removeprefix("Starting to serve on ").strip()


@pytest.fixture(scope="session")
def kubectl_proxy(
    tmp_path_factory: pytest.TempPathFactory, server: TransportTestServer, ca: trustme.CA
) -> Iterator[dict[str, str]]:
    """``kubectl proxy`` on a TCP port and on a Unix socket, in front of the test server.

    The kubeconfig points at the listener whose certificate only names
    ``kubernetes.default.svc``, so it also proves kubectl's tls-server-name.
    """
    kubectl = _find_kubectl()
    folder = tmp_path_factory.mktemp("kubectl")
    kubeconfig = folder / "kubeconfig"
    ca_data = base64.b64encode(ca.cert_pem.bytes()).decode()
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\n"
        "clusters:\n- name: test\n  cluster:\n"
        f"    server: {server.url('named')}\n"
        f"    certificate-authority-data: {ca_data}\n"
        "    tls-server-name: kubernetes.default.svc\n"
        f"users:\n- name: test\n  user:\n    token: {KUBECONFIG_TOKEN}\n"
        "contexts:\n- name: test\n  context: {cluster: test, user: test}\n"
        "current-context: test\n"
    )
    socket_path = str(folder / "proxy.sock")
    tcp = _start_proxy(kubectl, kubeconfig, folder, "--port=0")
    unix = _start_proxy(kubectl, kubeconfig, folder, f"--unix-socket={socket_path}")
    try:
        address = _wait_serving(tcp)
        _wait_serving(unix)
        yield {"proxy": f"http://{address}", "unix": socket_path}
    finally:
        for process in (tcp, unix):
            process.terminate()
            try:
                process.communicate(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()


@pytest.fixture(params=["proxy", "unix"])
def kubectl_config(request: pytest.FixtureRequest, kubectl_proxy: dict[str, str]) -> Config:
    """A client config through kubectl proxy, on TCP or on its Unix socket."""
    if request.param == "proxy":
        return Config.proxy(kubectl_proxy["proxy"])
    return Config.unix_socket(kubectl_proxy["unix"])


@pytest.mark.kubectl
async def test_through_kubectl_proxy(engine: str, kubectl_config: Config) -> None:
    """Through the real kubectl proxy: statuses, Status errors, streaming and its token."""
    async with Client(kubectl_config, engine=engine, retries=FAST) as k8s:  # type: ignore[arg-type]
        assert await k8s.get_json("/status/200") == {"kind": "Ok"}
        echo = await k8s.get_json("/echo")
        # kubectl adds its own credentials; ours never reach it.
        assert echo["headers"]["authorization"] == f"Bearer {KUBECONFIG_TOKEN}"
        with pytest.raises(NotFoundError) as missing:
            await k8s.request("GET", "/status/404")
        assert missing.value.reason == "NotFound"
        with pytest.raises(ServerError):
            await k8s.request("GET", "/status/500")
        async with k8s.stream("GET", "/lines", params={"n": 10}) as stream:
            lines = [json.loads(line)["n"] async for line in stream.aiter_lines()]
        assert lines == list(range(10))
        response = await k8s.request("GET", "/big", params={"size": 3_000_000})
        assert response.content == pattern_body(3_000_000)


@pytest.mark.kubectl
async def test_kubectl_proxy_never_gets_our_token(
    make_transport: Callable[..., Transport], kubectl_config: Config
) -> None:
    """Behind kubectl proxy the server sees kubectl's token, whatever the caller set."""
    transport = make_transport(make_endpoint(kubectl_config))
    echo = (await get(transport, "/echo", Authorization="Bearer ours")).json()
    assert echo["headers"]["authorization"] == f"Bearer {KUBECONFIG_TOKEN}"


@pytest.mark.kubectl
async def test_kubectl_proxy_truncated_body_is_an_error(
    make_transport: Callable[..., Transport], kubectl_config: Config
) -> None:
    """A body that the upstream cut short is an error through kubectl proxy too."""
    transport = make_transport(make_endpoint(kubectl_config))
    with pytest.raises(TransportError):
        await get(transport, "/truncate")


@pytest.mark.kubectl
async def test_kubectl_proxy_reuses_connections(
    make_transport: Callable[..., Transport], kubectl_config: Config
) -> None:
    """Fifty sequential requests through kubectl proxy (a Go server) reuse the pool cleanly."""
    transport = make_transport(make_endpoint(kubectl_config))
    started = time.monotonic()
    for _ in range(50):
        assert (await get(transport, "/status/200")).status == 200
    assert time.monotonic() - started < 10
