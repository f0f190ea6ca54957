"""The sandbox's answers against a real kube-apiserver 1.36's, recorded in tests/data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import asyncpod
from asyncpod.testing import Sandbox
from tests.helpers.sandbox import proxy_client

pytestmark = pytest.mark.anyio

DATA = Path(__file__).parent.parent / "data"
NS = "/api/v1/namespaces/default"
APPS = "/apis/apps/v1/namespaces/default"
BATCH = "/apis/batch/v1/namespaces/default"
TEMPLATE = {
    "metadata": {"labels": {"a": "b"}},
    "spec": {"containers": [{"name": "c", "image": "busybox"}]},
}


def _recorded(name: str) -> tuple[dict[str, str], bytes]:
    """The headers and body of a recorded ``.http`` answer."""
    head, _, body = (DATA / name).read_bytes().partition(b"\r\n\r\n")
    if not body:
        head, _, body = (DATA / name).read_bytes().partition(b"\n\n")
    headers = {}
    for line in head.decode().splitlines()[1:]:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    return headers, body


def _without_server_fields(obj: Any, uid: str) -> Any:
    """``obj`` with what differs between two servers (uids, times, versions) blanked."""
    text = json.dumps(obj).replace(uid, "UID")
    clean = json.loads(text)
    meta = clean.get("metadata", {})
    for key in ("uid", "resourceVersion", "creationTimestamp", "managedFields", "namespace"):
        meta.pop(key, None)
    return clean


async def test_delete_answers_as_each_registry_does(sandbox: Sandbox) -> None:
    """DELETE answers a Status for ConfigMaps and Deployments, the object for Services and SAs."""
    sandbox.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c1"}})
    sandbox.create(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "d1"},
            "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": TEMPLATE},
        }
    )
    sandbox.create(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "s1"},
            "spec": {"ports": [{"port": 80}]},
        },
    )
    sandbox.create({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa1"}})
    uid = sandbox.get("configmaps", "c1")["metadata"]["uid"]
    async with proxy_client(sandbox) as client:
        cm = await client.delete(f"{NS}/configmaps/c1")
        deploy = await client.delete(f"{APPS}/deployments/d1")
        svc = await client.delete(f"{NS}/services/s1")
        sa = await client.delete(f"{NS}/serviceaccounts/sa1")
    _, recorded = _recorded("delete-configmap-returns-status.http")
    expected = json.loads(recorded)
    expected["details"]["uid"] = uid
    assert cm.content == json.dumps(expected, separators=(",", ":")).encode() + b"\n"
    assert deploy.json()["details"]["group"] == "apps"
    assert deploy.json()["status"] == "Success"
    assert (svc.json()["kind"], svc.json()["metadata"]["name"]) == ("Service", "s1")
    assert (sa.json()["kind"], sa.json()["metadata"]["name"]) == ("ServiceAccount", "sa1")
    assert sandbox.objects("services", namespace="default")[0]["metadata"]["name"] == "kubernetes"


async def test_every_json_answer_ends_in_a_newline(sandbox: Sandbox) -> None:
    """Objects, lists, errors and discovery end in one newline, with a matching length."""
    async with proxy_client(sandbox) as client:
        answers = [
            await client.get("/api/v1"),
            await client.get(f"{NS}/configmaps"),
            await client.get(f"{NS}/services/kubernetes"),
            await client.get(f"{NS}/configmaps/missing"),
            await client.get("/version"),
        ]
    for answer in answers:
        assert answer.content.endswith(b"}\n"), answer.request.url
        assert not answer.content.endswith(b"\n\n")
        assert int(answer.headers["content-length"]) == len(answer.content)


async def test_nodes_are_an_empty_list(sandbox: Sandbox) -> None:
    """A cluster without nodes answers an empty NodeList, byte for byte but the version."""
    sandbox.kubelet = False
    async with proxy_client(sandbox) as client:
        nodes = await client.get("/api/v1/nodes")
    _, recorded = _recorded("list-nodes-empty.http")
    expected = json.loads(recorded)
    expected["metadata"]["resourceVersion"] = str(sandbox.resource_version)
    assert nodes.content == json.dumps(expected, separators=(",", ":")).encode() + b"\n"


async def test_pod_create_resets_status_and_admits_as_the_server(sandbox: Sandbox) -> None:
    """A new pod is Pending with its QoS class, the default tolerations and token volume."""
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p1"},
        "spec": {
            "containers": [
                {"name": "c", "image": "busybox", "resources": {"requests": {"cpu": "10m"}}}
            ]
        },
        "status": {"phase": "Running", "podIP": "10.0.0.9"},
    }
    async with proxy_client(sandbox) as client:
        created = (await client.post(f"{NS}/pods", json=body)).json()
    _, recorded = _recorded("create-pod-status-pending.http")
    real = json.loads(recorded)
    assert created["status"] == real["status"] == {"phase": "Pending", "qosClass": "Burstable"}
    # The recorded cluster's admission adds a fourth source (openshift-service-ca.crt);
    # upstream kube-apiserver adds the first three.
    real_volume = real["spec"]["volumes"][0]
    real_volume["projected"]["sources"] = real_volume["projected"]["sources"][:3]
    volume = created["spec"]["volumes"][0]
    assert volume["name"].startswith("kube-api-access-")
    assert len(volume["name"]) == len(real_volume["name"])
    assert volume["projected"] == real_volume["projected"]
    mounts = created["spec"]["containers"][0]["volumeMounts"]
    assert mounts == [{**real["spec"]["containers"][0]["volumeMounts"][0], "name": volume["name"]}]
    assert created["spec"]["tolerations"] == real["spec"]["tolerations"]
    assert list(created["spec"]) == list(real["spec"])
    assert list(created["spec"]["containers"][0]) == list(real["spec"]["containers"][0])
    assert created["metadata"]["generation"] == 1


async def test_pod_defaults_keep_what_the_user_set(sandbox: Sandbox) -> None:
    """Own tolerations gain the defaults once; automount off means no token volume."""
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p2"},
        "spec": {
            "automountServiceAccountToken": False,
            "tolerations": [
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"}
            ],
            "containers": [
                {
                    "name": "c",
                    "image": "busybox:1",
                    "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
                }
            ],
        },
    }
    pod = sandbox.create(body)
    assert "volumes" not in pod["spec"]
    assert [t["key"] for t in pod["spec"]["tolerations"]] == [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ]
    assert pod["spec"]["containers"][0]["resources"]["requests"] == {"cpu": "1", "memory": "1Gi"}
    assert pod["status"]["qosClass"] == "Guaranteed"


async def test_workload_create_matches_the_recorded_defaults(sandbox: Sandbox) -> None:
    """Deployments, DaemonSets and Jobs get the real defaults and an empty status."""
    selector = {"matchLabels": {"a": "b"}}
    bodies = {
        "create-deployment-defaults.http": (
            f"{APPS}/deployments",
            {
                "metadata": {"name": "d1"},
                "spec": {"selector": selector, "template": TEMPLATE},
                "status": {"readyReplicas": 5, "replicas": 5},
            },
        ),
        "create-daemonset-defaults.http": (
            f"{APPS}/daemonsets",
            {"metadata": {"name": "ds1"}, "spec": {"selector": selector, "template": TEMPLATE}},
        ),
        "create-job-defaults.http": (
            f"{BATCH}/jobs",
            {
                "metadata": {"name": "j1"},
                "spec": {
                    "template": {
                        "spec": {
                            "containers": [{"name": "c", "image": "busybox"}],
                            "restartPolicy": "Never",
                        }
                    }
                },
            },
        ),
    }
    async with proxy_client(sandbox) as client:
        for capture, (path, body) in bodies.items():
            response = await client.post(path, json=body)
            assert response.status_code == 201, response.text
            created = response.json()
            real = json.loads(_recorded(capture)[1])
            assert _without_server_fields(created, created["metadata"]["uid"]) == (
                _without_server_fields(real, real["metadata"]["uid"])
            ), capture


async def test_generation_only_on_kinds_that_have_it(sandbox: Sandbox) -> None:
    """ConfigMaps and Services have no generation; a StatefulSet's grows with its spec only."""
    cm = sandbox.create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "generation": 4}}
    )
    svc = sandbox.create(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "s"},
            "spec": {"clusterIP": "None"},
        }
    )
    sts = sandbox.create(
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "db"},
            "spec": {
                "selector": {"matchLabels": {"a": "b"}},
                "serviceName": "db",
                "template": TEMPLATE,
            },
        }
    )
    assert cm["metadata"]["generation"] == 4  # kept as sent, as the real server does
    assert "generation" not in svc["metadata"]
    assert sts["metadata"]["generation"] == 1
    assert sts["status"] == {"replicas": 0, "availableReplicas": 0}
    labelled = sandbox.patch("statefulsets", "db", {"metadata": {"labels": {"x": "y"}}})
    assert labelled["metadata"]["generation"] == 1
    scaled = sandbox.patch("statefulsets", "db", {"spec": {"replicas": 3}})
    assert scaled["metadata"]["generation"] == 2


def _discovered(resources: list[dict[str, Any]]) -> dict[str, tuple[Any, ...]]:
    return {
        r["name"]: (
            r["namespaced"],
            r["kind"],
            sorted(r["verbs"]),
            r.get("shortNames", []),
            r.get("categories", []),
        )
        for r in resources
        if "/" not in r["name"] and {"create", "get", "list"} <= set(r["verbs"])
    }


async def test_core_discovery_matches_the_real_server(sandbox: Sandbox) -> None:
    """/api/v1 lists every stored core resource with the real scope, verbs and names."""
    async with proxy_client(sandbox) as client:
        served = (await client.get("/api/v1")).json()
    real = json.loads((DATA / "get-api-v1-full.json").read_text())
    assert _discovered(served["resources"]) == _discovered(real["resources"])
    names = {r["name"] for r in served["resources"]}
    assert {"pods/status", "pods/log", "replicationcontrollers/scale"} <= names


async def test_every_group_of_the_real_server_is_served(sandbox: Sandbox) -> None:
    """Each group's preferred version serves its stored resources, as discovery says."""
    real = json.loads((DATA / "get-apis-aggregated-discovery-v2.json").read_text())
    async with proxy_client(sandbox) as client:
        for group in real["items"]:
            name = group["metadata"]["name"]
            version = group["versions"][0]
            served = (await client.get(f"/apis/{name}/{version['version']}")).json()
            wanted = {
                r["resource"]: (r["scope"] == "Namespaced", r.get("shortNames", []))
                for r in version["resources"]
                if {"create", "get", "list"} <= set(r["verbs"])
            }
            got = {
                r["name"]: (r["namespaced"], r.get("shortNames", []))
                for r in served["resources"]
                if "/" not in r["name"] and r["name"] in wanted
            }
            assert got == wanted, name


async def test_new_kinds_work_through_the_client(sandbox: Sandbox) -> None:
    """RBAC, batch, apiregistration and nodes are created, listed and deleted by asyncpod."""
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "reader"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
    }
    cronjob = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "nightly"},
        "spec": {
            "schedule": "0 3 * * *",
            "jobTemplate": {
                "spec": {
                    "template": {**TEMPLATE, "spec": {**TEMPLATE["spec"], "restartPolicy": "Never"}}
                }
            },
        },
    }
    apiservice = {
        "apiVersion": "apiregistration.k8s.io/v1",
        "kind": "APIService",
        "metadata": {"name": "v1beta1.metrics.k8s.io"},
        "spec": {"group": "metrics.k8s.io", "version": "v1beta1", "groupPriorityMinimum": 100},
    }
    async with asyncpod.Client(asyncpod.Config.proxy(sandbox.proxy_url)) as k8s:
        await k8s.create("roles.rbac.authorization.k8s.io", role, namespace="default")
        await k8s.create("cronjobs.batch", cronjob, namespace="default")
        await k8s.create("apiservices.apiregistration.k8s.io", apiservice)
        roles = [r async for r in k8s.list("roles.rbac.authorization.k8s.io", namespace="default")]
        cj = await k8s.get("cj", "nightly", namespace="default")
        await k8s.delete("apiservices.apiregistration.k8s.io", "v1beta1.metrics.k8s.io")
    assert [r["metadata"]["name"] for r in roles] == ["reader"]
    assert cj["spec"]["concurrencyPolicy"] == "Allow"
    assert sandbox.requests.count("DELETE", "/apis/apiregistration.k8s.io/v1/apiservices/.*") == 1
    assert sandbox.objects("apiservices.apiregistration.k8s.io") == []
