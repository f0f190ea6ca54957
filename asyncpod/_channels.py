"""Opening a channel WebSocket on a ``Session`` and doing its I/O.

``open_channels`` sends the upgrade through the session's pipeline (the
credential, a 401 re-reading it once, all three routes), checks the 101 and
returns a ``ChannelSocket``: a ``ChannelConnection`` (sans-IO) and the
connection it drives. Writes are serialised by a lock, so that the keepalive
pinger, the pong answers and the caller's writes never interleave.
"""

from __future__ import annotations

import anyio

from asyncpod._errors import APIError, AsyncpodError, ForbiddenError
from asyncpod._models import DuplexStream
from asyncpod._session import Session
from asyncpod._target import Params
from asyncpod._websocket import (
    ChannelConnection,
    ChannelEvent,
    check_handshake,
    handshake_headers,
)

# client-go pings every 5 s, so that proxies and load balancers in between
# do not close a quiet exec or port-forward session.
PING_INTERVAL = 5.0
# How long a closing handshake may take before the connection is just closed.
CLOSE_TIMEOUT = 2.0


class ChannelSocket:
    """A channel WebSocket: the sans-IO state and its connection."""

    def __init__(self, connection: DuplexStream, channels: ChannelConnection, what: str) -> None:
        self.connection = connection
        self.channels = channels
        self.what = what
        self._lock = anyio.Lock()
        self._closed = False

    @property
    def subprotocol(self) -> str:
        """The subprotocol the server chose (``v5.channel.k8s.io``...)."""
        return self.channels.subprotocol

    async def flush(self) -> None:
        """Write whatever the sans-IO state queued (messages, pongs, a close)."""
        async with self._lock:
            await self._write_pending()

    async def _write_pending(self) -> None:
        # Under the lock. Loops, so that what another task queued while this
        # one was writing (a pong) goes out too.
        while data := self.channels.data_to_send():
            if self._closed:
                return
            await self.connection.send(data)

    async def send(self, channel: int, data: bytes) -> None:
        """Send ``data`` on ``channel`` (in messages of at most 32 KiB)."""
        async with self._lock:
            self.channels.send(channel, data)
            await self._write_pending()

    async def receive(self) -> list[ChannelEvent]:
        """Read from the connection until there are events (a close is one)."""
        while True:
            data = await self.connection.receive()
            events = self.channels.receive_data(data)
            if not self._lock.locked():
                await self.flush()
            # Else a writer holds the lock and sends the queued pong after its
            # own data. Waiting for it here could deadlock: the writer may be
            # blocked until the peer reads, and the peer until we read.
            if events:
                return events

    async def keepalive(self) -> None:
        """Ping every ``PING_INTERVAL`` seconds until cancelled."""
        while True:
            await anyio.sleep(PING_INTERVAL)
            self.channels.ping()
            try:
                await self.flush()
            except AsyncpodError:
                # The connection broke: the reader reports it.
                return

    async def aclose(self) -> None:
        """Send a close frame (best effort, bounded) and close the connection."""
        with anyio.CancelScope(shield=True):
            try:
                if not self._closed:
                    self.channels.close()
                    with anyio.move_on_after(CLOSE_TIMEOUT):
                        await self.flush()
            except Exception:  # noqa: S110 - the peer may be gone; closing goes on
                pass
            finally:
                self._closed = True
                await self.connection.aclose()


async def open_channels(
    session: Session,
    path: str,
    params: Params,
    protocols: tuple[str, ...],
    *,
    port_prefixed: bool = False,
) -> ChannelSocket:
    """Upgrade ``GET path`` to a channel WebSocket offering ``protocols``.

    Raises:
        APIError: the server refused the upgrade, with its message; a plain
            403 from a ``kubectl proxy`` names its ``--reject-paths`` flag.
        StreamProtocolError: the 101 is not a WebSocket's, or names a
            subprotocol that was not offered.
        TransportError: the server could not be reached.
    """
    headers, accept = handshake_headers(protocols)
    try:
        response = await session.open_upgrade(path, params, headers)
    except ForbiddenError as exc:
        raise _forbidden(exc, path) from None
    connection = response.connection
    assert connection is not None  # open_upgrade returns only a 101 with its connection
    try:
        chosen = check_handshake(response.headers, accept, protocols, f"GET {path}")
    except BaseException:
        with anyio.CancelScope(shield=True):
            await connection.aclose()
        raise
    return ChannelSocket(
        connection, ChannelConnection(chosen, port_prefixed=port_prefixed), f"GET {path}"
    )


def _forbidden(exc: APIError, path: str) -> APIError:
    """The 403 with a hint: which permission, or which proxy flag, is missing."""
    if exc.body.get("kind") == "Status":
        hint = (
            "; exec and attach need the verbs get and create on pods/exec (pods/attach, "
            "pods/portforward) in RBAC (create since Kubernetes 1.35)"
        )
        return ForbiddenError(exc.status, exc.reason, exc.message + hint, exc.body)
    # Not a Status: kubectl proxy itself refused the path. Its default
    # --reject-paths covers pods/*/exec and pods/*/attach.
    message = (
        f"{exc.message.strip() or 'Forbidden'}: the kubectl proxy refused {path} itself "
        "(its default --reject-paths rejects pods/*/exec and pods/*/attach); start it with "
        "a --reject-paths pattern that does not match this path"
    )
    return ForbiddenError(exc.status, exc.reason, message, exc.body)


__all__ = ["CLOSE_TIMEOUT", "PING_INTERVAL", "ChannelSocket", "open_channels"]
