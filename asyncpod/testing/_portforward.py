"""The sandbox kubelet's port-forward over a WebSocket, several ports in one.

Imitates kube-apiserver plus kubelet (``pkg/kubelet/cri/streaming/portforward/
websocket.go``) and containerd's forwarder:

- ``ports`` is one or more query values, each a comma-separated list
  (apimachinery's ``Convert_Slice_string_To_Slice_int32``); the i-th port gets
  data channel ``2i`` and error channel ``2i+1``, and both first carry the
  port as two little-endian bytes.
- Each port is dialled at once; a port that refuses gets kubelet's message on
  its error channel and nothing more, the others carry on.
- A port ends when its pod side closes the connection or when the client
  closes the WebSocket (the pod side then sees a half-close, so that what the
  client sent is delivered); the WebSocket closes once every port has ended.
- The client's frames are accepted as text or binary, as wsstream reads
  both; frames for channels that no port has are ignored.

The pod's port reaches the local TCP port that ``Sandbox.map_port`` gave it;
an unmapped port is refused, as a pod port that nothing listens on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from asyncpod.testing import _status
from asyncpod.testing._spdytunnel import refused_message

if TYPE_CHECKING:
    from asyncpod.testing._sandbox import Sandbox

V4 = "v4.channel.k8s.io"
PORTFORWARD_PROTOCOLS = (V4,)
MAX_MESSAGE = 32 * 1024


def requested_ports(request: web.BaseRequest) -> list[int]:
    """The ports of every ``ports`` query value, each split on commas, in order."""
    values = request.query.getall("ports", [])
    if not values:
        raise _status.bad_request('query parameter "port" is required')
    ports: list[int] = []
    for value in values:
        for text in value.split(","):
            if not text.isdigit() or not 1 <= int(text) <= 65535:
                raise _status.bad_request(f"invalid port {text!r}: a port between 1 and 65535")
            ports.append(int(text))
    return ports


def message_bytes(message: Any) -> bytes | None:
    """A client frame's payload: binary as is, text as its UTF-8; ``None`` for anything else.

    The real server reads frames with ``websocket.Message.Receive`` into a
    byte slice, which takes text frames as well; the official Python client
    sends ``str`` writes as text.
    """
    if message.type == WSMsgType.BINARY:
        return bytes(message.data)
    if message.type == WSMsgType.TEXT:
        return str(message.data).encode()
    return None


async def serve_port_forward(
    sb: Sandbox, request: web.BaseRequest, pod: Mapping[str, Any], protocol: str
) -> web.StreamResponse:
    """Forward the requested ports of ``pod`` over one WebSocket until every port ended."""
    ports = requested_ports(request)
    ws = web.WebSocketResponse(protocols=[protocol], max_msg_size=4 << 20, autoping=True)
    await ws.prepare(request)
    writers: dict[int, asyncio.StreamWriter] = {}
    pumps: list[asyncio.Task[None]] = []
    try:
        for index, port in enumerate(ports):
            prefix = port.to_bytes(2, "little")
            await ws.send_bytes(bytes((2 * index,)) + prefix)
            await ws.send_bytes(bytes((2 * index + 1,)) + prefix)
        metadata = pod["metadata"]
        for index, port in enumerate(ports):
            target = sb._port_target(metadata["namespace"], metadata["name"], port)
            try:
                if target is None:
                    raise ConnectionRefusedError("connection refused")
                reader, writer = await asyncio.open_connection(target[0], target[1])
            except OSError:
                await ws.send_bytes(
                    bytes((2 * index + 1,)) + refused_message(port, metadata).encode()
                )
                continue
            writers[index] = writer
            pumps.append(asyncio.ensure_future(_pod_to_client(reader, ws, index, writers)))
        if pumps:
            await _run(ws, writers, pumps)
    finally:
        for task in pumps:
            task.cancel()
        for task in pumps:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for writer in writers.values():
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        with contextlib.suppress(Exception):
            await ws.close()
    return ws


async def _run(
    ws: web.WebSocketResponse,
    writers: dict[int, asyncio.StreamWriter],
    pumps: list[asyncio.Task[None]],
) -> None:
    """Until the client closes the WebSocket or every port's pod side has ended."""
    client = asyncio.ensure_future(_client_to_pods(ws, writers))
    every_port = asyncio.ensure_future(asyncio.wait(pumps))
    try:
        await asyncio.wait([client, every_port], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (client, every_port):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _pod_to_client(
    reader: asyncio.StreamReader,
    ws: web.WebSocketResponse,
    index: int,
    writers: dict[int, asyncio.StreamWriter],
) -> None:
    channel = bytes((2 * index,))
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(MAX_MESSAGE - 1):
            await ws.send_bytes(channel + data)
    # The pod's side ended this port; the others carry on.
    writer = writers.pop(index, None)
    if writer is not None:
        writer.close()


async def _client_to_pods(
    ws: web.WebSocketResponse, writers: dict[int, asyncio.StreamWriter]
) -> None:
    async for message in ws:
        data = message_bytes(message)
        if not data or data[0] % 2:
            continue  # error channels are the server's to write
        writer = writers.get(data[0] // 2)
        if writer is None or writer.is_closing():
            continue
        with contextlib.suppress(ConnectionError):
            writer.write(data[1:])
            await writer.drain()
    # The client closed the WebSocket: each pod side sees its connection end,
    # after what was sent.
    for writer in writers.values():
        with contextlib.suppress(OSError):
            writer.write_eof()


__all__ = ["PORTFORWARD_PROTOCOLS", "message_bytes", "serve_port_forward"]
