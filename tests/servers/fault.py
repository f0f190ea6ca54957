"""A scriptable HTTP/1.1 server on 127.0.0.1 that misbehaves on demand.

It runs its own asyncio loop in a background thread, so tests on asyncio and
trio can both use it, and it can be stopped and started again on the same
port while clients keep sending. HTTP is written by hand so that every fault
(a dropped connection after the request was read, a truncated chunked body, a
1 MB header, an idle keep-alive closed under the client) is exact.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import trustme
from attrs import define, field

from asyncpod.testing._sockets import abort_transports, run_until_stopped

# The bearer token clients send to the TLS listener; tests check it never leaks.
TOKEN = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LXRva2VuLXZhbHVl.c2lnbmF0dXJl"


@define
class Seen:
    """One request as the server read it."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    connection: int


# An action answers one request; it returns whether the connection stays open.
Action = Callable[["Seen", asyncio.StreamReader, asyncio.StreamWriter], Awaitable[bool]]


def _head(status: int, headers: dict[str, str], reason: str = "X") -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def respond(
    status: int = 200,
    body: bytes | Any = None,
    headers: dict[str, str] | None = None,
) -> Action:
    """Answer with ``status`` and ``body`` (JSON-encoded unless bytes)."""
    if body is None:
        body = {"kind": "Status", "status": "Success" if status < 400 else "Failure"}
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    all_headers = {"Content-Type": "application/json", "Content-Length": str(len(payload))}
    all_headers.update(headers or {})

    async def action(
        seen: Seen, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        writer.write(_head(status, all_headers) + payload)
        await writer.drain()
        return True

    return action


def status_error(status: int, retry_after: str | None = None) -> Action:
    """A Kubernetes Status error, with ``Retry-After`` when given."""
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    body = {"kind": "Status", "status": "Failure", "code": status, "reason": "Injected"}
    return respond(status, body, headers)


async def drop(seen: Seen, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    """Read the request, then close the connection without a word."""
    return False


async def hang(seen: Seen, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    """Never answer; wait until the client goes away."""
    await reader.read()
    return False


async def truncated_chunked(
    seen: Seen, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> bool:
    """Start a chunked body and close the connection in the middle of it."""
    head = _head(200, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    writer.write(head + b'10\r\n{"kind": "PodLi')
    await writer.drain()
    return False


def huge_header(size: int = 1 << 20) -> Action:
    """An answer with one header field of ``size`` bytes."""

    async def action(
        seen: Seen, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        headers = {"Content-Length": "2", "X-Huge": "a" * size}
        writer.write(_head(200, headers) + b"{}")
        await writer.drain()
        return False

    return action


def big_body(size: int, *, announce: bool = True) -> Action:
    """A body of ``size`` bytes, with or without Content-Length, sent while the client reads."""

    async def action(
        seen: Seen, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        headers = {"Content-Type": "application/json"}
        if announce:
            headers["Content-Length"] = str(size)
        else:
            headers["Transfer-Encoding"] = "chunked"
        writer.write(_head(200, headers))
        chunk = b" " * 65536
        sent = 0
        with contextlib.suppress(ConnectionError):
            while sent < size:
                piece = chunk[: size - sent]
                writer.write(
                    f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if not announce else piece
                )
                sent += len(piece)
                await writer.drain()
            if not announce:
                writer.write(b"0\r\n\r\n")
                await writer.drain()
        return False

    return action


def watch_lines(lines: list[bytes], *, then_hang: bool = False) -> Action:
    """A chunked watch answer of ``lines`` (each sent as one chunk), then end or hang."""

    async def action(
        seen: Seen, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        writer.write(
            _head(200, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
        )
        for line in lines:
            data = line + b"\n"
            writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            await writer.drain()
        if then_hang:
            await reader.read()
            return False
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True

    return action


def slow(delay: float, then: Action | None = None) -> Action:
    """Wait ``delay`` seconds, then act as ``then`` (a plain 200 by default)."""
    after = then or respond()

    async def action(
        seen: Seen, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        await asyncio.sleep(delay)
        return await after(seen, reader, writer)

    return action


@define(eq=False)
class FaultServer:
    """The server; use as a context manager or call ``start()``/``stop()``."""

    idle_close: float | None = None
    tls_dir: Path | None = None
    default: Action = field(factory=respond)
    port: int = 0
    requests: list[Seen] = field(factory=list)
    connections: int = 0
    open_connections: int = 0
    max_open_connections: int = 0
    _script: list[Action] = field(factory=list)
    _lock: threading.Lock = field(factory=threading.Lock)
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(factory=set)
    _ssl: Any = None
    ca_file: Path | None = None

    def __attrs_post_init__(self) -> None:
        if self.tls_dir is not None:
            import ssl

            ca = trustme.CA()
            self.ca_file = self.tls_dir / "ca.crt"
            ca.cert_pem.write_to_path(str(self.ca_file))
            self._ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ca.issue_cert("127.0.0.1").configure_cert(self._ssl)

    @property
    def url(self) -> str:
        scheme = "https" if self._ssl is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def __enter__(self) -> FaultServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.shutdown()

    # -- scripting ---------------------------------------------------------------

    def next(self, action: Action, times: int = 1) -> None:
        """Answer the next ``times`` requests with ``action``."""
        with self._lock:
            self._script.extend([action] * times)

    def seen(self, method: str | None = None, path: str | None = None) -> list[Seen]:
        """The requests read so far, optionally only those of a method and path."""
        with self._lock:
            return [
                r
                for r in self.requests
                if (method is None or r.method == method)
                and (path is None or r.target.partition("?")[0] == path)
            ]

    # -- life cycle --------------------------------------------------------------

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            loop = asyncio.new_event_loop()
            thread = threading.Thread(
                target=run_until_stopped, args=(loop,), name="fault-server", daemon=True
            )
            thread.start()
            self._loop, self._thread = loop, thread
        return self._loop

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._ensure_loop()).result(10)

    def start(self) -> None:
        """Listen (again) on the same port."""
        self._call(self._start())

    def stop(self) -> None:
        """Stop listening and cut every open connection, as a killed server would."""
        if self._loop is not None:
            self._call(self._stop())

    def start_later(self, delay: float) -> None:
        """Start listening ``delay`` seconds from now, without waiting."""
        loop = self._ensure_loop()
        loop.call_soon_threadsafe(
            lambda: loop.call_later(delay, lambda: loop.create_task(self._start()))
        )

    def shutdown(self) -> None:
        """End the server's thread."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            assert self._thread is not None
            self._thread.join(5)
            self._loop = None

    def reserve_port(self) -> None:
        """Pick a free port without listening on it yet."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]

    async def _start(self) -> None:
        if self._server is not None:
            return
        self._server = await asyncio.start_server(
            self._serve,
            "127.0.0.1",
            self.port,
            reuse_address=True,
            limit=1 << 22,
            backlog=512,
            ssl=self._ssl,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        # A TLS connection still in its handshake has no writer yet: without this
        # its socket outlives the server and is reported unclosed in a later test.
        await abort_transports(asyncio.get_running_loop())
        if server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2)

    # -- serving -----------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with self._lock:
            self.connections += 1
            number = self.connections
            self.open_connections += 1
            self.max_open_connections = max(self.max_open_connections, self.open_connections)
        self._writers.add(writer)
        try:
            while await self._one(reader, writer, number):
                pass
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            self._writers.discard(writer)
            with self._lock:
                self.open_connections -= 1
            writer.transport.abort()

    async def _one(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, number: int
    ) -> bool:
        try:
            if self.idle_close is not None:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.idle_close)
            else:
                head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.TimeoutError, asyncio.IncompleteReadError):
            return False
        request_line, *lines = head.decode("latin-1").split("\r\n")
        method, target, _ = request_line.split(" ", 2)
        headers = {}
        for line in lines:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        body = b""
        if length := int(headers.get("content-length", "0")):
            body = await reader.readexactly(length)
        seen = Seen(method, target, headers, body, number)
        with self._lock:
            self.requests.append(seen)
            action = self._script.pop(0) if self._script else self.default
        return await action(seen, reader, writer)


async def wait_until(condition: Callable[[], bool], within: float = 5.0) -> bool:
    """Poll ``condition`` until it holds or ``within`` seconds pass."""
    end = time.monotonic() + within
    while time.monotonic() < end:
        if condition():
            return True
        await anyio.sleep(0.01)
    return condition()
