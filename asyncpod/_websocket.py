"""The Kubernetes channel protocol over a WebSocket, sans-IO.

exec, attach and port-forward upgrade a GET to a WebSocket whose binary
messages start with a channel byte: for exec and attach 0 stdin, 1 stdout,
2 stderr, 3 the error channel (a JSON ``Status``), 4 resize; for
port-forward 2i data and 2i+1 error of the i-th port. ``v5.channel.k8s.io``
adds the close signal ``[255, channel]``, which half-closes one channel
(stdin) while the others keep flowing; ``v4.channel.k8s.io`` cannot.
(k8s.io/apimachinery/pkg/util/httpstream/wsstream, kubelet's
cri/streaming/remotecommand.)

The WebSocket framing is the sans-IO ``Protocol`` of the ``websockets``
package: no I/O, C-accelerated masking (every byte a client sends is masked,
RFC 6455 5.3), no dependencies of its own. ``ChannelConnection`` adds the
channels; the I/O lives in ``_remote`` and ``_portforward``.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from attrs import frozen

from asyncpod import _json
from asyncpod._errors import AsyncpodError, ProtocolError

if TYPE_CHECKING:
    from websockets.protocol import Protocol

V5: Final = "v5.channel.k8s.io"
V4: Final = "v4.channel.k8s.io"
# Offered in one comma-separated header, best first (RFC 6455 4.1: the server
# names the one it picked in its 101).
EXEC_PROTOCOLS: Final = (V5, V4)
PORTFORWARD_PROTOCOLS: Final = (V4,)

STDIN: Final = 0
STDOUT: Final = 1
STDERR: Final = 2
ERROR: Final = 3
RESIZE: Final = 4
CLOSE_SIGNAL: Final = 255
# kubelet and client-go copy streams through 32 KiB buffers; a message is at
# most that, channel byte included, so that no peer needs a larger one.
MAX_MESSAGE: Final = 32 * 1024
# A peer's message can be larger than ours (a Status, a hostile server); this
# bounds the memory one message may pin.
MAX_RECEIVED_MESSAGE: Final = 16 << 20
_GUID: Final = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class StreamProtocolError(ProtocolError):
    """The peer broke the WebSocket or channel protocol."""


@frozen
class ChannelData:
    """Bytes that arrived on one channel (the port prefix of port-forward removed)."""

    channel: int
    data: bytes


@frozen
class ChannelClosed:
    """The peer half-closed one channel (v5 close signal)."""

    channel: int


@frozen
class ConnectionClosed:
    """The peer closed the WebSocket (or the connection ended without a close frame)."""

    code: int | None
    reason: str


ChannelEvent = ChannelData | ChannelClosed | ConnectionClosed


def handshake_headers(protocols: tuple[str, ...]) -> tuple[dict[str, str], str]:
    """The headers of a WebSocket upgrade request, and the ``Sec-WebSocket-Accept`` to expect."""
    key = base64.b64encode(os.urandom(16)).decode("ascii")
    headers = {
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": key,
        "Sec-WebSocket-Protocol": ", ".join(protocols),
    }
    return headers, accept_for(key)


def accept_for(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a ``Sec-WebSocket-Key`` (RFC 6455 4.2.2)."""
    digest = hashlib.sha1((key + _GUID).encode("ascii"), usedforsecurity=False).digest()
    return base64.b64encode(digest).decode("ascii")


def check_handshake(
    headers: Mapping[str, str], accept: str, offered: tuple[str, ...], what: str
) -> str:
    """The subprotocol the server chose in its 101, checked against what was offered.

    Raises:
        StreamProtocolError: a wrong ``Sec-WebSocket-Accept`` (not a WebSocket
            server), or no or an unoffered subprotocol.
    """
    if headers.get("sec-websocket-accept", "").strip() != accept:
        msg = f"{what}: the server's 101 has a wrong Sec-WebSocket-Accept; it is no WebSocket"
        raise StreamProtocolError(msg)
    chosen = headers.get("sec-websocket-protocol", "").strip()
    if chosen not in offered:
        shown = repr(chosen[:100]) if chosen else "none"
        msg = (
            f"{what}: the server chose the subprotocol {shown}, but asyncpod offered "
            f"{', '.join(offered)}"
        )
        raise StreamProtocolError(msg)
    return chosen


class ChannelConnection:
    """The client side of one channel WebSocket, after a ``101``.

    ``receive_data()`` takes bytes read from the connection and returns
    channel events; ``send()``, ``close_channel()``, ``ping()`` and
    ``close()`` queue bytes that ``data_to_send()`` hands out for writing.
    Pings of the server are answered in that queue as well.

    Args:
        subprotocol: the one the server chose.
        port_prefixed: port-forward: the first message of each channel starts
            with the port (uint16 little-endian), which is removed.
    """

    def __init__(self, subprotocol: str, *, port_prefixed: bool = False) -> None:
        # Imported here: websockets costs 20 ms at import, and most programs
        # never exec.
        from websockets.exceptions import InvalidState, PayloadTooBig
        from websockets.exceptions import ProtocolError as WSProtocolError
        from websockets.frames import Frame, Opcode
        from websockets.protocol import Protocol, Side, State

        # Kept here: websockets resolves its names lazily, at a cost per lookup
        # that showed in every message of a port-forward.
        self._frame_type = Frame
        self._data_opcodes = (Opcode.BINARY, Opcode.TEXT, Opcode.CONT)
        self._close_opcode = Opcode.CLOSE
        self._too_big = PayloadTooBig
        self._broken = WSProtocolError
        self._invalid_state = InvalidState
        self.subprotocol = subprotocol
        self._ws = Protocol(Side.CLIENT, state=State.OPEN, max_size=MAX_RECEIVED_MESSAGE)
        self._open = State.OPEN
        self._fragments: list[bytes] = []
        self._port_prefixed = port_prefixed
        self._prefix_seen: set[int] = set()
        self._ended = False

    @property
    def can_close_channels(self) -> bool:
        """Whether one channel can be half-closed (only v5 has the close signal)."""
        return self.subprotocol == V5

    def receive_data(self, data: bytes) -> list[ChannelEvent]:
        """Feed bytes from the connection; ``b""`` means the connection ended.

        Raises:
            StreamProtocolError: invalid framing, or a message over the limit.
        """
        ws = self._ws
        if data:
            ws.receive_data(data)
        else:
            ws.receive_eof()
        events: list[ChannelEvent] = []
        for frame in ws.events_received():
            if not isinstance(frame, self._frame_type):
                continue
            if frame.opcode in self._data_opcodes:
                self._fragments.append(bytes(frame.data))
                if frame.fin:
                    message = b"".join(self._fragments)
                    self._fragments = []
                    event = self._message(message)
                    if event is not None:
                        events.append(event)
            elif frame.opcode is self._close_opcode and not self._ended:
                self._ended = True
                close = ws.close_rcvd
                events.append(
                    ConnectionClosed(close.code if close else None, close.reason if close else "")
                )
        exc = ws.parser_exc
        if isinstance(exc, self._too_big):
            msg = f"the server sent a message larger than {MAX_RECEIVED_MESSAGE} bytes"
            raise StreamProtocolError(msg) from exc
        if isinstance(exc, self._broken):
            msg = f"the server broke the WebSocket protocol: {exc}"
            raise StreamProtocolError(msg) from exc
        if not data and not self._ended:
            self._ended = True
            events.append(ConnectionClosed(None, "the connection ended without a close frame"))
        return events

    def _message(self, message: bytes) -> ChannelEvent | None:
        if not message:
            return None
        channel = message[0]
        if channel == CLOSE_SIGNAL and self.subprotocol == V5:
            if len(message) < 2:
                msg = "the server sent a close signal without a channel"
                raise StreamProtocolError(msg)
            return ChannelClosed(message[1])
        payload = message[1:]
        if self._port_prefixed and channel not in self._prefix_seen:
            # The first message of each port-forward channel is its port.
            self._prefix_seen.add(channel)
            if len(payload) < 2:
                msg = f"the first message of port-forward channel {channel} has no port"
                raise StreamProtocolError(msg)
            payload = payload[2:]
        if not payload:
            return None
        return ChannelData(channel, payload)

    def send(self, channel: int, data: bytes) -> None:
        """Queue ``data`` on ``channel``, in messages of at most 32 KiB."""
        ws = self._ws
        prefix = bytes((channel,))
        step = MAX_MESSAGE - 1
        view = memoryview(data)
        for start in range(0, len(data), step):
            self._send_frame(ws, prefix + view[start : start + step])

    def _send_frame(self, ws: Protocol, message: bytes) -> None:
        try:
            ws.send_binary(message)
        except self._invalid_state as exc:
            msg = "the WebSocket is closing; nothing more can be sent"
            raise AsyncpodError(msg) from exc

    def close_channel(self, channel: int) -> None:
        """Queue the v5 close signal of ``channel``.

        Raises:
            AsyncpodError: the server speaks v4, which cannot half-close.
        """
        if not self.can_close_channels:
            msg = (
                f"the server speaks only {self.subprotocol}, which cannot close one channel "
                f"(stdin); it needs {V5} (Kubernetes 1.30+)"
            )
            raise AsyncpodError(msg)
        self._send_frame(self._ws, bytes((CLOSE_SIGNAL, channel)))

    def resize(self, width: int, height: int) -> None:
        """Queue a terminal size on the resize channel."""
        self.send(RESIZE, _json.dumps({"Width": width, "Height": height}))

    def ping(self) -> None:
        """Queue a keepalive ping (client-go sends one every 5 s)."""
        if self._ws.state is self._open:
            self._ws.send_ping(b"")

    def close(self, code: int = 1000) -> None:
        """Queue a close frame, once."""
        if self._ws.state is self._open:
            self._ws.send_close(code)

    def data_to_send(self) -> bytes:
        """The bytes queued for the connection since the last call."""
        return b"".join(self._ws.data_to_send())


def parse_status(raw: bytes) -> dict[str, Any]:
    """The ``Status`` of the error channel (``{}`` when nothing was sent).

    Raises:
        StreamProtocolError: the error channel holds something else than a JSON object.
    """
    if not raw.strip():
        return {}
    try:
        doc = _json.loads(raw)
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        # Before v4 the error channel carried plain text; keep it as the message.
        return {"status": "Failure", "message": raw[:4096].decode("utf-8", errors="replace")}
    return doc


def exit_code_of(status: Mapping[str, Any]) -> int | None:
    """The exit code a ``Status`` names: 0 for ``Success`` (or none sent), else its ExitCode cause.

    ``None`` when the command failed without one (it could not be started).
    """
    if not status or status.get("status") == "Success":
        return 0
    if status.get("reason") != "NonZeroExitCode":
        return None
    details = status.get("details")
    causes = details.get("causes") if isinstance(details, dict) else None
    for cause in causes if isinstance(causes, list) else []:
        if isinstance(cause, dict) and cause.get("reason") == "ExitCode":
            message = str(cause.get("message", ""))
            if message.lstrip("-").isdigit():
                return int(message)
    return None


__all__ = [
    "CLOSE_SIGNAL",
    "ERROR",
    "EXEC_PROTOCOLS",
    "MAX_MESSAGE",
    "PORTFORWARD_PROTOCOLS",
    "RESIZE",
    "STDERR",
    "STDIN",
    "STDOUT",
    "V4",
    "V5",
    "ChannelClosed",
    "ChannelConnection",
    "ChannelData",
    "ChannelEvent",
    "ConnectionClosed",
    "StreamProtocolError",
    "accept_for",
    "check_handshake",
    "exit_code_of",
    "handshake_headers",
    "parse_status",
]
