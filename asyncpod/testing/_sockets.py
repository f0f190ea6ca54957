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


def close_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Close a server's stopped loop without leaving a socket to the garbage collector.

    ``loop.stop()`` ends the loop after the callbacks already queued: a
    connection accepted while the server shut down, a handler task still
    running, or the close of a transport aborted in that last round would keep
    its socket, and ``loop.close()`` drops them as they are. Here the tasks
    are cancelled and the transports aborted, and the loop runs until their
    callbacks are done, before it is closed. A loop still running (its thread
    did not stop in time) is left alone.
    """
    if loop.is_closed() or loop.is_running():
        return
    try:
        tasks = asyncio.all_tasks(loop)
        for task in tasks:
            task.cancel()
        if tasks:
            loop.run_until_complete(asyncio.wait(tasks, timeout=5))
        loop.run_until_complete(abort_transports(loop))
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()


def run_until_stopped(loop: asyncio.AbstractEventLoop) -> None:
    """A server thread's target: run ``loop`` until it is stopped, then close it cleanly."""
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        close_loop(loop)
