"""port_forward and forward_port against the sandbox's kubelet, to a real local TCP server."""

from __future__ import annotations

import os
from typing import Any

import anyio
import anyio.abc
import pytest

import asyncpod
from asyncpod.testing import PodEnvironment, Sandbox
from tests.helpers.sandbox import eventually
from tests.servers.echo import echo_server

pytestmark = pytest.mark.anyio

MIB = 1024 * 1024


def _pod(name: str = "web") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": [{"name": "app", "image": "app"}]},
    }


def _running(sandbox: Sandbox, name: str = "web") -> None:
    """Create the pod and wait until the fake kubelet runs it: exec needs it bound."""
    sandbox.create(_pod(name))
    sandbox.wait_running(name)


def _configs(sb: Sandbox, pod: PodEnvironment) -> list[asyncpod.Config]:
    return [
        asyncpod.Config.https(sb.server_url, token_file=pod.token_file, ca_file=pod.ca_file),
        asyncpod.Config.proxy(sb.proxy_url),
        asyncpod.Config.unix_socket(sb.unix_socket),
    ]


async def _echo_through(port: int, payload: bytes) -> bytes:
    async with (
        await anyio.connect_tcp("127.0.0.1", port) as client,
        anyio.create_task_group() as tasks,
    ):
        tasks.start_soon(client.send, payload)
        received = bytearray()
        while len(received) < len(payload):
            received += await client.receive(1 << 20)
    return bytes(received)


async def test_port_forward_stream_over_the_three_routes(
    sandbox: Sandbox, pod_environment: PodEnvironment, anyio_backend: str
) -> None:
    """One forwarded connection echoes through HTTPS, the proxy port and the Unix socket."""
    # A pod of its own: a session of an earlier test may still be logged late.
    name = f"routes-{anyio_backend}"
    _running(sandbox, name)
    async with echo_server() as server:
        sandbox.map_port(name, 8080, server.port)
        for config in _configs(sandbox, pod_environment):
            async with asyncpod.Client(config) as k8s, k8s.port_forward(name, 8080) as stream:
                await stream.send(b"ping")
                assert await stream.receive() == b"ping"
        assert server.connections == 3
        assert server.received == 12
    path = f"/api/v1/namespaces/default/pods/{name}/portforward"
    await eventually(lambda: sandbox.requests.count("GET", path) == 3)
    forwards = sandbox.requests.filter("GET", path)
    assert {r.listener for r in forwards} == {"https", "proxy", "unix"}
    assert all(r.query == "ports=8080" for r in forwards)


async def test_unmapped_port_raises_the_error_channel_text(sandbox: Sandbox) -> None:
    """Nothing listening on the pod's port: receive() raises PortForwardError with the text."""
    _running(sandbox)
    async with (
        asyncpod.Client(asyncpod.Config.proxy(sandbox.proxy_url)) as k8s,
        k8s.port_forward("web", 5432) as stream,
    ):
        with pytest.raises(asyncpod.PortForwardError) as caught:
            await stream.receive()
    assert "error forwarding port 5432" in str(caught.value)
    assert "connection refused" in str(caught.value).lower()
    assert isinstance(caught.value, asyncpod.AsyncpodError)


@pytest.mark.slow
async def test_listener_serves_100_concurrent_connections_of_1_mib(sandbox: Sandbox) -> None:
    """100 connections through one listener at once, each echoing 1 MiB intact."""
    _running(sandbox)
    payloads = [os.urandom(MIB) for _ in range(100)]
    results: dict[int, bytes] = {}
    async with echo_server() as server:
        sandbox.map_port("web", 80, server.port)
        async with (
            asyncpod.Client(asyncpod.Config.proxy(sandbox.proxy_url)) as k8s,
            k8s.forward_port("web", 80) as listener,
        ):

            async def one(index: int) -> None:
                results[index] = await _echo_through(listener.port, payloads[index])

            with anyio.fail_after(110):
                async with anyio.create_task_group() as tasks:
                    for index in range(100):
                        tasks.start_soon(one, index)
            assert listener.connections == 100
            assert listener.errors == []
        assert server.received == 100 * MIB
    assert all(results[i] == payloads[i] for i in range(100))


async def test_error_on_one_connection_leaves_the_others_working(sandbox: Sandbox) -> None:
    """A connection whose forwarding fails is reported; an open one and later ones go on."""
    _running(sandbox)
    async with echo_server() as server:
        sandbox.map_port("web", 80, server.port)
        async with (
            asyncpod.Client(asyncpod.Config.proxy(sandbox.proxy_url)) as k8s,
            k8s.forward_port("web", 80) as listener,
        ):
            async with await anyio.connect_tcp("127.0.0.1", listener.port) as first:
                await first.send(b"one")
                assert await first.receive() == b"one"
                # The pod's port stops answering for the next connection.
                dead = await anyio.create_tcp_listener(local_host="127.0.0.1")
                dead_port = dead.extra(anyio.abc.SocketAttribute.local_port)
                await dead.aclose()
                sandbox.map_port("web", 80, dead_port)
                async with await anyio.connect_tcp("127.0.0.1", listener.port) as second:
                    with anyio.fail_after(10), pytest.raises(anyio.EndOfStream):
                        await second.receive()
                sandbox.map_port("web", 80, server.port)
                await first.send(b"still")
                assert await first.receive() == b"still"
            assert await _echo_through(listener.port, b"third") == b"third"
            assert len(listener.errors) == 1
            assert "error forwarding port 80" in listener.errors[0]


async def test_pod_side_close_closes_the_local_connection(sandbox: Sandbox) -> None:
    """The pod's side closing ends the local connection at once (no CLOSE_WAIT left)."""
    _running(sandbox)
    async with echo_server() as server:
        server.goodbye = b"bye"
        sandbox.map_port("web", 80, server.port)
        async with (
            asyncpod.Client(asyncpod.Config.proxy(sandbox.proxy_url)) as k8s,
            k8s.forward_port("web", 80) as listener,
        ):
            async with await anyio.connect_tcp("127.0.0.1", listener.port) as client:
                received = b""
                with anyio.fail_after(10):
                    while True:
                        try:
                            received += await client.receive()
                        except anyio.EndOfStream:
                            break
            assert received == b"bye"
            assert listener.errors == []


async def test_local_close_reaches_the_pods_side(sandbox: Sandbox) -> None:
    """The local client closing ends the pod's side of the connection."""
    _running(sandbox)
    async with echo_server() as server:
        sandbox.map_port("web", 80, server.port)
        async with (
            asyncpod.Client(asyncpod.Config.proxy(sandbox.proxy_url)) as k8s,
            k8s.forward_port("web", 80) as listener,
        ):
            assert await _echo_through(listener.port, b"x") == b"x"
            await eventually(lambda: server.open == 0)


async def test_leaving_the_listener_with_connections_open_leaves_nothing(
    sandbox: Sandbox,
) -> None:
    """Leaving forward_port with a connection mid-transfer closes every socket and task."""
    _running(sandbox)
    async with echo_server() as server:
        sandbox.map_port("web", 80, server.port)
        async with asyncpod.Client(asyncpod.Config.proxy(sandbox.proxy_url)) as k8s:
            async with k8s.forward_port("web", 80) as listener:
                client = await anyio.connect_tcp("127.0.0.1", listener.port)
                await client.send(b"hello")
                assert await client.receive() == b"hello"
            with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                with anyio.fail_after(10):
                    await client.receive()
            await client.aclose()
            with pytest.raises(OSError):
                await anyio.connect_tcp("127.0.0.1", listener.port)
        await eventually(lambda: server.open == 0)


@pytest.mark.slow
async def test_large_echo_on_one_connection_never_deadlocks(sandbox: Sandbox) -> None:
    """64 MiB in 1 MiB writes over TLS while the echo comes back: no write waits on a read."""
    _running(sandbox)
    payload = os.urandom(64 * MIB)
    async with echo_server() as server:
        sandbox.map_port("web", 80, server.port)
        async with (
            asyncpod.Client(asyncpod.Config.from_kubeconfig(sandbox.kubeconfig)) as k8s,
            k8s.forward_port("web", 80) as listener,
            await anyio.connect_tcp("127.0.0.1", listener.port) as client,
        ):

            async def send() -> None:
                for start in range(0, len(payload), MIB):
                    await client.send(payload[start : start + MIB])

            received = bytearray()
            with anyio.fail_after(60):
                async with anyio.create_task_group() as tasks:
                    tasks.start_soon(send)
                    while len(received) < len(payload):
                        received += await client.receive(MIB)
    assert received == payload
