"""The resuming watch, against a server that cuts streams where the test says."""

from __future__ import annotations

import anyio
import pytest

from asyncpod import GoneError, NotFoundError, WatchEvent
from tests.helpers.clients import make_client
from tests.servers.scripted import DROP, END, Step, event, gone_event, scripted_server

pytestmark = pytest.mark.anyio

BASE = 1000


def _names(events: list[WatchEvent]) -> list[str]:
    return [e.object["metadata"].get("name", "") for e in events]


async def test_resumes_after_drops_without_duplicates(anyio_backend: str) -> None:
    """300 events over six connections, five dropped mid-event: each event once, in order."""
    cuts = [BASE + c for c in (17, 60, 61, 150, 299)]  # last event before each drop

    def script(params: dict[str, str]) -> tuple[int, list[Step]]:
        start = int(params["resourceVersion"]) + 1
        stop = next((c for c in cuts if c >= start), BASE + 300)
        steps: list[Step] = [event("ADDED", rv, f"cm-{rv}") for rv in range(start, stop + 1)]
        if stop < BASE + 300:
            # Half of the next event, then the connection drops: the half never surfaces.
            steps += [event("ADDED", stop + 1, f"cm-{stop + 1}")[:25], DROP]
        return 200, steps

    async with scripted_server(script) as server, make_client(server.url) as k8s:
        events: list[WatchEvent] = []
        with anyio.fail_after(20):
            async with k8s.watch("configmaps", resource_version=str(BASE)) as watch:
                async for ev in watch:
                    events.append(ev)
                    if len(events) == 300:
                        break
        assert watch.resource_version == str(BASE + 300)
    assert _names(events) == [f"cm-{rv}" for rv in range(BASE + 1, BASE + 301)]
    resumed_from = [int(r["resourceVersion"]) - BASE for r in server.requests]
    assert resumed_from == [0, 17, 60, 61, 150, 299]
    assert all(r["allowWatchBookmarks"] == "true" for r in server.requests)
    assert all(r["watch"] == "true" for r in server.requests)
    assert all(300 <= int(r["timeoutSeconds"]) <= 600 for r in server.requests)
    assert len({r["timeoutSeconds"] for r in server.requests}) > 1


async def test_bookmarks_advance_the_resume_point_and_stay_hidden(anyio_backend: str) -> None:
    """A bookmark moves the resume point; it is yielded only with bookmarks=True."""

    def script(params: dict[str, str]) -> tuple[int, list[Step]]:
        if params["resourceVersion"] == "5":
            return 200, [event("ADDED", 6, "a"), event("BOOKMARK", 50), DROP]
        return 200, [event("MODIFIED", 51, "a"), END]

    for bookmarks in (False, True):
        async with scripted_server(script) as server, make_client(server.url) as k8s:
            with anyio.fail_after(10):
                async with k8s.watch("cm", resource_version="5", bookmarks=bookmarks) as watch:
                    got = []
                    async for ev in watch:
                        got.append(ev.type)
                        if ev.type == "MODIFIED":
                            break
            assert [r["resourceVersion"] for r in server.requests] == ["5", "50"]
            expected = ["ADDED", "BOOKMARK", "MODIFIED"] if bookmarks else ["ADDED", "MODIFIED"]
            assert got == expected


async def test_error_event_410_raises_gone(anyio_backend: str) -> None:
    """An ERROR event with code 410 inside a 200 stream raises GoneError."""

    def script(params: dict[str, str]) -> tuple[int, list[Step]]:
        return 200, [event("ADDED", 3, "a"), gone_event(), END]

    async with scripted_server(script) as server, make_client(server.url) as k8s:
        got: list[str] = []

        async def consume() -> None:
            async for ev in k8s.watch("configmaps", resource_version="2"):
                got.append(ev.type)

        with anyio.fail_after(10), pytest.raises(GoneError) as info:
            await consume()
    assert got == ["ADDED"]
    assert info.value.reason == "Expired"
    assert len(server.requests) == 1


async def test_http_410_raises_gone_and_404_is_not_retried(anyio_backend: str) -> None:
    """An HTTP 410 answer raises GoneError at once; other client errors are not retried."""
    status = {"kind": "Status", "status": "Failure", "reason": "Expired", "code": 410}

    def gone(params: dict[str, str]) -> tuple[int, list[Step]]:
        return 410, [str(status).encode(), END]

    async with scripted_server(gone) as server, make_client(server.url) as k8s:
        with anyio.fail_after(10), pytest.raises(GoneError):
            async for _ in k8s.watch("configmaps", resource_version="2"):
                pass
    assert len(server.requests) == 1

    def missing(params: dict[str, str]) -> tuple[int, list[Step]]:
        return 404, [b"not found", END]

    async with scripted_server(missing) as server, make_client(server.url) as k8s:
        with anyio.fail_after(10), pytest.raises(NotFoundError):
            async for _ in k8s.watch("configmaps"):
                pass
    assert len(server.requests) == 1


async def test_silent_connection_is_replaced(anyio_backend: str) -> None:
    """No byte for inactivity_timeout: the watch reconnects from the last version."""

    def script(params: dict[str, str]) -> tuple[int, list[Step]]:
        if params["resourceVersion"] == "1":
            return 200, [event("ADDED", 2, "a")]  # then silence
        return 200, [event("ADDED", 3, "b"), END]

    async with scripted_server(script) as server, make_client(server.url) as k8s:
        with anyio.fail_after(10):
            watch = k8s.watch("configmaps", resource_version="1", inactivity_timeout=0.3)
            async with watch:
                names = [(await watch.__anext__()).object["metadata"]["name"] for _ in range(2)]
    assert names == ["a", "b"]
    assert [r["resourceVersion"] for r in server.requests] == ["1", "2"]


async def test_server_timeout_resumes_at_once(anyio_backend: str) -> None:
    """A stream the server ends cleanly is resumed from the last version."""

    def script(params: dict[str, str]) -> tuple[int, list[Step]]:
        rv = int(params["resourceVersion"])
        return 200, [event("MODIFIED", rv + 1, f"v{rv + 1}"), END]

    async with scripted_server(script) as server, make_client(server.url) as k8s:
        with anyio.fail_after(10):
            got = []
            async for ev in k8s.watch("configmaps", resource_version="10"):
                got.append(ev.object["metadata"]["name"])
                if len(got) == 4:
                    break
    assert got == ["v11", "v12", "v13", "v14"]


async def test_timeout_seconds_ends_quietly(anyio_backend: str) -> None:
    """timeout_seconds ends the iteration without an error, even on a silent stream."""

    def script(params: dict[str, str]) -> tuple[int, list[Step]]:
        return 200, [event("ADDED", 2, "a")]

    async with scripted_server(script) as server, make_client(server.url) as k8s:
        with anyio.fail_after(10):
            start = anyio.current_time()
            got = [
                ev.type async for ev in k8s.watch("cm", resource_version="1", timeout_seconds=0.5)
            ]
            elapsed = anyio.current_time() - start
    assert got == ["ADDED"]
    assert 0.4 < elapsed < 8
    assert int(server.requests[0]["timeoutSeconds"]) == 1


async def test_initial_events_are_not_repeated_after_a_drop(anyio_backend: str) -> None:
    """A drop before initial-events-end restarts the listing without repeating objects."""
    end = event("BOOKMARK", 40, annotations={"k8s.io/initial-events-end": "true"})

    def script(params: dict[str, str]) -> tuple[int, list[Step]]:
        if "resourceVersion" not in params:
            if len(server.requests) == 1:
                return 200, [event("ADDED", 7, "a"), event("ADDED", 3, "b"), DROP]
            return 200, [
                event("ADDED", 7, "a"),
                event("ADDED", 3, "b"),
                event("ADDED", 9, "c"),
                end,
                END,
            ]
        return 200, [event("DELETED", 41, "a"), END]

    async with scripted_server(script) as server, make_client(server.url) as k8s:
        with anyio.fail_after(10):
            got = []
            async for ev in k8s.watch("configmaps", bookmarks=True):
                got.append((ev.type, ev.object["metadata"].get("name", "")))
                if ev.type == "DELETED":
                    break
    assert got == [
        ("ADDED", "a"),
        ("ADDED", "b"),
        ("ADDED", "c"),
        ("BOOKMARK", ""),
        ("DELETED", "a"),
    ]
    assert [r.get("resourceVersion") for r in server.requests] == [None, None, "40"]


async def test_server_errors_are_retried_with_backoff(anyio_backend: str) -> None:
    """A 503 before the stream starts is retried; the watch then goes on."""

    def script(params: dict[str, str]) -> tuple[int, list[Step]]:
        if len(server.requests) <= 2:
            return 503, [b'{"kind":"Status","code":503,"reason":"ServiceUnavailable"}', END]
        return 200, [event("ADDED", 2, "a"), END]

    async with scripted_server(script) as server, make_client(server.url) as k8s:
        with anyio.fail_after(10):
            async for ev in k8s.watch("configmaps", resource_version="1"):
                assert ev.object["metadata"]["name"] == "a"
                break
    assert len(server.requests) == 3


async def test_empty_streams_back_off(anyio_backend: str) -> None:
    """Streams that end at once without a byte are retried with growing delays, not in a spin."""

    def script(params: dict[str, str]) -> tuple[int, list[Step]]:
        if len(server.requests) <= 4:
            return 200, [END]
        return 200, [event("ADDED", 2, "a"), END]

    async with scripted_server(script) as server, make_client(server.url) as k8s:
        with anyio.fail_after(10):
            start = anyio.current_time()
            async with k8s.watch("configmaps", resource_version="1") as watch:
                event_ = await watch.__anext__()
            elapsed = anyio.current_time() - start
    assert event_.object["metadata"]["name"] == "a"
    assert len(server.requests) == 5
    # Four backoffs of at least 0.05, 0.1, 0.2 and 0.4 s.
    assert elapsed >= 0.7


async def test_error_event_500_reconnects(anyio_backend: str) -> None:
    """An ERROR event with a 5xx code is transient: the watch resumes from the last version."""
    failure = b'{"type":"ERROR","object":{"kind":"Status","code":500,"reason":"InternalError"}}\n'

    def script(params: dict[str, str]) -> tuple[int, list[Step]]:
        if len(server.requests) == 1:
            return 200, [event("ADDED", 2, "a"), failure, END]
        return 200, [event("ADDED", 3, "b"), END]

    async with scripted_server(script) as server, make_client(server.url) as k8s:
        with anyio.fail_after(10):
            async with k8s.watch("configmaps", resource_version="1") as watch:
                names = [(await watch.__anext__()).object["metadata"]["name"] for _ in range(2)]
    assert names == ["a", "b"]
    assert [r["resourceVersion"] for r in server.requests] == ["1", "2"]
