"""A small HTTP/1.1 server for the transport tests, on TLS, plain TCP and a Unix socket.

It runs its own asyncio loop in a background thread, so asyncio and trio
tests can both use it, and it records what a test needs to check from the
server's side: which connection carried each request, the headers it got,
and how many connections are open on each listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import h11
import trustme

from asyncpod.testing._sockets import abort_transports, run_until_stopped

# A block of varied bytes: a large body built from it shows reordered or lost
# chunks, which a body of one repeated byte would not.
PATTERN = bytes(range(256)) * 4096  # 1 MiB


def pattern_body(size: int) -> bytes:
    """The body that ``/big?size=N`` sends."""
    whole, rest = divmod(size, len(PATTERN))
    return PATTERN * whole + PATTERN[:rest]


def status_body(code: int) -> bytes:
    """A Kubernetes ``Status`` object as the API server sends for an error."""
    reason = {404: "NotFound", 500: "InternalError", 409: "Conflict"}.get(code, "Unknown")
    return json.dumps(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": f"test server answered {code}",
            "reason": reason,
            "code": code,
        }
    ).encode()


class RequestRecord:
    """What the server saw of one request."""

    def __init__(self, listener: str, connection: int, event: h11.Request, body: bytes) -> None:
        self.listener = listener
        self.connection = connection
        self.method = event.method.decode()
        self.target = event.target.decode()
        self.headers = {n.decode().lower(): v.decode() for n, v in event.headers}
        self.body = body


class TransportTestServer:
    """Serves canned answers on four listeners from a background thread.

    Listeners: ``tls`` (cert for 127.0.0.1, ::1 and localhost), ``named`` (cert
    only for ``kubernetes.default.svc``), ``plain`` (HTTP) and ``unix``.
    """

    def __init__(self, folder: Path, ca: trustme.CA) -> None:
        self.folder = folder
        self.ca = ca
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=run_until_stopped, args=(self._loop,), daemon=True)
        self._servers: list[asyncio.base_events.Server] = []
        self._ids = itertools.count(1)
        self._handlers: set[asyncio.Task[None]] = set()
        self.lock = threading.Lock()
        self.open: Counter[str] = Counter()
        self.opened: Counter[str] = Counter()
        self.requests: list[RequestRecord] = []
        self.ports: dict[str, int] = {}
        self.unix_path = str(folder / "server.sock")
        self.slow_waiting = 0
        # Connections closed as idle by ``close_idle`` (the close has been started).
        self.idle_closed = 0

    # lifecycle

    def start(self) -> None:
        """Open the listeners; returns once they accept connections."""
        self._thread.start()
        self._call(self._start())

    def stop(self) -> None:
        """Close the listeners and every open connection."""
        self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _call(self, coro: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(10)

    def _server_context(self, *identities: str) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert(*identities).configure_cert(context)
        return context

    async def _start(self) -> None:
        tls = self._server_context("127.0.0.1", "::1", "localhost")
        named = self._server_context("kubernetes.default.svc")
        for name, context in (("tls", tls), ("named", named), ("plain", None)):
            server = await asyncio.start_server(
                self._connection_handler(name), "127.0.0.1", 0, ssl=context
            )
            self.ports[name] = server.sockets[0].getsockname()[1]
            self._servers.append(server)
        unix = await asyncio.start_unix_server(self._connection_handler("unix"), self.unix_path)
        self._servers.append(unix)

    async def _stop(self) -> None:
        for server in self._servers:
            server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        # Handshakes in flight and TLS shutdowns waiting for a peer are unknown
        # to the handlers: abort them, or their sockets are collected in a later test.
        await abort_transports(asyncio.get_running_loop())

    # what tests look at

    def url(self, listener: str) -> str:
        """The base URL of a TCP listener."""
        scheme = "http" if listener == "plain" else "https"
        return f"{scheme}://127.0.0.1:{self.ports[listener]}"

    def records(self, tag: str) -> list[RequestRecord]:
        """The requests whose target carries ``tag=<tag>``."""
        with self.lock:
            return [r for r in self.requests if f"tag={tag}" in r.target]

    def open_connections(self, listener: str) -> int:
        """How many connections are open on ``listener`` right now."""
        with self.lock:
            return self.open[listener]

    def wait_for(self, condition: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Poll ``condition`` (from any thread) until true or ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.01)
        return condition()

    # serving

    def _connection_handler(
        self, listener: str
    ) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._handlers.add(task)
            connection = next(self._ids)
            with self.lock:
                self.open[listener] += 1
                self.opened[listener] += 1
            try:
                await self._serve(listener, connection, reader, writer)
            except (ConnectionError, h11.ProtocolError, ssl.SSLError, asyncio.CancelledError):
                pass
            finally:
                writer.close()
                with contextlib.suppress(ConnectionError, ssl.SSLError, asyncio.CancelledError):
                    await writer.wait_closed()
                with self.lock:
                    self.open[listener] -= 1
                self._handlers.discard(task)

        return handle

    async def _serve(
        self,
        listener: str,
        connection: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=1 << 20)
        drop_next = False
        while True:
            event = await _next(conn, reader)
            if not isinstance(event, h11.Request):
                return
            body = []
            while True:
                part = await _next(conn, reader)
                if isinstance(part, h11.Data):
                    body.append(bytes(part.data))
                elif isinstance(part, h11.EndOfMessage):
                    break
                else:
                    return
            record = RequestRecord(listener, connection, event, b"".join(body))
            with self.lock:
                self.requests.append(record)
            if drop_next:
                # The request arrived on a connection the server had meant to
                # close as idle: it goes away without an answer.
                return
            query = parse_qs(urlsplit(record.target).query)
            keep = await self._answer(record, query, conn, reader, writer)
            if not keep or conn.our_state is not h11.DONE:
                return
            if "drop_next" in query:
                drop_next = True
            if "close_idle" in query:
                await asyncio.sleep(0.01)
                writer.close()
                with self.lock:
                    self.idle_closed += 1
                return
            conn.start_next_cycle()

    async def _answer(
        self,
        record: RequestRecord,
        query: dict[str, list[str]],
        conn: h11.Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bool:
        path = urlsplit(record.target).path
        if path.startswith("/status/"):
            code = int(path.rsplit("/", 1)[1])
            body = status_body(code) if code >= 400 else b'{"kind":"Ok"}'
            await _send(conn, writer, code, body, head=record.method == "HEAD")
        elif path == "/echo":
            if "delay" in query:
                await asyncio.sleep(float(query["delay"][0]))
            echo = {
                "method": record.method,
                "target": record.target,
                "headers": record.headers,
                "body_length": len(record.body),
                "connection": record.connection,
                "listener": record.listener,
            }
            await _send(conn, writer, 200, json.dumps(echo).encode())
        elif path == "/big":
            size = int(query["size"][0])
            headers = [("content-type", "application/octet-stream"), ("content-length", str(size))]
            writer.write(conn.send(h11.Response(status_code=200, headers=headers)))
            for start in range(0, size, len(PATTERN)):
                writer.write(conn.send(h11.Data(data=PATTERN[: min(len(PATTERN), size - start)])))
                await writer.drain()
            writer.write(conn.send(h11.EndOfMessage()))
            await writer.drain()
        elif path == "/lines":
            count = int(query["n"][0])
            headers = [("content-type", "application/json"), ("transfer-encoding", "chunked")]
            writer.write(conn.send(h11.Response(status_code=200, headers=headers)))
            for i in range(count):
                line = json.dumps({"type": "ADDED", "n": i}).encode() + b"\n"
                # Each line arrives in two chunks, cut mid-line, as a proxy may.
                writer.write(conn.send(h11.Data(data=line[:5])))
                await writer.drain()
                await asyncio.sleep(0.001)
                writer.write(conn.send(h11.Data(data=line[5:])))
                await writer.drain()
            writer.write(conn.send(h11.EndOfMessage()))
            await writer.drain()
        elif path == "/truncate":
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: 1000\r\n\r\n" + b"x" * 100
            )
            await writer.drain()
            return False
        elif path == "/truncate-chunked":
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
            )
            await writer.drain()
            return False
        elif path == "/garbage":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n")
            await writer.drain()
            return False
        elif path == "/slow":
            # Answers never: waits until the client goes away.
            with self.lock:
                self.slow_waiting += 1
            try:
                while await reader.read(65536):
                    pass
            finally:
                with self.lock:
                    self.slow_waiting -= 1
            return False
        else:
            await _send(conn, writer, 404, b"404 page not found\n", "text/plain")
        return True


async def _next(conn: h11.Connection, reader: asyncio.StreamReader) -> Any:
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await reader.read(65536))
            continue
        return event


async def _send(
    conn: h11.Connection,
    writer: asyncio.StreamWriter,
    status: int,
    body: bytes,
    content_type: str = "application/json",
    *,
    head: bool = False,
) -> None:
    headers = [
        ("content-type", content_type),
        ("content-length", str(len(body))),
        ("audit-id", "00000000-0000-0000-0000-000000000000"),
    ]
    if status == 302:
        headers.append(("location", "/status/200"))
    writer.write(conn.send(h11.Response(status_code=status, headers=headers)))
    if status not in (204, 304) and not head:
        writer.write(conn.send(h11.Data(data=body)))
    writer.write(conn.send(h11.EndOfMessage()))
    await writer.drain()
