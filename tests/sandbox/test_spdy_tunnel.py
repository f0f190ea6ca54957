"""The sandbox's SPDY port-forward tunnel, driven frame by frame from Python.

A raw WebSocket client (an HTTP/1.1 upgrade written by hand on the proxy
listener, websockets' sans-IO framing) carrying the sandbox's own SPDY framing:
what kubectl does not exercise on its own (rejected streams, pings, a reset,
streams without request ids, a broken frame), on asyncio and trio.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import anyio
import anyio.abc
import pytest
from websockets.frames import Opcode
from websockets.protocol import Protocol, Side, State

from asyncpod._websocket import check_handshake, handshake_headers
from asyncpod.testing import Sandbox, _spdy
from asyncpod.testing._spdy import (
    CANCEL,
    FLAG_FIN,
    PROTOCOL_ERROR,
    Data,
    GoAway,
    Ping,
    RstStream,
    SpdyConnection,
    SynReply,
    SynStream,
)
from asyncpod.testing._spdytunnel import TUNNEL_PROTOCOL
from tests.helpers.sandbox import eventually
from tests.helpers.sandbox import pod as pod_manifest
from tests.servers.listening import serving

pytestmark = pytest.mark.anyio


class Tunnel:
    """The client's end: SPDY frames in WebSocket binary messages, as client-go sends them."""

    def __init__(self, stream: anyio.abc.SocketStream, leftover: bytes) -> None:
        self.stream = stream
        self.ws = Protocol(Side.CLIENT, state=State.OPEN)
        self.spdy = SpdyConnection()
        self.frames: list[_spdy.Frame] = []
        self.closed = False
        if leftover:
            self._absorb(leftover)

    def _absorb(self, data: bytes) -> None:
        if data:
            self.ws.receive_data(data)
        else:
            self.ws.receive_eof()
        for event in self.ws.events_received():
            if event.opcode == Opcode.BINARY:
                self.frames += self.spdy.feed(event.data)
            elif event.opcode == Opcode.CLOSE:
                self.closed = True

    async def send(self, *frames: _spdy.Frame, split: bool = False) -> None:
        raw = b"".join(self.spdy.encode(frame) for frame in frames)
        # split: one message per 5 bytes, as no frame boundary is promised.
        for start in range(0, len(raw), 5 if split else max(len(raw), 1)):
            self.ws.send_binary(raw[start : start + 5] if split else raw)
        await self.stream.send(b"".join(self.ws.data_to_send()))

    async def receive(self) -> _spdy.Frame:
        """The next frame from the sandbox (a pending pong or close reply is written first)."""
        while not self.frames:
            if self.closed:
                raise anyio.EndOfStream
            try:
                data = await self.stream.receive()
            except anyio.EndOfStream:
                data = b""
            self._absorb(data)
            pending = b"".join(self.ws.data_to_send())
            if pending:
                await self.stream.send(pending)
            if not data and not self.frames:
                raise anyio.EndOfStream
        return self.frames.pop(0)

    async def collect(self, until: Any) -> list[_spdy.Frame]:
        """Frames until one equal to ``until`` (included)."""
        frames = []
        while not frames or frames[-1] != until:
            frames.append(await self.receive())
        return frames


@asynccontextmanager
async def tunnel(sb: Sandbox, pod: str) -> AsyncIterator[Tunnel]:
    url = urlsplit(sb.proxy_url)
    assert url.hostname is not None
    assert url.port is not None
    headers, accept = handshake_headers((TUNNEL_PROTOCOL,))
    path = f"/api/v1/namespaces/default/pods/{pod}/portforward"
    request = f"GET {path} HTTP/1.1\r\nHost: {url.netloc}\r\nConnection: Upgrade\r\n"
    request += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
    async with await anyio.connect_tcp(url.hostname, url.port) as stream:
        await stream.send(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += await stream.receive()
        head, _, leftover = head.partition(b"\r\n\r\n")
        status, *lines = head.decode().split("\r\n")
        assert status.startswith("HTTP/1.1 101"), status
        answer = {k.strip().lower(): v.strip() for k, v in (x.split(":", 1) for x in lines)}
        assert check_handshake(answer, accept, (TUNNEL_PROTOCOL,), path) == TUNNEL_PROTOCOL
        yield Tunnel(stream, leftover)


def _streams(request_id: str | None, port: int = 80) -> tuple[dict[str, list[str]], ...]:
    extra = {"requestid": [request_id]} if request_id is not None else {}
    error = {"streamtype": ["error"], "port": [str(port)], **extra}
    data = {"streamtype": ["data"], "port": [str(port)], **extra}
    return error, data


class PodServer:
    """The pod's port: reads to the end, then answers how many bytes came and closes."""

    def __init__(self) -> None:
        self.port = 0
        self.open = 0

    async def handle(self, client: anyio.abc.SocketStream) -> None:
        self.open += 1
        try:
            async with client:
                count = 0
                try:
                    while True:
                        count += len(await client.receive())
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    pass
                await client.send(b"got %d" % count)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass
        finally:
            self.open -= 1


@asynccontextmanager
async def pod_server() -> AsyncIterator[PodServer]:
    server = PodServer()
    async with serving(server.handle) as server.port:
        yield server


async def test_half_close_reaches_the_pod_and_both_streams_end(
    sandbox: Sandbox, anyio_backend: str
) -> None:
    """The client's FIN half-closes the pod's connection; the pod's end closes both streams."""
    name = f"half-{anyio_backend}"
    sandbox.create(pod_manifest(name))
    sandbox.wait_running(name)  # port-forward needs the pod bound to the node
    error, data = _streams("0")
    async with pod_server() as server:
        sandbox.map_port(name, 80, server.port)
        async with tunnel(sandbox, name) as client:
            with anyio.fail_after(30):
                await client.send(SynStream(1, error), split=True)
                assert await client.receive() == SynReply(1)
                await client.send(SynStream(3, data))
                assert await client.receive() == SynReply(3)
                await client.send(Data(1, b"", FLAG_FIN))  # kubectl writes nothing there
                await client.send(Data(3, b"x" * 100_000), Data(3, b"", FLAG_FIN), split=True)
                frames = await client.collect(Data(1, b"", FLAG_FIN))
        await eventually(lambda: server.open == 0)
    payload = b"".join(f.data for f in frames if isinstance(f, Data) and f.stream_id == 3)
    assert payload == b"got 100000"
    assert Data(3, b"", FLAG_FIN) in frames
    assert frames.index(Data(3, b"", FLAG_FIN)) < frames.index(Data(1, b"", FLAG_FIN))


async def test_streams_without_request_ids_pair_by_stream_id(
    sandbox: Sandbox, anyio_backend: str
) -> None:
    """Old clients send no requestid: error stream N and data stream N+2 make a pair."""
    name = f"legacy-{anyio_backend}"
    sandbox.create(pod_manifest(name))
    sandbox.wait_running(name)  # port-forward needs the pod bound to the node
    error, data = _streams(None)
    async with pod_server() as server:
        sandbox.map_port(name, 80, server.port)
        async with tunnel(sandbox, name) as client:
            with anyio.fail_after(30):
                await client.send(SynStream(5, error), SynStream(7, data))
                assert [await client.receive(), await client.receive()] == [
                    SynReply(5),
                    SynReply(7),
                ]
                await client.send(Data(7, b"abc", FLAG_FIN))
                frames = await client.collect(Data(5, b"", FLAG_FIN))
    assert Data(7, b"got 3") in frames


async def test_bad_streams_are_reset(sandbox: Sandbox, anyio_backend: str) -> None:
    """No port, a bad port or stream type: CANCEL; a stream id going back: PROTOCOL_ERROR."""
    name = f"bad-{anyio_backend}"
    sandbox.create(pod_manifest(name))
    sandbox.wait_running(name)  # port-forward needs the pod bound to the node
    async with tunnel(sandbox, name) as client:
        with anyio.fail_after(30):
            await client.send(SynStream(1, {"streamtype": ["data"]}))
            assert await client.receive() == RstStream(1, CANCEL)
            await client.send(SynStream(3, {"streamtype": ["data"], "port": ["0"]}))
            assert await client.receive() == RstStream(3, CANCEL)
            await client.send(SynStream(5, {"streamtype": ["data"], "port": ["http"]}))
            assert await client.receive() == RstStream(5, CANCEL)
            await client.send(SynStream(7, {"streamtype": ["stdin"], "port": ["80"]}))
            assert await client.receive() == RstStream(7, CANCEL)
            await client.send(SynStream(3, {"streamtype": ["error"], "port": ["80"]}))
            assert await client.receive() == RstStream(3, PROTOCOL_ERROR)
            # The connection goes on: a ping is still answered.
            await client.send(Ping(1))
            assert await client.receive() == Ping(1)


async def test_an_unmapped_port_is_reported_on_the_error_stream(
    sandbox: Sandbox, anyio_backend: str
) -> None:
    """The kubelet's words on the error stream, then FIN on both streams."""
    name = f"refused-{anyio_backend}"
    sandbox.create(pod_manifest(name))
    sandbox.wait_running(name)  # port-forward needs the pod bound to the node
    uid = sandbox.get("pods", name)["metadata"]["uid"]
    error, data = _streams("7", port=6379)
    async with tunnel(sandbox, name) as client:
        with anyio.fail_after(30):
            await client.send(SynStream(1, error), SynStream(3, data))
            frames = await client.collect(Data(1, b"", FLAG_FIN))
    text = b"".join(f.data for f in frames if isinstance(f, Data) and f.stream_id == 1)
    assert text.decode() == (
        f"error forwarding port 6379 to pod {uid}, uid : failed to connect to localhost:6379 "
        f'inside namespace "{uid}", IPv4: dial tcp4 127.0.0.1:6379: connect: connection refused'
    )
    assert Data(3, b"", FLAG_FIN) in frames


async def test_a_reset_data_stream_drops_the_pods_connection(
    sandbox: Sandbox, anyio_backend: str
) -> None:
    """RST_STREAM on the data stream closes the pod's connection and ends the error stream."""
    name = f"reset-{anyio_backend}"
    sandbox.create(pod_manifest(name))
    sandbox.wait_running(name)  # port-forward needs the pod bound to the node
    error, data = _streams("1")
    async with pod_server() as server:
        sandbox.map_port(name, 80, server.port)
        async with tunnel(sandbox, name) as client:
            with anyio.fail_after(30):
                await client.send(SynStream(1, error), SynStream(3, data))
                await client.send(Data(3, b"partial"))
                await eventually(lambda: server.open == 1)
                await client.send(RstStream(3, CANCEL))
                frames = await client.collect(Data(1, b"", FLAG_FIN))
                await eventually(lambda: server.open == 0)
    # Reset: nothing more on the data stream, not even a FIN.
    assert Data(3, b"", FLAG_FIN) not in frames


async def test_goaway_and_broken_frames_end_the_tunnel(
    sandbox: Sandbox, anyio_backend: str
) -> None:
    """GOAWAY from the client closes the WebSocket; a broken frame gets GOAWAY(PROTOCOL_ERROR)."""
    name = f"goaway-{anyio_backend}"
    sandbox.create(pod_manifest(name))
    sandbox.wait_running(name)  # port-forward needs the pod bound to the node
    async with tunnel(sandbox, name) as client:
        with anyio.fail_after(30):
            await client.send(GoAway(0))
            with pytest.raises(anyio.EndOfStream):
                await client.receive()
    async with tunnel(sandbox, name) as client:
        with anyio.fail_after(30):
            await client.send(SynStream(1, {"streamtype": ["error"], "port": ["80"]}))
            assert await client.receive() == SynReply(1)
            # A PING of SPDY version 2.
            client.ws.send_binary(struct.pack(">HHII", 0x8002, 6, 4, 1))
            await client.stream.send(b"".join(client.ws.data_to_send()))
            assert await client.receive() == GoAway(1, 1)
            with pytest.raises(anyio.EndOfStream):
                await client.receive()
