"""Closing every connection an event loop still holds, before it stops."""

from __future__ import annotations

import asyncio


async def abort_transports(loop: asyncio.AbstractEventLoop) -> None:
    """Abort every socket transport still open on ``loop`` (the running loop).

    A server's shutdown only closes the connections its application knows of.
    A TLS connection whose handshake is still running has not reached the
    application yet, and one whose TLS shutdown waits for a peer that went
    away is closing forever: when the loop then stops, their sockets are
    reported unclosed at some later garbage collection. asyncio's selector
    loops index every live transport by file descriptor in ``_transports``
    (asyncio has no public list; ``Server.close_clients`` is 3.13+).
    """
    transports = getattr(loop, "_transports", None)
    if transports is None:
        return
    for transport in list(transports.values()):
        transport.abort()
    # abort() closes the socket in a callback: let those run.
    for _ in range(3):
        await asyncio.sleep(0)
