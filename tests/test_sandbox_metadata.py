"""Server-owned metadata: every write path (create, replace, patch, apply) sets it alike."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from asyncpod.testing import Sandbox
from tests.sandbox_helpers import proxy_client

pytestmark = pytest.mark.anyio

DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
MERGE = {"Content-Type": "application/merge-patch+json"}
APPLY = {"Content-Type": "application/apply-patch+yaml"}
# The order of the fields of ObjectMeta, which the API server writes them in.
OBJECT_META = (
    "name",
    "generateName",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
)


def _deployment(replicas: int, **labels: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "web"}
    if labels:
        meta["labels"] = labels
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "nginx:1"}]},
            },
        },
    }


def _meta(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    meta: dict[str, Any] = response.json()["metadata"]
    assert list(meta) == [k for k in OBJECT_META if k in meta]
    return meta


async def test_every_write_path_keeps_server_metadata_alike(sandbox: Sandbox) -> None:
    """uid and creationTimestamp stay, generation counts spec changes, in ObjectMeta order."""
    async with proxy_client(sandbox) as client:
        created = _meta(await client.post(DEPLOYMENTS, json=_deployment(1)))
        # The PUT body carries none of the server's fields: they are kept, not cleared.
        replaced = _meta(await client.put(f"{DEPLOYMENTS}/web", json=_deployment(2)))
        relabelled = _meta(
            await client.put(f"{DEPLOYMENTS}/web", json=_deployment(2, tier="front"))
        )
        patched = _meta(
            await client.patch(
                f"{DEPLOYMENTS}/web", content=json.dumps({"spec": {"replicas": 3}}), headers=MERGE
            )
        )
        applied = _meta(
            await client.patch(
                f"{DEPLOYMENTS}/web",
                params={"fieldManager": "tool", "force": "true"},
                content=json.dumps({**_deployment(4), "metadata": {"name": "web"}}),
                headers=APPLY,
            )
        )
        read = _meta(await client.get(f"{DEPLOYMENTS}/web"))
    writes = [created, replaced, relabelled, patched, applied]
    assert {m["uid"] for m in [*writes, read]} == {created["uid"]}
    assert {m["creationTimestamp"] for m in [*writes, read]} == {created["creationTimestamp"]}
    assert [m["generation"] for m in writes] == [1, 2, 2, 3, 4]
    versions = [int(m["resourceVersion"]) for m in writes]
    assert versions == sorted(set(versions))
    assert read == applied
    assert all("deletionTimestamp" not in m and "selfLink" not in m for m in writes)
    managers = [(e["manager"], e["operation"]) for e in read["managedFields"]]
    assert ("tool", "Apply") in managers


async def test_create_sets_generation_and_drops_deletion_fields(sandbox: Sandbox) -> None:
    """A create's generation is 1 and its deletion fields are cleared, whatever the body says."""
    body = _deployment(1)
    body["metadata"].update(
        deletionTimestamp="2020-01-01T00:00:00Z", deletionGracePeriodSeconds=5, generation=7
    )
    async with proxy_client(sandbox) as client:
        created = _meta(await client.post(DEPLOYMENTS, json=body))
    assert created["generation"] == 1
    assert "deletionTimestamp" not in created
    assert "deletionGracePeriodSeconds" not in created
    stored = sandbox.get("deployments", "web")["metadata"]
    assert stored["generation"] == 1
    assert "deletionTimestamp" not in stored


async def test_cluster_scoped_object_drops_a_body_namespace(sandbox: Sandbox) -> None:
    """A Namespace (cluster-scoped) created or replaced with metadata.namespace stores none."""
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}
    body["metadata"]["namespace"] = "default"
    async with proxy_client(sandbox) as client:
        created = _meta(await client.post("/api/v1/namespaces", json=body))
        body["metadata"]["labels"] = {"tier": "x"}
        replaced = _meta(await client.put("/api/v1/namespaces/team", json=body))
    assert "namespace" not in created
    assert "namespace" not in replaced
    assert replaced["labels"]["tier"] == "x"
    assert "namespace" not in sandbox.get("namespaces", "team", namespace=None)["metadata"]
