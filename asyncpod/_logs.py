"""Pod logs as an async iterator of lines."""

from __future__ import annotations

import anyio
from anyio.abc import AsyncResource

from asyncpod._models import Response
from asyncpod._session import Session
from asyncpod._target import Params


class LogLines(AsyncResource):
    """The lines of a container's log, without the newline.

    With ``follow=True`` the iteration lasts as long as the container writes
    (or until the caller stops). Leave early with ``async with``::

        async with k8s.logs("web-0", follow=True) as lines:
            async for line in lines:
                ...
    """

    def __init__(self, session: Session, path: str, params: Params) -> None:
        self._session = session
        self._path = path
        self._params = params
        self._response: Response | None = None
        self._pending = b""
        self._lines: list[bytes] = []
        self._done = False

    def __aiter__(self) -> LogLines:
        return self

    async def aclose(self) -> None:
        """Stop reading and release the connection."""
        self._session.forget(self)
        self._done = True
        response, self._response = self._response, None
        if response is not None:
            with anyio.CancelScope(shield=True):
                await response.aclose()

    async def __anext__(self) -> str:
        try:
            return await self._next()
        except BaseException:
            await self.aclose()
            raise

    async def _next(self) -> str:
        while not self._lines:
            if self._done:
                raise StopAsyncIteration
            if self._response is None:
                self._response = await self._session.open_stream(self._path, self._params)
            stream = self._response.stream
            chunk = await stream.receive() if stream is not None else b""
            if not chunk:
                if self._response.content and stream is None:
                    chunk, self._response.content = self._response.content, b""
                else:
                    if self._pending:
                        self._lines.append(self._pending)
                        self._pending = b""
                    await self.aclose()
                    self._done = True
                    continue
            *lines, self._pending = (self._pending + chunk).split(b"\n")
            self._lines.extend(lines)
        line = self._lines.pop(0)
        return line.removesuffix(b"\r").decode("utf-8", errors="replace")
