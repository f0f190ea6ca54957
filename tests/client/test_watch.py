"""Watches, lists and informers end to end against the embedded sandbox."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qs

import anyio
import pytest

import asyncpod
from asyncpod import GoneError, WatchEvent
from tests.helpers.clients import make_client, new_namespace

pytestmark = pytest.mark.anyio


@pytest.fixture
async def k8s(sandbox: Any, anyio_backend: str) -> AsyncIterator[asyncpod.Client]:
    """A client of the sandbox through its proxy listener."""
    async with make_client(sandbox.proxy_url) as k8s:
        yield k8s


def _cm(name: str, **data: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "data": data}


async def _list_version(k8s: asyncpod.Client, ns: str) -> str:
    items = k8s.list("configmaps", namespace=ns)
    async for _ in items:
        pass
    assert items.resource_version is not None
    return items.resource_version


async def _eventually(predicate: Callable[[], bool]) -> None:
    """Wait (without blocking this event loop) until ``predicate()`` holds."""
    with anyio.fail_after(5):
        while not predicate():  # noqa: ASYNC110 - the sandbox runs in another thread
            await anyio.sleep(0.02)


def _watch_versions(sandbox: Any, ns: str) -> list[str | None]:
    """The resourceVersion each watch request of ``ns``'s configmaps resumed from."""
    versions: list[str | None] = []
    for record in sandbox.requests.filter("GET", f"/api/v1/namespaces/{ns}/configmaps"):
        query = parse_qs(record.query)
        if query.get("watch") == ["true"]:
            versions.append(query.get("resourceVersion", [None])[0])
    return versions


async def test_300_objects_across_five_drops_arrive_once_in_order(
    k8s: asyncpod.Client, sandbox: Any
) -> None:
    """300 creations while the watch connection drops 5 times: every event once, in order."""
    ns = await new_namespace(k8s)
    start = await _list_version(k8s, ns)
    sandbox.faults.add("watch_drop", count=5, after=40, path=f"/namespaces/{ns}/configmaps")
    events: list[WatchEvent] = []

    async def create_all() -> None:
        for i in range(300):
            await k8s.create("configmaps", _cm(f"cm-{i:03d}"), namespace=ns)

    with anyio.fail_after(30):
        async with (
            anyio.create_task_group() as tg,
            k8s.watch("configmaps", namespace=ns, resource_version=start) as watch,
        ):
            tg.start_soon(create_all)
            async for event in watch:
                events.append(event)
                if len(events) == 300:
                    break
    assert [e.type for e in events] == ["ADDED"] * 300
    assert [e.object["metadata"]["name"] for e in events] == [f"cm-{i:03d}" for i in range(300)]
    versions = [int(e.object["metadata"]["resourceVersion"]) for e in events]
    assert versions == sorted(set(versions))
    assert watch.reconnects >= 5
    await _eventually(lambda: len(_watch_versions(sandbox, ns)) == 6)
    resumed = _watch_versions(sandbox, ns)
    assert len(resumed) == 6
    assert resumed[0] == start
    assert [int(v or 0) for v in resumed] == sorted(int(v or 0) for v in resumed)


async def test_bookmarks_advance_the_resume_point(k8s: asyncpod.Client, sandbox: Any) -> None:
    """After a bookmark, a dropped watch resumes from the bookmark's version."""
    sandbox.bookmark_interval = 0.1
    ns, other = await new_namespace(k8s), await new_namespace(k8s)
    start = await _list_version(k8s, ns)
    sandbox.faults.add("watch_drop", after=1, path=f"/namespaces/{ns}/configmaps")
    seen: list[tuple[str, str]] = []
    with anyio.fail_after(15):
        async with k8s.watch(
            "configmaps", namespace=ns, resource_version=start, bookmarks=True
        ) as watch:
            await k8s.create("configmaps", _cm("first"), namespace=ns)
            bookmark = ""
            async for event in watch:
                seen.append((event.type, event.object["metadata"].get("name", "")))
                if event.type == "ADDED" and event.object["metadata"]["name"] == "first":
                    # Move the cluster on elsewhere: the bookmarks follow.
                    await k8s.create("configmaps", _cm("elsewhere"), namespace=other)
                elif event.type == "BOOKMARK" and not bookmark and ("ADDED", "first") in seen:
                    rv = event.resource_version or ""
                    if int(rv) > int(start):
                        bookmark = rv
                        assert watch.resource_version == bookmark
                        # This event makes the server drop the connection.
                        await k8s.create("configmaps", _cm("second"), namespace=ns)
                elif event.type == "ADDED" and event.object["metadata"]["name"] == "second":
                    break
    names = [name for kind, name in seen if kind == "ADDED"]
    assert names == ["first", "second"]
    # A watch request is logged when it ends.
    await _eventually(lambda: len(_watch_versions(sandbox, ns)) == 2)
    assert _watch_versions(sandbox, ns) == [start, bookmark]


async def test_bookmarks_are_hidden_by_default(k8s: asyncpod.Client, sandbox: Any) -> None:
    """Without bookmarks=True only object events are yielded, yet the version advances."""
    sandbox.bookmark_interval = 0.05
    ns = await new_namespace(k8s)
    start = await _list_version(k8s, ns)
    await k8s.create("configmaps", _cm("elsewhere"), namespace=await new_namespace(k8s))
    got: list[str] = []
    async with k8s.watch(
        "configmaps", namespace=ns, resource_version=start, timeout_seconds=0.6
    ) as watch:
        got = [event.type async for event in watch]
    assert got == []
    assert watch.resource_version is not None
    assert int(watch.resource_version) > int(start)


async def test_watch_from_a_compacted_version_raises_gone(
    k8s: asyncpod.Client, sandbox: Any
) -> None:
    """A resourceVersion older than the compacted history raises GoneError."""
    ns = await new_namespace(k8s)
    start = await _list_version(k8s, ns)
    await k8s.create("configmaps", _cm("a"), namespace=ns)
    sandbox.compact()

    async def consume() -> None:
        async with k8s.watch("configmaps", namespace=ns, resource_version=start) as watch:
            async for _ in watch:
                pass

    with anyio.fail_after(10), pytest.raises(GoneError) as info:
        await consume()
    assert info.value.status == 410


async def test_watch_without_version_sends_initial_events_then_the_end_bookmark(
    k8s: asyncpod.Client,
) -> None:
    """No resourceVersion: ADDED for each object, then the initial-events-end bookmark."""
    ns = await new_namespace(k8s)
    for name in ("a", "b"):
        await k8s.create("configmaps", _cm(name), namespace=ns)
    got: list[WatchEvent] = []
    with anyio.fail_after(10):
        async with k8s.watch("configmaps", namespace=ns, bookmarks=True) as watch:
            async for event in watch:
                got.append(event)
                if event.is_initial_events_end:
                    break
    names = sorted(e.object["metadata"]["name"] for e in got if e.type == "ADDED")
    assert names == ["a", "b", "kube-root-ca.crt"]
    assert got[-1].type == "BOOKMARK"
    assert watch.resource_version == got[-1].resource_version


async def test_expired_continue_token_falls_back_to_a_full_list(
    k8s: asyncpod.Client, sandbox: Any
) -> None:
    """A continue token that expires mid-list: the rest comes from a full list, none twice."""
    ns = await new_namespace(k8s)
    for i in range(9):
        await k8s.create("configmaps", _cm(f"cm-{i}"), namespace=ns)
    items = k8s.list("configmaps", namespace=ns, chunk_size=4)
    names = [(await items.__anext__())["metadata"]["name"] for _ in range(4)]
    first_version = items.resource_version
    await k8s.create("configmaps", _cm("late"), namespace=ns)
    sandbox.compact()
    names += [item["metadata"]["name"] async for item in items]
    assert items.restarted
    assert sorted(names) == sorted(["kube-root-ca.crt", "late", *(f"cm-{i}" for i in range(9))])
    assert len(names) == len(set(names))
    assert items.resource_version != first_version


async def test_informer_cache_equals_the_server_after_a_forced_410(
    k8s: asyncpod.Client, sandbox: Any
) -> None:
    """Changes missed during a 410 are reported on re-list; the cache equals the server."""
    ns = await new_namespace(k8s)
    for name in ("a", "b", "c"):
        await k8s.create("configmaps", _cm(name, v="1"), namespace=ns)
    changes = []
    with anyio.fail_after(20):
        async with k8s.informer("configmaps", namespace=ns) as informer:
            async for change in informer:
                changes.append((change.type, change.key))
                if change.type == "SYNCED":
                    break
            assert sorted(changes[:-1]) == [
                ("ADDED", f"{ns}/{n}") for n in ("a", "b", "c", "kube-root-ca.crt")
            ]
            # While the informer is not reading, change things and forget history.
            await k8s.delete("configmaps", "a", namespace=ns)
            await k8s.patch("configmaps", "b", {"data": {"v": "2"}}, namespace=ns)
            await k8s.create("configmaps", _cm("d"), namespace=ns)
            sandbox.compact()
            after = set()
            async for change in informer:
                after.add((change.type, change.key))
                if len(after) == 3:
                    break
            assert after == {("DELETED", f"{ns}/a"), ("MODIFIED", f"{ns}/b"), ("ADDED", f"{ns}/d")}
            assert informer.relists == 1
            # And the watch goes on after the re-list.
            await k8s.create("configmaps", _cm("e"), namespace=ns)
            async for change in informer:
                if change.key == f"{ns}/e":
                    break
            server = {
                f"{o['metadata']['namespace']}/{o['metadata']['name']}": o
                for o in sandbox.objects("configmaps", namespace=ns)
            }
            assert informer.cache.keys() == server.keys()
            for key, obj in server.items():
                assert (
                    informer.cache[key]["metadata"]["resourceVersion"]
                    == obj["metadata"]["resourceVersion"]
                )
            assert informer.get("b", ns)["data"] == {"v": "2"}  # type: ignore[index]


async def test_pod_logs_tail_and_follow(k8s: asyncpod.Client, sandbox: Any) -> None:
    """logs() yields lines without newlines; tail_lines limits; follow sees new lines."""
    pod = {
        "metadata": {"name": "web-0"},
        "spec": {"containers": [{"name": "web", "image": "nginx"}]},
    }
    await k8s.create("pods", pod, namespace="default")
    sandbox.append_log("web-0", ["one", "two", "three"])
    assert [line async for line in k8s.logs("web-0")] == ["one", "two", "three"]
    assert [line async for line in k8s.logs("web-0", tail_lines=1, container="web")] == ["three"]
    with anyio.fail_after(10):
        async with k8s.logs("web-0", follow=True, tail_lines=1) as lines:
            assert await lines.__anext__() == "three"
            sandbox.append_log("web-0", ["four"])
            assert await lines.__anext__() == "four"
