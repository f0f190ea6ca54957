"""The local listener of port-forward, stopped while clients connect."""

from __future__ import annotations

import contextlib
import socket
from typing import Any

import anyio
import anyio.abc
import sniffio

from asyncpod._listener import TCPListener


async def _hold(stream: anyio.abc.SocketStream) -> None:
    async with stream:
        await anyio.sleep_forever()


def _answer(client: socket.socket) -> bytes | str:
    """What a client whose connection the listener took, or not, reads: EOF or a reset."""
    client.settimeout(10)
    try:
        return client.recv(1)
    except ConnectionResetError:
        return "reset"
    except TimeoutError:
        return "hanging"


async def test_a_client_connecting_as_the_listener_stops_is_not_left_hanging(
    anyio_backend: str,
) -> None:
    """Stopped in the loop turn in which a client connects: the client is refused, not stranded.

    On asyncio, a listener on ``loop.sock_accept`` took such a connection after
    its accept was cancelled, raised InvalidStateError in the loop's exception
    handler, and held the socket open until the garbage collector found it.
    """
    loop_errors: list[dict[str, Any]] = []
    if sniffio.current_async_library() == "asyncio":
        import asyncio

        asyncio.get_running_loop().set_exception_handler(lambda _, ctx: loop_errors.append(ctx))
    answers = []
    for _ in range(20):
        listener = await TCPListener.open("127.0.0.1", 0)
        client = socket.socket()
        try:
            async with listener, anyio.create_task_group() as tasks:
                tasks.start_soon(listener.serve, _hold)
                await anyio.sleep(0.005)  # the listener waits for a connection
                client.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    client.connect(("127.0.0.1", listener.port))
                # One loop turn: the listener becomes readable as the block ends.
                await anyio.lowlevel.checkpoint()
                tasks.cancel_scope.cancel()
            client.setblocking(True)
            answers.append(_answer(client))
        finally:
            client.close()
    assert loop_errors == []
    assert "hanging" not in answers
    assert set(answers) <= {b"", "reset"}
