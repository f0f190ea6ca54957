"""A small HTTPS API server that checks bearer tokens, for the rotation tests.

It runs aiohttp on its own event loop in a background thread, so asyncio and
trio tests can both talk to it. Tokens are valid while they are in ``valid``
and their deadline (``time.monotonic()``) has not passed. Every request is
recorded as (path, token, status).
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import trustme
from aiohttp import web

from asyncpod.testing._sockets import abort_transports, run_until_stopped

UNAUTHORIZED = {
    "kind": "Status",
    "apiVersion": "v1",
    "metadata": {},
    "status": "Failure",
    "message": "Unauthorized",
    "reason": "Unauthorized",
    "code": 401,
}


class TokenServer:
    """The fake API server; see the module docstring."""

    def __init__(self, ca: trustme.CA) -> None:
        self.ca = ca
        self.ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(self.ssl)
        self.valid: dict[str, float] = {}
        self.log: list[tuple[str, str | None, int]] = []
        self.close_connections = False
        self.port = 0
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def allow(self, token: str) -> None:
        """Accept ``token`` until revoked."""
        with self._lock:
            self.valid[token] = float("inf")

    def revoke(self, token: str, after: float = 0.0) -> None:
        """Reject ``token`` from ``after`` seconds on."""
        with self._lock:
            self.valid[token] = time.monotonic() + after

    def swap_ca(self, ca: trustme.CA) -> None:
        """Serve a certificate from another CA on new connections, and drop old ones."""
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(self.ssl)
        self.close_connections = True

    def statuses(self) -> list[int]:
        """The status of every request so far."""
        with self._lock:
            return [status for _, _, status in self.log]

    async def _handle(self, request: web.Request) -> web.Response:
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ") if header.startswith("Bearer ") else None
        with self._lock:
            deadline = self.valid.get(token or "")
            ok = deadline is not None and time.monotonic() < deadline
            status = 200 if ok else 401
            if ok and request.path == "/forbidden":
                status = 403
            self.log.append((request.path, token, status))
        headers = {"Connection": "close"} if self.close_connections else {}
        if status == 401:
            body = UNAUTHORIZED
        elif status == 403:
            body = {**UNAUTHORIZED, "message": "forbidden", "reason": "Forbidden", "code": 403}
        else:
            body = {"kind": "APIVersions", "versions": ["v1"]}
        return web.Response(
            status=status, text=json.dumps(body), content_type="application/json", headers=headers
        )

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.ssl)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        # Handshakes in flight (and ones a client gave up on) are unknown to the runner.
        await abort_transports(self._loop)

    @contextmanager
    def running(self) -> Iterator[TokenServer]:
        """Serve in a background thread for the duration of the block."""
        thread = threading.Thread(target=run_until_stopped, args=(self._loop,), daemon=True)
        thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        try:
            yield self
        finally:
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            thread.join(10)
