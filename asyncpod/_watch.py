"""Watches: the sans-IO event decoder and the resuming watch iterator.

A watch stream is newline-delimited JSON, one ``{"type", "object"}`` event per
line (``k8s.io/apimachinery/pkg/watch/json``). The decoder splits on ``b"\\n"``
only and accepts lines up to a configured object size. The iterator asks for
bookmarks, remembers the last resourceVersion it saw (bookmarks included) and
resumes from it after a dropped connection, a server timeout or a silent
connection, as client-go's reflector does.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

import anyio
from attrs import frozen

from asyncpod import _json
from asyncpod._errors import (
    APIError,
    AsyncpodError,
    ProtocolError,
    RequestTimeoutError,
    ServerError,
    TooManyRequestsError,
    TransportError,
    error_class_for,
)
from asyncpod._models import Response

if TYPE_CHECKING:
    from asyncpod._client import Client
    from asyncpod._discovery import Resource
    from asyncpod._target import Params

# Kubernetes limits a request body to 3 MiB and etcd values to 1.5 MiB by
# default; 16 MiB leaves room for large CRDs while bounding memory.
DEFAULT_MAX_OBJECT_SIZE: Final = 16 * 1024 * 1024
# Real servers send a bookmark about every 60 s (see the recorded
# watch-configmaps-bookmarks-130s.http.timing), so 70 s of silence means the
# connection is dead even though TCP has not noticed.
DEFAULT_INACTIVITY_TIMEOUT: Final = 70.0
# client-go asks for timeoutSeconds = minWatchTimeout * (1 + rand), with
# minWatchTimeout = 5 min, to spread reconnects of many clients over time.
MIN_WATCH_TIMEOUT: Final = 300.0
INITIAL_EVENTS_END: Final = "k8s.io/initial-events-end"
EVENT_TYPES: Final = frozenset({"ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"})


@frozen
class WatchEvent:
    """One event of a watch.

    Attributes:
        type: ``"ADDED"``, ``"MODIFIED"``, ``"DELETED"``, ``"BOOKMARK"`` or ``"ERROR"``.
        object: the object as the server sent it (a ``Status`` for ``ERROR``).
    """

    type: str
    object: dict[str, Any]

    @property
    def resource_version(self) -> str | None:
        """The object's ``metadata.resourceVersion``, when it has one."""
        metadata = self.object.get("metadata")
        if isinstance(metadata, dict):
            value = metadata.get("resourceVersion")
            if isinstance(value, str) and value:
                return value
        return None

    @property
    def is_initial_events_end(self) -> bool:
        """Whether this is the bookmark that ends a watch's initial ADDED events."""
        if self.type != "BOOKMARK":
            return False
        metadata = self.object.get("metadata")
        annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
        return isinstance(annotations, dict) and annotations.get(INITIAL_EVENTS_END) == "true"


def decode_event(line: bytes | bytearray) -> WatchEvent:
    """Decode one line of a watch stream.

    Raises:
        ProtocolError: the line is not a watch event.
    """
    try:
        value = _json.loads(bytes(line))
    except ValueError as exc:
        msg = f"a watch event is not JSON ({len(line)} bytes): {exc}"
        raise ProtocolError(msg) from exc
    if not isinstance(value, dict):
        msg = f"a watch event is a JSON {type(value).__name__}, not an object"
        raise ProtocolError(msg)
    kind, obj = value.get("type"), value.get("object")
    if kind not in EVENT_TYPES or not isinstance(obj, dict):
        msg = f"a watch event has type {kind!r} and an object of {type(obj).__name__}"
        raise ProtocolError(msg)
    return WatchEvent(kind, obj)


class WatchDecoder:
    """Turns the bytes of a watch stream into events, whatever the chunking.

    Sans-IO: ``feed()`` takes any chunk and returns the events it completed;
    ``close()`` at the end of the body returns the last one, if it lacked a
    newline. Lines are split on ``b"\\n"`` only, never on other separators
    that JSON strings may carry.

    Args:
        max_object_size: the longest line accepted, in bytes.

    Raises:
        ProtocolError: from ``feed`` or ``close``, when a line is longer than
            ``max_object_size`` or is not a watch event; from ``close`` when
            the body ended inside an event.
    """

    def __init__(self, max_object_size: int = DEFAULT_MAX_OBJECT_SIZE) -> None:
        if max_object_size < 1:
            msg = f"max_object_size must be positive, not {max_object_size}"
            raise ValueError(msg)
        self.max_object_size = max_object_size
        self._buffer = bytearray()
        # Where to continue looking for b"\n": earlier bytes were searched.
        self._scanned = 0

    @property
    def pending(self) -> int:
        """How many bytes of an unfinished line are held."""
        return len(self._buffer)

    def feed(self, chunk: bytes) -> list[WatchEvent]:
        """Add bytes of the body; return the events completed by them."""
        self._buffer += chunk
        events: list[WatchEvent] = []
        start = 0
        buffer = self._buffer
        while True:
            end = buffer.find(b"\n", max(start, self._scanned))
            if end < 0:
                break
            self._check_size(end - start)
            line = buffer[start:end]
            if line.strip():
                events.append(decode_event(line))
            start = end + 1
            self._scanned = start
        if start:
            del buffer[:start]
        self._scanned = len(buffer)
        self._check_size(len(buffer))
        return events

    def close(self) -> list[WatchEvent]:
        """The end of the body: decode a final line that had no newline."""
        line = bytes(self._buffer)
        self._buffer.clear()
        self._scanned = 0
        if not line.strip():
            return []
        return [decode_event(line)]

    def _check_size(self, size: int) -> None:
        if size > self.max_object_size:
            msg = (
                f"a watch event is larger than max_object_size "
                f"({size} > {self.max_object_size} bytes)"
            )
            raise ProtocolError(msg)


def status_error(status: Mapping[str, Any]) -> APIError:
    """The ``APIError`` an ERROR event's ``Status`` stands for."""
    code = status.get("code")
    code = code if isinstance(code, int) else 500
    reason = str(status.get("reason") or "Unknown")
    message = str(status.get("message") or reason)
    return error_class_for(code)(code, reason, message, dict(status))


def backoff_delay(attempt: int, *, base: float = 0.1, cap: float = 30.0) -> float:
    """A jittered exponential delay before reconnect number ``attempt`` (from 1)."""
    ceiling = min(cap, base * (2 ** min(attempt - 1, 30)))
    # "Equal jitter": at least half the ceiling, so reconnects of many
    # clients spread out but never hammer the server in a tight loop.
    return float(ceiling / 2 + random.uniform(0, ceiling / 2))


class Watch:
    """An async iterator of ``WatchEvent`` that survives dropped connections.

    Get one from ``Client.watch()``. Use it with ``async for``; leaving the loop
    early releases the connection once the iterator is closed, so prefer::

        async with k8s.watch("pods") as events:
            async for event in events:
                ...

    Attributes:
        resource_version: the last resourceVersion seen (bookmarks included);
            where a reconnect resumes.
        reconnects: how many times the watch connected again.
    """

    def __init__(
        self,
        client: Client,
        resource: str | Resource,
        *,
        namespace: Any,
        label_selector: str | None,
        field_selector: str | None,
        resource_version: str | None,
        timeout_seconds: float | None,
        bookmarks: bool,
        inactivity_timeout: float,
        max_object_size: int,
    ) -> None:
        self._client = client
        self._resource_spec = resource
        self._namespace = namespace
        self._label_selector = label_selector
        self._field_selector = field_selector
        self.resource_version = resource_version
        self.timeout_seconds = timeout_seconds
        self.bookmarks = bookmarks
        self.inactivity_timeout = inactivity_timeout
        self.max_object_size = max_object_size
        self.reconnects = 0
        self._path: str | None = None
        self._deadline: float | None = None
        self._response: Response | None = None
        self._decoder = WatchDecoder(max_object_size)
        self._pending: list[WatchEvent] = []
        self._failures = 0
        self._received = False
        self._closed = False
        # A watch from no resourceVersion (or "0") starts with synthetic ADDED
        # events that are not in resourceVersion order; resuming from one of
        # them could skip objects. Until the initial-events-end bookmark, a
        # reconnect starts over and drops ADDED events already yielded.
        self._initial = resource_version in (None, "", "0")
        self._start_version = resource_version or None
        self._initial_seen: set[tuple[str, str, str]] = set()

    def __aiter__(self) -> Watch:
        return self

    async def __aenter__(self) -> Watch:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop watching and release the connection."""
        self._client._forget(self)
        self._closed = True
        await self._disconnect()

    async def __anext__(self) -> WatchEvent:
        if self._closed:
            raise StopAsyncIteration
        try:
            return await self._next()
        except BaseException:
            await self.aclose()
            raise

    async def _next(self) -> WatchEvent:
        if self._deadline is None and self.timeout_seconds is not None:
            self._deadline = time.monotonic() + self.timeout_seconds
        while True:
            failure: APIError | None = None
            while self._pending:
                try:
                    event = self._accept(self._pending.pop(0))
                except (ServerError, TooManyRequestsError) as exc:
                    failure = exc
                    break
                if event is not None:
                    return event
            if failure is not None:
                # A transient failure the server reported in the stream:
                # reconnect from the last resourceVersion, within the limit.
                self._pending.clear()
                await self._drop(backoff=False)
                await self._backoff(failure)
                continue
            remaining = self._remaining()
            if remaining is not None and remaining <= 0:
                raise StopAsyncIteration
            if self._response is None:
                await self._connect()
                continue
            limit = self.inactivity_timeout
            if remaining is not None:
                limit = min(limit, remaining)
            chunk: bytes | None = None
            try:
                with anyio.move_on_after(limit):
                    chunk = await self._receive()
            except TransportError:
                await self._drop()
                continue
            if chunk is None:
                # Silence: the deadline passed, or the connection is dead.
                await self._drop(backoff=False)
                continue
            if chunk == b"":
                # The server ended the stream (its timeoutSeconds ran out):
                # resume at once from the last resourceVersion. An event cut
                # in half is dropped here and sent again after resuming.
                with contextlib.suppress(ProtocolError):
                    self._pending.extend(self._decoder.close())
                # A stream that ended without a byte is a failure, not a
                # timeout: back off rather than spin on a broken proxy.
                await self._drop(backoff=not self._received)
                continue
            self._failures = 0
            self._received = True
            self._pending.extend(self._decoder.feed(chunk))

    def _accept(self, event: WatchEvent) -> WatchEvent | None:
        """Track the resume point; return the event when the caller should see it."""
        if event.type == "ERROR":
            raise status_error(event.object)
        version = event.resource_version
        if self._initial:
            if event.type != "ADDED":
                self._initial = False
                self._initial_seen.clear()
            else:
                metadata = event.object.get("metadata") or {}
                key = (
                    str(metadata.get("namespace", "")),
                    str(metadata.get("name", "")),
                    version or "",
                )
                if key in self._initial_seen:
                    return None
                self._initial_seen.add(key)
                return event
        if version is not None:
            self.resource_version = version
        if event.type == "BOOKMARK" and not self.bookmarks:
            return None
        return event

    def _remaining(self) -> float | None:
        if self._deadline is None:
            return None
        return self._deadline - time.monotonic()

    async def _receive(self) -> bytes:
        response = self._response
        if response is None or response.stream is None:
            return b""
        return await response.stream.receive()

    async def _connect(self) -> None:
        client = self._client
        if self._path is None:
            self._path = await client._collection_path(self._resource_spec, self._namespace)
        server_timeout = MIN_WATCH_TIMEOUT * (1.0 + random.random())
        remaining = self._remaining()
        if remaining is not None:
            server_timeout = min(server_timeout, max(1.0, math.ceil(remaining)))
        params: Params = {
            "watch": "true",
            "allowWatchBookmarks": "true",
            "labelSelector": self._label_selector,
            "fieldSelector": self._field_selector,
            "resourceVersion": self._start_version if self._initial else self.resource_version,
            "timeoutSeconds": int(server_timeout),
        }
        limit = client.timeout
        if remaining is not None:
            limit = remaining if limit is None else min(limit, remaining)
        response: Response | None = None
        failure: AsyncpodError | None = None
        try:
            with anyio.move_on_after(math.inf if limit is None else limit):
                response = await client._open_stream(self._path, params)
        except (TransportError, ServerError, TooManyRequestsError) as exc:
            failure = exc
        if response is None and failure is None:
            msg = f"watch of {self._path} got no answer within {limit} s"
            failure = RequestTimeoutError(msg)
        if failure is not None:
            # Outside the except block: a cancellation while waiting must not
            # be chained to the failure.
            await self._backoff(failure)
            return
        self._response = response
        self._received = False
        self._decoder = WatchDecoder(self.max_object_size)

    async def _disconnect(self) -> None:
        response, self._response = self._response, None
        if response is not None:
            with anyio.CancelScope(shield=True):
                # The connection is gone either way.
                with contextlib.suppress(TransportError):
                    await response.aclose()

    async def _drop(self, *, backoff: bool = True) -> None:
        await self._disconnect()
        self.reconnects += 1
        if backoff:
            await self._backoff(None)

    async def _backoff(self, exc: BaseException | None) -> None:
        self._failures += 1
        limit = self._client._watch_retry_limit()
        if exc is not None and self._failures > limit:
            raise exc
        delay = backoff_delay(self._failures)
        if isinstance(exc, APIError) and exc.retry_after is not None:
            delay = max(delay, exc.retry_after)
        remaining = self._remaining()
        if remaining is not None:
            delay = min(delay, max(0.0, remaining))
        await anyio.sleep(delay)
