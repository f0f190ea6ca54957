"""Watch semantics of the sandbox: order, bookmarks, resumption, 410, timeouts, drops."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import anyio
import pytest

from asyncpod.testing import Sandbox
from asyncpod.testing._watchserver import next_bookmark as _next_bookmark
from tests.sandbox_helpers import CM, configmap, proxy_client, raw_get

pytestmark = pytest.mark.anyio


async def _events(
    sb: Sandbox, params: dict[str, str], *, limit: int | None = None
) -> list[dict[str, Any]]:
    target = f"{CM}?{urlencode({'watch': 'true', **params})}"
    response = await raw_get(sb, target, max_events=limit)
    assert response.status == 200
    assert response.headers["transfer-encoding"] == "chunked"
    # One event per chunk, each ending in a newline.
    assert all(chunk.count(b"\n") == 1 and chunk.endswith(b"\n") for chunk in response.chunks)
    return response.events()


async def test_initial_events_then_annotated_bookmark(sandbox: Sandbox) -> None:
    """Without a resourceVersion: synthetic ADDED, then a bookmark marking their end."""
    sandbox.create(configmap("a"))
    sandbox.create(configmap("b"))
    events = await _events(sandbox, {"allowWatchBookmarks": "true"}, limit=4)
    assert [e["type"] for e in events] == ["ADDED", "ADDED", "ADDED", "BOOKMARK"]
    names = [e["object"]["metadata"]["name"] for e in events[:3]]
    assert names == ["a", "b", "kube-root-ca.crt"]
    bookmark = events[3]["object"]
    assert bookmark == {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {
            "resourceVersion": str(sandbox.resource_version),
            "annotations": {"k8s.io/initial-events-end": "true"},
        },
    }


async def test_events_arrive_in_order_one_per_line(sandbox: Sandbox) -> None:
    """ADDED, MODIFIED, DELETED arrive in commit order with growing resourceVersions."""
    start = str(sandbox.resource_version)
    async with proxy_client(sandbox) as client:
        await client.post(CM, json=configmap("w"))
        await client.patch(
            f"{CM}/w",
            content=b'{"data":{"k":"2"}}',
            headers={"Content-Type": "application/merge-patch+json"},
        )
        await client.delete(f"{CM}/w")
        events = await _events(sandbox, {"resourceVersion": start}, limit=3)
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert versions == sorted(versions)
    assert events[1]["object"]["data"] == {"k": "2"}


async def test_resume_from_resource_version_skips_older_events(sandbox: Sandbox) -> None:
    """A watch from version N sends only the changes after N."""
    async with proxy_client(sandbox) as client:
        first = (await client.post(CM, json=configmap("one"))).json()
        await client.post(CM, json=configmap("two"))
        rv = first["metadata"]["resourceVersion"]
        events = await _events(sandbox, {"resourceVersion": rv}, limit=1)
    assert events[0]["object"]["metadata"]["name"] == "two"


async def test_live_events_reach_an_open_watch(sandbox: Sandbox) -> None:
    """A change made while a watch is open is delivered to it."""
    rv = str(sandbox.resource_version)
    events: list[dict[str, Any]] = []
    async with anyio.create_task_group() as tg:

        async def watch() -> None:
            events.extend(await _events(sandbox, {"resourceVersion": rv}, limit=1))

        tg.start_soon(watch)
        await anyio.sleep(0.1)
        await anyio.to_thread.run_sync(lambda: sandbox.create(configmap("late")))
    assert events[0]["type"] == "ADDED"
    assert events[0]["object"]["metadata"]["name"] == "late"


async def test_too_old_resource_version_is_an_error_event(sandbox: Sandbox) -> None:
    """After compaction, resuming from before it gives a 200 stream with an ERROR 410."""
    rv = str(sandbox.resource_version)
    sandbox.create(configmap("x"))
    compacted = sandbox.compact()
    events = await _events(sandbox, {"resourceVersion": rv})
    assert events == [
        {
            "type": "ERROR",
            "object": {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": f"too old resource version: {rv} ({compacted})",
                "reason": "Expired",
                "code": 410,
            },
        }
    ]


async def test_retention_window_compacts_by_itself() -> None:
    """With a retention window, old events are forgotten without compact()."""
    with Sandbox(retention=0.05) as sb:
        rv = str(sb.resource_version)
        sb.create(configmap("x"))
        await anyio.sleep(0.1)
        sb.create(configmap("y"))
        events = await _events(sb, {"resourceVersion": rv})
    assert events[0]["type"] == "ERROR"
    assert events[0]["object"]["code"] == 410


async def test_periodic_bookmarks_and_clean_end(sandbox: Sandbox) -> None:
    """Bookmarks carry only kind, apiVersion and resourceVersion; timeoutSeconds ends cleanly."""
    sandbox.bookmark_interval = 0.2
    rv = str(sandbox.resource_version)
    with anyio.fail_after(5):
        events = await _events(
            sandbox,
            {"resourceVersion": rv, "allowWatchBookmarks": "true", "timeoutSeconds": "1"},
        )
    assert events
    assert {e["type"] for e in events} == {"BOOKMARK"}
    assert events[0]["object"] == {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": rv},
    }


async def test_bookmark_shortly_before_timeout(sandbox: Sandbox) -> None:
    """A bookmark comes bookmark_lead seconds before timeoutSeconds runs out, then the end."""
    sandbox.bookmark_lead = 0.5
    rv = str(sandbox.resource_version)
    params = {"watch": "1", "resourceVersion": rv, "allowWatchBookmarks": "true"}
    whole = await raw_get(sandbox, f"{CM}?{urlencode({**params, 'timeoutSeconds': '1'})}")
    assert whole.ended
    assert [e["type"] for e in whole.events()] == ["BOOKMARK"]
    bookmark_at, end_at = whole.times
    assert 0.4 < bookmark_at < 0.8
    assert 0.9 < end_at < 1.5


@pytest.mark.parametrize(
    ("timeout", "expected"),
    [
        # The real server's recorded timings (watch-configmaps-bookmarks*.http.timing).
        (3.0, []),
        (20.0, [18.0]),
        (130.0, [60.0, 120.0, 128.0]),
    ],
)
def test_bookmark_schedule_matches_the_reference(timeout: float, expected: list[float]) -> None:
    """Bookmarks every 60 s and 2 s before the end, as the recordings show."""
    due = _next_bookmark(0.0, 60.0, timeout, 2.0)
    times = []
    while due is not None:
        times.append(due)
        due = _next_bookmark(due, 60.0, timeout, 2.0)
    assert times == expected


async def test_selectors_filter_and_transitions(sandbox: Sandbox) -> None:
    """A label-selected watch sees an object leave the selection as DELETED."""
    rv = str(sandbox.resource_version)
    async with proxy_client(sandbox) as client:
        await client.post(CM, json=configmap("a", app="web"))
        await client.post(CM, json=configmap("b", app="db"))
        await client.patch(
            f"{CM}/a",
            content=b'{"metadata":{"labels":{"app":"other"}}}',
            headers={"Content-Type": "application/merge-patch+json"},
        )
        events = await _events(
            sandbox, {"resourceVersion": rv, "labelSelector": "app=web"}, limit=2
        )
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "a"),
        ("DELETED", "a"),
    ]


async def test_field_selector_watch_of_one_object(sandbox: Sandbox) -> None:
    """fieldSelector=metadata.name=X watches one object, as kubectl get -w does."""
    sandbox.create(configmap("a"))
    rv = str(sandbox.resource_version)
    sandbox.create(configmap("b"))
    events = await _events(sandbox, {"fieldSelector": "metadata.name=b"}, limit=1)
    sandbox.create(configmap("c"))
    events += await _events(
        sandbox, {"fieldSelector": "metadata.name=b", "resourceVersion": rv}, limit=1
    )
    assert [e["object"]["metadata"]["name"] for e in events] == ["b", "b"]


async def test_watch_drop_fault_cuts_the_stream(sandbox: Sandbox) -> None:
    """A watch_drop fault sends K events, then the connection breaks mid-stream."""
    for name in "abcd":
        sandbox.create(configmap(name))
    sandbox.faults.add("watch_drop", after=2)
    cut = await raw_get(sandbox, f"{CM}?watch=1")
    assert not cut.ended
    assert [e["object"]["metadata"]["name"] for e in cut.events()] == ["a", "b"]
    # The next watch is whole again.
    events = await _events(sandbox, {}, limit=5)
    assert len(events) == 5


async def test_stop_ends_open_watches(sandbox: Sandbox) -> None:
    """Stopping the sandbox ends open watches cleanly; a restart serves new ones."""
    results: list[Any] = []
    async with anyio.create_task_group() as tg:

        async def watch() -> None:
            results.append(await raw_get(sandbox, f"{CM}?watch=1"))

        tg.start_soon(watch)
        await anyio.sleep(0.2)
        await anyio.to_thread.run_sync(sandbox.stop)
    assert results[0].ended
    assert len(results[0].events()) == 1
    sandbox.start()
    async with proxy_client(sandbox) as client:
        assert (await client.get(CM)).status_code == 200


async def test_watch_over_unix_socket(sandbox: Sandbox) -> None:
    """The Unix listener streams watches like kubectl proxy --unix-socket."""
    response = await raw_get(
        sandbox, f"{CM}?watch=1&allowWatchBookmarks=true", max_events=2, unix=True
    )
    assert [e["type"] for e in response.events()] == ["ADDED", "BOOKMARK"]


async def test_initial_events_and_live_writes_neither_lost_nor_reordered(sandbox: Sandbox) -> None:
    """Writes racing a new watch land either before the initial-end bookmark or after it."""
    names = [f"race-{i:02d}" for i in range(40)]
    params = urlencode({"watch": "1", "allowWatchBookmarks": "true"})
    async with anyio.create_task_group() as tg:

        def write_all() -> None:
            for name in names:
                sandbox.create(configmap(name))

        tg.start_soon(anyio.to_thread.run_sync, write_all)
        response = await raw_get(sandbox, f"{CM}?{params}", max_events=len(names) + 2)
    events = response.events()
    marker = next(i for i, e in enumerate(events) if e["type"] == "BOOKMARK")
    end_rv = int(events[marker]["object"]["metadata"]["resourceVersion"])
    before = [int(e["object"]["metadata"]["resourceVersion"]) for e in events[:marker]]
    after = [int(e["object"]["metadata"]["resourceVersion"]) for e in events[marker + 1 :]]
    assert all(rv <= end_rv for rv in before)
    assert all(rv > end_rv for rv in after)
    seen = [e["object"]["metadata"]["name"] for e in events if e["type"] == "ADDED"]
    assert sorted(n for n in seen if n.startswith("race-")) == names
