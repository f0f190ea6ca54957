"""The request and response that travel between the client and a transport."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

from attrs import define, field, frozen

from asyncpod import _json
from asyncpod._errors import ProtocolError


class ByteStream(Protocol):
    """A response body that arrives in chunks.

    ``receive()`` returns the next non-empty chunk, or ``b""`` once the body has
    ended. ``aclose()`` releases the connection (back to the pool when the body
    was read to its end, closed otherwise) and may be called more than once.
    """

    async def receive(self) -> bytes: ...

    async def aclose(self) -> None: ...


class DuplexStream(Protocol):
    """A connection handed over after an HTTP upgrade (``101 Switching Protocols``).

    ``receive()`` returns the next non-empty chunk, or ``b""`` once the server
    closed its side; ``send()`` writes; ``aclose()`` closes the connection and
    may be called more than once. Failures are ``TransportError``s.
    """

    async def receive(self) -> bytes: ...

    async def send(self, data: bytes) -> None: ...

    async def aclose(self) -> None: ...


def _redacted_headers(headers: Mapping[str, str]) -> str:
    return repr(
        {
            name: "<redacted>"
            if name.lower() in {"authorization", "proxy-authorization"}
            else value
            for name, value in headers.items()
        }
    )


@frozen(kw_only=True)
class Request:
    """One HTTP request, independent of how it is carried.

    Attributes:
        method: the HTTP method, upper case.
        target: the origin-form target: an absolute path plus an optional
            query, already percent-encoded (``/api/v1/pods?limit=1``).
        headers: header fields to send; the transport adds ``Host``,
            ``Content-Length`` and connection management itself.
        content: the body, or ``None``.
        stream: when true, the transport returns as soon as the head has
            arrived and leaves the body in ``Response.stream``.
        upgrade: a protocol to switch to (``"websocket"``): the transport sends
            ``Connection: Upgrade`` and ``Upgrade`` on a connection of its own,
            and a ``101`` answer hands that connection over in
            ``Response.connection``; any other answer is read whole.
    """

    method: str
    target: str
    headers: Mapping[str, str] = field(factory=dict, repr=_redacted_headers)
    content: bytes | None = field(default=None, repr=False)
    stream: bool = False
    upgrade: str | None = None


@define(kw_only=True)
class Response:
    """An HTTP response: its head, and its body either read or streaming.

    Attributes:
        status: the HTTP status code.
        headers: header fields, looked up without regard to case.
        content: the whole body, for a request sent with ``stream=False``.
        stream: the open body, for a request sent with ``stream=True``.
        reason: the reason phrase, when the server sent one.
        connection: the upgraded connection of a ``101`` answer to a request
            with ``upgrade``; its owner must ``aclose()`` it.
    """

    status: int
    headers: Mapping[str, str] = field(factory=dict)
    content: bytes = field(default=b"", repr=False)
    stream: ByteStream | None = field(default=None, repr=False)
    reason: str = ""
    connection: DuplexStream | None = field(default=None, repr=False)

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (Kubernetes always sends UTF-8)."""
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body decoded as JSON.

        Raises:
            ProtocolError: the body is not JSON.
        """
        try:
            return _json.loads_body(self.content)
        except ValueError as exc:
            content_type = self.headers.get("content-type", "no content type")
            msg = (
                f"the server's answer (HTTP {self.status}, {content_type}, "
                f"{len(self.content)} bytes) is not JSON: {exc}"
            )
            raise ProtocolError(msg) from exc

    async def aread(self) -> bytes:
        """Read the rest of a streaming body into ``content`` and release the connection."""
        if self.stream is not None:
            chunks = [self.content] if self.content else []
            try:
                while chunk := await self.stream.receive():
                    chunks.append(chunk)
            finally:
                await self.aclose()
            self.content = b"".join(chunks)
        return self.content

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        """Yield the body in chunks as they arrive."""
        if self.stream is None:
            if self.content:
                yield self.content
            return
        while chunk := await self.stream.receive():
            yield chunk

    async def aiter_lines(self) -> AsyncIterator[str]:
        r"""Yield the body line by line, without the newline.

        Lines are split on ``\n`` only (a trailing ``\r`` is dropped), so a
        JSON document that contains other line separators is never cut.
        """
        pending = b""
        async for chunk in self.aiter_bytes():
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                yield line.removesuffix(b"\r").decode("utf-8", errors="replace")
        if pending:
            yield pending.removesuffix(b"\r").decode("utf-8", errors="replace")

    async def aclose(self) -> None:
        """Release the connection behind a streaming body or an upgrade; harmless otherwise."""
        stream, self.stream = self.stream, None
        if stream is not None:
            await stream.aclose()
        connection, self.connection = self.connection, None
        if connection is not None:
            await connection.aclose()
