"""``ListIterator``: the items of a list, page by page, following ``continue`` tokens."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from anyio.abc import AsyncResource

from asyncpod._errors import GoneError, ProtocolError
from asyncpod._objects import metadata_of, object_key, resource_version_of
from asyncpod._session import Session
from asyncpod._target import Params

PathResolver = Callable[[], Awaitable[str]]


class ListIterator(AsyncResource):
    """The items of a list, page by page, following ``continue`` tokens.

    Attributes:
        resource_version: the list's resourceVersion, set once the first page
            arrived (``None`` before); start a watch from it.
        pages: how many pages were fetched.
        restarted: whether a continue token expired and the list was read
            again whole (then ``resource_version`` is the whole list's).
    """

    def __init__(
        self,
        session: Session,
        resolve_path: PathResolver,
        params: Params,
        chunk_size: int | None,
    ) -> None:
        self._session = session
        self._resolve_path = resolve_path
        self._params: dict[str, Any] = dict(params)
        if chunk_size:
            self._params["limit"] = chunk_size
        self.chunk_size = chunk_size
        self.resource_version: str | None = None
        self.pages = 0
        self.restarted = False
        self._path: str | None = None
        self._items: list[dict[str, Any]] = []
        self._continue: str | None = None
        # Every continue token followed: one that comes back means the server
        # makes no progress, and following it would never end.
        self._tokens: set[str] = set()
        self._done = False
        # What was yielded, by key, so that a restart after an expired
        # continue token yields only what is new or changed.
        self._yielded: dict[str, str] = {}

    def __aiter__(self) -> ListIterator:
        return self

    async def aclose(self) -> None:
        """Stop early (no connection is held between pages)."""
        self._done = True
        self._items.clear()

    async def __anext__(self) -> dict[str, Any]:
        while not self._items:
            if self._done:
                raise StopAsyncIteration
            await self._fetch()
        item = self._items.pop()
        self._yielded[object_key(item)] = resource_version_of(item)
        return item

    async def _fetch(self) -> None:
        if self._path is None:
            self._path = await self._resolve_path()
        params = {**self._params, "continue": self._continue}
        try:
            page = await self._session.get_json(self._path, params=params)
        except GoneError:
            if self._continue is None:
                raise
            # client-go's pager (FullListIfExpired): the snapshot is gone, so
            # list everything again in one request.
            self.restarted = True
            self._params.pop("limit", None)
            page = await self._session.get_json(self._path, params=self._params)
            self._take(page, restart=True)
            self._done = True
            return
        self.pages += 1
        self._take(page, restart=False)

    def _take(self, page: Any, *, restart: bool) -> None:
        what = f"page {self.pages} of the list of {self._path}"
        metadata = metadata_of(page, what)
        items = _items(page, what)
        version = metadata.get("resourceVersion")
        if (self.pages == 1 or restart) and isinstance(version, str) and version:
            self.resource_version = version
        if restart:
            items = [
                item
                for item in items
                if self._yielded.get(object_key(item)) != resource_version_of(item)
            ]
        items.reverse()  # popped from the end
        self._items = items
        token = None if restart else (metadata.get("continue") or None)
        if token is not None:
            if not isinstance(token, str):
                msg = f"the continue token of {what} is not a string"
                raise ProtocolError(msg)
            if token in self._tokens:
                msg = (
                    f"the server handed back a continue token it gave before on {what}: "
                    "the list makes no progress"
                )
                raise ProtocolError(msg)
            self._tokens.add(token)
        self._continue = token
        if not token:
            self._done = True


def _items(page: Mapping[str, Any], what: str) -> list[dict[str, Any]]:
    """The page's items, each checked to be an object with object metadata."""
    items = page.get("items")
    if items is None:
        return []
    if not isinstance(items, list):
        msg = f"the items of {what} are not a JSON array"
        raise ProtocolError(msg)
    for index, item in enumerate(items):
        metadata_of(item, f"item {index} of {what}")
    return items
