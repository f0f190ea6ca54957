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
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

import anyio
from anyio.abc import AsyncResource
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
from asyncpod._events import WatchReconnectEvent, emit
from asyncpod._models import Response
from asyncpod._session import Session
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


def decode_event(line: bytes) -> WatchEvent:
    """Decode one line of a watch stream.

    Raises:
        ProtocolError: the line is not a watch event.
    """
    try:
        value = _json.loads(line)
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

    A bad line never costs the good events before it: when a chunk completes
    good events and then a bad line, ``feed`` returns those events and keeps
    the error in ``error``; the next ``feed`` or ``close`` raises it. A caller
    that will not call again soon (a watch waiting for the next chunk)
    checks ``error`` once it has handled the events.

    Args:
        max_object_size: the longest line accepted, in bytes.

    Raises:
        ProtocolError: from ``feed`` or ``close``, when a line is longer than
            ``max_object_size`` or is not a watch event; from ``close`` when
            the body ended inside an event. Once raised, every later call
            raises it again.
    """

    def __init__(self, max_object_size: int = DEFAULT_MAX_OBJECT_SIZE) -> None:
        if max_object_size < 1:
            msg = f"max_object_size must be positive, not {max_object_size}"
            raise ValueError(msg)
        self.max_object_size = max_object_size
        # Only the unfinished last line is kept: complete lines are sliced
        # out of the chunk that ends them, each copied once.
        self._buffer = bytearray()
        self._error: ProtocolError | None = None

    @property
    def error(self) -> ProtocolError | None:
        """The error behind the events the last ``feed`` returned, raised by the next call."""
        return self._error

    @property
    def pending(self) -> int:
        """How many bytes of an unfinished line are held."""
        return len(self._buffer)

    def feed(self, chunk: bytes) -> list[WatchEvent]:
        """Add bytes of the body; return the events completed by them.

        Raises:
            ProtocolError: a line is bad and no good event came before it in
                this chunk, or an earlier call kept an error.
        """
        events: list[WatchEvent] = []
        lines = self.lines(chunk)
        try:
            for line in lines:
                events.append(decode_event(line))
        except ProtocolError as exc:
            self._fail(exc)
            if not events:
                raise
        return events

    def lines(self, chunk: bytes) -> list[bytes]:
        """Add bytes of the body; return the non-blank lines they complete, undecoded.

        The lazy form of ``feed``, for a reader that decodes one line at a
        time with ``decode_event`` (a watch does, so that a chunk's events
        are not all alive at once). A line beyond ``max_object_size`` is
        treated as ``feed`` treats a bad line.

        Raises:
            ProtocolError: a line is too long and no line came before it in
                this chunk, or an earlier call kept an error.
        """
        if self._error is not None:
            raise self._error
        lines: list[bytes] = []
        end = chunk.find(b"\n")
        buffer = self._buffer
        limit = self.max_object_size
        try:
            if end < 0:
                buffer += chunk
                self._check_size(len(buffer))
                return lines
            if buffer:
                self._check_size(len(buffer) + end)
                buffer += chunk[:end]
                line = bytes(buffer)
                buffer.clear()
                if line.strip():
                    lines.append(line)
            else:
                self._check_size(end)
                if end and (chunk[0] == 0x7B or chunk[:end].strip()):
                    lines.append(chunk[:end])
            start = end + 1
            find = chunk.find
            while True:
                end = find(b"\n", start)
                if end < 0:
                    break
                if end - start > limit:
                    self._check_size(end - start)
                # A JSON event starts with "{": only other lines need the
                # (copying) blank-line check.
                if end > start and (chunk[start] == 0x7B or chunk[start:end].strip()):
                    lines.append(chunk[start:end])
                start = end + 1
            if start < len(chunk):
                self._check_size(len(chunk) - start)
                buffer += chunk[start:]
        except ProtocolError as exc:
            # The stream cannot be trusted past a bad line: drop what is
            # left, and hand out the lines before it first.
            self._fail(exc)
            if not lines:
                raise
        return lines

    def close(self) -> list[WatchEvent]:
        """The end of the body: decode a final line that had no newline.

        Raises:
            ProtocolError: the final line is not a watch event, or an earlier
                call kept an error.
        """
        if self._error is not None:
            raise self._error
        line = bytes(self._buffer)
        self._buffer.clear()
        if not line.strip():
            return []
        return [decode_event(line)]

    def _fail(self, error: ProtocolError) -> None:
        self._error = error
        self._buffer.clear()

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


class Watch(AsyncResource):
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
        session: Session,
        resolve_path: Callable[[], Awaitable[str]],
        *,
        label_selector: str | None,
        field_selector: str | None,
        resource_version: str | None,
        timeout_seconds: float | None,
        bookmarks: bool,
        inactivity_timeout: float,
        max_object_size: int,
    ) -> None:
        self._session = session
        self._resolve_path = resolve_path
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
        # Lines of the stream not handed out yet, decoded one at a time as
        # the caller asks (the last line of a stream comes decoded).
        self._pending: deque[bytes | WatchEvent] = deque()
        self._failures = 0
        self._reconnects_in_row = 0
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

    async def aclose(self) -> None:
        """Stop watching and release the connection."""
        self._session.forget(self)
        self._closed = True
        await self._disconnect()

    async def __anext__(self) -> WatchEvent:
        if self._closed:
            raise StopAsyncIteration
        # Performance: the fast path. While lines are pending and the initial
        # events are over, an ordinary event is served here without awaiting
        # anything or creating another coroutine; everything else (ERROR,
        # bookmarks, a bad line, an empty queue) takes the general path.
        pending = self._pending
        if pending and not self._initial:
            line = pending[0]
            if type(line) is bytes:
                try:
                    event = decode_event(line)
                except ProtocolError:
                    event = None  # raised again, in order, by the general path
                if event is not None and (event.type == "ERROR" or event.type == "BOOKMARK"):
                    pending[0] = event  # decoded once, handled below
                    event = None
                if event is not None:
                    pending.popleft()
                    metadata = event.object.get("metadata")
                    if type(metadata) is dict:
                        version = metadata.get("resourceVersion")
                        if type(version) is str and version:
                            self.resource_version = version
                    return event
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
            pending = self._pending
            while pending:
                item = pending.popleft()
                try:
                    event = self._accept(decode_event(item) if isinstance(item, bytes) else item)
                except (ServerError, TooManyRequestsError) as exc:
                    failure = exc
                    break
                if event is not None:
                    return event
            if failure is not None:
                # A transient failure the server reported in the stream:
                # reconnect from the last resourceVersion, within the limit.
                self._pending.clear()
                await self._drop(_failure_reason(failure), failure)
                continue
            if self._decoder.error is not None:
                # A bad line after the events just yielded: the stream is
                # broken, and the same bytes would come again after resuming.
                raise self._decoder.error
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
                native = self._session.native_timeout
                if native is not None:
                    # Performance: asyncio.timeout is cheaper than an anyio
                    # cancel scope, and this runs once per chunk.
                    scope = native(limit)
                    try:
                        async with scope:
                            chunk = await self._receive()
                    except TimeoutError:
                        if not scope.expired():
                            raise
                else:
                    with anyio.move_on_after(limit):
                        chunk = await self._receive()
            except TransportError:
                await self._drop("connection dropped")
                continue
            if chunk is None:
                # Silence: the deadline passed, or the connection is dead.
                await self._drop("inactivity", backoff=False)
                continue
            if chunk == b"":
                # The server ended the stream (its timeoutSeconds ran out):
                # resume at once from the last resourceVersion. An event cut
                # in half is dropped here and sent again after resuming.
                with contextlib.suppress(ProtocolError):
                    self._pending.extend(self._decoder.close())
                # A stream that ended without a byte is a failure, not a
                # timeout: back off rather than spin on a broken proxy.
                if self._received:
                    await self._drop("server timeout", backoff=False)
                else:
                    await self._drop("empty stream")
                continue
            self._failures = 0
            self._reconnects_in_row = 0
            self._received = True
            self._pending.extend(self._decoder.lines(chunk))

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
        session = self._session
        if self._path is None:
            self._path = await self._resolve_path()
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
        limit = session.timeout
        if remaining is not None:
            limit = remaining if limit is None else min(limit, remaining)
        response: Response | None = None
        failure: AsyncpodError | None = None
        try:
            with anyio.move_on_after(math.inf if limit is None else limit):
                # One attempt: the reconnects of this loop are the watch's
                # only retries, bounded by the client's ``retries``. The
                # client's own retries would multiply with them.
                response = await session.open_stream(self._path, params, retry=False)
        except (TransportError, ServerError, TooManyRequestsError) as exc:
            failure = exc
        if response is None and failure is None:
            msg = f"watch of {self._path} got no answer within {limit:g} s"
            failure = RequestTimeoutError(msg)
        if failure is not None:
            # Outside the except block: a cancellation while waiting must not
            # be chained to the failure.
            await self._backoff(_failure_reason(failure), failure)
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

    async def _drop(
        self, reason: str, failure: AsyncpodError | None = None, *, backoff: bool = True
    ) -> None:
        """Release the connection and get ready to resume (after a backoff)."""
        await self._disconnect()
        self.reconnects += 1
        await self._backoff(reason, failure, wait=backoff)

    async def _backoff(
        self, reason: str, failure: AsyncpodError | None, *, wait: bool = True
    ) -> None:
        """Wait before connecting again; report it as a ``WatchReconnectEvent``.

        Raises:
            AsyncpodError: ``failure``, when the reconnects in a row without
                data exceed the client's ``retries``.
        """
        delay = 0.0
        if wait:
            self._failures += 1
            limit = self._session.watch_retry_limit
            if failure is not None and self._failures > limit:
                raise _gave_up(failure, self._failures, self._path)
            delay = backoff_delay(self._failures)
            if isinstance(failure, APIError) and failure.retry_after is not None:
                delay = max(delay, failure.retry_after)
        remaining = self._remaining()
        if remaining is not None:
            if remaining <= 0:
                return  # the caller's timeout_seconds is over: no reconnect
            delay = min(delay, remaining)
        self._reconnects_in_row += 1
        hook = self._session.on_event
        if hook is not None:
            version = self._start_version if self._initial else self.resource_version
            emit(
                hook,
                WatchReconnectEvent(
                    self._path or "", version, reason, self._reconnects_in_row, delay
                ),
            )
        if delay > 0:
            await anyio.sleep(delay)


def _failure_reason(failure: AsyncpodError) -> str:
    """A short reason for a ``WatchReconnectEvent``: never a message, which may be long."""
    if isinstance(failure, APIError):
        return f"HTTP {failure.status}"
    if isinstance(failure, RequestTimeoutError):
        return "no answer"
    if isinstance(failure, TransportError) and not failure.sent:
        return "connect failed"
    return "connection dropped"


def _gave_up(failure: AsyncpodError, attempts: int, path: str | None) -> AsyncpodError:
    """``failure``, saying that the watch gave up after ``attempts`` attempts in a row."""
    if not isinstance(failure, TransportError) or type(failure) not in (
        TransportError,
        RequestTimeoutError,
    ):
        return failure  # an APIError carries the server's Status as it came
    msg = f"watch of {path} gave up after {attempts} attempts in a row: {failure}"
    error = type(failure)(msg, sent=failure.sent)
    error.__cause__ = failure
    return error
