"""Watches: the sans-IO event decoder and the resuming watch iterator.

A watch stream is newline-delimited JSON, one ``{"type", "object"}`` event per
line (``k8s.io/apimachinery/pkg/watch/json``). The decoder splits on ``b"\\n"``
only and accepts lines up to a configured object size. The iterator asks for
bookmarks, remembers the last resourceVersion it saw (bookmarks included) and
resumes from it after a dropped connection, a server timeout or a silent
connection, as client-go's reflector does. The decisions are the sans-IO
``WatchState``'s (``_watch_state.py``); ``Watch`` does the I/O.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Final

import anyio
from anyio.abc import AsyncResource

from asyncpod import _json
from asyncpod._errors import (
    APIError,
    AsyncpodError,
    ProtocolError,
    RequestTimeoutError,
    TransportError,
)
from asyncpod._events import WatchReconnectEvent, emit
from asyncpod._models import Response
from asyncpod._session import Session
from asyncpod._target import Params
from asyncpod._watch_state import (
    INITIAL_EVENTS_END,
    Reconnect,
    WatchEvent,
    WatchState,
    watch_policy,
)

# Kubernetes limits a request body to 3 MiB and etcd values to 1.5 MiB by
# default; 16 MiB leaves room for large CRDs while bounding memory.
DEFAULT_MAX_OBJECT_SIZE: Final = 16 * 1024 * 1024
# Real servers send a bookmark about every 60 s (see the recorded
# watch-configmaps-bookmarks-130s.http.timing), so 70 s of silence means the
# connection is dead even though TCP has not noticed.
DEFAULT_INACTIVITY_TIMEOUT: Final = 70.0
EVENT_TYPES: Final = frozenset({"ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"})


# Performance: decode_event runs once per event, and WatchEvent's attrs
# __init__ (a frozen class: object.__setattr__ per field) costs about 100 ns
# more than setting its two slots directly. The event is the same either way.
_new_event = object.__new__
_set_type = WatchEvent.__dict__["type"].__set__
_set_object = WatchEvent.__dict__["object"].__set__


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
    event: WatchEvent = _new_event(WatchEvent)
    _set_type(event, kind)
    _set_object(event, obj)
    return event


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


CLOSED_CLIENT: Final = "the client is closed or was never entered: use 'async with Client() as k8s'"


class Watch(AsyncResource):
    """An async iterator of ``WatchEvent`` that survives dropped connections.

    Get one from ``Client.watch()``. Use it with ``async for``; leaving the loop
    early releases the connection once the iterator is closed, so prefer::

        async with k8s.watch("pods") as events:
            async for event in events:
                ...

    Closing it (``aclose()``, from any task) ends an iteration in progress;
    closing the client under it makes the iterating task raise
    ``AsyncpodError``.

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
        max_failures: float | None = None,
    ) -> None:
        self._session = session
        self._resolve_path = resolve_path
        self._label_selector = label_selector
        self._field_selector = field_selector
        self.timeout_seconds = timeout_seconds
        self.bookmarks = bookmarks
        self.inactivity_timeout = inactivity_timeout
        self.max_object_size = max_object_size
        if max_failures is None:
            max_failures = session.watch_retry_limit
        self._state = WatchState(
            resource_version,
            policy=watch_policy(session.retry_policy),
            max_failures=max_failures,
            timeout_seconds=timeout_seconds,
            bookmarks=bookmarks,
        )
        self._path: str | None = None
        self._response: Response | None = None
        self._decoder = WatchDecoder(max_object_size)
        # Lines of the stream not handed out yet, decoded one at a time as
        # the caller asks (the last line of a stream comes decoded).
        self._pending: deque[bytes | WatchEvent] = deque()
        # Why the stream ended, once its last lines are handed out.
        self._ended: str | None = None
        # The wait in progress (connect, backoff, receive), which aclose()
        # from another task interrupts.
        self._scope: anyio.CancelScope | None = None
        self._timer: Any = None

    @property
    def resource_version(self) -> str | None:
        """The last resourceVersion seen (bookmarks included); where a reconnect resumes."""
        return self._state.resource_version

    @property
    def reconnects(self) -> int:
        """How many times the watch connected again."""
        return self._state.reconnects

    def __aiter__(self) -> Watch:
        return self

    async def aclose(self) -> None:
        """Stop watching and release the connection; an iteration in progress ends."""
        self._session.forget(self)
        self._state.close()
        self._pending.clear()
        scope, self._scope = self._scope, None
        if scope is not None:
            scope.cancel()
        timer, self._timer = self._timer, None
        if timer is not None:
            # An asyncio.timeout around a receive: fire it now.
            with contextlib.suppress(RuntimeError):
                timer.reschedule(0.0)
        await self._disconnect()

    async def __anext__(self) -> WatchEvent:
        # Performance: the fast path. While lines are pending and the state
        # is steady, an event is served here without awaiting anything or
        # creating another coroutine; everything else (ERROR, a bad line,
        # a hidden bookmark, an empty queue) takes the general path.
        pending = self._pending
        state = self._state
        if pending and state.steady:
            line = pending.popleft()
            if type(line) is bytes:
                try:
                    event = state.accept(decode_event(line))
                except (ProtocolError, APIError):
                    # Raised again, in order, by the general path.
                    pending.appendleft(line)
                else:
                    if event is not None:
                        return event
            else:
                pending.appendleft(line)
        try:
            return await self._next()
        except BaseException:
            await self.aclose()
            raise

    async def _next(self) -> WatchEvent:
        state = self._state
        pending = self._pending
        while True:
            if state.closed:
                self._stop()
            held = state.held()
            if held is not None:
                return held
            failure: APIError | None = None
            while pending:
                item = pending.popleft()
                try:
                    event = state.accept(decode_event(item) if isinstance(item, bytes) else item)
                except APIError as exc:
                    failure = exc
                    break
                if event is not None:
                    return event
            if failure is not None:
                # An ERROR event: a transient one resumes from the last
                # resourceVersion; the rest of this stream is not read.
                pending.clear()
                self._ended = None
                await self._disconnect()
                await self._wait(state.on_failure(failure, time.monotonic()))
                continue
            if self._decoder.error is not None:
                # A bad line after the events just yielded: the stream is
                # broken, and the same bytes would come again after resuming.
                raise self._decoder.error
            if self._ended is not None:
                reason, self._ended = self._ended, None
                await self._wait(state.on_end(time.monotonic(), reason))
                continue
            if self._response is None:
                await self._connect()
                continue
            await self._read()

    def _stop(self) -> None:
        """End the iteration of a closed watch; raise when the client was closed under it."""
        if self._session.closed:
            raise AsyncpodError(CLOSED_CLIENT)
        raise StopAsyncIteration

    async def _read(self) -> None:
        """Receive one chunk into ``_pending``, or handle the end of the stream."""
        state = self._state
        limit = self.inactivity_timeout
        remaining = state.remaining(time.monotonic())
        if remaining is not None:
            if remaining <= 0:
                raise StopAsyncIteration
            limit = min(limit, remaining)
        chunk: bytes | None = None
        dropped: TransportError | None = None
        try:
            native = self._session.native_timeout
            if native is not None:
                # Performance: asyncio.timeout is cheaper than an anyio
                # cancel scope, and this runs once per chunk.
                timer = native(limit)
                try:
                    async with timer:
                        self._timer = timer
                        chunk = await self._receive()
                except TimeoutError:
                    if not timer.expired():
                        raise
                finally:
                    self._timer = None
            else:
                with anyio.move_on_after(limit) as scope:
                    self._scope = scope
                    chunk = await self._receive()
                self._scope = None
        except TransportError as exc:
            dropped = exc
        if state.closed:
            return
        now = time.monotonic()
        if dropped is not None:
            await self._disconnect()
            await self._wait(state.on_failure(dropped, now))
        elif chunk is None:
            # Silence: the deadline passed, or the connection is dead.
            await self._disconnect()
            await self._wait(state.on_end(now, "inactivity"))
        elif chunk == b"":
            # The server ended the stream. An event cut in half is dropped
            # here and sent again after resuming; a last line without a
            # newline is handed out before the state decides.
            await self._disconnect()
            with contextlib.suppress(ProtocolError):
                self._pending.extend(self._decoder.close())
            if self._pending:
                self._ended = "server timeout"
            else:
                await self._wait(state.on_end(now))
        else:
            self._pending.extend(self._decoder.lines(chunk))

    async def _receive(self) -> bytes:
        response = self._response
        if response is None or response.stream is None:
            return b""
        return await response.stream.receive()

    async def _connect(self) -> None:
        session, state = self._session, self._state
        if self._path is None:
            self._path = await self._resolve_path()
            state.path = self._path
            if state.closed:
                return  # closed while discovery answered
        now = time.monotonic()
        params: Params = {
            **state.connect_params(now),
            "labelSelector": self._label_selector,
            "fieldSelector": self._field_selector,
        }
        limit = session.timeout
        remaining = state.remaining(now)
        if remaining is not None:
            if remaining <= 0:
                raise StopAsyncIteration
            limit = remaining if limit is None else min(limit, remaining)
        response: Response | None = None
        failure: AsyncpodError | None = None
        try:
            with anyio.move_on_after(math.inf if limit is None else limit) as scope:
                self._scope = scope
                # One attempt: the reconnects of this loop are the watch's
                # only retries; the client's own would multiply with them.
                response = await session.open_stream(self._path, params, retry=False)
        except (TransportError, APIError) as exc:
            failure = exc
        finally:
            self._scope = None
        if state.closed:
            if response is not None:
                with anyio.CancelScope(shield=True), contextlib.suppress(TransportError):
                    await response.aclose()
            return
        if response is None and failure is None:
            msg = f"watch of {self._path} got no answer within {limit:g} s"
            failure = RequestTimeoutError(msg)
        if failure is not None:
            # Outside the except block: a cancellation while waiting must not
            # be chained to the failure.
            await self._wait(state.on_failure(failure, time.monotonic()))
            return
        self._response = response
        state.connected(time.monotonic())
        self._decoder = WatchDecoder(self.max_object_size)

    async def _disconnect(self) -> None:
        response, self._response = self._response, None
        if response is not None:
            with anyio.CancelScope(shield=True):
                # The connection is gone either way.
                with contextlib.suppress(TransportError):
                    await response.aclose()

    async def _wait(self, plan: Reconnect | None) -> None:
        """Report a reconnect as a ``WatchReconnectEvent`` and wait its delay."""
        state = self._state
        if plan is None:
            if state.closed:
                self._stop()
            raise StopAsyncIteration  # the caller's timeout_seconds is over
        hook = self._session.on_event
        if hook is not None:
            emit(
                hook,
                WatchReconnectEvent(
                    self._path or "", state.resume_version, plan.reason, plan.attempt, plan.delay
                ),
            )
        if plan.delay > 0:
            with anyio.CancelScope() as scope:
                self._scope = scope
                await anyio.sleep(plan.delay)
            self._scope = None


__all__ = ["INITIAL_EVENTS_END", "Watch", "WatchDecoder", "WatchEvent", "decode_event"]
