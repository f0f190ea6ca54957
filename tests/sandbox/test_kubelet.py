"""Pods that run on the sandbox's fake node, as kwok makes them: scheduled, Running, gone."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import asyncpod
from asyncpod.testing import Sandbox, SandboxError
from tests.helpers.sandbox import proxy_client

pytestmark = pytest.mark.anyio

PODS = "/api/v1/namespaces/default/pods"


def _pod(name: str, restart: str = "Always", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": restart,
            "containers": [{"name": "app", "image": "nginx:1.27"}],
            **spec,
        },
    }


def _phase(sandbox: Sandbox, name: str) -> str:
    return str(sandbox.get("pods", name)["status"].get("phase"))


def _gone(sandbox: Sandbox, name: str) -> bool:
    try:
        sandbox.get("pods", name)
    except SandboxError as err:
        return err.status == 404
    return False


async def test_a_pod_is_scheduled_then_runs(sandbox: Sandbox) -> None:
    """A watch sees the pod Pending, bound to the node, then Running and ready."""
    events = []
    async with asyncpod.Client(asyncpod.Config.proxy(sandbox.proxy_url)) as k8s:
        start = str(sandbox.resource_version)
        created = await k8s.create("pods", _pod("web"), namespace="default")
        with anyio.fail_after(10):
            async with k8s.watch("pods", namespace="default", resource_version=start) as watch:
                async for event in watch:
                    events.append(event)
                    if (event.object.get("status") or {}).get("phase") == "Running":
                        break
    assert created["status"]["phase"] == "Pending"
    added, bound, running = events
    assert (added.type, bound.type, running.type) == ("ADDED", "MODIFIED", "MODIFIED")
    assert bound.object["spec"]["nodeName"] == "sandbox-node"
    assert [c["type"] for c in bound.object["status"]["conditions"]] == ["PodScheduled"]
    status = running.object["status"]
    assert [c["type"] for c in status["conditions"] if c["status"] == "True"] == [
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
        "PodScheduled",
    ]
    assert status["podIP"].startswith("10.244.")
    assert status["podIPs"] == [{"ip": status["podIP"]}]
    (container,) = status["containerStatuses"]
    assert container["ready"] is True
    assert container["started"] is True
    assert container["image"] == "docker.io/library/nginx:1.27"
    assert "running" in container["state"]
    assert status["qosClass"] == "BestEffort"
    assert running.object["metadata"]["generation"] == 1


async def test_the_node_is_ready(sandbox: Sandbox) -> None:
    """One Ready node is listed, and the pods' nodeName field selector finds its pods."""
    sandbox.create(_pod("web"))
    sandbox.wait_for(lambda: _phase(sandbox, "web") == "Running")
    async with proxy_client(sandbox) as client:
        nodes = (await client.get("/api/v1/nodes")).json()["items"]
        on_node = await client.get(
            "/api/v1/pods", params={"fieldSelector": "spec.nodeName=sandbox-node"}
        )
    assert [n["metadata"]["name"] for n in nodes] == ["sandbox-node"]
    ready = [c for c in nodes[0]["status"]["conditions"] if c["type"] == "Ready"]
    assert ready[0]["status"] == "True"
    assert [p["metadata"]["name"] for p in on_node.json()["items"]] == ["web"]


async def test_deleting_a_running_pod_is_graceful(sandbox: Sandbox) -> None:
    """DELETE answers the pod with a deletionTimestamp; the kubelet then removes it."""
    sandbox.create(_pod("web"))
    sandbox.wait_for(lambda: _phase(sandbox, "web") == "Running")
    async with asyncpod.Client(asyncpod.Config.proxy(sandbox.proxy_url)) as k8s:
        start = str(sandbox.resource_version)
        answer = await k8s.delete("pods", "web", namespace="default")
        with anyio.fail_after(10):
            async with k8s.watch("pods", namespace="default", resource_version=start) as watch:
                seen = []
                async for event in watch:
                    seen.append(event.type)
                    if event.type == "DELETED":
                        break
    meta = answer["metadata"]
    assert meta["deletionGracePeriodSeconds"] == 30
    assert meta["deletionTimestamp"] > meta["creationTimestamp"]
    assert meta["generation"] == 2
    assert seen == ["MODIFIED", "DELETED"]
    assert _gone(sandbox, "web")


async def test_zero_grace_and_finalizers(sandbox: Sandbox) -> None:
    """gracePeriodSeconds=0 deletes at once; a finalizer holds a pod until it is removed."""
    sandbox.create(_pod("now"))
    held = _pod("held")
    held["metadata"]["finalizers"] = ["example.com/hold"]
    sandbox.create(held)
    sandbox.wait_for(lambda: _phase(sandbox, "now") == _phase(sandbox, "held") == "Running")
    async with proxy_client(sandbox) as client:
        now = await client.delete(f"{PODS}/now", params={"gracePeriodSeconds": "0"})
        await client.delete(f"{PODS}/held")
    assert now.status_code == 200
    assert _gone(sandbox, "now")
    sandbox.wait_for(
        lambda: sandbox.get("pods", "held")["metadata"]["deletionGracePeriodSeconds"] == 0
    )
    sandbox.patch("pods", "held", {"metadata": {"finalizers": None}})
    assert _gone(sandbox, "held")


@pytest.mark.parametrize(
    ("restart", "code", "phase"),
    [("Never", 0, "Succeeded"), ("Never", 3, "Failed"), ("OnFailure", 0, "Succeeded")],
)
async def test_a_container_that_ends_ends_its_pod(
    sandbox: Sandbox, restart: str, code: int, phase: str
) -> None:
    """Without a restart, the exit code decides Succeeded or Failed; readiness goes."""
    sandbox.create(_pod("job", restart))
    sandbox.wait_for(lambda: _phase(sandbox, "job") == "Running")
    sandbox.exit_container("job", code, message="done")
    pod = sandbox.get("pods", "job")
    assert pod["status"]["phase"] == phase
    (container,) = pod["status"]["containerStatuses"]
    assert container["state"]["terminated"]["exitCode"] == code
    assert container["state"]["terminated"]["reason"] == ("Completed" if code == 0 else "Error")
    assert container["ready"] is False
    ready = [c for c in pod["status"]["conditions"] if c["type"] == "Ready"]
    assert ready[0]["status"] == "False"


async def test_a_restarting_container_counts_restarts(sandbox: Sandbox) -> None:
    """With restartPolicy Always an exit is a restart: lastState keeps the failure."""
    sandbox.create(_pod("web"))
    sandbox.wait_for(lambda: _phase(sandbox, "web") == "Running")
    sandbox.exit_container("web", 137, reason="OOMKilled")
    pod = sandbox.get("pods", "web")
    (container,) = pod["status"]["containerStatuses"]
    assert pod["status"]["phase"] == "Running"
    assert container["restartCount"] == 1
    assert container["lastState"]["terminated"]["reason"] == "OOMKilled"
    assert "running" in container["state"]
    with pytest.raises(SandboxError) as caught:
        sandbox.exit_container("web", container="sidecar")
    assert caught.value.status == 400


async def test_without_kubelet_pods_stay_pending(sandbox: Sandbox) -> None:
    """kubelet=False: no node, pods stay Pending, and deletes are immediate."""
    sandbox.kubelet = False
    sandbox.create(_pod("web"))
    await anyio.sleep(0.2)
    async with proxy_client(sandbox) as client:
        nodes = (await client.get("/api/v1/nodes")).json()["items"]
        deleted = await client.delete(f"{PODS}/web")
    assert nodes == []
    assert deleted.json()["status"]["phase"] == "Pending"
    assert "nodeName" not in deleted.json()["spec"]
    assert _gone(sandbox, "web")
    writes = [r for r in sandbox.requests if r.method != "GET"]
    assert [(r.method, r.status) for r in writes] == [("DELETE", 200)]
