"""``Client``: the async entry point of asyncpod."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any

import anyio
import sniffio

from asyncpod import _json
from asyncpod._auth import Auth
from asyncpod._config import Config
from asyncpod._errors import AsyncpodError, RequestTimeoutError
from asyncpod._models import Request, Response
from asyncpod._resources import ResourceMixin
from asyncpod._status import api_error
from asyncpod._target import Params, build_target
from asyncpod._transport import Endpoint, Engine, Transport, choose_engine
from asyncpod._wiring import make_auth, make_endpoint

USER_AGENT = "asyncpod/0.1"
# A streaming call that fails is read this far for its Status body; a longer
# error body is not a Status and must not pin memory.
MAX_ERROR_BODY = 1 << 20
# asyncio.timeout (Python 3.11+), the cheapest deadline on asyncio.
_ASYNCIO_TIMEOUT: Callable[[float], Any] | None = getattr(asyncio, "timeout", None)


def create_transport(endpoint: Endpoint, *, engine: Engine, max_connections: int) -> Transport:
    """Build the bundled transport for ``endpoint`` on ``engine``.

    The core names the transport package instead of importing it, so that
    ``import asyncpod`` stays free of aiohttp and h11.
    """
    transports = importlib.import_module("asyncpod_transports")
    transport: Transport = transports.create_transport(
        endpoint, engine=engine, max_connections=max_connections
    )
    return transport


class Client(ResourceMixin):
    """An async client of one Kubernetes API server.

    Use it as an async context manager; it owns a connection pool.

    Args:
        config: where and how to connect; ``None`` walks ``load_config()``.
        transport: a ready transport, overriding the one the config names.
        timeout: the default deadline in seconds of one non-streaming call,
            connect included; ``None`` disables it.
        max_connections: the size of the connection pool.
        retries: the most retries of one call (0 disables).
        engine: ``"aiohttp"`` or ``"anyio"``; by default aiohttp on asyncio
            and the anyio engine elsewhere.
    """

    def __init__(
        self,
        config: Config | None = None,
        *,
        transport: Transport | None = None,
        timeout: float | None = 30.0,
        max_connections: int = 100,
        retries: int = 5,
        engine: Engine | None = None,
    ) -> None:
        self._config = config
        self._transport = transport
        self._owns_transport = transport is None
        self.timeout = timeout
        self.max_connections = max_connections
        self.retries = retries
        self._engine = engine
        self._auth: Auth | None = None
        self._native_timeout: Callable[[float], Any] | None = None
        self._base_headers = {"Accept": "application/json", "User-Agent": USER_AGENT}

    @property
    def config(self) -> Config:
        """The configuration in use (resolved when the client was entered)."""
        if self._config is None:
            msg = "the client has not been entered yet: use 'async with Client() as k8s'"
            raise AsyncpodError(msg)
        return self._config

    async def __aenter__(self) -> Client:
        if self._config is None:
            from asyncpod._chain import load_config

            self._config = load_config()
        self._auth = make_auth(self._config)
        library = sniffio.current_async_library()
        self._native_timeout = _ASYNCIO_TIMEOUT if library == "asyncio" else None
        if self._transport is None:
            engine = choose_engine(library, self._engine)
            self._transport = create_transport(
                make_endpoint(self._config), engine=engine, max_connections=self.max_connections
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
        """Close the connection pool (when the client created it)."""
        await self._close_open_streams()
        transport, self._transport = self._transport, None
        if transport is not None and self._owns_transport:
            with anyio.CancelScope(shield=True):
                await transport.aclose()

    def _build(
        self,
        method: str,
        path: str,
        params: Params | None,
        json: Any,
        content: bytes | None,
        headers: Mapping[str, str] | None,
        *,
        stream: bool = False,
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
        self, method: str, target: str, headers: dict[str, str], content: bytes | None, stream: bool
    ) -> Response:
        transport, auth = self._transport, self._auth
        if transport is None or auth is None:
            msg = "the client is closed or was never entered: use 'async with Client() as k8s'"
            raise AsyncpodError(msg)
        authorization = await auth.authorization()
        if authorization is not None:
            headers["Authorization"] = authorization
        request = Request(
            method=method, target=target, headers=headers, content=content, stream=stream
        )
        response = await transport.send(request)
        if response.status == 401 and await auth.unauthorized(authorization):
            await response.aclose()
            retry_authorization = await auth.authorization()
            if retry_authorization is not None:
                headers["Authorization"] = retry_authorization
            request = Request(
                method=method, target=target, headers=headers, content=content, stream=stream
            )
            response = await transport.send(request)
        return response

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

        Raises:
            APIError: the server answered with a status of 400 or more (the
                subclass matches the status).
            TransportError: the server could not be reached or the connection
                dropped.
            RequestTimeoutError: the client's timeout passed.
        """
        method = method.upper()
        target, request_headers, body = self._build(method, path, params, json, content, headers)
        if self.timeout is None:
            response = await self._send(method, target, request_headers, body, False)
        elif self._native_timeout is not None:
            # Performance: asyncio.timeout costs a third less than an anyio
            # cancel scope, which was the largest cost of asyncpod's own layer.
            deadline = self._native_timeout(self.timeout)
            try:
                async with deadline:
                    response = await self._send(method, target, request_headers, body, False)
            except TimeoutError:
                if not deadline.expired():
                    raise
                msg = f"{method} {path} got no answer within {self.timeout:g} s"
                raise RequestTimeoutError(msg) from None
        else:
            with anyio.move_on_after(self.timeout) as scope:
                response = await self._send(method, target, request_headers, body, False)
            if scope.cancelled_caught:
                msg = f"{method} {path} got no answer within {self.timeout:g} s"
                raise RequestTimeoutError(msg)
        if response.status >= 400:
            raise api_error(response.status, response.headers, response.content, response.reason)
        return response

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

        Raises:
            APIError: the server answered with an error status.
            TransportError: the server could not be reached.
        """
        method = method.upper()
        target, request_headers, body = self._build(method, path, params, None, None, headers)
        response = await self._send(method, target, request_headers, body, True)
        try:
            if response.status >= 400:
                content = await _read_bounded(response, MAX_ERROR_BODY)
                raise api_error(response.status, response.headers, content, response.reason)
            yield response
        finally:
            with anyio.CancelScope(shield=True):
                await response.aclose()


async def _read_bounded(response: Response, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)[:limit]
