"""What the store keeps: objects with their cached encodings, change events, watchers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from asyncpod import _json
from asyncpod.testing._selectors import Matcher

Key = tuple[str, str]  # (group, plural)
ObjKey = tuple[str, str]  # (namespace, name); namespace is "" when cluster-scoped


def now_rfc3339() -> str:
    """The time as Kubernetes writes it: RFC 3339, seconds, UTC."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Stored:
    """A stored object (never mutated) and its cached JSON encodings."""

    __slots__ = ("_full", "_item", "obj")

    def __init__(self, obj: dict[str, Any]) -> None:
        self.obj = obj
        self._full: bytes | None = None
        self._item: bytes | None = None

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])

    @property
    def rv(self) -> int:
        return int(self.obj["metadata"]["resourceVersion"])

    def full(self) -> bytes:
        """The object as GET answers it."""
        if self._full is None:
            self._full = _json.dumps(self.obj)
        return self._full

    def item(self) -> bytes:
        """The object as a list item (real lists leave out kind and apiVersion)."""
        if self._item is None:
            self._item = _json.dumps(
                {k: v for k, v in self.obj.items() if k not in ("kind", "apiVersion")}
            )
        return self._item

    def copy(self) -> dict[str, Any]:
        """A deep copy to change."""
        loaded: dict[str, Any] = _json.loads(self.full())
        return loaded


class Event:
    """One change: ``type`` is ADDED, MODIFIED or DELETED."""

    __slots__ = ("key", "obj", "prev", "rv", "type")

    def __init__(self, rv: int, key: Key, type_: str, obj: Stored, prev: Stored | None) -> None:
        self.rv = rv
        self.key = key
        self.type = type_
        self.obj = obj
        self.prev = prev


class Watcher:
    """A live watch: receives the events that match it."""

    def __init__(
        self,
        key: Key,
        namespace: str | None,
        labels: Matcher | None,
        fields: Matcher | None,
        push: Callable[[str, Stored], None],
        close: Callable[[], None],
    ) -> None:
        self.key = key
        self.namespace = namespace
        self.labels = labels
        self.fields = fields
        self.push = push
        self.close = close

    def matches(self, stored: Stored | None) -> bool:
        if stored is None:
            return False
        obj = stored.obj
        if self.namespace and obj["metadata"].get("namespace") != self.namespace:
            return False
        if self.labels is not None and not self.labels(obj):
            return False
        return self.fields is None or self.fields(obj)

    def offer(self, event: Event) -> None:
        # An object that starts or stops matching a selector is ADDED or DELETED
        # for this watch, as the API server's watch cache reports it.
        now = self.matches(event.obj)
        if event.type == "MODIFIED":
            before = self.matches(event.prev)
            if now and before:
                self.push("MODIFIED", event.obj)
            elif now:
                self.push("ADDED", event.obj)
            elif before:
                self.push("DELETED", event.obj)
        elif now:
            self.push(event.type, event.obj)
