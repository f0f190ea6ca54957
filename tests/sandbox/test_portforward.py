"""The sandbox kubelet's port-forward as other clients use it: several ports, text frames."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.abc
import pytest

from asyncpod.testing import Sandbox
from tests.helpers.raw_websocket import RawWebSocket, raw_websocket
from tests.helpers.sandbox import pod as pod_manifest

pytestmark = pytest.mark.anyio

V4 = "v4.channel.k8s.io"


def _running(sandbox: Sandbox, name: str) -> None:
    sandbox.create(pod_manifest(name))
    sandbox.wait_running(name)


@asynccontextmanager
async def listener(goodbye: bytes | None = None) -> AsyncIterator[int]:
    """A local TCP server: an echo, or one that sends ``goodbye`` and closes; yields its port."""

    async def handle(client: anyio.abc.SocketStream) -> None:
        async with client:
            if goodbye is not None:
                await client.send(goodbye)
                return
            try:
                while True:
                    await client.send(await client.receive())
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return

    server = await anyio.create_tcp_listener(local_host="127.0.0.1")
    async with server, anyio.create_task_group() as tasks:
        tasks.start_soon(server.serve, handle)
        yield server.extra(anyio.abc.SocketAttribute.local_port)
        tasks.cancel_scope.cancel()


async def _until(ws: RawWebSocket, wanted: int) -> list[bytes]:
    """The messages up to and including ``wanted`` of them."""
    got = []
    with anyio.fail_after(10):
        while len(got) < wanted:
            message = await ws.receive()
            assert message is not None, got
            got.append(message)
    return got


async def _collect(ws: RawWebSocket, channel: int, size: int) -> bytes:
    data = b""
    with anyio.fail_after(10):
        while len(data) < size:
            message = await ws.receive()
            assert message is not None
            assert message[0] == channel, message
            data += message[1:]
    return data


def _path(name: str, query: str) -> str:
    return f"/api/v1/namespaces/default/pods/{name}/portforward?{query}"


async def test_three_ports_in_one_websocket(sandbox: Sandbox) -> None:
    """ports=A,B,C: channels 0-5 with their port first; a refused port errs alone."""
    _running(sandbox, "multi")
    async with listener() as first, listener() as second:
        sandbox.map_port("multi", 1234, first)
        sandbox.map_port("multi", 1235, second)
        path = _path("multi", "ports=1234,1235,1236")
        async with raw_websocket(sandbox.proxy_url, path, f"v5.channel.k8s.io,{V4}") as (
            status,
            _,
            ws,
        ):
            assert status == 101
            assert ws is not None
            assert ws.subprotocol == V4
            first_frames = await _until(ws, 6)
            assert first_frames[:6] == [
                b"\x00\xd2\x04",
                b"\x01\xd2\x04",
                b"\x02\xd3\x04",
                b"\x03\xd3\x04",
                b"\x04\xd4\x04",
                b"\x05\xd4\x04",
            ]
            (refused,) = await _until(ws, 1)
            assert refused[0] == 5
            assert b"error forwarding port 1236" in refused
            assert b"connection refused" in refused
            await ws.send_binary(b"\x00to 1234")
            assert await _collect(ws, 0, 7) == b"to 1234"
            await ws.send_binary(b"\x02to 1235")
            assert await _collect(ws, 2, 7) == b"to 1235"
            await ws.close()
            # Nothing came on the error channels of the ports that work.
            while (message := await ws.receive()) is not None:
                assert message[0] not in (1, 3), message


async def test_repeated_ports_values_and_text_frames(sandbox: Sandbox) -> None:
    """ports=A&ports=B is two ports too, and a text frame carries data as a binary one."""
    _running(sandbox, "text")
    async with listener() as port:
        sandbox.map_port("text", 80, port)
        sandbox.map_port("text", 81, port)
        async with raw_websocket(sandbox.proxy_url, _path("text", "ports=80&ports=81"), V4) as (
            status,
            _,
            ws,
        ):
            assert status == 101
            assert ws is not None
            assert [m[:1] for m in await _until(ws, 4)] == [b"\x00", b"\x01", b"\x02", b"\x03"]
            await ws.send_text("\x02hello")
            assert await _collect(ws, 2, 5) == b"hello"
            await ws.close()


async def test_the_websocket_ends_when_every_port_ended(sandbox: Sandbox) -> None:
    """One port's pod side closing ends that port only; the last one closes the WebSocket."""
    _running(sandbox, "bye")
    async with listener(goodbye=b"bye") as leaving, listener() as staying:
        sandbox.map_port("bye", 1, leaving)
        sandbox.map_port("bye", 2, staying)
        async with raw_websocket(sandbox.proxy_url, _path("bye", "ports=1,2"), V4) as (
            _,
            _,
            ws,
        ):
            assert ws is not None
            await _until(ws, 4)
            assert await _collect(ws, 0, 3) == b"bye"
            await ws.send_binary(b"\x02still here")
            assert await _collect(ws, 2, 10) == b"still here"
        sandbox.map_port("bye", 2, leaving)
        async with raw_websocket(sandbox.proxy_url, _path("bye", "ports=1,2"), V4) as (
            _,
            _,
            ws,
        ):
            assert ws is not None
            got = []
            with anyio.fail_after(10):
                while (message := await ws.receive()) is not None:
                    got.append(message)
            assert sorted(m[1:] for m in got if m[0] in (0, 2) and len(m) > 3) == [b"bye", b"bye"]
            assert ws.closed


async def test_a_pattern_maps_pods_with_generated_names(sandbox: Sandbox) -> None:
    """map_port("raw-*", ...) reaches raw-x1b2; an exact name wins; other pods are refused."""
    for name in ("raw-x1b2", "raw-exact", "other"):
        _running(sandbox, name)
    async with listener(goodbye=b"pattern") as pattern, listener(goodbye=b"exact") as exact:
        sandbox.map_port("raw-*", 80, pattern)
        sandbox.map_port("raw-exact", 80, exact)
        seen = {}
        for name in ("raw-x1b2", "raw-exact", "other"):
            async with raw_websocket(sandbox.proxy_url, _path(name, "ports=80"), V4) as (
                _,
                _,
                ws,
            ):
                assert ws is not None
                await _until(ws, 2)
                (message,) = await _until(ws, 1)
                seen[name] = message
    assert seen["raw-x1b2"] == b"\x00pattern"
    assert seen["raw-exact"] == b"\x00exact"
    assert seen["other"][0] == 1
    assert b"connection refused" in seen["other"]


@pytest.mark.parametrize("query", ["", "ports=0", "ports=80,x", "ports=70000"])
async def test_bad_ports_are_refused_before_the_upgrade(sandbox: Sandbox, query: str) -> None:
    """No port, port 0, a word or a port over 65535: 400 with a Status, no WebSocket."""
    _running(sandbox, "bad")
    async with raw_websocket(sandbox.proxy_url, _path("bad", query), V4) as (status, body, ws):
        assert ws is None
    assert status == 400
    assert b'"reason":"BadRequest"' in body.replace(b" ", b"")
