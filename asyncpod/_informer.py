"""The informer: list, then watch, re-list on 410, and a local cache.

This is the loop an operator runs on::

    async with k8s.informer("configmaps", namespace="apps") as informer:
        async for change in informer:
            if change.type != "DELETED":
                await reconcile(change.object)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal

from anyio.abc import AsyncResource
from attrs import frozen

from asyncpod._errors import GoneError
from asyncpod._list import ListIterator
from asyncpod._objects import object_key, resource_version_of
from asyncpod._session import Session
from asyncpod._watch import DEFAULT_MAX_OBJECT_SIZE, Watch


@frozen
class Change:
    """One change of the informer's cache.

    Attributes:
        type: ``"ADDED"``, ``"MODIFIED"`` or ``"DELETED"``; ``"SYNCED"`` once,
            after the first list was delivered (``object`` is then empty).
        key: ``"namespace/name"`` (``"name"`` for cluster-scoped objects).
        object: the object now (for DELETED: its last state).
        old: the cached object it replaced (``None`` for ADDED and SYNCED).
    """

    type: Literal["ADDED", "MODIFIED", "DELETED", "SYNCED"]
    key: str
    object: dict[str, Any]
    old: dict[str, Any] | None = None


class Informer(AsyncResource):
    """Keeps ``cache`` equal to the server's objects and yields every change.

    It lists (page by page), yields ADDED for each object and one SYNCED,
    then watches from the list's resourceVersion. The watch resumes by itself
    after drops and server timeouts; when the server says the version is gone
    (410) the informer lists again and yields the difference (ADDED, MODIFIED,
    DELETED) between its cache and the new list, so no change is lost and the
    cache never holds a deleted object.

    Attributes:
        cache: the objects, keyed ``"namespace/name"`` (or ``"name"``).
        resource_version: the version the cache reflects.
        synced: true once the first list has been delivered.
        relists: how many times a 410 forced a new list.
    """

    def __init__(
        self,
        session: Session,
        resolve_path: Callable[[], Awaitable[str]],
        *,
        label_selector: str | None,
        field_selector: str | None,
        chunk_size: int | None,
        inactivity_timeout: float,
        max_failures: float,
    ) -> None:
        self._session = session
        self._resolve_path = resolve_path
        self._label_selector = label_selector
        self._field_selector = field_selector
        self._chunk_size = chunk_size
        self._inactivity_timeout = inactivity_timeout
        self._max_failures = max_failures
        self.cache: dict[str, dict[str, Any]] = {}
        self.resource_version: str | None = None
        self.synced = False
        self.relists = 0
        self._queue: list[Change] = []
        self._closed = False
        self._watch: Watch | None = None

    def get(self, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """The cached object, or ``None``."""
        return self.cache.get(f"{namespace}/{name}" if namespace else name)

    def __aiter__(self) -> Informer:
        return self

    async def __anext__(self) -> Change:
        while not self._queue:
            if self._closed:
                raise StopAsyncIteration
            if not self.synced:
                self._queue.extend(self._diff(await self._list()))
                self._queue.append(Change("SYNCED", "", {}))
                self.synced = True
                continue
            if self._watch is None:
                self._watch = Watch(
                    self._session,
                    self._resolve_path,
                    label_selector=self._label_selector,
                    field_selector=self._field_selector,
                    resource_version=self.resource_version,
                    timeout_seconds=None,
                    bookmarks=False,
                    inactivity_timeout=self._inactivity_timeout,
                    max_object_size=DEFAULT_MAX_OBJECT_SIZE,
                    max_failures=self._max_failures,
                )
            try:
                event = await self._watch.__anext__()
            except StopAsyncIteration:
                self._watch = None
                continue
            except GoneError:
                # The watch closed itself; the version is gone: list again
                # and report the difference.
                self._watch = None
                self.relists += 1
                self._queue.extend(self._diff(await self._list()))
                continue
            applied = self._apply(event.type, event.object)
            self.resource_version = self._watch.resource_version
            if applied is not None:
                self._queue.append(applied)
        return self._queue.pop(0)

    async def aclose(self) -> None:
        """Stop: close the watch and release its connection."""
        self._session.forget(self)
        self._closed = True
        watch, self._watch = self._watch, None
        if watch is not None:
            await watch.aclose()

    async def _list(self) -> dict[str, dict[str, Any]]:
        # A full snapshot; the list iterator already falls back to one request
        # when a continue token expires.
        params = {"labelSelector": self._label_selector, "fieldSelector": self._field_selector}
        items = ListIterator(self._session, self._resolve_path, params, self._chunk_size)
        snapshot: dict[str, dict[str, Any]] = {}
        async for item in items:
            snapshot[object_key(item)] = item
        self.resource_version = items.resource_version
        return snapshot

    def _diff(self, snapshot: Mapping[str, dict[str, Any]]) -> list[Change]:
        changes: list[Change] = []
        for key, old in list(self.cache.items()):
            if key not in snapshot:
                del self.cache[key]
                changes.append(Change("DELETED", key, old, old))
        for key, obj in snapshot.items():
            previous = self.cache.get(key)
            self.cache[key] = obj
            if previous is None:
                changes.append(Change("ADDED", key, obj))
            elif _version(previous) != _version(obj):
                changes.append(Change("MODIFIED", key, obj, previous))
        return changes

    def _apply(self, kind: str, obj: dict[str, Any]) -> Change | None:
        key = object_key(obj, f"the object of a {kind} event")
        old = self.cache.get(key)
        if kind == "DELETED":
            if old is None:
                return None
            del self.cache[key]
            return Change("DELETED", key, obj, old)
        if kind not in ("ADDED", "MODIFIED"):
            return None
        self.cache[key] = obj
        if old is None:
            return Change("ADDED", key, obj)
        if _version(old) == _version(obj):
            return None
        return Change("MODIFIED", key, obj, old)


def _version(obj: Mapping[str, Any]) -> str:
    return resource_version_of(obj)
