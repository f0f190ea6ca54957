"""A connected socket as an anyio byte stream, read and written directly.

Performance: anyio's own streams go through layers that cost more than the
system calls they wrap. On asyncio a TCP stream is a transport and a protocol
that pause and resume reading around every ``receive()`` (two ``epoll_ctl``
calls); on trio every ``send()`` and every ``receive()`` ends with a yield to
the scheduler, so a request and its answer cost three trips through the run
loop. This stream tries the system call first and waits for readiness only
when the kernel has nothing (``anyio.wait_readable``), which works alike on
both loops: one trip through the run loop per request and answer.

It keeps the checkpoint rules of anyio's streams: every ``receive()`` can be
cancelled before it reads and lets other tasks run; data already read is
never lost to a cancellation.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
from collections.abc import Callable, Mapping
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel


class SocketStream(anyio.abc.ByteStream):
    """One connected, non-blocking stream socket, owned by this stream."""

    __slots__ = ("_closed", "_receive_size", "_sock")

    def __init__(self, sock: socket.socket, receive_size: int) -> None:
        sock.setblocking(False)
        self._sock = sock
        self._receive_size = receive_size
        self._closed = False

    async def receive(self, max_bytes: int = 65536) -> bytes:
        # A caller asking for less still gets what one read brings, up to
        # receive_size: anyio's TLS layer asks for 64 KiB, which would cost a
        # read (and a loop round) per 64 KiB of a large body or a watch.
        max_bytes = max(max_bytes, self._receive_size)
        sock = self._sock
        # Yield first: by the time this task runs again the answer is often
        # there, and one recv() takes it without registering for readiness.
        await anyio.lowlevel.checkpoint()
        try:
            data = sock.recv(max_bytes)
        except BlockingIOError:
            data = await self._wait_and_receive(max_bytes)
        except OSError as exc:
            raise self._broken(exc) from exc
        if not data:
            raise anyio.EndOfStream
        return data

    async def _wait_and_receive(self, max_bytes: int) -> bytes:
        sock = self._sock
        while True:
            try:
                await anyio.wait_readable(sock)
            except OSError as exc:
                raise self._broken(exc) from exc
            try:
                return sock.recv(max_bytes)
            except BlockingIOError:
                continue
            except OSError as exc:
                raise self._broken(exc) from exc

    async def send(self, item: bytes) -> None:
        sock = self._sock
        await anyio.lowlevel.checkpoint_if_cancelled()
        view = memoryview(item)
        while view:
            try:
                sent = sock.send(view)
            except BlockingIOError:
                try:
                    await anyio.wait_writable(sock)
                except OSError as exc:
                    raise self._broken(exc) from exc
                continue
            except OSError as exc:
                raise self._broken(exc) from exc
            view = view[sent:]

    async def send_eof(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            raise self._broken(exc) from exc

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            sock = self._sock
            if sock.fileno() >= 0:
                # Wakes a task waiting on this socket with ClosedResourceError
                # (trio requires it before the descriptor is reused).
                anyio.notify_closing(sock)
            sock.close()
        await anyio.lowlevel.checkpoint()

    def _broken(self, exc: OSError) -> Exception:
        if self._closed or self._sock.fileno() < 0:
            return anyio.ClosedResourceError()
        return anyio.BrokenResourceError(str(exc))

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        sock = self._sock
        return {
            anyio.abc.SocketAttribute.raw_socket: lambda: sock,
            anyio.abc.SocketAttribute.family: lambda: sock.family,
            anyio.abc.SocketAttribute.local_address: sock.getsockname,
            anyio.abc.SocketAttribute.remote_address: sock.getpeername,
        }


async def connect_tcp(host: str, port: int, receive_size: int) -> SocketStream:
    """Connect to ``host:port``, trying each address it resolves to in turn."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = [(family, address) for family, _, _, _, address in infos]
    else:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        addresses = [(family, (host, port))]
    last: OSError | None = None
    for family, address in addresses:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await _connect(sock, address)
        except OSError as exc:
            sock.close()
            last = exc
            continue
        except BaseException:
            sock.close()
            raise
        return SocketStream(sock, receive_size)
    raise last or OSError(errno.EADDRNOTAVAIL, f"{host} resolved to no address")


async def connect_unix(path: str, receive_size: int) -> SocketStream:
    """Connect to the Unix socket at ``path``."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        await _connect(sock, path)
    except BaseException:
        sock.close()
        raise
    return SocketStream(sock, receive_size)


async def _connect(sock: socket.socket, address: Any) -> None:
    sock.setblocking(False)
    try:
        sock.connect(address)
    except (BlockingIOError, InterruptedError):
        await anyio.wait_writable(sock)
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            raise OSError(code, os.strerror(code)) from None
    else:
        await anyio.lowlevel.checkpoint()
