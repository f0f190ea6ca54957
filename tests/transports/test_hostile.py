"""Hostile and broken answers: each gives a clear error, never a crash or a leak."""

from __future__ import annotations

import functools
import json
import logging
import traceback
from pathlib import Path

import anyio
import pytest

from asyncpod import (
    APIError,
    AsyncpodError,
    Client,
    Config,
    ConfigError,
    ProtocolError,
    Request,
    Resource,
    ResponseTooLargeError,
    RetryPolicy,
    TransportError,
)
from tests.helpers.clients import ClientFactory
from tests.servers.fault import (
    TOKEN,
    FaultServer,
    big_body,
    hang,
    huge_header,
    respond,
    status_error,
    truncated_chunked,
    wait_until,
    watch_lines,
)

pytestmark = pytest.mark.anyio

# These tests count attempts, not time: the shortest retry waits.
QUICK = RetryPolicy(backoff_base=0.01, backoff_max=0.05)


@pytest.fixture
def make_client(make_client: ClientFactory) -> ClientFactory:
    """The shared client factory, with QUICK retries unless a test says otherwise."""
    return functools.partial(make_client, retries=QUICK)


def _all_text(exc: BaseException) -> str:
    """Every message, repr and traceback line of an exception and its chain."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts += [str(current), repr(current), *map(repr, current.args)]
        parts += traceback.format_exception(type(current), current, current.__traceback__)
        current = current.__cause__ or current.__context__
    return "\n".join(parts)


async def test_body_not_json(server: FaultServer, make_client: ClientFactory) -> None:
    """A 200 whose body is not JSON raises ProtocolError saying so."""
    server.next(respond(200, b"<html>proxy login</html>", {"Content-Type": "text/html"}))
    async with make_client(server) as k8s:
        with pytest.raises(ProtocolError, match="not JSON") as caught:
            await k8s.get_json("/api")
    assert "text/html" in str(caught.value)


async def test_error_body_not_json(server: FaultServer, make_client: ClientFactory) -> None:
    """A 404 with an HTML body still raises NotFoundError with the text."""
    server.next(respond(404, b"<h1>nope</h1>", {"Content-Type": "text/html"}))
    async with make_client(server) as k8s:
        with pytest.raises(APIError, match="nope") as caught:
            await k8s.get_json("/api/v1/namespaces/default/pods/x")
    assert caught.value.status == 404
    assert caught.value.body == {}


async def test_truncated_chunked_body(server: FaultServer, make_client: ClientFactory) -> None:
    """A chunked body cut in the middle raises ProtocolError, not retried."""
    server.next(truncated_chunked)
    async with make_client(server) as k8s:
        with pytest.raises(TransportError):
            await k8s.get_json("/api/v1/pods")
    assert len(server.seen("GET")) == 1


async def test_huge_announced_body_refused(server: FaultServer, make_client: ClientFactory) -> None:
    """A 200 MB answer announced by Content-Length fails at once, without reading it."""
    server.next(big_body(200 << 20))
    async with make_client(server) as k8s:
        start = anyio.current_time()
        with pytest.raises(ResponseTooLargeError, match=r"max_response_size|limit"):
            await k8s.get_json("/api/v1/pods")
        assert anyio.current_time() - start < 2.0


async def test_huge_chunked_body_bounded(server: FaultServer, make_client: ClientFactory) -> None:
    """A 200 MB chunked answer stops being read at max_response_size."""
    server.next(big_body(200 << 20, announce=False))
    async with make_client(server, max_response_size=1 << 20) as k8s:
        start = anyio.current_time()
        with pytest.raises(ResponseTooLargeError):
            await k8s.get_json("/api/v1/pods")
        assert anyio.current_time() - start < 2.0
        # The connection was dropped, and the next call works.
        await k8s.get_json("/api")


async def test_answer_within_max_response_size(
    server: FaultServer, make_client: ClientFactory
) -> None:
    """An answer of exactly max_response_size bytes is read whole."""
    server.next(respond(200, b"[" + b" " * 998 + b"]"))
    async with make_client(server, max_response_size=1000) as k8s:
        assert await k8s.get_json("/api") == []


async def test_one_megabyte_header(server: FaultServer, make_client: ClientFactory) -> None:
    """An answer with a 1 MB header field raises ProtocolError."""
    server.default = huge_header()
    async with make_client(server) as k8s:
        with pytest.raises(ProtocolError):
            await k8s.get_json("/api")


async def test_server_that_never_answers(server: FaultServer, make_client: ClientFactory) -> None:
    """A server that accepts and never answers hits the client's timeout."""
    server.default = hang
    async with make_client(server, timeout=0.2) as k8s:
        with pytest.raises(TimeoutError):
            await k8s.get_json("/api")


async def test_redirect_never_followed(tls_server: FaultServer, make_client: ClientFactory) -> None:
    """A redirect to another host is an error; the other host never sees the token."""
    with FaultServer() as elsewhere:
        tls_server.next(respond(302, b"", {"Location": f"{elsewhere.url}/api"}), times=2)
        async with make_client(tls_server) as k8s:
            with pytest.raises(APIError, match="never follows redirects") as caught:
                await k8s.get_json("/api")
            assert caught.value.status == 302
            with pytest.raises(APIError, match="redirect"):
                async with k8s.stream("GET", "/api/v1/pods", params={"watch": "1"}):
                    pass
        assert elsewhere.requests == []
    [first, _] = tls_server.seen("GET")
    assert first.headers["authorization"] == f"Bearer {TOKEN}"


async def test_token_file_with_binary_blob(
    tls_server: FaultServer, make_client: ClientFactory, tmp_path: Path
) -> None:
    """A token file holding binary junk is a ConfigError naming the file, not its bytes."""
    token_file = tmp_path / "token"
    token_file.write_bytes(b"\x00\xff\xfe" + b"\r\nX-Injected: 1" + bytes(range(256)))
    config = Config.https(tls_server.url, token_file=token_file, ca_file=tls_server.ca_file)
    with pytest.raises(ConfigError, match="token") as caught:
        async with make_client(config) as k8s:
            await k8s.get_json("/api")
    assert str(token_file) in str(caught.value)
    assert "X-Injected" not in _all_text(caught.value)
    assert tls_server.requests == []


async def test_token_file_with_huge_blob(
    tls_server: FaultServer, make_client: ClientFactory, tmp_path: Path
) -> None:
    """A 50 MB token file is a ConfigError, not a 50 MB header."""
    token_file = tmp_path / "token"
    token_file.write_bytes(b"a" * (50 << 20))
    config = Config.https(tls_server.url, token_file=token_file, ca_file=tls_server.ca_file)
    with pytest.raises(ConfigError, match="token"):
        async with make_client(config) as k8s:
            await k8s.get_json("/api")
    assert tls_server.requests == []


async def test_token_never_leaks(
    tls_server: FaultServer,
    make_client: ClientFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No exception (chain included), repr or log line ever shows the bearer token."""
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    tls_server.next(status_error(401))
    tls_server.next(status_error(403))
    tls_server.next(status_error(503), times=6)
    tls_server.next(huge_header())
    tls_server.next(truncated_chunked)
    tls_server.next(respond(200, b"not json"))
    tls_server.next(hang)
    # The six 503s are retried within one call's timeout, which leaves room for
    # a busy machine (only the hang reaches it).
    async with make_client(tls_server, timeout=1.0) as k8s:
        texts += [repr(k8s), repr(k8s.config), repr(k8s._auth), repr(k8s._transport)]
        for _ in range(7):
            with pytest.raises(AsyncpodError) as caught:
                await k8s.get_json("/api")
            texts.append(_all_text(caught.value))
    assert len(tls_server.requests) == 12
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in tls_server.requests)
    texts.append(repr(Request(method="GET", target="/", headers={"Authorization": TOKEN})))
    texts += [record.getMessage() for record in caplog.records]
    texts.append(caplog.text)
    secret = TOKEN.split(".")[1]
    for text in texts:
        assert secret not in text


async def test_tls_verified_without_ca(
    tls_server: FaultServer, make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the CA the server is refused, whatever the environment says."""
    for name in ["PYTHONHTTPSVERIFY", "CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"]:
        monkeypatch.setenv(name, "0" if name == "PYTHONHTTPSVERIFY" else "")
    config = Config.https(tls_server.url, token=TOKEN)
    async with make_client(config, retries=0) as k8s:
        with pytest.raises(TransportError, match=r"TLS|certificate") as caught:
            await k8s.get_json("/api")
    assert not caught.value.sent
    assert tls_server.requests == []


async def test_only_the_kubeconfig_flag_turns_verification_off(
    tls_server: FaultServer,
    make_client: ClientFactory,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """insecure-skip-tls-verify in a kubeconfig connects without the CA, with a warning."""
    kubeconfig = tmp_path / "config"
    for insecure in (False, True):
        kubeconfig.write_text(
            f"""
apiVersion: v1
kind: Config
current-context: c
contexts: [{{name: c, context: {{cluster: k, user: u}}}}]
clusters:
- name: k
  cluster: {{server: "{tls_server.url}", insecure-skip-tls-verify: {str(insecure).lower()}}}
users: [{{name: u, user: {{token: {TOKEN}}}}}]
"""
        )
        config = Config.from_kubeconfig(kubeconfig)
        async with make_client(config, retries=0) as k8s:
            if insecure:
                await k8s.get_json("/api")
            else:
                with pytest.raises(TransportError, match=r"TLS|certificate"):
                    await k8s.get_json("/api")
    assert len(tls_server.requests) == 1
    assert "NOT verified" in caplog.text
    assert TOKEN not in caplog.text


CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap", True)


def _event(name: str, version: str) -> bytes:
    obj = {"kind": "ConfigMap", "metadata": {"name": name, "resourceVersion": version}}
    return json.dumps({"type": "ADDED", "object": obj}).encode()


async def test_watch_line_not_json(server: FaultServer, make_client: ClientFactory) -> None:
    """A watch line that is not JSON ends the watch with ProtocolError and releases the socket."""
    server.next(watch_lines([_event("a", "5"), b"<html>oops</html>"], then_hang=True))
    names: list[str] = []

    async def consume(k8s: Client) -> None:
        async for event in k8s.watch(CONFIGMAPS, resource_version="1"):
            names.append(event.object["metadata"]["name"])

    async with make_client(server) as k8s:
        with anyio.fail_after(5), pytest.raises(ProtocolError):
            await consume(k8s)
    # The good event is lost when both lines arrive in one read: the decoder
    # raises for the whole chunk.
    assert names in ([], ["a"])
    assert server.open_connections == 0 or await wait_until(lambda: server.open_connections == 0)


async def test_watch_line_too_long(server: FaultServer, make_client: ClientFactory) -> None:
    """A watch line longer than max_object_size raises ProtocolError instead of growing."""
    server.next(watch_lines([b'{"type": "ADDED", "object": {"x": "' + b"a" * 100_000]))
    async with make_client(server) as k8s:
        watch = k8s.watch(CONFIGMAPS, resource_version="1", max_object_size=10_000)
        with anyio.fail_after(5), pytest.raises(ProtocolError):
            await watch.__anext__()
