"""The controller: converging objects, owned and mapped triggers, retries, requeues, shutdown."""

from __future__ import annotations

import itertools
from typing import Any

import anyio
import pytest

import asyncpod
from asyncpod import Controller, ReconcileEvent, Requeue
from asyncpod._controller import owner_keys
from asyncpod.testing import Sandbox

pytestmark = pytest.mark.anyio

N = 500
DEPLOYMENTS = asyncpod.Resource("apps", "v1", "deployments", "Deployment", True)


def test_owner_keys_follow_the_controller_reference_only() -> None:
    """Only the controlling owner of the primary kind and group is triggered."""
    obj = {
        "metadata": {
            "name": "web-abc",
            "namespace": "apps",
            "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "controller": True},
                {"apiVersion": "apps/v1", "kind": "Deployment", "name": "other"},
                {"apiVersion": "v1", "kind": "Deployment", "name": "core", "controller": True},
            ],
        }
    }
    assert owner_keys(obj, DEPLOYMENTS) == ["apps/web"]
    assert owner_keys({"metadata": {"name": "x"}}, DEPLOYMENTS) == []


def _configmap(name: str, **data: str) -> dict[str, Any]:
    metadata = {"name": name, "labels": {"test": "controller"}}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}


# The namespace also holds kube-root-ca.crt, as on a real server: the tests select their own.
MINE = "test=controller"


@pytest.mark.slow
async def test_converges_500_objects_with_concurrency_8(
    sandbox: Sandbox, anyio_backend: str
) -> None:
    """500 ConfigMaps each reconciled to done, never one key by two workers at once."""
    for i in range(N):
        sandbox.create(_configmap(f"cm-{i}"), namespace="default")
    active: set[str] = set()
    overlap: list[str] = []
    done = anyio.Event()
    events: list[ReconcileEvent] = []

    async def reconcile(obj: dict[str, Any]) -> None:
        key = f"default/{obj['metadata']['name']}"
        if key in active:
            overlap.append(key)
        active.add(key)
        try:
            if obj["data"].get("done") != "yes":
                patch = {"data": {"done": "yes"}}
                await k8s.patch("configmaps", obj["metadata"]["name"], patch)
        finally:
            active.discard(key)
        cached = controller.cache.values()
        if len(cached) == N and all(cm["data"].get("done") == "yes" for cm in cached):
            done.set()

    def record(event: object) -> None:
        if isinstance(event, ReconcileEvent):
            events.append(event)

    config = asyncpod.Config.proxy(sandbox.proxy_url)
    async with asyncpod.Client(config, on_event=record) as k8s:
        controller = Controller(
            k8s, "configmaps", reconcile, label_selector=MINE, max_concurrent_reconciles=8
        )
        async with anyio.create_task_group() as tg:
            tg.start_soon(controller.run)
            with anyio.fail_after(90):
                await done.wait()
            await controller.shutdown()
    assert overlap == []
    stored = sandbox.objects("configmaps", namespace="default")
    assert sum(1 for cm in stored if (cm.get("data") or {}).get("done") == "yes") == N
    patches = sandbox.requests.filter("PATCH", r".*/configmaps/.*")
    assert len(patches) == N  # each object patched once: the second reconcile saw it done
    assert {e.controller for e in events} == {"configmaps"}
    assert all(e.error is None for e in events)


async def test_a_failing_reconcile_is_retried_with_backoff(
    sandbox: Sandbox, anyio_backend: str
) -> None:
    """An exception is retried for the key (backoff growing) until it succeeds; then forgotten."""
    sandbox.create(_configmap("flaky"), namespace="default")
    attempts: list[float] = []
    succeeded = anyio.Event()

    async def reconcile(obj: dict[str, Any]) -> None:
        attempts.append(anyio.current_time())
        if len(attempts) < 4:
            raise RuntimeError("not yet")
        succeeded.set()

    config = asyncpod.Config.proxy(sandbox.proxy_url)
    async with asyncpod.Client(config) as k8s:
        queue: asyncpod.WorkQueue[str] = asyncpod.WorkQueue(backoff_base=0.05)
        controller = Controller(k8s, "configmaps", reconcile, queue=queue, label_selector=MINE)
        async with anyio.create_task_group() as tg:
            tg.start_soon(controller.run)
            with anyio.fail_after(30):
                await succeeded.wait()
            await controller.shutdown()
        assert queue.num_requeues("default/flaky") == 0  # forgotten after success
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert gaps[0] >= 0.05
    assert gaps[1] >= 0.1
    assert gaps[2] >= 0.2


async def test_requeue_after_and_owned_and_mapped_triggers(
    sandbox: Sandbox, anyio_backend: str
) -> None:
    """Requeue(after) runs again later; an owned object and a mapped one trigger their owner."""
    owner = sandbox.create(_configmap("owner"), namespace="default")
    seen: list[str] = []
    reached = {n: anyio.Event() for n in (2, 3, 4)}

    async def reconcile(obj: dict[str, Any]) -> Requeue | None:
        seen.append(obj["metadata"]["name"])
        count = seen.count("owner")
        if count in reached:
            reached[count].set()
        return Requeue(after=0.2) if count == 1 else None

    def mapper(secret: dict[str, Any]) -> list[str]:
        target = (secret["metadata"].get("labels") or {}).get("for")
        return [f"default/{target}"] if target else []

    config = asyncpod.Config.proxy(sandbox.proxy_url)
    async with asyncpod.Client(config) as k8s:
        controller = Controller(
            k8s,
            "configmaps",
            reconcile,
            label_selector=f"{MINE},!child",
            owns=["configmaps"],
            watches=[("secrets", mapper)],
        )
        async with anyio.create_task_group() as tg:
            tg.start_soon(controller.run)
            await controller.wait_synced()
            with anyio.fail_after(10):
                await reached[2].wait()  # the initial one, then the requeue
            child = _configmap("child")
            child["metadata"]["labels"]["child"] = "yes"
            child["metadata"]["ownerReferences"] = [
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "name": "owner",
                    "uid": owner["metadata"]["uid"],
                    "controller": True,
                }
            ]
            await k8s.create("configmaps", child)
            with anyio.fail_after(10):
                await reached[3].wait()  # the owned child changed
            secret = {"metadata": {"name": "s", "labels": {"for": "owner"}}, "data": {}}
            await k8s.create("secrets", secret)
            with anyio.fail_after(10):
                await reached[4].wait()  # the mapped secret changed
            await controller.shutdown()
    assert "child" not in seen  # filtered out of the primary by the label selector


async def test_a_forbidden_primary_ends_run_with_the_error(
    sandbox: Sandbox, anyio_backend: str
) -> None:
    """An informer that fails for good ends run() with its own error, not an ExceptionGroup."""
    sandbox.faults.add("error", status=403, count=None, method="GET", path="/configmaps")

    async def reconcile(obj: dict[str, Any]) -> None:
        raise AssertionError("never called")

    config = asyncpod.Config.proxy(sandbox.proxy_url)
    async with asyncpod.Client(config) as k8s:
        with anyio.fail_after(30), pytest.raises(asyncpod.ForbiddenError):
            await Controller(k8s, "configmaps", reconcile).run()


async def test_shutdown_finishes_the_reconcile_in_flight(
    sandbox: Sandbox, anyio_backend: str
) -> None:
    """shutdown() lets a running reconcile finish, and run() returns after it."""
    sandbox.create(_configmap("slow"), namespace="default")
    started = anyio.Event()
    finished: list[str] = []

    async def reconcile(obj: dict[str, Any]) -> None:
        started.set()
        await anyio.sleep(0.3)
        finished.append(obj["metadata"]["name"])

    config = asyncpod.Config.proxy(sandbox.proxy_url)
    async with asyncpod.Client(config) as k8s:
        controller = Controller(k8s, "configmaps", reconcile, label_selector=MINE)
        async with anyio.create_task_group() as tg:
            tg.start_soon(controller.run)
            with anyio.fail_after(10):
                await started.wait()
            await controller.shutdown()
        assert finished == ["slow"]


async def test_finalizer_cleanup_runs_exactly_once(sandbox: Sandbox, anyio_backend: str) -> None:
    """Each object gets the finalizer, is applied, and on deletion cleaned up once, then goes."""
    names = [f"fin-{i}" for i in range(20)]
    for name in names:
        sandbox.create(_configmap(name), namespace="default")
    applied: set[str] = set()
    cleaned: list[str] = []
    all_applied = anyio.Event()
    all_cleaned = anyio.Event()

    config = asyncpod.Config.proxy(sandbox.proxy_url)
    async with asyncpod.Client(config) as k8s:
        finalizer = asyncpod.Finalizer(k8s, "configmaps", "example.com/cleanup")

        async def apply(obj: dict[str, Any]) -> None:
            assert "example.com/cleanup" in obj["metadata"]["finalizers"]
            applied.add(obj["metadata"]["name"])
            if len(applied) == len(names):
                all_applied.set()

        async def cleanup(obj: dict[str, Any]) -> None:
            cleaned.append(obj["metadata"]["name"])
            await anyio.sleep(0.01)
            if len(cleaned) >= len(names):
                all_cleaned.set()

        async def reconcile(obj: dict[str, Any]) -> None:
            await finalizer(obj, apply=apply, cleanup=cleanup)

        controller = Controller(
            k8s, "configmaps", reconcile, label_selector=MINE, max_concurrent_reconciles=4
        )
        async with anyio.create_task_group() as tg:
            tg.start_soon(controller.run)
            with anyio.fail_after(30):
                await all_applied.wait()
            for name in names:
                await k8s.delete("configmaps", name)
                await k8s.patch("configmaps", name, {"metadata": {"labels": {"touched": "1"}}})
            with anyio.fail_after(30):
                await all_cleaned.wait()
            for name in names:  # each goes once its finalizer is removed
                with anyio.fail_after(10):
                    while True:
                        try:
                            await k8s.get("configmaps", name)
                        except asyncpod.NotFoundError:
                            break
                        await anyio.sleep(0.02)
            await anyio.sleep(0.2)  # room for a (wrong) second cleanup to show
            await controller.shutdown()
    assert sorted(cleaned) == sorted(names)
