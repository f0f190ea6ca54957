"""A TCP echo server: the process behind a forwarded pod port in the tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.abc

from tests.servers.listening import serving


class EchoServer:
    """Echoes what it receives; counts the bytes, the connections and those still open.

    With ``goodbye`` set, it sends that and closes instead of echoing.
    """

    def __init__(self) -> None:
        self.port = 0
        self.received = 0
        self.connections = 0
        self.open = 0
        self.goodbye: bytes | None = None

    async def handle(self, client: anyio.abc.SocketStream) -> None:
        self.connections += 1
        self.open += 1
        try:
            async with client:
                if self.goodbye is not None:
                    await client.send(self.goodbye)
                    return
                while True:
                    try:
                        data = await client.receive()
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        return
                    self.received += len(data)
                    await client.send(data)
        finally:
            self.open -= 1


@asynccontextmanager
async def echo_server() -> AsyncIterator[EchoServer]:
    """An ``EchoServer`` on a free loopback port for the block."""
    server = EchoServer()
    async with serving(server.handle) as server.port:
        yield server
