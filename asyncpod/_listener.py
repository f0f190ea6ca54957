"""A local TCP listener that can be stopped at any moment, on asyncio too.

anyio's listener accepts through asyncio's ``loop.sock_accept``. On the
CPython releases before the fix of gh-153761, a cancellation that lands
while a client is connecting takes the connection anyway, raises
``InvalidStateError`` in the event loop's exception handler and leaves the
accepted socket to the garbage collector: stopping a port-forward while a
client connected did that. This listener waits for readiness and accepts by
itself, so a cancelled wait has taken nothing; the connections still in the
backlog are refused when the listening socket closes.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel

Handler = Callable[[anyio.abc.SocketStream], Coroutine[Any, Any, Any]]


class TCPListener:
    """Listening sockets on every address ``host`` resolves to, and one port.

    Attributes:
        host: the first address listened on.
        port: the port (the one the system chose for port 0).
    """

    def __init__(self, sockets: list[socket.socket]) -> None:
        self._sockets = sockets
        address = sockets[0].getsockname()
        self.host = str(address[0])
        self.port = int(address[1])

    @classmethod
    async def open(cls, host: str, port: int) -> TCPListener:
        """Listen on ``host:port``.

        Raises:
            OSError: the address cannot be resolved or bound.
        """
        infos = await anyio.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE | socket.AI_ADDRCONFIG
        )
        sockets: list[socket.socket] = []
        try:
            for family, address in dict.fromkeys((info[0], info[4]) for info in infos):
                sock = socket.socket(family, socket.SOCK_STREAM)
                sockets.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                if port == 0 and len(sockets) > 1:
                    # Every address on the port the first one was given.
                    address = (address[0], sockets[0].getsockname()[1], *address[2:])
                sock.bind(address)
                sock.listen(socket.SOMAXCONN)
                sock.setblocking(False)
        except BaseException:
            for sock in sockets:
                sock.close()
            raise
        return cls(sockets)

    async def serve(self, handler: Handler) -> None:
        """Serve each accepted connection in a task of its own, until cancelled.

        The handler owns the stream it is given and should close it.
        """
        async with anyio.create_task_group() as tasks:
            for sock in self._sockets[1:]:
                tasks.start_soon(self._accept_loop, sock, handler, tasks)
            await self._accept_loop(self._sockets[0], handler, tasks)

    @staticmethod
    async def _accept_loop(
        sock: socket.socket, handler: Handler, tasks: anyio.abc.TaskGroup
    ) -> None:
        while True:
            try:
                await anyio.wait_readable(sock)
            except anyio.ClosedResourceError:
                return  # aclose() from another task
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                # Another accept won the race, or the client gave up already.
                continue
            try:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                stream = await anyio.abc.SocketStream.from_socket(conn)
            except BaseException:
                conn.close()
                raise
            tasks.start_soon(handler, stream)

    async def aclose(self) -> None:
        """Stop listening; connections not yet accepted are refused."""
        for sock in self._sockets:
            if sock.fileno() >= 0:
                anyio.notify_closing(sock)
                sock.close()
        await anyio.lowlevel.checkpoint()

    async def __aenter__(self) -> TCPListener:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


__all__ = ["Handler", "TCPListener"]
