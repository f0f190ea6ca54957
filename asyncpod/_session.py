"""``Session``: the request pipeline under the verbs and the streams.

One call goes: build the target and headers, wait for the rate limiter, add
the credential, send on the transport, and on failure ask the
``RetryPolicy`` whether and when to try again (a 401 re-reads the
credential once instead). The streams (``Watch``, ``LogLines``,
``ListIterator``, ``Informer``) get a ``Session``, never the ``Client``: they
need only ``open_stream``, ``get_json`` and the life-cycle plumbing here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractContextManager, asynccontextmanager
from types import TracebackType
from typing import Any, TypeVar

import anyio
import sniffio

from asyncpod import _json
from asyncpod._assemble import auth_for, choose_engine, endpoint_for, open_transport
from asyncpod._auth import Auth
from asyncpod._chain import load_config
from asyncpod._config import Config
from asyncpod._errors import (
    APIError,
    AsyncpodError,
    ProtocolError,
    RequestTimeoutError,
    ResponseTooLargeError,
    TransportError,
)
from asyncpod._events import EventHook, RequestEvent, RetryEvent, emit
from asyncpod._models import Request, Response
from asyncpod._ratelimit import RateLimiter
from asyncpod._retry import NO_RETRIES, Retry, RetryPolicy
from asyncpod._status import api_error, parse_retry_after
from asyncpod._target import Params, build_target
from asyncpod._transport import Engine, Transport

USER_AGENT = "asyncpod/0.1"
# An error answer to a stream is read this far for its Status body; a longer
# error body is not a Status and must not pin memory.
MAX_ERROR_BODY = 1 << 20
# A 401 is retried once per new credential: twice covers a request whose
# fresh token was itself rotated out while it waited; a token that never
# changes is refused after one read, as ``Auth.unauthorized`` says False.
MAX_REAUTHORIZATIONS = 2
# The largest answer of a non-streaming call read into memory. A list of 500
# pods is a few MB; a larger answer is a runaway or hostile server, and a
# caller who really wants it raises the limit or pages with ``list``.
DEFAULT_MAX_RESPONSE_SIZE = 128 << 20

# asyncio.timeout (Python 3.11+), the cheapest deadline on asyncio.
_ASYNCIO_TIMEOUT: Callable[[float], Any] | None = getattr(asyncio, "timeout", None)


def _trio_move_on_after() -> Callable[[float], AbstractContextManager[Any]]:
    """trio's own cancel scope, for the deadline of every request on trio.

    Performance: anyio's scope wraps trio's in a context manager of its own;
    the deadline was a fifth of asyncpod's CPU per request on trio.
    """
    import trio  # only when running on trio, which is an extra

    return trio.move_on_after


logger = logging.getLogger("asyncpod")

SessionT = TypeVar("SessionT", bound="Session")


class Session:
    """The request pipeline of one Kubernetes API server, and the streams it carries.

    ``Client`` adds the resource verbs. Use it as an async context manager;
    it owns a connection pool.

    The arguments are ``Client``'s (see its docstring): the verbs add none.
    """

    def __init__(
        self,
        config: Config | None = None,
        *,
        transport: Transport | None = None,
        timeout: float | None = 30.0,
        max_connections: int = 100,
        retries: int | RetryPolicy = 5,
        engine: Engine | None = None,
        connect_timeout: float | None = 10.0,
        rate_limit: tuple[float, int] | None = None,
        on_event: EventHook | None = None,
        max_response_size: int | None = DEFAULT_MAX_RESPONSE_SIZE,
    ) -> None:
        self._config = config
        self._transport = transport
        self._owns_transport = transport is None
        self.timeout = timeout
        self.max_connections = max_connections
        self.retries = retries
        self.retry_policy = RetryPolicy.from_retries(retries)
        self.connect_timeout = connect_timeout
        self.max_response_size = max_response_size
        self._limiter = RateLimiter(*rate_limit) if rate_limit is not None else None
        self._on_event = on_event
        self._engine = engine
        self._auth: Auth | None = None
        self._native_timeout: Callable[[float], Any] | None = None
        self._move_on_after: Callable[[float], AbstractContextManager[Any]] = anyio.move_on_after
        self._base_headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        # Strong references: an iterator the caller dropped without closing
        # still holds a connection, which closing the session must release.
        self._open_streams: set[Any] = set()
        self._closed = False

    @property
    def config(self) -> Config:
        """The configuration in use (resolved when the client was entered)."""
        if self._config is None:
            msg = "the client has not been entered yet: use 'async with Client() as k8s'"
            raise AsyncpodError(msg)
        return self._config

    @property
    def closed(self) -> bool:
        """Whether ``aclose()`` was called: streams on this session end their iteration."""
        return self._closed

    @property
    def on_event(self) -> EventHook | None:
        """The metrics hook given as ``on_event``, for the streams' own events."""
        return self._on_event

    @property
    def native_timeout(self) -> Callable[[float], Any] | None:
        """``asyncio.timeout`` on asyncio (cheaper than a cancel scope), else ``None``."""
        return self._native_timeout

    @property
    def watch_retry_limit(self) -> int:
        """How many reconnects in a row without data a plain watch makes before giving up."""
        return self.retry_policy.retries

    async def __aenter__(self: SessionT) -> SessionT:
        self._closed = False
        if self._config is None:
            self._config = load_config()
        self._auth = auth_for(self._config, on_event=self._on_event)
        library = sniffio.current_async_library()
        self._native_timeout = _ASYNCIO_TIMEOUT if library == "asyncio" else None
        self._move_on_after = _trio_move_on_after() if library == "trio" else anyio.move_on_after
        if self._transport is None:
            engine = choose_engine(library, self._engine)
            self._transport = open_transport(
                endpoint_for(self._config, on_event=self._on_event),
                engine=engine,
                max_connections=self.max_connections,
                connect_timeout=self.connect_timeout,
                max_response_size=self.max_response_size,
            )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the streams left open and the connection pool (when the client created it)."""
        self._closed = True
        streams, self._open_streams = self._open_streams, set()
        for stream in list(streams):
            await stream.aclose()
        transport, self._transport = self._transport, None
        if transport is not None and self._owns_transport:
            with anyio.CancelScope(shield=True):
                await transport.aclose()

    def _build(
        self,
        path: str,
        params: Params | None,
        json: Any,
        content: bytes | None,
        headers: Mapping[str, str] | None,
    ) -> tuple[str, dict[str, str], bytes | None]:
        target = build_target(path, params)
        request_headers = dict(self._base_headers)
        if json is not None:
            content = _json.dumps(json)
            request_headers["Content-Type"] = "application/json"
        if headers:
            request_headers.update(headers)
        return target, request_headers, content

    async def _send(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        content: bytes | None,
        stream: bool,
        *,
        deadline: float | None = None,
        policy: RetryPolicy | None = None,
        upgrade: str | None = None,
    ) -> Response:
        """Send with retries; ``deadline`` is the client's own, on ``time.monotonic()``.

        ``policy`` replaces the client's retry policy for this call.
        """
        transport, auth = self._transport, self._auth
        if transport is None or auth is None:
            msg = "the client is closed or was never entered: use 'async with Client() as k8s'"
            raise AsyncpodError(msg)
        hook, limiter = self._on_event, self._limiter
        if policy is None:
            policy = self.retry_policy
        attempt = 0
        reauthorizations = 0
        while True:
            authorization = await auth.authorization()
            if authorization is not None:
                headers["Authorization"] = authorization
            request = Request(
                method=method,
                target=target,
                headers=headers,
                content=content,
                stream=stream,
                upgrade=upgrade,
            )
            if limiter is not None:
                await limiter.acquire()
            started = anyio.current_time() if hook is not None else 0.0
            try:
                response = await transport.send(request)
            except TransportError as exc:
                if hook is not None:
                    emit(hook, _request_event(request, None, started, type(exc).__name__))
                attempt += 1
                retry = policy.on_error(method, exc, attempt, _remaining(deadline))
                if retry is None:
                    raise
                detail = str(exc)
            else:
                if hook is not None:
                    emit(hook, _request_event(request, response.status, started, None))
                status = response.status
                if (
                    status == 401
                    and reauthorizations < MAX_REAUTHORIZATIONS
                    and await auth.unauthorized(authorization)
                ):
                    # The credentials were refreshed: one more try, not counted
                    # as a retry (DESIGN.md "Auth: the rotating token").
                    reauthorizations += 1
                    await _discard(response, stream)
                    continue
                if status < 429 or not policy.is_retryable_status(status):
                    return response
                attempt += 1
                retry_after = parse_retry_after(response.headers.get("retry-after"))
                retry = policy.on_status(method, status, retry_after, attempt, _remaining(deadline))
                if retry is None:
                    return response
                await _discard(response, stream)
                detail = response.reason or ""
            # Sleep outside the except block, so that a cancellation during
            # the wait does not chain the transport error.
            await self._before_retry(method, target, retry, attempt, detail)
            if self._transport is not transport:
                msg = f"{method} {target.partition('?')[0]}: the client was closed during a retry"
                raise TransportError(msg, sent=False)

    async def _before_retry(
        self, method: str, target: str, retry: Retry, attempt: int, detail: str
    ) -> None:
        path = target.partition("?")[0]
        logger.info(
            "retrying %s %s in %.2f s (retry %d of %d): %s%s",
            method,
            path,
            retry.delay,
            attempt,
            self.retry_policy.retries,
            retry.reason,
            f" ({detail})" if detail else "",
        )
        if self._on_event is not None:
            emit(self._on_event, RetryEvent(method, path, retry.reason, attempt, retry.delay))
        await anyio.sleep(retry.delay)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """Send one request to a path on the server and read the whole answer.

        Failures are retried as the client's ``RetryPolicy`` says, inside the
        client's ``timeout`` and any deadline of the caller.

        Raises:
            APIError: the server answered with a status of 400 or more (the
                subclass matches the status), or with a redirect, which is
                never followed.
            TransportError: the server could not be reached or the connection
                dropped.
            ProtocolError: the answer could not be read.
            ResponseTooLargeError: the answer is larger than ``max_response_size``.
            RequestTimeoutError: the client's timeout passed.
        """
        method = method.upper()
        target, request_headers, body = self._build(path, params, json, content, headers)
        response = await self._send_within(method, path, target, request_headers, body, False)
        if response.status >= 300:
            raise _error_for(method, path, response, response.content)
        limit = self.max_response_size
        if limit is not None and len(response.content) > limit:
            # A transport that does not bound its reads still gets an error.
            raise _too_large(method, path, len(response.content), limit)
        return response

    async def _send_within(
        self,
        method: str,
        path: str,
        target: str,
        headers: dict[str, str],
        body: bytes | None,
        stream: bool,
    ) -> Response:
        timeout = self.timeout
        if timeout is None:
            return await self._send(method, target, headers, body, stream)
        # The deadline is also passed down, so that retries respect it
        # whichever mechanism enforces it.
        deadline = time.monotonic() + timeout
        if self._native_timeout is not None:
            # Performance: asyncio.timeout costs a third less than an anyio
            # cancel scope, which was the largest cost of asyncpod's own layer.
            scope = self._native_timeout(timeout)
            try:
                async with scope:
                    return await self._send(
                        method, target, headers, body, stream, deadline=deadline
                    )
            except TimeoutError:
                if not scope.expired():
                    raise
                raise _timed_out(method, path, timeout) from None
        with self._move_on_after(timeout):
            return await self._send(method, target, headers, body, stream, deadline=deadline)
        # Only reached when the scope cancelled the call.
        raise _timed_out(method, path, timeout)

    async def get_json(self, path: str, *, params: Params | None = None) -> Any:
        """GET ``path`` and decode the JSON answer.

        Raises:
            APIError: the server answered with an error status.
            ProtocolError: the answer is not JSON.
            TransportError: the server could not be reached.
        """
        response = await self.request("GET", path, params=params)
        return response.json()

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> AsyncIterator[Response]:
        """Open a streaming answer; its body is read with ``aiter_bytes``/``aiter_lines``.

        The connection is released when the block exits, also on cancellation.
        The client's ``timeout`` bounds the wait for the answer's head (retries
        included), not the body, which may stream for ever.

        Raises:
            APIError: the server answered with an error status.
            TransportError: the server could not be reached.
            RequestTimeoutError: no answer's head within the client's timeout.
        """
        method = method.upper()
        target, request_headers, body = self._build(path, params, None, None, headers)
        response = await self._send_within(method, path, target, request_headers, body, True)
        try:
            if response.status >= 300:
                content = await read_error_body(response)
                raise _error_for(method, path, response, content)
            yield response
        finally:
            with anyio.CancelScope(shield=True):
                await response.aclose()

    async def open_upgrade(
        self, path: str, params: Params | None, headers: Mapping[str, str]
    ) -> Response:
        """GET ``path`` asking to switch to a WebSocket; a ``101`` answer is returned.

        The request takes the pipeline of every request (rate limit, the
        credential, a 401 re-reading it once) but is never retried otherwise:
        the command it starts may already run. The client's ``timeout`` bounds
        the wait for the ``101``. The caller must ``aclose()`` the answer's
        ``connection``.

        Raises:
            APIError: the server refused the upgrade (its Status message).
            ProtocolError: the server answered a success that is not a ``101``.
            TransportError: the server could not be reached.
            RequestTimeoutError: no answer within the client's timeout.
        """
        target, request_headers, _ = self._build(path, params, None, None, headers)
        timeout = self.timeout
        response: Response | None = None
        with anyio.move_on_after(math.inf if timeout is None else timeout):
            response = await self._send(
                "GET", target, request_headers, None, False, policy=NO_RETRIES, upgrade="websocket"
            )
        if response is None:
            raise _timed_out("GET", path, timeout or 0.0)
        if response.status == 101 and response.connection is not None:
            return response
        await response.aclose()
        if response.status >= 300:
            raise _error_for("GET", path, response, response.content)
        msg = (
            f"GET {path}: the server answered {response.status} {response.reason} "
            "instead of switching to a WebSocket (101)"
        )
        raise ProtocolError(msg)

    def track(self, stream: Any) -> None:
        """Remember an open stream (a watch, a log), so that ``aclose()`` closes it."""
        self._open_streams.add(stream)

    def forget(self, stream: Any) -> None:
        """A stream was closed by its owner."""
        self._open_streams.discard(stream)

    async def open_stream(
        self, path: str, params: Params | None, *, retry: bool = True
    ) -> Response:
        """GET ``path`` as a stream; the caller must ``aclose()`` the answer.

        Unlike ``stream`` this holds no generator, so an iterator that is
        dropped without being closed leaves nothing to finalize. With
        ``retry=False`` the retry policy is not applied (a 401 still re-reads
        the credential once): for callers that retry on their own.

        Raises:
            APIError: the server answered with an error status.
            TransportError: the server could not be reached.
        """
        target, headers, _ = self._build(path, params, None, None, None)
        policy = None if retry else NO_RETRIES
        response = await self._send("GET", target, headers, None, True, policy=policy)
        if response.status < 300:
            return response
        try:
            content = await read_error_body(response)
        finally:
            with anyio.CancelScope(shield=True):
                await response.aclose()
        raise _error_for("GET", path, response, content)


async def read_error_body(response: Response) -> bytes:
    """The start of a streaming error answer, at most ``MAX_ERROR_BODY`` bytes: its Status."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= MAX_ERROR_BODY:
            break
    return b"".join(chunks)[:MAX_ERROR_BODY]


async def _discard(response: Response, stream: bool) -> None:
    """Release an answer that is about to be retried."""
    try:
        if stream:
            # Read the short Status body so that the connection ends cleanly
            # and can carry the retry.
            with contextlib.suppress(TransportError):
                await read_error_body(response)
    finally:
        with anyio.CancelScope(shield=True):
            await response.aclose()


def _remaining(own: float | None) -> float | None:
    """Seconds left before the innermost deadline: the client's (``own``) or the caller's."""
    remaining = anyio.current_effective_deadline() - anyio.current_time()
    if own is not None:
        remaining = min(remaining, own - time.monotonic())
    return None if remaining == math.inf else remaining


def _timed_out(method: str, path: str, timeout: float) -> RequestTimeoutError:
    msg = f"{method} {path} got no answer within {timeout:g} s (the client's timeout)"
    return RequestTimeoutError(msg)


def _request_event(
    request: Request, status: int | None, started: float, error: str | None
) -> RequestEvent:
    return RequestEvent(
        request.method,
        request.target.partition("?")[0],
        status,
        anyio.current_time() - started,
        error,
    )


def _error_for(method: str, path: str, response: Response, content: bytes) -> APIError:
    if response.status >= 400:
        return api_error(response.status, response.headers, content, response.reason)
    # An API server never redirects. Following one would hand the bearer
    # token to whatever host the answer names, so it is an error instead.
    location = response.headers.get("location", "")
    shown = location if len(location) <= 200 else location[:200] + "..."
    message = (
        f"the server answered {method} {path} with a redirect to {shown!r}; "
        "asyncpod never follows redirects"
    )
    return APIError(response.status, response.reason or "Redirect", message)


def _too_large(method: str, path: str, size: int, limit: int) -> ResponseTooLargeError:
    msg = (
        f"the answer to {method} {path} is {size} bytes, more than max_response_size "
        f"({limit} bytes); raise Client(max_response_size=...) or page with list()"
    )
    return ResponseTooLargeError(msg)
