"""A WebSocket client frame by frame, to speak to the sandbox's kubelet as other clients do.

asyncpod's own client only sends what asyncpod sends (binary frames, one port per
connection); the official Python client also sends text frames and asks for several ports
at once. This opens the upgrade by hand on the proxy listener and frames with the sans-IO
``Protocol`` of ``websockets``, so a test can send exactly those frames.
"""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import anyio
import anyio.abc
from websockets.frames import Frame, Opcode
from websockets.protocol import Protocol, Side, State


class RawWebSocket:
    """An open client WebSocket; ``messages()`` are the server's data frames, in order."""

    def __init__(self, stream: anyio.abc.SocketStream, subprotocol: str, rest: bytes) -> None:
        self.stream = stream
        self.subprotocol = subprotocol
        self.protocol = Protocol(Side.CLIENT, state=State.OPEN, max_size=16 << 20)
        self.closed = False
        self._pending: list[bytes] = []
        if rest:
            self._feed(rest)

    def _feed(self, data: bytes) -> None:
        if data:
            self.protocol.receive_data(data)
        else:
            self.protocol.receive_eof()
        for event in self.protocol.events_received():
            if isinstance(event, Frame) and event.opcode in (Opcode.BINARY, Opcode.TEXT):
                self._pending.append(bytes(event.data))
            elif isinstance(event, Frame) and event.opcode is Opcode.CLOSE:
                self.closed = True
        if not data:
            self.closed = True

    async def _flush(self) -> None:
        for chunk in self.protocol.data_to_send():
            if chunk:
                await self.stream.send(chunk)

    async def send_text(self, text: str) -> None:
        self.protocol.send_text(text.encode())
        await self._flush()

    async def send_binary(self, data: bytes) -> None:
        self.protocol.send_binary(data)
        await self._flush()

    async def receive(self) -> bytes | None:
        """The next data message; ``None`` once the server closed the WebSocket."""
        while not self._pending:
            if self.closed:
                return None
            try:
                data = await self.stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                data = b""
            self._feed(data)
            await self._flush()  # the answer to a close or a ping
        return self._pending.pop(0)

    async def close(self) -> None:
        if self.protocol.state is State.OPEN:
            self.protocol.send_close(1000)
            await self._flush()


@asynccontextmanager
async def raw_websocket(
    base_url: str, path: str, protocols: str
) -> AsyncIterator[tuple[int, bytes, RawWebSocket | None]]:
    """Upgrade ``GET path`` on a plain-HTTP listener; yields (status, body if refused, socket)."""
    url = urlsplit(base_url)
    assert url.hostname is not None
    assert url.port is not None
    key = base64.b64encode(os.urandom(16)).decode()
    head = (
        f"GET {path} HTTP/1.1\r\nHost: {url.netloc}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Protocol: {protocols}\r\n\r\n"
    )
    async with await anyio.connect_tcp(url.hostname, url.port) as stream:
        await stream.send(head.encode())
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            buffer += await stream.receive()
        raw_head, _, rest = buffer.partition(b"\r\n\r\n")
        lines = raw_head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])
        }
        if status != 101:
            size = int(headers.get("content-length", "0"))
            while len(rest) < size:
                rest += await stream.receive()
            yield status, rest, None
            return
        ws = RawWebSocket(stream, headers.get("sec-websocket-protocol", ""), rest)
        yield status, b"", ws
