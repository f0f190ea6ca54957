"""port-forward as kubectl 1.31+ opens it: SPDY/3.1 tunneled in a WebSocket.

kubectl offers the subprotocol ``SPDY/3.1+portforward.k8s.io`` (KEP-4006,
PortForwardWebsockets) and writes a SPDY byte stream in binary messages. The
API server's tunneling handler passes that stream to the kubelet's SPDY
port-forward server; the sandbox is both, so it speaks SPDY itself.

Per forwarded connection the client opens two streams with the headers
``streamtype`` (``error`` or ``data``), ``port`` and ``requestid``; the
kubelet (``pkg/kubelet/cri/streaming/portforward/httpstream.go``) replies to
each, pairs them by request id and, once it has both, connects to the port:
data flows on the data stream, a failure is written as text on the error
stream, and both streams are closed (FIN) when the pod's side ends. A stream
with a missing or bad header is reset. The client closing the data stream
half-closes the pod's connection; resetting it drops the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from asyncpod.testing import _spdy

if TYPE_CHECKING:
    from asyncpod.testing._sandbox import Sandbox

TUNNEL_PROTOCOL = "SPDY/3.1+portforward.k8s.io"
# The kubelet copies with io.Copy: 32 KiB per read, one data frame each.
CHUNK = 32 * 1024


def refused_message(port: int, metadata: Mapping[str, Any]) -> str:
    """The kubelet's words for a pod port nothing listens on (containerd's dial error;
    the pod's uid stands for the sandbox id and the network namespace)."""
    uid = metadata.get("uid", "")
    return (
        f"error forwarding port {port} to pod {uid}, uid : failed to connect to "
        f'localhost:{port} inside namespace "{uid}", IPv4: dial tcp4 127.0.0.1:{port}: '
        "connect: connection refused"
    )


def _stream_problem(headers: Mapping[str, list[str]]) -> str | None:
    """Why the kubelet refuses a stream with these headers (``httpStreamReceived``)."""
    port = (headers.get("port") or [""])[0]
    if not port:
        return '"port" header is required'
    if not port.isdigit() or int(port) > 65535:
        return f"unable to parse {port!r} as a port"
    if int(port) < 1:
        return f'port "{port}" must be > 0'
    kind = (headers.get("streamtype") or [""])[0]
    if not kind:
        return '"streamType" header is required'
    if kind not in ("error", "data"):
        return f'invalid stream type "{kind}"'
    return None


class _Pair:
    """The error and data streams of one forwarded connection."""

    def __init__(self, request_id: str, port: int) -> None:
        self.request_id = request_id
        self.port = port
        self.error: int | None = None
        self.data: int | None = None
        self.connected: asyncio.Future[asyncio.StreamWriter | None] = (
            asyncio.get_running_loop().create_future()
        )
        self.reset = False
        self.error_closed = False
        self.task: asyncio.Task[None] | None = None


class SpdyTunnel:
    """One tunneled port-forward connection: its SPDY state and its forwards."""

    def __init__(self, sb: Sandbox, ws: web.WebSocketResponse, pod: Mapping[str, Any]) -> None:
        self.sb = sb
        self.ws = ws
        self.metadata = pod["metadata"]
        self.spdy = _spdy.SpdyConnection()
        # Header blocks share one compression context: encode and send in one order.
        self.lock = asyncio.Lock()
        self.pairs: dict[str, _Pair] = {}  # by request id, until both streams came
        self.streams: dict[int, _Pair] = {}  # by stream id, until the forward ends
        self.next_stream_id = 1
        self.closed = False

    async def send(self, *frames: _spdy.Frame) -> None:
        async with self.lock:
            if self.closed:
                return
            data = b"".join(self.spdy.encode(frame) for frame in frames)
            await self.ws.send_bytes(data)

    async def run(self) -> None:
        try:
            async for message in self.ws:
                if message.type != WSMsgType.BINARY:
                    # client-go's tunnel treats any other message as a broken stream.
                    return
                for frame in self.spdy.feed(message.data):
                    if not await self._handle(frame):
                        return
        except _spdy.SpdyProtocolError:
            last = max(self.next_stream_id - 2, 0)  # the last stream accepted
            with contextlib.suppress(ConnectionError):
                await self.send(_spdy.GoAway(last, _spdy.GOAWAY_PROTOCOL_ERROR))
        except ConnectionError:
            pass
        finally:
            await self._close()

    async def _close(self) -> None:
        tasks = [pair.task for pair in self.streams.values() if pair.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.closed = True
        with contextlib.suppress(Exception):
            await self.ws.close()

    async def _handle(self, frame: _spdy.Frame) -> bool:
        """Acts on one frame; False ends the connection."""
        if isinstance(frame, _spdy.SynStream):
            await self._new_stream(frame)
        elif isinstance(frame, _spdy.Data):
            await self._data(frame)
        elif isinstance(frame, _spdy.RstStream):
            self._reset(frame.stream_id)
        elif isinstance(frame, _spdy.Ping):
            if frame.ping_id % 2:  # the client's (odd): answer with the same id
                await self.send(frame)
        elif isinstance(frame, _spdy.GoAway):
            return False
        # SETTINGS, WINDOW_UPDATE, HEADERS, SYN_REPLY: nothing to do, as in spdystream.
        return True

    async def _new_stream(self, frame: _spdy.SynStream) -> None:
        stream_id = frame.stream_id
        if stream_id < self.next_stream_id or stream_id % 2 == 0:
            await self.send(_spdy.RstStream(stream_id, _spdy.PROTOCOL_ERROR))
            return
        self.next_stream_id = stream_id + 2
        if _stream_problem(frame.headers) is not None:
            # The kubelet rejects the stream: spdystream's Reset (status CANCEL).
            await self.send(_spdy.RstStream(stream_id, _spdy.CANCEL))
            return
        await self.send(_spdy.SynReply(stream_id))
        kind = frame.headers["streamtype"][0]
        request_id = (frame.headers.get("requestid") or [""])[0]
        if not request_id:
            # Clients before request ids: the error stream's id names the pair, and the
            # data stream follows it (the kubelet's best effort, in the same way).
            request_id = str(stream_id if kind == "error" else stream_id - 2)
        pair = self.pairs.get(request_id)
        if pair is None:
            pair = self.pairs[request_id] = _Pair(request_id, int(frame.headers["port"][0]))
        if getattr(pair, kind) is not None:
            if pair.error is not None and not pair.error_closed:
                text = f"error processing stream for request {request_id}: "
                text += f"{kind} stream already assigned"
                await self.send(_spdy.Data(pair.error, text.encode()))
            return
        setattr(pair, kind, stream_id)
        self.streams[stream_id] = pair
        if pair.error is not None and pair.data is not None:
            del self.pairs[request_id]
            pair.task = asyncio.ensure_future(self._forward(pair))

    async def _data(self, frame: _spdy.Data) -> None:
        pair = self.streams.get(frame.stream_id)
        if pair is None or frame.stream_id != pair.data or pair.reset:
            return  # the error stream carries nothing from the client
        if pair.task is None:
            return  # kubectl opens the error stream first; data before the pair is dropped
        writer = await pair.connected
        if writer is None or writer.is_closing():
            return
        try:
            if frame.data:
                writer.write(frame.data)
                await writer.drain()
            if frame.fin:
                writer.write_eof()
        except (ConnectionError, OSError):
            pass

    def _reset(self, stream_id: int) -> None:
        pair = self.streams.get(stream_id)
        if pair is None:
            return
        if stream_id == pair.error:
            pair.error_closed = True
            return
        pair.reset = True
        if pair.connected.done():
            writer = pair.connected.result()
            if writer is not None:
                writer.close()

    async def _forward(self, pair: _Pair) -> None:
        assert pair.error is not None
        assert pair.data is not None
        writer: asyncio.StreamWriter | None = None
        try:
            target = self.sb._port_target(
                self.metadata["namespace"], self.metadata["name"], pair.port
            )
            try:
                if target is None:
                    raise ConnectionRefusedError("connection refused")
                reader, writer = await asyncio.open_connection(target[0], target[1])
            except OSError:
                pair.connected.set_result(None)
                text = refused_message(pair.port, self.metadata)
                await self.send(_spdy.Data(pair.error, text.encode()))
                await self.send(_spdy.Data(pair.data, b"", _spdy.FLAG_FIN))
                return
            pair.connected.set_result(writer)
            if pair.reset:
                return
            with contextlib.suppress(ConnectionError, OSError):
                while chunk := await reader.read(CHUNK):
                    await self.send(_spdy.Data(pair.data, chunk))
            if not pair.reset:
                await self.send(_spdy.Data(pair.data, b"", _spdy.FLAG_FIN))
        except ConnectionError:
            pass
        finally:
            if not pair.connected.done():
                pair.connected.set_result(None)
            if writer is not None:
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
            if not pair.error_closed:
                with contextlib.suppress(Exception):
                    await self.send(_spdy.Data(pair.error, b"", _spdy.FLAG_FIN))
            self.streams.pop(pair.error, None)
            self.streams.pop(pair.data, None)


def offers_tunnel(offered: list[str], upgrade: str) -> bool:
    """Whether a port-forward request asks for the SPDY tunnel (the API server's test)."""
    return upgrade.lower() == "websocket" and TUNNEL_PROTOCOL in offered


async def serve_tunnel(
    sb: Sandbox, request: web.BaseRequest, pod: Mapping[str, Any]
) -> web.WebSocketResponse:
    """Upgrades to the tunnel and serves its port-forward streams until either side ends."""
    ws = web.WebSocketResponse(protocols=[TUNNEL_PROTOCOL], max_msg_size=4 << 20, autoping=True)
    await ws.prepare(request)
    await SpdyTunnel(sb, ws, pod).run()
    return ws


__all__ = ["TUNNEL_PROTOCOL", "offers_tunnel", "refused_message", "serve_tunnel"]
