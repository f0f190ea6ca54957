"""exec against a raw WebSocket server that misbehaves on purpose, and counts what it got."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import anyio.abc
import pytest
from websockets.frames import Frame, Opcode
from websockets.protocol import Protocol, Side, State

import asyncpod
from asyncpod import _channels
from asyncpod._websocket import StreamProtocolError, accept_for
from tests.servers.listening import serving

pytestmark = pytest.mark.anyio


class Peer:
    """The server's side of one session: sans-IO WebSocket over the accepted socket."""

    def __init__(self, stream: anyio.abc.SocketStream, protocol: str) -> None:
        self.stream = stream
        self.protocol = protocol
        self.ws = Protocol(Side.SERVER, state=State.OPEN, max_size=None)
        self.pings = 0
        self.messages: list[bytes] = []

    async def send(self, message: bytes) -> None:
        self.ws.send_binary(message)
        await self.stream.send(b"".join(self.ws.data_to_send()))

    async def close(self) -> None:
        self.ws.send_close(1000)
        await self.stream.send(b"".join(self.ws.data_to_send()))

    async def receive_until_closed(self) -> None:
        """Read frames (counting pings and messages) until the client closes or goes."""
        while True:
            try:
                data = await self.stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return
            self.ws.receive_data(data)
            for frame in self.ws.events_received():
                if not isinstance(frame, Frame):
                    continue
                if frame.opcode is Opcode.PING:
                    self.pings += 1
                elif frame.opcode is Opcode.BINARY:
                    self.messages.append(bytes(frame.data))
                elif frame.opcode is Opcode.CLOSE:
                    return
            pending = b"".join(self.ws.data_to_send())
            if pending:
                await self.stream.send(pending)


Session = Callable[[Peer], Awaitable[None]]


class RawServer:
    """Answers every upgrade with a 101 (or what ``head`` says) and runs ``session``."""

    def __init__(self, session: Session, *, wrong_accept: bool = False) -> None:
        self.session = session
        self.wrong_accept = wrong_accept
        self.peers: list[Peer] = []
        self.port = 0
        self.heads: list[str] = []

    async def handle(self, stream: anyio.abc.SocketStream) -> None:
        async with stream:
            head = b""
            while b"\r\n\r\n" not in head:
                head += await stream.receive()
            text = head.decode("latin-1")
            self.heads.append(text)
            fields = dict(line.split(": ", 1) for line in text.split("\r\n")[1:] if ": " in line)
            offered = fields["Sec-WebSocket-Protocol"].split(",")[0].strip()
            accept = "wrong" if self.wrong_accept else accept_for(fields["Sec-WebSocket-Key"])
            await stream.send(
                (
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n"
                    f"Sec-WebSocket-Protocol: {offered}\r\n\r\n"
                ).encode()
            )
            peer = Peer(stream, offered)
            self.peers.append(peer)
            await self.session(peer)


@asynccontextmanager
async def raw_server(session: Session, **kwargs: bool) -> AsyncIterator[RawServer]:
    server = RawServer(session, **kwargs)
    async with serving(server.handle) as server.port:
        yield server


def _status(code: int) -> bytes:
    if code == 0:
        return b"\x03" + json.dumps({"status": "Success"}).encode()
    cause = {"reason": "ExitCode", "message": str(code)}
    status = {"status": "Failure", "reason": "NonZeroExitCode", "details": {"causes": [cause]}}
    return b"\x03" + json.dumps(status).encode()


def _client(server: RawServer, engine: str | None = None) -> asyncpod.Client:
    config = asyncpod.Config.proxy(f"http://127.0.0.1:{server.port}")
    return asyncpod.Client(config, engine=engine)  # type: ignore[arg-type]


async def test_upgrade_request_is_one_get_offering_both_protocols() -> None:
    """The server sees one GET with the command repeated and v5, v4 in one header."""

    async def session(peer: Peer) -> None:
        await peer.send(b"\x01hi")
        await peer.send(_status(0))
        await peer.close()
        await peer.receive_until_closed()

    async with raw_server(session) as server, _client(server) as k8s:
        result = await k8s.exec("web", ["sh", "-c", "a b"], namespace="ns")
    (head,) = server.heads
    assert head.startswith(
        "GET /api/v1/namespaces/ns/pods/web/exec?stdout=true&stderr=true"
        "&command=sh&command=-c&command=a+b HTTP/1.1\r\n"
    )
    assert head.count("Sec-WebSocket-Protocol: v5.channel.k8s.io, v4.channel.k8s.io\r\n") == 1
    assert "Connection: Upgrade\r\n" in head
    assert (result.stdout, result.exit_code) == (b"hi", 0)


async def test_exit_code_split_status_and_fragments() -> None:
    """A Status sent in two messages and output in many still give the right exit code."""

    async def session(peer: Peer) -> None:
        status = _status(42)
        for _ in range(5):
            await peer.send(b"\x01" + b"x" * 1000)
        await peer.send(status[:20])
        await peer.send(b"\x03" + status[20:])
        await peer.close()
        await peer.receive_until_closed()

    async with raw_server(session) as server, _client(server) as k8s:
        result = await k8s.exec("web", ["true"])
    assert result.exit_code == 42
    assert result.stdout == b"x" * 5000


async def test_keepalive_pings_reach_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """A quiet session is pinged every PING_INTERVAL; the server counts the pings."""
    monkeypatch.setattr(_channels, "PING_INTERVAL", 0.05)
    quiet = anyio.Event()

    async def session(peer: Peer) -> None:
        with anyio.move_on_after(0.6):
            await peer.receive_until_closed()
        quiet.set()
        await peer.send(_status(0))
        await peer.close()
        await peer.receive_until_closed()

    async with raw_server(session) as server, _client(server) as k8s:
        result = await k8s.exec("web", ["sleep", "1"])
    assert quiet.is_set()
    assert result.exit_code == 0
    assert server.peers[0].pings >= 3


async def test_connection_dropped_without_status_is_a_transport_error() -> None:
    """A session cut before its Status is an error, never a silent exit code 0."""

    async def session(peer: Peer) -> None:
        await peer.send(b"\x01partial")

    async with raw_server(session) as server, _client(server) as k8s:
        with pytest.raises(asyncpod.TransportError, match="without the command's exit status"):
            await k8s.exec("web", ["true"])


async def test_wrong_accept_is_refused_and_the_connection_closed() -> None:
    """A 101 with a wrong Sec-WebSocket-Accept is no WebSocket: refused, socket closed."""
    closed = anyio.Event()

    async def session(peer: Peer) -> None:
        await peer.receive_until_closed()
        closed.set()

    async with raw_server(session, wrong_accept=True) as server, _client(server) as k8s:
        with pytest.raises(StreamProtocolError, match="Sec-WebSocket-Accept"):
            await k8s.exec("web", ["true"])
        with anyio.fail_after(10):
            await closed.wait()
    assert server.peers[0].messages == []


@pytest.mark.parametrize("engine", ["aiohttp", "anyio"])
async def test_stdin_and_close_signal_as_the_server_sees_them(
    engine: str, anyio_backend: str
) -> None:
    """stdin in 32 KiB messages on channel 0, then [255, 0]; on the aiohttp engine too."""
    if engine == "aiohttp" and anyio_backend != "asyncio":
        pytest.skip("the aiohttp engine runs on asyncio only")
    got_close = anyio.Event()

    async def session(peer: Peer) -> None:
        while not got_close.is_set():
            data = await peer.stream.receive()
            peer.ws.receive_data(data)
            for frame in peer.ws.events_received():
                if isinstance(frame, Frame) and frame.opcode is Opcode.BINARY:
                    peer.messages.append(bytes(frame.data))
                    if bytes(frame.data) == b"\xff\x00":
                        got_close.set()
        await peer.send(_status(0))
        await peer.close()
        await peer.receive_until_closed()

    data = bytes(range(256)) * 400
    async with raw_server(session) as server, _client(server, engine) as k8s:
        result = await k8s.exec("web", ["cat"], stdin=data)
    messages = server.peers[0].messages
    assert messages[-1] == b"\xff\x00"
    assert all(m[0] == 0 and len(m) <= 32 * 1024 for m in messages[:-1])
    assert b"".join(m[1:] for m in messages[:-1]) == data
    assert result.exit_code == 0


async def test_attach_streams_like_exec() -> None:
    """attach upgrades pods/NAME/attach without a command and streams as exec does."""

    async def session(peer: Peer) -> None:
        await peer.send(b"\x01main output")
        await peer.send(_status(0))
        await peer.close()
        await peer.receive_until_closed()

    async with (
        raw_server(session) as server,
        _client(server) as k8s,
        k8s.attach("web", container="app", stdin=True) as proc,
    ):
        assert await proc.stdout.receive() == b"main output"
        assert await proc.wait() == 0
    (head,) = server.heads
    assert head.startswith(
        "GET /api/v1/namespaces/default/pods/web/attach?container=app&stdin=true"
        "&stdout=true&stderr=true HTTP/1.1\r\n"
    )
    assert "command=" not in head.split("\r\n")[0]
