"""The pod log stream: ``pods/NAME/log``, at once or followed until the pod goes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING

from aiohttp import web

from asyncpod.testing._resources import ResourceType
from asyncpod.testing._routes import TRUE, Route
from asyncpod.testing._subresources import log_source

if TYPE_CHECKING:
    from asyncpod.testing._sandbox import Sandbox


async def serve_log(
    sb: Sandbox,
    request: web.BaseRequest,
    rt: ResourceType,
    route: Route,
    query: Mapping[str, str],
    headers: dict[str, str],
) -> web.StreamResponse:
    """Imitates GET ``pods/NAME/log`` (``tailLines``, ``follow`` until the pod is gone)."""
    assert route.name is not None
    assert route.namespace is not None
    store = sb._store
    pod, key, start = log_source(store, rt, route, query)
    if query.get("follow") not in TRUE:
        lines = store.pod_logs.get(key, [])
        body = "".join(line + "\n" for line in lines[start:]).encode()
        return web.Response(status=200, body=body, headers=headers)
    response = web.StreamResponse(status=200, headers=headers)
    response.enable_chunked_encoding()
    await response.prepare(request)
    position = start
    wake = asyncio.Event()
    uid = pod.obj["metadata"]["uid"]
    try:
        while True:
            lines = store.pod_logs.get(key, [])
            if position < len(lines):
                text = "".join(f"{line}\n" for line in lines[position:])
                await response.write(text.encode())
                position = len(lines)
            current = store.find(rt, route.namespace, route.name)
            if current is None or current.obj["metadata"]["uid"] != uid or sb._stopping:
                break
            wake.clear()
            store.log_waiters.append(wake.set)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(wake.wait(), 1.0)
        await response.write_eof()
    except ConnectionError:
        # The client stopped following the log.
        pass
    return response
