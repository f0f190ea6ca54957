"""Lists: selectors, pages with continue tokens, and lists at an older resourceVersion."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

from asyncpod import _json
from asyncpod.testing import _status
from asyncpod.testing._objects import ObjKey, Stored
from asyncpod.testing._resources import ResourceType
from asyncpod.testing._selectors import Matcher

if TYPE_CHECKING:
    from asyncpod.testing._store import Store


def encode_continue(rv: int, start: str) -> str:
    """A continue token in the API server's format."""
    data = _json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start})
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def decode_continue(token: str) -> tuple[int, str]:
    """The resourceVersion and start key of a continue token; 400 when malformed."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = _json.loads(raw)
        return int(data["rv"]), str(data["start"])
    except (ValueError, KeyError, TypeError) as exc:
        raise _status.bad_request(f"continue key is not valid: {exc}") from None


def snapshot(store: Store, rt: ResourceType, rv: int) -> dict[ObjKey, Stored]:
    """The objects of ``rt`` as they were at ``rv``: later events undone, newest first."""
    state = dict(store.data[rt.key])
    for _, event in reversed(store.log):
        if event.rv <= rv:
            break
        if event.key != rt.key:
            continue
        meta = event.obj.obj["metadata"]
        okey = (meta.get("namespace", ""), meta["name"])
        if event.type == "ADDED":
            state.pop(okey, None)
        elif event.prev is not None:
            state[okey] = event.prev
    return state


def select(
    store: Store,
    rt: ResourceType,
    namespace: str | None,
    *,
    labels: Matcher | None = None,
    fields: Matcher | None = None,
    limit: int = 0,
    continue_token: str | None = None,
    resource_version: str | None = None,
    resource_version_match: str | None = None,
) -> tuple[list[Stored], int, str | None, int | None]:
    """Items, list resourceVersion, continue token, remainingItemCount."""
    list_rv = store.rv
    start = ""
    state = store.data[rt.key]
    if continue_token or resource_version_match == "Exact":
        store.expire()
    if continue_token:
        token_rv, start = decode_continue(continue_token)
        if token_rv == -1:
            pass
        elif token_rv < store.compacted:
            retry = encode_continue(-1, start.lstrip("/"))
            message = (
                "The provided continue parameter is too old to display a consistent list "
                "result. You can start a new list without the continue parameter, or use "
                "the continue token in this response to retrieve the remainder of the "
                "results. Continuing with the provided token results in an inconsistent "
                "list - objects that were created, modified, or deleted between the time "
                "the first chunk was returned and now may show up in the list."
            )
            raise _status.expired(message, retry)
        else:
            list_rv = token_rv
            state = snapshot(store, rt, token_rv)
    elif resource_version_match == "Exact" and resource_version:
        try:
            exact = int(resource_version)
        except ValueError:
            raise _status.bad_request(f"invalid resource version: {resource_version}") from None
        if exact < store.compacted:
            raise _status.expired("The resourceVersion for the provided list is too old.")
        list_rv = exact
        state = snapshot(store, rt, exact)
    # Continue tokens carry the key the next page starts after, in the
    # server's form: "/name" within a namespace, "namespace/name" across.
    across = rt.namespaced and not namespace

    def position(k: ObjKey) -> str:
        return f"{k[0]}/{k[1]}" if across else f"/{k[1]}"

    if rt.namespaced and namespace:
        keys = sorted(k for k in state if k[0] == namespace)
    else:
        keys = sorted(state)
    if start:
        cut = start.rstrip("\x00")
        if not cut.startswith("/") and rt.namespaced and namespace:
            cut = "/" + cut
        keys = [k for k in keys if position(k) > cut]
    items: list[Stored] = []
    token = None
    remaining = None
    for index, key in enumerate(keys):
        stored = state[key]
        if labels is not None and not labels(stored.obj):
            continue
        if fields is not None and not fields(stored.obj):
            continue
        if limit and len(items) == limit:
            token = encode_continue(list_rv, position(keys[index - 1]) + "\x00")
            if labels is None and fields is None:
                remaining = len(keys) - index
            break
        items.append(stored)
    return items, list_rv, token, remaining
