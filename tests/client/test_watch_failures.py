"""Watches that cannot go on: a dead server, a broken stream."""

from __future__ import annotations

import anyio
import pytest

import asyncpod
from asyncpod import Event, RequestEvent, RetryEvent, WatchEvent, WatchReconnectEvent
from asyncpod.testing import Sandbox
from tests.helpers.clients import make_client
from tests.servers.scripted import END, Step, event, scripted_server

pytestmark = pytest.mark.anyio


async def drain(watch: asyncpod.Watch, into: list[WatchEvent]) -> None:
    """Collect the events of ``watch`` until it ends."""
    async with watch:
        async for ev in watch:
            into.append(ev)


@pytest.mark.slow
@pytest.mark.parametrize("retries", [5, 2])
async def test_watch_of_a_stopped_server_gives_up_after_retries(
    anyio_backend: str, retries: int
) -> None:
    """A stopped server: 1 + retries attempts in all, then a TransportError naming the watch."""
    events: list[Event] = []
    with Sandbox() as sb:
        async with make_client(sb.proxy_url, retries=retries, on_event=events.append) as k8s:
            await k8s.resource("configmaps")  # discovery is cached before the server stops
            await anyio.to_thread.run_sync(sb.stop)
            events.clear()
            began = anyio.current_time()
            with anyio.fail_after(20), pytest.raises(asyncpod.TransportError) as caught:
                async for _ in k8s.watch("configmaps"):
                    pass
            took = anyio.current_time() - began
    attempts = [e for e in events if isinstance(e, RequestEvent)]
    assert len(attempts) == 1 + retries
    assert {(e.method, e.path, e.status) for e in attempts} == {
        ("GET", "/api/v1/namespaces/default/configmaps", None)
    }
    # The watch's reconnects are the only retries: the client's do not multiply them.
    assert [e for e in events if isinstance(e, RetryEvent)] == []
    reconnects = [e for e in events if isinstance(e, WatchReconnectEvent)]
    assert [(e.reason, e.attempt) for e in reconnects] == [
        ("connect failed", n) for n in range(1, retries + 1)
    ]
    # Backoffs of at most 0.1, 0.2, 0.4, 0.8 and 1.6 s.
    # The margin is for a busy machine; uncapped backoffs would take far longer.
    assert took < 3.1 + 6.0
    message = str(caught.value)
    assert message.startswith(
        f"watch of /api/v1/namespaces/default/configmaps gave up after {1 + retries} attempts"
    )
    assert "could not connect" in message
    assert caught.value.sent is False


async def test_good_events_before_a_bad_line_are_delivered(anyio_backend: str) -> None:
    """Two events and a line that is not JSON in one chunk: both events, then ProtocolError."""
    broken = event("ADDED", 2, "a") + event("MODIFIED", 3, "a") + b"not json\n"

    def script(params: dict[str, str]) -> tuple[int, list[Step]]:
        return 200, [broken, event("ADDED", 4, "b"), END]

    got: list[WatchEvent] = []
    async with scripted_server(script) as server, make_client(server.url) as k8s:
        watch = k8s.watch("configmaps", resource_version="1")
        with anyio.fail_after(10), pytest.raises(asyncpod.ProtocolError, match="not JSON"):
            await drain(watch, got)
        assert watch.resource_version == "3"
    assert [(e.type, e.resource_version) for e in got] == [("ADDED", "2"), ("MODIFIED", "3")]
    assert len(server.requests) == 1  # a broken stream is not resumed
