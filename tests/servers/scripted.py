"""A scripted HTTP/1.1 server on 127.0.0.1 that plays watch streams chunk by chunk.

Each connection gets one answer from ``script(params)``: a list of steps,
``bytes`` (sent as one chunk), a ``float`` (a pause), ``DROP`` (close without
ending the body) or ``END`` (end the body cleanly). It lets a test cut a watch
exactly where it wants, which the sandbox's random faults cannot.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import anyio
from anyio.abc import SocketStream

from tests.servers.listening import serving

DROP = "drop"
END = "end"
Step = bytes | float | str
Script = Callable[[dict[str, str]], tuple[int, Sequence[Step]]]


def event(kind: str, rv: int, name: str = "", **extra: Any) -> bytes:
    """One watch event line for a ConfigMap at resourceVersion ``rv``."""
    metadata: dict[str, Any] = {"resourceVersion": str(rv), **extra}
    if name:
        metadata["name"] = name
        metadata["namespace"] = "default"
    obj = {"kind": "ConfigMap", "apiVersion": "v1", "metadata": metadata}
    return json.dumps({"type": kind, "object": obj}).encode() + b"\n"


def gone_event() -> bytes:
    """The ERROR event a real server sends for a compacted resourceVersion."""
    status = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "too old resource version: 2 (294)",
        "reason": "Expired",
        "code": 410,
    }
    return json.dumps({"type": "ERROR", "object": status}).encode() + b"\n"


DISCOVERY_API = {"kind": "APIVersions", "versions": ["v1"]}
DISCOVERY_V1 = {
    "kind": "APIResourceList",
    "groupVersion": "v1",
    "resources": [
        {
            "name": "configmaps",
            "singularName": "configmap",
            "namespaced": True,
            "kind": "ConfigMap",
            "verbs": ["get", "list", "watch"],
            "shortNames": ["cm"],
        }
    ],
}
DISCOVERY = {
    "/api": DISCOVERY_API,
    "/apis": {"kind": "APIGroupList", "groups": []},
    "/api/v1": DISCOVERY_V1,
}


class ScriptedServer:
    """Serves discovery, and plays ``script`` for every other request.

    Attributes:
        url: ``http://127.0.0.1:PORT``.
        requests: the query parameters of each scripted request, in order.
    """

    def __init__(self, script: Script, discovery: dict[str, Any] | None = None) -> None:
        self.script = script
        self.discovery = DISCOVERY if discovery is None else discovery
        self.requests: list[dict[str, str]] = []
        self.url = ""

    async def _handle(self, stream: SocketStream) -> None:
        # A client may hang up at any point (that is what the tests provoke).
        with contextlib.suppress(
            anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream, OSError
        ):
            await self._answer(stream)

    async def _answer(self, stream: SocketStream) -> None:
        async with stream:
            head = b""
            while b"\r\n\r\n" not in head:
                data = await stream.receive()
                if not data:
                    return
                head += data
            target = head.split(b" ", 2)[1].decode()
            parts = urlsplit(target)
            if parts.path in self.discovery:
                body = json.dumps(self.discovery[parts.path]).encode()
                await stream.send(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                    b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
                )
                return
            params = dict(parse_qsl(parts.query))
            params["_path"] = parts.path
            self.requests.append(params)
            status, steps = self.script(params)
            await stream.send(
                f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n".encode()
            )
            for step in steps:
                if isinstance(step, bytes):
                    await stream.send(b"%x\r\n%s\r\n" % (len(step), step))
                elif isinstance(step, float):
                    await anyio.sleep(step)
                elif step == DROP:
                    return
                elif step == END:
                    await stream.send(b"0\r\n\r\n")
                    return
            await anyio.sleep_forever()


@asynccontextmanager
async def scripted_server(
    script: Script, discovery: dict[str, Any] | None = None
) -> AsyncIterator[ScriptedServer]:
    """Run a ``ScriptedServer`` on 127.0.0.1 for the duration of the block."""
    server = ScriptedServer(script, discovery)
    async with serving(server._handle) as port:
        server.url = f"http://127.0.0.1:{port}"
        yield server
