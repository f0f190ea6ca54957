"""The aiohttp engine leaves no socket open once closed, even mid TLS shutdown."""

from __future__ import annotations

import asyncio
import gc
import ssl
import warnings

import trustme
from asyncpod_transports._aiohttp import AiohttpTransport

from asyncpod import HTTPSEndpoint, Request, StaticTLS
from tests.servers.token import TokenServer


def test_closed_connections_do_not_outlive_the_loop() -> None:
    """Answers with ``Connection: close``, then aclose() and the loop ends: nothing leaks."""
    ca = trustme.CA()
    context = ssl.create_default_context()
    ca.configure_trust(context)
    with TokenServer(ca).running() as server:
        server.close_connections = True
        server.allow("token")

        async def one_request() -> None:
            transport = AiohttpTransport(HTTPSEndpoint(server.url, StaticTLS(context)))
            headers = {"Authorization": "Bearer token"}
            request = Request(method="GET", target="/api", headers=headers)
            assert (await transport.send(request)).status == 200
            await transport.aclose()

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            for _ in range(10):
                # The client's TLS shutdown is still running when the loop ends.
                asyncio.run(one_request())
            gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []
