"""A plain-socket HTTP/1.1 server in threads, for faults no real server makes on purpose.

It is independent of any event loop, so clients on asyncio and trio meet the
same server. A ``rule`` decides, for each request the server has read in
full, which bytes go back and what happens to the connection afterwards:
kept open, closed (FIN) or reset (RST, through ``SO_LINGER`` 0). The server
records every request it read and every connection it accepted, so tests
count what arrived, not only what the client returned.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Literal

from attrs import define, field

After = Literal["keep", "close", "reset", "hold"]


@define
class Seen:
    """One request as the server read it."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    connection: int
    on_connection: int
    number: int


@define
class Reply:
    """What the server does with one request: write ``chunks``, then ``after``.

    ``after`` is ``"keep"`` (read the next request), ``"close"``, ``"reset"``,
    or ``"hold"``: send nothing more until the server stops (a stream that
    never ends).
    """

    chunks: Iterable[bytes] = ()
    after: After = "keep"


Rule = Callable[[Seen], Reply]


def answer(body: bytes = b'{"kind":"Status"}', status: int = 200, **headers: str) -> bytes:
    """A complete response with a ``Content-Length`` (extra headers: ``_`` becomes ``-``)."""
    fields = {"Content-Type": "application/json", "Content-Length": str(len(body))}
    fields.update({name.replace("_", "-"): value for name, value in headers.items()})
    head = f"HTTP/1.1 {status} X\r\n" + "".join(f"{n}: {v}\r\n" for n, v in fields.items())
    return head.encode("latin-1") + b"\r\n" + body


def chunked(chunks: Iterable[bytes], status: int = 200, **headers: str) -> Iterator[bytes]:
    """A response in chunked transfer coding, ended cleanly after ``chunks``."""
    fields = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    fields.update({name.replace("_", "-"): value for name, value in headers.items()})
    head = f"HTTP/1.1 {status} X\r\n" + "".join(f"{n}: {v}\r\n" for n, v in fields.items())
    yield head.encode("latin-1") + b"\r\n"
    for chunk in chunks:
        if chunk:
            yield b"%x\r\n%s\r\n" % (len(chunk), chunk)
    yield b"0\r\n\r\n"


@define
class RawServer:
    """Serves ``rule`` on 127.0.0.1 until ``stop()``; every socket is closed by the server.

    Attributes:
        url: ``http://127.0.0.1:PORT``.
        seen: every request read in full, in order.
        connections: how many connections were accepted.
    """

    rule: Rule
    tls: ssl.SSLContext | None = None
    url: str = ""
    seen: list[Seen] = field(factory=list)
    connections: int = 0
    _listener: socket.socket | None = None
    _sockets: set[socket.socket] = field(factory=set)
    _threads: list[threading.Thread] = field(factory=list)
    _lock: threading.Lock = field(factory=threading.Lock)
    _stopping: bool = False
    _stopped: threading.Event = field(factory=threading.Event)

    def start(self) -> None:
        """Listen on a free port and accept in a background thread."""
        listener = socket.create_server(("127.0.0.1", 0))
        self._listener = listener
        scheme = "http" if self.tls is None else "https"
        self.url = f"{scheme}://127.0.0.1:{listener.getsockname()[1]}"
        self._spawn(self._accept, listener)

    def stop(self) -> None:
        """Close the listener and every connection, and wait for the threads."""
        self._stopping = True
        self._stopped.set()
        # The accept thread ends first, so that no connection arrives later.
        self._threads[0].join(10)
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(10)
        if self._listener is not None:
            self._listener.close()

    def methods(self, target: str) -> list[str]:
        """The methods of the requests read for ``target``, in order."""
        with self._lock:
            return [s.method for s in self.seen if s.target == target]

    def _spawn(self, run: Callable[[socket.socket], None], sock: socket.socket) -> None:
        thread = threading.Thread(target=run, args=(sock,), daemon=True)
        with self._lock:
            self._sockets.add(sock)
            self._threads.append(thread)
        thread.start()

    def _accept(self, listener: socket.socket) -> None:
        listener.settimeout(0.05)
        while not self._stopping:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            with self._lock:
                number = self.connections
                self.connections += 1
            self._spawn(lambda sock, n=number: self._serve(sock, n), conn)

    def _serve(self, conn: socket.socket, number: int) -> None:
        after: After = "close"
        try:
            if self.tls is not None:
                # The handshake runs here, in the connection's thread; a client
                # that refuses the certificate ends it with an SSLError.
                wrapped = self.tls.wrap_socket(conn, server_side=True)
                with self._lock:
                    self._sockets.discard(conn)
                    self._sockets.add(wrapped)
                conn = wrapped
            buffer = b""
            index = 0
            while True:
                request, buffer = _read_request(conn, buffer)
                if request is None:
                    return
                method, target, headers, body = request
                with self._lock:
                    seen = Seen(method, target, headers, body, number, index, len(self.seen))
                    self.seen.append(seen)
                index += 1
                reply = self.rule(seen)
                for chunk in reply.chunks:
                    conn.sendall(chunk)
                after = reply.after
                if after == "hold":
                    self._stopped.wait()
                if after != "keep":
                    return
        except OSError:
            # The client hung up; that is what many tests provoke.
            after = "close"
        finally:
            if after == "reset":
                # Linger 0: close() sends RST instead of FIN.
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            with self._lock:
                self._sockets.discard(conn)
            conn.close()


def _read_request(
    conn: socket.socket, buffer: bytes
) -> tuple[tuple[str, str, dict[str, str], bytes] | None, bytes]:
    """One request (head and Content-Length body) and what was read beyond it."""
    while b"\r\n\r\n" not in buffer:
        data = conn.recv(65536)
        if not data:
            return None, b""
        buffer += data
    head, _, rest = buffer.partition(b"\r\n\r\n")
    line, *fields = head.decode("latin-1").split("\r\n")
    method, target, _ = line.split(" ", 2)
    headers = {}
    for item in fields:
        name, _, value = item.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        data = conn.recv(65536)
        if not data:
            return None, b""
        rest += data
    return (method, target, headers, rest[:length]), rest[length:]


@contextlib.contextmanager
def raw_server(rule: Rule, tls: ssl.SSLContext | None = None) -> Iterator[RawServer]:
    """Run a ``RawServer`` (over TLS when ``tls`` is given) for the duration of the block."""
    server = RawServer(rule, tls)
    server.start()
    try:
        yield server
    finally:
        server.stop()
