"""A watch's life over real sockets: early drops, servers that end watches at once, an API
server restart, and closing from another task."""

from __future__ import annotations

import math
from typing import Any

import anyio
import pytest

import asyncpod
from asyncpod import AsyncpodError, WatchEvent, WatchReconnectEvent
from asyncpod._watch_state import INITIAL_EVENTS_END
from asyncpod.testing import Sandbox
from tests._k8s import client, new_namespace
from tests._scripted import DROP, END, Step, event, scripted_server

pytestmark = pytest.mark.anyio


def _end_bookmark(rv: int) -> bytes:
    line = event("BOOKMARK", rv, annotations={INITIAL_EVENTS_END: "true"})
    return line


async def _wait_for(predicate: Any, within: float = 10.0) -> None:
    """Wait (without blocking the loop) until ``predicate()`` holds."""
    with anyio.fail_after(within):
        while not predicate():  # noqa: ASYNC110 - the servers run in other tasks and threads
            await anyio.sleep(0.02)


async def test_an_early_drop_reports_deletions_and_changes(anyio_backend: str) -> None:
    """Dropped inside its initial events, a watch reports the changes meanwhile: no lost DELETED."""

    def script(params: dict[str, str]) -> tuple[int, list[Step]]:
        if params.get("resourceVersion") is None and not answered:
            answered.append(params)
            return 200, [
                event("ADDED", 3, "a"),
                event("ADDED", 5, "b"),
                event("ADDED", 6, "c"),
                DROP,
            ]
        # Meanwhile b was deleted, c modified and d created.
        return 200, [
            event("ADDED", 3, "a"),
            event("ADDED", 8, "c"),
            event("ADDED", 9, "d"),
            _end_bookmark(9),
            event("MODIFIED", 10, "a"),
        ]

    answered: list[dict[str, str]] = []
    async with scripted_server(script) as server, client(server.url, anyio_backend) as k8s:
        view: dict[str, str | None] = {}
        seen: list[tuple[str, str]] = []
        with anyio.fail_after(10):
            async with k8s.watch("configmaps") as watch:
                async for ev in watch:
                    name = ev.object["metadata"]["name"]
                    seen.append((ev.type, name))
                    if ev.type == "DELETED":
                        del view[name]
                    else:
                        view[name] = ev.resource_version
                    if ev.resource_version == "10":
                        break
    assert seen == [
        ("ADDED", "a"),
        ("ADDED", "b"),
        ("ADDED", "c"),
        ("MODIFIED", "c"),
        ("ADDED", "d"),
        ("DELETED", "b"),
        ("MODIFIED", "a"),
    ]
    assert view == {"a": "10", "c": "8", "d": "9"}
    # Both connections started from scratch: the initial events were not over.
    assert ["resourceVersion" in r for r in server.requests] == [False, False]
    assert watch.resource_version == "10"


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param([event("BOOKMARK", 7), END], id="one-bookmark-then-end"),
        pytest.param([b"\n", END], id="blank-line-then-end"),
        pytest.param([b"{", DROP], id="one-byte-then-drop"),
        pytest.param([END], id="nothing-then-end"),
    ],
)
async def test_a_server_that_ends_watches_at_once_gets_few_requests(
    anyio_backend: str, answer: list[Step]
) -> None:
    """A stream ended soon after it opened is a failure: a handful of requests in 3 s, not 1000s."""

    def script(params: dict[str, str]) -> tuple[int, list[Step]]:
        return 200, answer

    reconnects: list[WatchReconnectEvent] = []

    def on_event(e: object) -> None:
        if isinstance(e, WatchReconnectEvent):
            reconnects.append(e)

    async with scripted_server(script) as server:
        async with client(server.url, anyio_backend, on_event=on_event) as k8s:
            watch = k8s.watch("configmaps", resource_version="5", max_failures=math.inf)
            async with watch:
                with anyio.move_on_after(3.0):
                    async for _ in watch:
                        pass
        count = len(server.requests)
    assert 2 <= count <= 6, count
    assert all(e.reason in ("stream ended early", "connection dropped") for e in reconnects)
    assert [e.attempt for e in reconnects] == list(range(1, len(reconnects) + 1))
    assert all(e.delay >= 0.9 for e in reconnects)


@pytest.mark.slow
async def test_an_informer_outlives_an_api_server_restart(anyio_backend: str) -> None:
    """Default informer: the server is away for longer than the old give-up; it resumes after."""
    reconnects: list[WatchReconnectEvent] = []

    def on_event(e: object) -> None:
        if isinstance(e, WatchReconnectEvent):
            reconnects.append(e)

    sandbox = Sandbox()
    sandbox.start()
    try:
        async with client(sandbox.proxy_url, anyio_backend, on_event=on_event) as k8s:
            ns = await new_namespace(k8s)
            await k8s.create("configmaps", {"metadata": {"name": "before"}}, namespace=ns)
            changes: list[asyncpod.Change] = []
            async with k8s.informer("configmaps", namespace=ns) as informer:

                async def consume() -> None:
                    async for change in informer:
                        changes.append(change)

                async with anyio.create_task_group() as tg:
                    tg.start_soon(consume)
                    await _wait_for(lambda: any(c.type == "SYNCED" for c in changes))
                    await anyio.to_thread.run_sync(sandbox.stop)
                    # The client's retries (5) once bounded reconnects in a row:
                    # outlive them by two.
                    await _wait_for(lambda: len(reconnects) >= 7, within=60)
                    meta = {"name": "meanwhile", "namespace": ns}
                    sandbox.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta})
                    await anyio.to_thread.run_sync(sandbox.start)
                    await _wait_for(lambda: f"{ns}/meanwhile" in informer.cache, within=60)
                    tg.cancel_scope.cancel()
            mine = [c.key for c in changes if c.type == "ADDED" and "-ca." not in c.key]
            assert mine == [f"{ns}/before", f"{ns}/meanwhile"]
            assert informer.relists == 0
            assert max(e.delay for e in reconnects) <= 30.0
            assert [e.attempt for e in reconnects[:7]] == list(range(1, 8))
            assert {e.reason for e in reconnects} <= {
                "connection dropped",
                "connect failed",
                "stream ended early",
            }
    finally:
        sandbox.close()


def _hang_after_one(params: dict[str, str]) -> tuple[int, list[Step]]:
    return 200, [event("ADDED", 6, "a")]  # then the connection stays open, silent


def _unavailable(params: dict[str, str]) -> tuple[int, list[Step]]:
    return 503, [b'{"kind":"Status","code":503}', END]


@pytest.mark.parametrize(
    ("script", "waiting"),
    [(_hang_after_one, "receiving"), (_unavailable, "backing off")],
    ids=["receiving", "backing-off"],
)
async def test_closing_a_watch_from_another_task_ends_the_iteration(
    anyio_backend: str, script: Any, waiting: str
) -> None:
    """aclose() from another task ends an iteration waiting for data or for its backoff."""
    async with scripted_server(script) as server, client(server.url, anyio_backend) as k8s:
        watch = k8s.watch("configmaps", resource_version="5", max_failures=math.inf)
        got: list[WatchEvent] = []
        finished = anyio.Event()

        async def consume() -> None:
            async for ev in watch:
                got.append(ev)
            finished.set()

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(consume)
                if waiting == "receiving":
                    await _wait_for(lambda: bool(got))
                else:
                    await _wait_for(lambda: len(server.requests) >= 2)
                await anyio.sleep(0.2)
                await watch.aclose()
                with anyio.fail_after(2):
                    await finished.wait()
        requests = len(server.requests)
        await anyio.sleep(0.5)
        assert len(server.requests) == requests  # no reconnect after closing


async def test_closing_an_informer_from_another_task_ends_the_iteration(
    sandbox: Any, anyio_backend: str
) -> None:
    """informer.aclose() from another task ends its consumer; the watch is released."""
    async with client(sandbox.proxy_url, anyio_backend) as k8s:
        ns = await new_namespace(k8s)
        informer = k8s.informer("configmaps", namespace=ns)
        changes: list[asyncpod.Change] = []
        finished = anyio.Event()

        async def consume() -> None:
            async for change in informer:
                changes.append(change)
            finished.set()

        before = sandbox.open_watches
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(consume)
                await _wait_for(lambda: sandbox.open_watches > before)
                await informer.aclose()
                with anyio.fail_after(2):
                    await finished.wait()
        assert changes[-1].type == "SYNCED"
        await _wait_for(lambda: sandbox.open_watches <= before)


async def test_closing_the_client_under_an_open_watch_raises_in_the_iterating_task(
    anyio_backend: str,
) -> None:
    """Closing the client makes the task iterating a watch raise AsyncpodError, at once."""
    async with scripted_server(_hang_after_one) as server:
        async with client(server.url, anyio_backend) as k8s:
            watch = k8s.watch("configmaps", resource_version="5")
            errors: list[BaseException] = []

            async def consume() -> None:
                try:
                    async for _ in watch:
                        pass
                except AsyncpodError as exc:
                    errors.append(exc)

            with anyio.fail_after(10):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(consume)
                    await _wait_for(lambda: len(server.requests) == 1)
                    await anyio.sleep(0.2)
                    await k8s.aclose()
        assert len(errors) == 1
        assert "the client is closed" in str(errors[0])
        assert len(server.requests) == 1
