"""A handler served on a free loopback port, for the block of a ``with``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from asyncpod._listener import Handler, TCPListener


@asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[int]:
    """Serve ``handler`` on 127.0.0.1 for the block; yields the port.

    asyncpod's own listener: it stops without the asyncio race in which a
    cancelled accept takes a connection and leaves it to the garbage
    collector, to be reported during a later test.
    """
    async with (
        await TCPListener.open("127.0.0.1", 0) as listener,
        anyio.create_task_group() as tasks,
    ):
        tasks.start_soon(listener.serve, handler)
        try:
            yield listener.port
        finally:
            tasks.cancel_scope.cancel()
