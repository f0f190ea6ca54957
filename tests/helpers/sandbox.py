"""Helpers shared by the sandbox tests: an httpx client for any listener."""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable
from typing import Any

import anyio
import anyio.abc
import httpx

from asyncpod.testing import Sandbox


def https_client(sb: Sandbox, token: str | None = None, **kwargs: Any) -> httpx.AsyncClient:
    """An httpx client of the sandbox's HTTPS listener, verifying its CA."""
    context = ssl.create_default_context(cafile=str(sb.ca_file))
    headers = {"Authorization": f"Bearer {token if token is not None else sb.admin_token}"}
    if token == "":
        headers = {}
    return httpx.AsyncClient(base_url=sb.server_url, verify=context, headers=headers, **kwargs)


def proxy_client(sb: Sandbox, **kwargs: Any) -> httpx.AsyncClient:
    """An httpx client of the proxy listener (no auth)."""
    return httpx.AsyncClient(base_url=sb.proxy_url, **kwargs)


def unix_client(sb: Sandbox, **kwargs: Any) -> httpx.AsyncClient:
    """An httpx client of the Unix-socket listener (no auth)."""
    transport = httpx.AsyncHTTPTransport(uds=sb.unix_socket)
    return httpx.AsyncClient(base_url="http://localhost", transport=transport, **kwargs)


def configmap(name: str, data: dict[str, str] | None = None, **labels: str) -> dict[str, Any]:
    """A ConfigMap body."""
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data or {"k": "v"}}


CM = "/api/v1/namespaces/default/configmaps"


def pod(name: str, namespace: str = "default") -> dict[str, Any]:
    """A Pod of one container, as the tests of exec and port-forward create it."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"containers": [{"name": "app", "image": "app"}]},
    }


class RawResponse:
    """A response read by ``raw_get``: status, headers, and the body's chunks."""

    def __init__(
        self,
        status: int,
        headers: dict[str, str],
        chunks: list[bytes],
        ended: bool,
        times: list[float] | None = None,
    ) -> None:
        self.status = status
        self.headers = headers
        self.chunks = chunks
        self.ended = ended  # the final zero-length chunk arrived
        self.times = times or []  # seconds from the request to each chunk, then the end

    def events(self) -> list[dict[str, Any]]:
        """The JSON lines of the body."""
        body = b"".join(self.chunks)
        return [json.loads(line) for line in body.split(b"\n") if line.strip()]


async def raw_get(
    sb: Sandbox, target: str, *, max_events: int | None = None, unix: bool = False
) -> RawResponse:
    """GET ``target`` from the proxy listener over a bare socket, keeping the chunk framing.

    Reading stops at the end of the body, or after ``max_events`` newline-ended
    events (then the connection is closed), or when the server drops it.
    """
    if unix:
        stream: anyio.abc.ByteStream = await anyio.connect_unix(sb.unix_socket)
    else:
        stream = await anyio.connect_tcp("127.0.0.1", sb.proxy_port)
    async with stream:
        request = f"GET {target} HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n\r\n"
        await stream.send(request.encode())
        buffer = b""
        chunks: list[bytes] = []

        async def fill() -> bool:
            nonlocal buffer
            try:
                data = await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return False
            buffer += data
            return True

        while b"\r\n\r\n" not in buffer:
            if not await fill():
                msg = "the connection closed before the headers"
                raise ConnectionError(msg)
        head, buffer = buffer.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding") != "chunked":
            length = int(headers.get("content-length", "0"))
            while len(buffer) < length and await fill():
                pass
            return RawResponse(status, headers, [buffer[:length]], True)
        events = 0
        began = anyio.current_time()
        times: list[float] = []
        while True:
            while b"\r\n" not in buffer:
                if not await fill():
                    return RawResponse(status, headers, chunks, False, times)
            size_line, rest = buffer.split(b"\r\n", 1)
            size = int(size_line, 16)
            while len(rest) < size + 2:
                if not await fill():
                    return RawResponse(status, headers, chunks, False, times)
                size_line, rest = buffer.split(b"\r\n", 1)
            times.append(anyio.current_time() - began)
            if size == 0:
                return RawResponse(status, headers, chunks, True, times)
            chunks.append(rest[:size])
            buffer = rest[size + 2 :]
            events += rest[:size].count(b"\n")
            if max_events is not None and events >= max_events:
                return RawResponse(status, headers, chunks, False, times)


async def eventually(check: Callable[[], bool]) -> None:
    """Wait until ``check()`` holds: the server side finishes after the client's side."""
    with anyio.fail_after(10):
        while True:
            if check():
                return
            await anyio.sleep(0.02)
