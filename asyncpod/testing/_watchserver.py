"""The watch server: initial events, live events, bookmarks, timeouts and 410 Expired."""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

from asyncpod import _json
from asyncpod.testing import _lists, _status
from asyncpod.testing._faults import Drop, Fault, abort, drop
from asyncpod.testing._objects import Stored, Watcher
from asyncpod.testing._resources import ResourceType
from asyncpod.testing._routes import TRUE, Route
from asyncpod.testing._selectors import Matcher, field_matcher
from asyncpod.testing._tables import table
from asyncpod.testing._verbs import matchers

if TYPE_CHECKING:
    from asyncpod.testing._sandbox import Sandbox


def next_bookmark(
    now: float, interval: float, deadline: float | None, lead: float = 2.0
) -> float | None:
    """When the next bookmark is due, or ``None``.

    As the watch cache does: every ``interval``, and ``lead`` seconds before
    the watch's deadline unless that is too close to now to be useful.
    """
    due = now + interval
    if deadline is not None:
        before_end = deadline - lead
        if before_end < due and before_end - now >= 0.75 * lead:
            return before_end
        if due >= deadline:
            return None
    return due


def _both(first: Matcher | None, second: Matcher | None) -> Matcher | None:
    if first is None or second is None:
        return first or second

    def matches(obj: Mapping[str, Any]) -> bool:
        return first(obj) and second(obj)

    return matches


class _Stream:
    """The events waiting to be written to one watch, and its wake-up signal."""

    def __init__(self) -> None:
        self.pending: collections.deque[tuple[str, Stored]] = collections.deque()
        self.wake = asyncio.Event()
        self.closed = False

    def push(self, type_: str, stored: Stored) -> None:
        self.pending.append((type_, stored))
        self.wake.set()

    def close(self) -> None:
        self.closed = True
        self.wake.set()


async def serve_watch(
    sb: Sandbox,
    request: web.BaseRequest,
    rt: ResourceType,
    route: Route,
    query: Mapping[str, str],
    headers: dict[str, str],
    fault: Fault | None,
) -> web.StreamResponse:
    """Imitates the watch cache's ``?watch=true``: the state (or the history) then changes.

    ``resourceVersion`` unset or ``"0"`` (or ``sendInitialEvents``) starts with
    an ADDED event per object, ended by a bookmark when bookmarks are asked
    for; a version starts after it, or answers an ERROR event (410) when it
    was compacted. Bookmarks come every ``bookmark_interval`` and shortly
    before ``timeoutSeconds`` ends the watch.
    """
    store = sb._store
    labels, fields = matchers(query, rt)
    if route.name:
        # The legacy /watch/.../name form: a watch of one object.
        fields = _both(fields, field_matcher(f"metadata.name={route.name}", rt.plural))
    bookmarks = query.get("allowWatchBookmarks") in TRUE
    rv_param = query.get("resourceVersion") or ""
    try:
        timeout = float(query.get("timeoutSeconds") or 0)
    except ValueError:
        raise _status.bad_request("invalid timeoutSeconds") from None
    stream = _Stream()
    pending = stream.pending
    watcher = Watcher(rt.key, route.namespace, labels, fields, stream.push, stream.close)
    initial_end: int | None = None
    end_marker = Stored({"metadata": {"name": "", "resourceVersion": "0"}})
    error: dict[str, Any] | None = None
    if rv_param in ("", "0") or query.get("sendInitialEvents") in TRUE:
        items, list_rv, _, _ = _lists.select(
            store, rt, route.namespace, labels=labels, fields=fields
        )
        for stored in items:
            pending.append(("ADDED", stored))
        if bookmarks:
            initial_end = list_rv
            pending.append(("BOOKMARK", end_marker))
    else:
        try:
            since = int(rv_param)
        except ValueError:
            raise _status.bad_request(f"invalid resource version: {rv_param}") from None
        store.expire()
        if since < store.compacted:
            error = _status.status(
                410, f"too old resource version: {since} ({store.compacted})", "Expired"
            )
        else:
            for event in store.events_since(rt.key, since):
                watcher.offer(event)
    response = web.StreamResponse(status=200, headers=headers)
    response.enable_chunked_encoding()
    if error is not None:
        await response.prepare(request)
        await response.write(b'{"type":"ERROR","object":' + _json.dumps(error) + b"}\n")
        await response.write_eof()
        return response
    # Registered before the first await, right after the snapshot above, so
    # that no change can fall between the initial events and the live ones.
    store.add_watcher(watcher)
    sb._open_watches.add(watcher)
    try:
        await response.prepare(request)
    except BaseException:
        store.remove_watcher(watcher)
        sb._open_watches.discard(watcher)
        raise
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + timeout if timeout > 0 else None
    interval = sb.bookmark_interval
    lead = sb.bookmark_lead
    bookmark_at = next_bookmark(started, interval, deadline, lead) if bookmarks else None
    head = b'{"type":"BOOKMARK","object":{"kind":"' + rt.kind.encode()
    head += b'","apiVersion":"' + rt.api_version.encode() + b'","metadata":{"resourceVersion":"'
    sent = 0
    # kubectl get -w asks for Table rows; each event then carries a one-row Table.
    as_table = "as=Table" in request.headers.get("Accept", "")
    drop_after = fault.after if fault is not None and fault.kind == "watch_drop" else None
    try:
        while True:
            while pending:
                type_, stored = pending.popleft()
                if initial_end is not None and stored is end_marker:
                    # The initial events are out: the bookmark that says so
                    # comes before any live event (its version is older).
                    await response.write(
                        head
                        + str(initial_end).encode()
                        + b'","annotations":{"k8s.io/initial-events-end":"true"}}}}\n'
                    )
                    initial_end = None
                    continue
                if drop_after is not None and sent >= drop_after:
                    drop()
                if as_table:
                    body = _json.dumps(table(rt, [stored], stored.rv, query))
                else:
                    body = stored.full()
                await response.write(b'{"type":"' + type_.encode() + b'","object":' + body + b"}\n")
                sent += 1
            if stream.closed:
                break
            now = loop.time()
            if deadline is not None and now >= deadline:
                break
            if bookmark_at is not None and now >= bookmark_at:
                await response.write(head + str(store.rv).encode() + b'"}}}\n')
                bookmark_at = next_bookmark(now, interval, deadline, lead)
                continue
            wait_until = min(t for t in (deadline, bookmark_at, now + 3600.0) if t is not None)
            stream.wake.clear()
            if pending or stream.closed:
                continue
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stream.wake.wait(), max(wait_until - now, 0))
    except Drop:
        abort(request)
        return response
    except ConnectionError:
        # The client went away; nothing more to send.
        return response
    finally:
        store.remove_watcher(watcher)
        sb._open_watches.discard(watcher)
    # The client may have closed the stream (it stopped watching) between
    # the last write and this one: nothing to report then.
    with contextlib.suppress(ConnectionError):
        await response.write_eof()
    return response
