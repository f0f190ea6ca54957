"""API behaviour of the sandbox: lists, selectors, patches, apply, subresources, CRDs."""

from __future__ import annotations

import base64
import json
from typing import Any

import anyio
import pytest

from asyncpod.testing import Sandbox
from tests.helpers.sandbox import CM, configmap, proxy_client, raw_get

pytestmark = pytest.mark.anyio

MERGE = {"Content-Type": "application/merge-patch+json"}
JSONPATCH = {"Content-Type": "application/json-patch+json"}
STRATEGIC = {"Content-Type": "application/strategic-merge-patch+json"}
APPLY = {"Content-Type": "application/apply-patch+yaml"}
PODS = "/api/v1/namespaces/default/pods"
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"


def _pod(name: str, *containers: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"containers": [{"name": c, "image": f"{c}:1"} for c in containers or ("c",)]},
    }


async def test_discovery_documents(sandbox: Sandbox) -> None:
    """/api/v1, /apis and /apis/apps/v1 list what the sandbox serves, as the real server does."""
    async with proxy_client(sandbox) as client:
        core = (await client.get("/api/v1")).json()
        groups = (await client.get("/apis")).json()
        apps = (await client.get("/apis/apps/v1")).json()
        version = (await client.get("/version")).json()
    names = {r["name"] for r in core["resources"]}
    assert {"pods", "pods/log", "pods/status", "configmaps", "namespaces", "secrets"} <= names
    assert core["kind"] == "APIResourceList"
    assert core["groupVersion"] == "v1"
    configmaps = next(r for r in core["resources"] if r["name"] == "configmaps")
    assert configmaps["shortNames"] == ["cm"]
    assert configmaps["namespaced"] is True
    group_names = [g["name"] for g in groups["groups"]]
    assert {"apps", "coordination.k8s.io", "apiextensions.k8s.io"} <= set(group_names)
    scale = next(r for r in apps["resources"] if r["name"] == "deployments/scale")
    assert (scale["group"], scale["version"], scale["kind"]) == ("autoscaling", "v1", "Scale")
    assert version["gitVersion"].startswith("v1.")


async def test_aggregated_discovery_request_gets_plain_json(sandbox: Sandbox) -> None:
    """A client asking for aggregated discovery gets the plain APIGroupList (it falls back)."""
    accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
    async with proxy_client(sandbox) as client:
        response = await client.get("/apis", headers={"Accept": accept})
    assert response.headers["content-type"] == "application/json"
    assert response.json()["kind"] == "APIGroupList"


async def test_list_pagination_with_continue(sandbox: Sandbox) -> None:
    """limit/continue pages through a consistent snapshot with remainingItemCount."""
    for name in ("a", "b", "c"):
        sandbox.create(configmap(name))
    async with proxy_client(sandbox) as client:
        first = (await client.get(CM, params={"limit": 2})).json()
        assert [i["metadata"]["name"] for i in first["items"]] == ["a", "b"]
        assert first["metadata"]["remainingItemCount"] == 2
        token = first["metadata"]["continue"]
        decoded = json.loads(base64.urlsafe_b64decode(token + "=="))
        assert decoded == {
            "v": "meta.k8s.io/v1",
            "rv": int(first["metadata"]["resourceVersion"]),
            "start": "/b\u0000",
        }
        # A change after the first page is not visible in the rest of this list.
        await client.delete(f"{CM}/c")
        rest = (await client.get(CM, params={"limit": 2, "continue": token})).json()
    assert [i["metadata"]["name"] for i in rest["items"]] == ["c", "kube-root-ca.crt"]
    assert "continue" not in rest["metadata"]
    assert rest["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    assert "kind" not in rest["items"][0]


async def test_expired_continue_is_410_with_a_fresh_token(sandbox: Sandbox) -> None:
    """A continue token older than the compaction is 410 Expired, offering an inconsistent one."""
    for name in ("app-config", "b"):
        sandbox.create(configmap(name))
    async with proxy_client(sandbox) as client:
        first = (await client.get(CM, params={"limit": 1})).json()
        sandbox.create(configmap("later"))
        sandbox.compact()
        expired = await client.get(
            CM, params={"limit": 1, "continue": first["metadata"]["continue"]}
        )
        body = expired.json()
        assert expired.status_code == 410
        assert body["reason"] == "Expired"
        assert body["message"].startswith("The provided continue parameter is too old")
        assert "details" not in body
        fresh = json.loads(base64.urlsafe_b64decode(body["metadata"]["continue"] + "=="))
        assert fresh == {"v": "meta.k8s.io/v1", "rv": -1, "start": "app-config\u0000"}
        rest = (
            await client.get(CM, params={"limit": 10, "continue": body["metadata"]["continue"]})
        ).json()
    assert [i["metadata"]["name"] for i in rest["items"]] == ["b", "kube-root-ca.crt", "later"]


async def test_exact_list_of_compacted_version_is_410(sandbox: Sandbox) -> None:
    """resourceVersionMatch=Exact on a compacted version is HTTP 410, as the reference."""
    rv = sandbox.resource_version
    sandbox.create(configmap("x"))
    sandbox.compact()
    async with proxy_client(sandbox) as client:
        response = await client.get(
            CM, params={"resourceVersion": rv, "resourceVersionMatch": "Exact"}
        )
    assert response.status_code == 410
    assert response.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "The resourceVersion for the provided list is too old.",
        "reason": "Expired",
        "code": 410,
    }


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app=web", ["a"]),
        ("app==web", ["a"]),
        ("app!=web", ["b", "c", "kube-root-ca.crt"]),
        ("app in (web, db)", ["a", "b"]),
        ("app notin (web)", ["b", "c", "kube-root-ca.crt"]),
        ("tier", ["a", "c"]),
        ("!tier", ["b", "kube-root-ca.crt"]),
        ("app=web,tier=front", ["a"]),
    ],
)
async def test_label_selectors(sandbox: Sandbox, selector: str, expected: list[str]) -> None:
    """Equality and set-based label selectors select as the API server does."""
    sandbox.create(configmap("a", app="web", tier="front"))
    sandbox.create(configmap("b", app="db"))
    sandbox.create(configmap("c", tier="back"))
    async with proxy_client(sandbox) as client:
        items = (await client.get(CM, params={"labelSelector": selector})).json()["items"]
    assert [i["metadata"]["name"] for i in items] == expected


async def test_field_selectors(sandbox: Sandbox) -> None:
    """metadata.name and metadata.namespace select; an unknown field is 400."""
    sandbox.create(configmap("a"))
    async with proxy_client(sandbox) as client:
        by_name = (await client.get(CM, params={"fieldSelector": "metadata.name=a"})).json()
        everywhere = (
            await client.get(
                "/api/v1/configmaps", params={"fieldSelector": "metadata.namespace!=default"}
            )
        ).json()
        bad = await client.get(CM, params={"fieldSelector": "spec.nothing=1"})
    assert [i["metadata"]["name"] for i in by_name["items"]] == ["a"]
    assert {i["metadata"]["namespace"] for i in everywhere["items"]} == {
        "kube-node-lease",
        "kube-public",
        "kube-system",
    }
    assert bad.status_code == 400
    assert bad.json()["message"] == "field label not supported: spec.nothing"


async def test_merge_and_json_patch(sandbox: Sandbox) -> None:
    """A merge patch merges (null removes); a JSON patch runs its operations, test included."""
    sandbox.create(configmap("p", {"a": "1", "b": "2"}))
    async with proxy_client(sandbox) as client:
        merged = await client.patch(
            f"{CM}/p", content=b'{"data":{"a":null,"c":"3"}}', headers=MERGE
        )
        assert merged.json()["data"] == {"b": "2", "c": "3"}
        ops = [
            {"op": "test", "path": "/data/b", "value": "2"},
            {"op": "replace", "path": "/data/b", "value": "20"},
            {"op": "add", "path": "/metadata/labels", "value": {"x": "y"}},
        ]
        patched = await client.patch(f"{CM}/p", content=json.dumps(ops), headers=JSONPATCH)
        assert patched.json()["data"]["b"] == "20"
        assert patched.json()["metadata"]["labels"] == {"x": "y"}
        failed = await client.patch(
            f"{CM}/p",
            content=json.dumps([{"op": "test", "path": "/data/b", "value": "nope"}]),
            headers=JSONPATCH,
        )
    assert failed.status_code == 422


async def test_strategic_merge_patch_merges_containers_by_name(sandbox: Sandbox) -> None:
    """A strategic patch of a pod merges containers by name and can delete one."""
    sandbox.create(_pod("web", "app", "sidecar"))
    patch = {"spec": {"containers": [{"name": "app", "image": "app:2"}]}}
    async with proxy_client(sandbox) as client:
        patched = (await client.patch(f"{PODS}/web", json=patch, headers=STRATEGIC)).json()
        images = {c["name"]: c["image"] for c in patched["spec"]["containers"]}
        assert images == {"app": "app:2", "sidecar": "sidecar:1"}
        delete = {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}
        patched = (await client.patch(f"{PODS}/web", json=delete, headers=STRATEGIC)).json()
    assert [c["name"] for c in patched["spec"]["containers"]] == ["app"]


async def test_unsupported_patch_type_is_415(sandbox: Sandbox) -> None:
    """A strategic patch of a custom resource, or an unknown type, is 415."""
    sandbox.create(configmap("p"))
    async with proxy_client(sandbox) as client:
        response = await client.patch(
            f"{CM}/p", content=b"{}", headers={"Content-Type": "text/plain"}
        )
    assert response.status_code == 415
    assert response.json()["reason"] == "UnsupportedMediaType"


async def test_server_side_apply_creates_and_tracks_managers(sandbox: Sandbox) -> None:
    """Apply creates the object and records the manager's fields in managedFields."""
    body = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\ndata:\n  a: '1'\n"
    async with proxy_client(sandbox) as client:
        created = await client.patch(
            f"{CM}/applied", params={"fieldManager": "tool"}, content=body, headers=APPLY
        )
    assert created.status_code == 201
    managed = created.json()["metadata"]["managedFields"]
    assert managed == [
        {
            "manager": "tool",
            "operation": "Apply",
            "apiVersion": "v1",
            "time": managed[0]["time"],
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {"f:a": {}}},
        }
    ]


async def test_apply_conflict_then_force(sandbox: Sandbox) -> None:
    """Applying a field another manager set differently is 409 unless force=true."""
    async with proxy_client(sandbox) as client:
        first = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "c"},
            "data": {"k": "one"},
        }
        await client.patch(f"{CM}/c", params={"fieldManager": "alice"}, json=first, headers=APPLY)
        second = {**first, "data": {"k": "two"}}
        conflict = await client.patch(
            f"{CM}/c", params={"fieldManager": "bob"}, json=second, headers=APPLY
        )
        assert conflict.status_code == 409
        body = conflict.json()
        assert body["reason"] == "Conflict"
        assert (
            body["message"]
            == 'Apply failed with 1 conflict: conflict with "alice" using v1: .data.k'
        )
        assert body["details"]["causes"] == [
            {
                "reason": "FieldManagerConflict",
                "message": 'conflict with "alice" using v1',
                "field": ".data.k",
            }
        ]
        forced = await client.patch(
            f"{CM}/c", params={"fieldManager": "bob", "force": "true"}, json=second, headers=APPLY
        )
    assert forced.status_code == 200
    assert forced.json()["data"] == {"k": "two"}
    managers = [m["manager"] for m in forced.json()["metadata"]["managedFields"]]
    assert managers == ["bob"]


async def test_apply_removes_fields_the_manager_dropped(sandbox: Sandbox) -> None:
    """Fields a manager applied before and no longer applies are removed."""
    async with proxy_client(sandbox) as client:
        base = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "d"}}
        await client.patch(
            f"{CM}/d",
            params={"fieldManager": "m"},
            json={**base, "data": {"a": "1", "b": "2"}},
            headers=APPLY,
        )
        again = await client.patch(
            f"{CM}/d",
            params={"fieldManager": "m"},
            json={**base, "data": {"a": "1"}},
            headers=APPLY,
        )
    assert again.json()["data"] == {"a": "1"}


async def test_no_op_update_keeps_resource_version(sandbox: Sandbox) -> None:
    """Writing an unchanged object stores nothing: same resourceVersion."""
    created = sandbox.create(configmap("same"))
    async with proxy_client(sandbox) as client:
        again = (await client.put(f"{CM}/same", json=created)).json()
    assert again["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


async def test_dry_run_stores_nothing(sandbox: Sandbox) -> None:
    """dryRun=All answers as if done, but nothing changes."""
    rv = sandbox.resource_version
    async with proxy_client(sandbox) as client:
        response = await client.post(CM, params={"dryRun": "All"}, json=configmap("ghost"))
        assert response.status_code == 201
        assert (await client.get(f"{CM}/ghost")).status_code == 404
    assert sandbox.resource_version == rv


async def test_generate_name(sandbox: Sandbox) -> None:
    """generateName gets a random five-character suffix."""
    async with proxy_client(sandbox) as client:
        body = {"metadata": {"generateName": "job-"}, "data": {}}
        created = (await client.post(CM, json=body)).json()
    name = created["metadata"]["name"]
    assert name.startswith("job-")
    assert len(name) == len("job-") + 5


async def test_finalizers_delay_deletion(sandbox: Sandbox) -> None:
    """An object with finalizers gets deletionTimestamp and goes when they are removed."""
    body = configmap("held")
    body["metadata"]["finalizers"] = ["example.com/hold"]
    sandbox.create(body)
    async with proxy_client(sandbox) as client:
        deleting = (await client.delete(f"{CM}/held")).json()
        assert deleting["metadata"]["deletionTimestamp"]
        assert (await client.get(f"{CM}/held")).status_code == 200
        await client.patch(f"{CM}/held", content=b'{"metadata":{"finalizers":null}}', headers=MERGE)
        assert (await client.get(f"{CM}/held")).status_code == 404


async def test_namespace_deletion_removes_its_objects(sandbox: Sandbox) -> None:
    """A deleted namespace is Terminating, refuses new objects, then goes with its content."""
    sandbox.ensure_namespace("temp")
    sandbox.create(configmap("x"), namespace="temp")
    held = configmap("held")
    held["metadata"]["finalizers"] = ["example.com/hold"]
    sandbox.create(held, namespace="temp")
    async with proxy_client(sandbox) as client:
        gone = (await client.delete("/api/v1/namespaces/temp")).json()
        assert gone["status"]["phase"] == "Terminating"
        assert gone["metadata"]["deletionTimestamp"]
        refused = await client.post("/api/v1/namespaces/temp/configmaps", json=configmap("new"))
        assert refused.status_code == 403
        assert refused.json()["message"] == (
            'configmaps "new" is forbidden: unable to create new content in namespace temp '
            "because it is being terminated"
        )
        assert refused.json()["details"]["causes"][0]["reason"] == "NamespaceTerminating"
        sandbox.wait_for(
            lambda: (
                sandbox.objects("configmaps", namespace="temp") != []
                and all(
                    cm["metadata"].get("deletionTimestamp")
                    for cm in sandbox.objects("configmaps", namespace="temp")
                )
            )
        )
        assert (await client.get("/api/v1/namespaces/temp")).json()["status"]["phase"] == (
            "Terminating"
        )
        sandbox.patch("configmaps", "held", {"metadata": {"finalizers": None}}, namespace="temp")
        sandbox.wait_for(
            lambda: "temp" not in [n["metadata"]["name"] for n in sandbox.objects("ns")]
        )
        assert (await client.get("/api/v1/namespaces/temp/configmaps/x")).status_code == 404
        assert (await client.get("/api/v1/namespaces/temp")).status_code == 404


async def test_pod_defaults_status_and_log(sandbox: Sandbox) -> None:
    """A pod gets the server's defaults; status and log subresources work."""
    sandbox.kubelet = False  # the test writes the status a kubelet would
    async with proxy_client(sandbox) as client:
        pod = (await client.post(PODS, json=_pod("web"))).json()
        assert pod["status"] == {"phase": "Pending", "qosClass": "BestEffort"}
        assert pod["spec"]["restartPolicy"] == "Always"
        assert pod["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
        assert pod["metadata"]["generation"] == 1
        status = {"status": {"phase": "Running"}}
        running = (await client.patch(f"{PODS}/web/status", json=status, headers=MERGE)).json()
        assert running["status"]["phase"] == "Running"
        # The main resource ignores status changes.
        ignored = (
            await client.patch(f"{PODS}/web", json={"status": {"phase": "Failed"}}, headers=MERGE)
        ).json()
        assert ignored["status"]["phase"] == "Running"
        sandbox.append_log("web", ["line one", "line two"])
        log = await client.get(f"{PODS}/web/log", params={"tailLines": 1})
        assert log.text == "line two\n"
        evicted = await client.post(
            f"{PODS}/web/eviction",
            json={"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "web"}},
        )
        assert evicted.status_code == 201
        assert (await client.get(f"{PODS}/web")).status_code == 404


async def test_deployment_scale_and_generation(sandbox: Sandbox) -> None:
    """The scale subresource reads and writes spec.replicas; spec changes bump generation."""
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "c:1"}]},
            },
        },
    }
    async with proxy_client(sandbox) as client:
        created = (await client.post(DEPLOYMENTS, json=deployment)).json()
        assert created["spec"]["replicas"] == 1
        scale = (await client.get(f"{DEPLOYMENTS}/web/scale")).json()
        assert scale["kind"] == "Scale"
        assert scale["spec"] == {"replicas": 1}
        scale["spec"]["replicas"] = 3
        await client.put(f"{DEPLOYMENTS}/web/scale", json=scale)
        after = (await client.get(f"{DEPLOYMENTS}/web")).json()
    assert after["spec"]["replicas"] == 3
    assert after["metadata"]["generation"] == 2


async def test_custom_resource_definition_serves_new_resource(sandbox: Sandbox) -> None:
    """Creating a CRD serves its resource (namespaced or cluster-scoped) and discovery shows it."""
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {"openAPIV3Schema": {"type": "object"}},
                }
            ],
        },
    }
    path = "/apis/example.com/v1/namespaces/default/widgets"
    async with proxy_client(sandbox) as client:
        created = await client.post(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=crd
        )
        assert created.status_code == 201
        conditions = {c["type"]: c["status"] for c in created.json()["status"]["conditions"]}
        assert conditions["Established"] == "True"
        resources = (await client.get("/apis/example.com/v1")).json()["resources"]
        assert [r["name"] for r in resources] == ["widgets", "widgets/status"]
        widget = {
            "apiVersion": "example.com/v1",
            "kind": "Widget",
            "metadata": {"name": "w"},
            "spec": {"size": 1},
        }
        made = (await client.post(path, json=widget)).json()
        assert made["metadata"]["generation"] == 1
        strategic = await client.patch(f"{path}/w", json={"spec": {}}, headers=STRATEGIC)
        assert strategic.status_code == 415
        await client.delete(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com"
        )
        assert (await client.get(path)).status_code == 404


async def test_table_for_kubectl_get(sandbox: Sandbox) -> None:
    """Asked for a Table (as kubectl get is), the server sends rows and columns."""
    sandbox.create(_pod("web"))
    sandbox.wait_for(lambda: sandbox.get("pods", "web")["status"]["phase"] == "Running")
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    async with proxy_client(sandbox) as client:
        table = (await client.get(PODS, headers={"Accept": accept})).json()
    assert table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]] == [
        "Name",
        "Ready",
        "Status",
        "Restarts",
        "Age",
    ]
    assert table["rows"][0]["cells"][:3] == ["web", "1/1", "Running"]
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"


async def test_secret_string_data_and_lease(sandbox: Sandbox) -> None:
    """stringData is folded into base64 data; leases are served."""
    async with proxy_client(sandbox) as client:
        secret = (
            await client.post(
                "/api/v1/namespaces/default/secrets",
                json={"metadata": {"name": "s"}, "stringData": {"password": "hunter2"}},
            )
        ).json()
        lease = await client.post(
            "/apis/coordination.k8s.io/v1/namespaces/default/leases",
            json={"metadata": {"name": "leader"}, "spec": {"holderIdentity": "me"}},
        )
    assert secret["data"] == {"password": base64.b64encode(b"hunter2").decode()}
    assert secret["type"] == "Opaque"
    assert lease.status_code == 201


async def test_post_to_an_object_path_is_405(sandbox: Sandbox) -> None:
    """POST to a named object is 405 MethodNotAllowed, as a Status."""
    async with proxy_client(sandbox) as client:
        response = await client.post(f"{CM}/named", json=configmap("named"))
    assert response.status_code == 405
    assert response.json()["reason"] == "MethodNotAllowed"


async def test_follow_pod_log_streams_new_lines(sandbox: Sandbox) -> None:
    """follow=true streams lines as they are appended and ends when the pod goes."""
    sandbox.create(_pod("tail"))
    sandbox.append_log("tail", "first")
    lines: list[str] = []
    async with proxy_client(sandbox) as client, anyio.create_task_group() as tg:

        async def follow() -> None:
            response = await raw_get(sandbox, f"{PODS}/tail/log?follow=true")
            lines.extend(b"".join(response.chunks).decode().splitlines())

        tg.start_soon(follow)
        await anyio.sleep(0.2)
        await anyio.to_thread.run_sync(lambda: sandbox.append_log("tail", ["second"]))
        await anyio.sleep(0.2)
        await client.delete(f"{PODS}/tail")
    assert lines == ["first", "second"]


async def test_owner_references_cascade_or_orphan(sandbox: Sandbox) -> None:
    """Deleting an owner deletes its dependents; propagationPolicy=Orphan keeps them."""
    async with proxy_client(sandbox) as client:
        for name in ("parent", "keeper"):
            await client.post(CM, json=configmap(name))
        owners = {n: sandbox.get("configmaps", n)["metadata"]["uid"] for n in ("parent", "keeper")}
        for child, owner in (("child", "parent"), ("kept", "keeper")):
            body = configmap(child)
            body["metadata"]["ownerReferences"] = [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": owner, "uid": owners[owner]}
            ]
            await client.post(CM, json=body)
        await client.delete(f"{CM}/parent")
        await client.request(
            "DELETE", f"{CM}/keeper", json={"kind": "DeleteOptions", "propagationPolicy": "Orphan"}
        )
        child = await client.get(f"{CM}/child")
        kept = await client.get(f"{CM}/kept")
    assert child.status_code == 404
    assert kept.status_code == 200
    assert "ownerReferences" not in kept.json()["metadata"]


async def test_sandbox_patch_plays_a_controller(sandbox: Sandbox) -> None:
    """sb.patch(..., subresource="status") moves a pod along, and watches see it."""
    sandbox.kubelet = False  # the test plays the kubelet
    sandbox.create(_pod("web"))
    rv = str(sandbox.resource_version)
    running = sandbox.patch("pods", "web", {"status": {"phase": "Running"}}, subresource="status")
    assert running["status"]["phase"] == "Running"
    response = await raw_get(sandbox, f"{PODS}?watch=1&resourceVersion={rv}", max_events=1)
    assert response.events()[0]["type"] == "MODIFIED"


async def test_services_get_cluster_ips(sandbox: Sandbox) -> None:
    """The kubernetes service holds 10.96.0.1; new services get the next addresses."""
    async with proxy_client(sandbox) as client:
        created = await client.post(
            "/api/v1/namespaces/default/services",
            json={"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}},
        )
        accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
        table = (await client.get(CM, headers={"Accept": accept})).json()
    assert sandbox.get("services", "kubernetes")["spec"]["clusterIP"] == "10.96.0.1"
    assert created.json()["spec"]["clusterIP"] == "10.96.0.2"
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Data", "Age"]
    assert table["rows"][0]["cells"][:2] == ["kube-root-ca.crt", 1]
