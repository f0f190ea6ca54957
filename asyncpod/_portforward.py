"""Port-forward: a pod's TCP port as an anyio byte stream, or as a local listener.

One WebSocket carries one TCP connection (``v4.channel.k8s.io``, channel 0
data and channel 1 errors of the one port; the first message of each starts
with the port, uint16 little-endian). A local listener therefore opens one
WebSocket per accepted connection, as kubectl does. Text on the error
channel ends that connection only, and is reported; the listener goes on.

v4 has no half-close: when the local client stops sending, the connection
ends (the pod's side sees it closed); when the pod's side closes, the local
connection is closed at once, so that no socket lingers in CLOSE_WAIT
(kube-rs #973).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.abc

from asyncpod._channels import ChannelSocket, open_channels
from asyncpod._errors import AsyncpodError
from asyncpod._listener import TCPListener
from asyncpod._session import Session
from asyncpod._target import Params
from asyncpod._websocket import PORTFORWARD_PROTOCOLS, ChannelData, ConnectionClosed

logger = logging.getLogger("asyncpod")

_DATA = 0
_ERROR = 1
# The error channel carries a line of text; more is a broken server.
_MAX_ERROR = 64 << 10
_LOCAL_ERRORS = (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)


class PortForwardError(AsyncpodError):
    """The pod's side of a forwarded connection failed (text of the error channel)."""


class PortForwardStream(anyio.abc.ByteStream):
    """One TCP connection to a pod's port.

    ``receive()`` raises ``anyio.EndOfStream`` when the pod's side closed,
    or ``PortForwardError`` with the server's text when forwarding failed.
    ``send_eof()`` cannot be carried by v4 and does nothing; ``aclose()``
    ends the connection.
    """

    def __init__(self, socket: ChannelSocket, what: str) -> None:
        self._socket = socket
        self._what = what
        self._pending: list[bytes] = []
        self._error = bytearray()
        self._ended = False

    async def receive(self, max_bytes: int = 65536) -> bytes:
        pending = self._pending
        while not pending:
            if self._ended:
                if self._error:
                    text = self._error.decode("utf-8", errors="replace").strip()
                    msg = f"{self._what}: {text}"
                    raise PortForwardError(msg)
                raise anyio.EndOfStream
            for event in await self._socket.receive():
                if isinstance(event, ChannelData):
                    if event.channel == _DATA:
                        pending.append(event.data)
                    elif event.channel == _ERROR and len(self._error) < _MAX_ERROR:
                        self._error += event.data
                elif isinstance(event, ConnectionClosed):
                    self._ended = True
        data = pending[0]
        if len(data) > max_bytes:
            pending[0] = data[max_bytes:]
            return data[:max_bytes]
        del pending[0]
        return data

    async def send(self, item: bytes) -> None:
        await self._socket.send(_DATA, item)

    async def send_eof(self) -> None:
        """Nothing: v4.channel.k8s.io has no half-close (see the module's notes)."""

    async def aclose(self) -> None:
        await self._socket.aclose()


@asynccontextmanager
async def open_port_forward(
    session: Session, path: str, params: Params, what: str
) -> AsyncIterator[PortForwardStream]:
    """One forwarded connection, with its keepalive pings, for the block."""
    socket = await open_channels(session, path, params, PORTFORWARD_PROTOCOLS, port_prefixed=True)
    failure: Exception | None = None
    stream = PortForwardStream(socket, what)
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(socket.keepalive)
            try:
                yield stream
            except Exception as exc:
                # Re-raised after the task group, unwrapped.
                failure = exc
            finally:
                tasks.cancel_scope.cancel()
    finally:
        await stream.aclose()
    if failure is not None:
        raise failure


class PortForwarder:
    """A local TCP listener whose connections are forwarded to a pod's port.

    Attributes:
        host: the local address it listens on.
        port: the local port (the one chosen by the system for ``local_port=0``).
        errors: the error-channel texts and failures of ended connections,
            oldest first (the last 100).
        connections: how many connections were accepted.
    """

    def __init__(self, session: Session, path: str, params: Params, what: str) -> None:
        self._session = session
        self._path = path
        self._params = params
        self._what = what
        self.host = ""
        self.port = 0
        self.errors: list[str] = []
        self.connections = 0

    def _report(self, text: str) -> None:
        logger.warning("%s", text)
        self.errors.append(text)
        del self.errors[:-100]

    async def _handle(self, client: anyio.abc.SocketStream) -> None:
        # Every failure ends this connection only: nothing may escape to the
        # listener, which serves the others.
        self.connections += 1
        async with client:
            try:
                async with (
                    open_port_forward(
                        self._session, self._path, self._params, self._what
                    ) as stream,
                    anyio.create_task_group() as tasks,
                ):
                    tasks.start_soon(self._upstream, client, stream, tasks.cancel_scope)
                    await self._downstream(client, stream)
                    tasks.cancel_scope.cancel()
            except AsyncpodError as exc:
                self._report(f"{self._what}: {exc}")

    @staticmethod
    async def _upstream(
        client: anyio.abc.SocketStream, stream: PortForwardStream, scope: anyio.CancelScope
    ) -> None:
        try:
            while True:
                await stream.send(await client.receive(65536))
        except (*_LOCAL_ERRORS, AsyncpodError):
            # The local client stopped sending (v4 cannot carry a half-close,
            # so the forwarded connection ends here), or the WebSocket broke,
            # which the other direction reports.
            scope.cancel()

    async def _downstream(self, client: anyio.abc.SocketStream, stream: PortForwardStream) -> None:
        try:
            while True:
                await client.send(await stream.receive())
        except anyio.EndOfStream:
            pass
        except AsyncpodError as exc:
            self._report(str(exc) if isinstance(exc, PortForwardError) else f"{self._what}: {exc}")
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            # The local client went away.
            pass


@asynccontextmanager
async def serve_port_forward(
    session: Session, path: str, params: Params, what: str, *, host: str, local_port: int
) -> AsyncIterator[PortForwarder]:
    """Listen on ``host:local_port`` for the block, forwarding each connection."""
    forwarder = PortForwarder(session, path, params, what)
    try:
        listener = await TCPListener.open(host, local_port)
    except OSError as exc:
        msg = f"cannot listen on {host}:{local_port}: {exc.strerror or exc}"
        raise AsyncpodError(msg) from exc
    forwarder.host, forwarder.port = listener.host, listener.port
    failure: Exception | None = None
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(listener.serve, forwarder._handle)
            try:
                yield forwarder
            except Exception as exc:
                failure = exc
            finally:
                tasks.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await listener.aclose()
    if failure is not None:
        raise failure


__all__ = [
    "PortForwardError",
    "PortForwardStream",
    "PortForwarder",
    "open_port_forward",
    "serve_port_forward",
]
