"""Resource verbs against the embedded sandbox, on both event loops."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

import asyncpod
from asyncpod import (
    ConflictError,
    InvalidNameError,
    NotFoundError,
    Resource,
    UnknownResourceError,
)
from tests.helpers.clients import make_client, new_namespace

pytestmark = pytest.mark.anyio


@pytest.fixture
async def k8s(sandbox: Any, anyio_backend: str) -> AsyncIterator[asyncpod.Client]:
    """A client of the sandbox through its proxy listener."""
    async with make_client(sandbox.proxy_url) as k8s:
        yield k8s


@pytest.fixture
async def ns(k8s: asyncpod.Client) -> str:
    """A fresh namespace for one test."""
    return await new_namespace(k8s)


def _cm(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


@pytest.mark.parametrize(
    "spelling",
    [
        "configmaps",
        "configmap",
        "ConfigMap",
        "cm",
        Resource("", "v1", "configmaps", "ConfigMap", True),
    ],
)
async def test_every_spelling_of_configmaps_reads_the_same_object(
    k8s: asyncpod.Client, ns: str, spelling: str | Resource
) -> None:
    """pods/pod/Pod/short name/Resource all address the same objects."""
    await k8s.create("configmaps", _cm("same", a="1"), namespace=ns)
    obj = await k8s.get(spelling, "same", namespace=ns)
    assert obj["data"] == {"a": "1"}


@pytest.mark.parametrize(
    "spelling",
    [
        "deployments",
        "deployment",
        "Deployment",
        "deploy",
        "deployments.apps",
        "deployments.v1.apps",
    ],
)
async def test_deployment_spellings_resolve_through_discovery(
    k8s: asyncpod.Client, spelling: str
) -> None:
    """Group-qualified and short spellings of deployments resolve to apps/v1."""
    res = await k8s.resource(spelling)
    assert (res.group, res.version, res.plural, res.kind, res.namespaced) == (
        "apps",
        "v1",
        "deployments",
        "Deployment",
        True,
    )
    assert "scale" in res.subresources


async def test_pod_spellings_and_cluster_scope(k8s: asyncpod.Client) -> None:
    """pods/pod/Pod/po are one resource; namespaces are cluster-scoped."""
    found = {await k8s.resource(s) for s in ("pods", "pod", "Pod", "po")}
    assert len(found) == 1
    assert (await k8s.resource("ns")).namespaced is False


async def test_unknown_spelling_raises_unknown_resource(k8s: asyncpod.Client) -> None:
    """A spelling nothing serves raises UnknownResourceError (a LookupError)."""
    with pytest.raises(UnknownResourceError):
        await k8s.resource("flibbertigibbets")
    with pytest.raises(LookupError):
        await k8s.get("deployments.v9.apps", "x")


async def test_configmap_lifecycle(k8s: asyncpod.Client, ns: str) -> None:
    """create, get, list, replace, the three patch types, apply and delete."""
    created = await k8s.create("configmaps", _cm("life", a="1"), namespace=ns)
    assert created["metadata"]["namespace"] == ns
    with pytest.raises(ConflictError):
        await k8s.create("configmaps", _cm("life", a="1"), namespace=ns)

    fetched = await k8s.get("configmaps", "life", namespace=ns)
    fetched["data"]["b"] = "2"
    replaced = await k8s.replace("configmaps", fetched)
    assert replaced["data"] == {"a": "1", "b": "2"}
    stale = dict(fetched)
    with pytest.raises(ConflictError):
        await k8s.replace("configmaps", stale)

    merged = await k8s.patch("configmaps", "life", {"data": {"c": "3"}}, namespace=ns)
    assert merged["data"] == {"a": "1", "b": "2", "c": "3"}
    jsoned = await k8s.patch(
        "configmaps",
        "life",
        [{"op": "remove", "path": "/data/a"}],
        namespace=ns,
        patch_type="json",
    )
    assert jsoned["data"] == {"b": "2", "c": "3"}
    strategic = await k8s.patch(
        "configmaps", "life", {"data": {"d": "4"}}, namespace=ns, patch_type="strategic"
    )
    assert strategic["data"]["d"] == "4"

    applied = await k8s.apply(
        {**_cm("life", e="5"), "metadata": {"name": "life", "namespace": ns}},
        field_manager="tests",
        force=True,
    )
    assert applied["data"]["e"] == "5"
    managers = {f.get("manager") for f in applied["metadata"].get("managedFields", [])}
    assert "tests" in managers

    names = [item["metadata"]["name"] async for item in k8s.list("configmaps", namespace=ns)]
    assert "life" in names

    await k8s.delete("configmaps", "life", namespace=ns)
    with pytest.raises(NotFoundError):
        await k8s.get("configmaps", "life", namespace=ns)


async def test_dry_run_create_stores_nothing(k8s: asyncpod.Client, ns: str) -> None:
    """A dry-run create answers with the object but does not store it."""
    answer = await k8s.create("configmaps", _cm("dry"), namespace=ns, dry_run=True)
    assert answer["metadata"]["name"] == "dry"
    with pytest.raises(NotFoundError):
        await k8s.get("configmaps", "dry", namespace=ns)


async def test_write_namespace_precedence(k8s: asyncpod.Client, ns: str) -> None:
    """metadata.namespace wins over the config's; namespace= alone places a body without one."""
    other = await new_namespace(k8s)
    obj = _cm("where")
    obj["metadata"]["namespace"] = ns
    await k8s.create("configmaps", obj)
    assert (await k8s.get("configmaps", "where", namespace=ns))["metadata"]["namespace"] == ns
    await k8s.create("configmaps", _cm("where"), namespace=other)
    assert (await k8s.get("configmaps", "where", namespace=other))["metadata"]["name"] == "where"
    await k8s.create("configmaps", _cm("plain-default"))
    assert (await k8s.get("configmaps", "plain-default"))["metadata"]["namespace"] == "default"
    await k8s.delete("configmaps", "plain-default")


async def test_a_write_to_another_namespace_than_its_body_is_refused(
    k8s: asyncpod.Client, ns: str, sandbox: Any
) -> None:
    """namespace= that contradicts metadata.namespace is refused before anything is sent."""
    other = await new_namespace(k8s)
    obj = _cm("moved")
    obj["metadata"]["namespace"] = ns
    await k8s.resource("configmaps")  # discovery, before counting
    with pytest.raises(InvalidNameError, match=f"{ns!r}.*does not match namespace={other!r}"):
        await k8s.create("configmaps", obj, namespace=other)
    await k8s.create("configmaps", obj, namespace=ns)  # agreeing is fine
    writes_before = len(sandbox.requests.filter(path=".*/configmaps.*"))
    with pytest.raises(InvalidNameError, match="does not match"):
        await k8s.replace("configmaps", obj, namespace=other)
    with pytest.raises(InvalidNameError, match="does not match"):
        await k8s.apply(
            {**obj, "apiVersion": "v1", "kind": "ConfigMap"}, field_manager="t", namespace=other
        )
    with pytest.raises(InvalidNameError, match="does not match"):
        await k8s.patch("configmaps", "moved", {"metadata": {"namespace": other}}, namespace=ns)
    move = [{"op": "replace", "path": "/metadata/namespace", "value": other}]
    with pytest.raises(InvalidNameError, match="does not match"):
        await k8s.patch("configmaps", "moved", move, namespace=ns, patch_type="json")
    # The server saw none of them: the object is where it was, unchanged.
    assert len(sandbox.requests.filter(path=".*/configmaps.*")) == writes_before
    stored = [cm["metadata"]["name"] async for cm in k8s.list("configmaps", namespace=other)]
    assert "moved" not in stored
    assert (await k8s.get("configmaps", "moved", namespace=ns))["metadata"]["namespace"] == ns


async def test_delete_with_preconditions(k8s: asyncpod.Client, ns: str) -> None:
    """A delete whose uid precondition does not match is refused with 409."""
    created = await k8s.create("configmaps", _cm("pre"), namespace=ns)
    with pytest.raises(ConflictError):
        await k8s.delete("configmaps", "pre", namespace=ns, preconditions={"uid": "not-it"})
    await k8s.delete(
        "configmaps",
        "pre",
        namespace=ns,
        preconditions={"uid": created["metadata"]["uid"]},
        propagation_policy="Background",
        grace_period_seconds=0,
    )


def _deployment(name: str, replicas: int = 1) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
            },
        },
    }


async def test_deployment_verbs_and_subresources(k8s: asyncpod.Client, ns: str) -> None:
    """Deployments: create, strategic patch of containers, scale and status subresources."""
    await k8s.create("deployments.apps", _deployment("web"), namespace=ns)
    patched = await k8s.patch(
        "deploy",
        "web",
        {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.28"}]}}}},
        namespace=ns,
        patch_type="strategic",
    )
    assert patched["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.28"
    scaled = await k8s.patch(
        "deployments.v1.apps", "web", {"spec": {"replicas": 3}}, namespace=ns, subresource="scale"
    )
    assert scaled["spec"]["replicas"] == 3
    scale = await k8s.get("deployments.apps", "web", namespace=ns, subresource="scale")
    assert scale["kind"] == "Scale"
    status = await k8s.patch(
        "deployments.apps",
        "web",
        {"status": {"observedGeneration": 7}},
        namespace=ns,
        subresource="status",
    )
    assert status["status"]["observedGeneration"] == 7
    applied = await k8s.apply(
        _deployment("web", 2), field_manager="tests", force=True, namespace=ns
    )
    assert applied["spec"]["replicas"] == 2
    await k8s.delete("deployments.apps", "web", namespace=ns, propagation_policy="Foreground")


CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {
            "plural": "widgets",
            "singular": "widget",
            "kind": "Widget",
            "shortNames": ["wd"],
        },
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                    }
                },
                "subresources": {"status": {}},
            }
        ],
    },
}


async def test_custom_resource_verbs(k8s: asyncpod.Client, ns: str) -> None:
    """A CRD created at run time is found on a discovery miss; its objects take every verb."""
    await k8s.resource("configmaps")  # fill the discovery cache before the CRD exists
    with contextlib.suppress(ConflictError):
        await k8s.create("customresourcedefinitions.apiextensions.k8s.io", CRD)
    with anyio.fail_after(10):
        while True:
            try:
                res = await k8s.resource("wd")
                break
            except UnknownResourceError:
                await anyio.sleep(0.05)
    assert (res.group, res.plural, res.kind) == ("example.com", "widgets", "Widget")
    widget = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"size": 1},
    }
    await k8s.create("widgets.example.com", widget, namespace=ns)
    merged = await k8s.patch("widget", "w", {"spec": {"color": "red"}}, namespace=ns)
    assert merged["spec"] == {"size": 1, "color": "red"}
    jsoned = await k8s.patch(
        "widgets.v1.example.com",
        "w",
        [{"op": "replace", "path": "/spec/size", "value": 2}],
        namespace=ns,
        patch_type="json",
    )
    assert jsoned["spec"]["size"] == 2
    with pytest.raises(asyncpod.APIError) as info:
        await k8s.patch("wd", "w", {"spec": {"x": 1}}, namespace=ns, patch_type="strategic")
    assert info.value.status == 415
    applied = await k8s.apply(
        {**widget, "spec": {"size": 3}, "metadata": {"name": "w", "namespace": ns}},
        field_manager="tests",
        force=True,
    )
    assert applied["spec"]["size"] == 3
    items = [w async for w in k8s.list("Widget", namespace=ns)]
    assert [w["metadata"]["name"] for w in items] == ["w"]
    await k8s.delete("wd", "w", namespace=ns)


async def test_list_across_all_namespaces(k8s: asyncpod.Client) -> None:
    """namespace=asyncpod.ALL lists objects of every namespace."""
    a, b = await new_namespace(k8s), await new_namespace(k8s)
    await k8s.create("configmaps", _cm("x"), namespace=a)
    await k8s.create("configmaps", _cm("x"), namespace=b)
    seen = {
        item["metadata"]["namespace"]
        async for item in k8s.list(
            "configmaps", namespace=asyncpod.ALL, field_selector="metadata.name=x"
        )
    }
    assert {a, b} <= seen


async def test_label_selector(k8s: asyncpod.Client, ns: str) -> None:
    """label_selector filters on the server."""
    for name, tier in (("a", "web"), ("b", "db")):
        cm = _cm(name)
        cm["metadata"]["labels"] = {"tier": tier}
        await k8s.create("configmaps", cm, namespace=ns)
    names = [
        i["metadata"]["name"] async for i in k8s.list("cm", namespace=ns, label_selector="tier=web")
    ]
    assert names == ["a"]


async def test_pagination_over_three_pages(k8s: asyncpod.Client, ns: str) -> None:
    """1,200 objects arrive in three pages of at most 500, each exactly once."""

    async def make(start: int) -> None:
        for i in range(start, 1200, 8):
            await k8s.create("configmaps", _cm(f"cm-{i:04d}"), namespace=ns)

    async with anyio.create_task_group() as tg:
        for start in range(8):
            tg.start_soon(make, start)
    items = k8s.list("configmaps", namespace=ns, chunk_size=500)
    assert items.resource_version is None
    names = []
    async for item in items:
        assert items.resource_version is not None
        names.append(item["metadata"]["name"])
    assert items.pages == 3
    names.remove("kube-root-ca.crt")  # every namespace has it, as in a real cluster
    assert sorted(names) == [f"cm-{i:04d}" for i in range(1200)]
    assert len(set(names)) == 1200


ESCAPES = ["a/b", "..", ".", "%2F", "victim/../victim", "..%2Fvictim", ""]


@pytest.mark.parametrize("bad", ESCAPES)
async def test_escaping_names_never_reach_the_server(
    k8s: asyncpod.Client, ns: str, bad: str
) -> None:
    """Names that try to leave their segment are refused before any request."""
    await k8s.create("configmaps", _cm("victim"), namespace=ns)
    with pytest.raises(InvalidNameError):
        await k8s.delete("configmaps", bad, namespace=ns)
    with pytest.raises(InvalidNameError):
        await k8s.get("configmaps", bad, namespace=ns)
    with pytest.raises(InvalidNameError):
        await k8s.patch("configmaps", bad, {"data": {"x": "1"}}, namespace=ns)
    with pytest.raises(InvalidNameError):
        await k8s.delete("configmaps", "victim", namespace=bad)
    with pytest.raises(InvalidNameError):
        await k8s.replace("configmaps", _cm(bad), namespace=ns)
    victim = await k8s.get("configmaps", "victim", namespace=ns)
    assert "data" not in victim or "x" not in (victim.get("data") or {})


async def test_all_is_refused_for_single_object_calls(k8s: asyncpod.Client) -> None:
    """asyncpod.ALL makes no sense for get or a write, and says so."""
    with pytest.raises(InvalidNameError, match="ALL"):
        await k8s.get("configmaps", "x", namespace=asyncpod.ALL)
    with pytest.raises(InvalidNameError, match="ALL"):
        await k8s.create("configmaps", _cm("x"), namespace=asyncpod.ALL)


async def test_discovery_is_cached_and_refreshed_once_on_a_miss(
    k8s: asyncpod.Client, sandbox: Any
) -> None:
    """Known spellings hit the cache; an unknown one refreshes discovery exactly once."""
    for spelling in ("configmaps", "cm", "ConfigMap", "configmap"):
        await k8s.resource(spelling)
    assert sandbox.requests.count("GET", "/api") == 1
    with pytest.raises(UnknownResourceError):
        await k8s.resource("nothing-like-this")
    assert sandbox.requests.count("GET", "/api") == 2


async def test_evict_removes_the_pod(k8s: asyncpod.Client, ns: str) -> None:
    """evict() goes through the Eviction subresource and the pod is gone."""
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "x"}]}}
    await k8s.create("pods", pod, namespace=ns)
    await k8s.evict("p", namespace=ns)
    with pytest.raises(NotFoundError):
        await k8s.get("po", "p", namespace=ns)


async def test_escaping_names_leave_no_trace_on_the_server(
    k8s: asyncpod.Client, ns: str, sandbox: Any
) -> None:
    """No request at all is sent for a refused name."""
    before = len(sandbox.requests)
    await k8s.resource("configmaps")
    sent = len(sandbox.requests)
    for bad in ESCAPES:
        with pytest.raises(InvalidNameError):
            await k8s.get("configmaps", bad, namespace=ns)
    assert len(sandbox.requests) == sent
    assert sent >= before


async def _install_widgets(k8s: asyncpod.Client) -> None:
    with contextlib.suppress(ConflictError):
        await k8s.create("customresourcedefinitions.apiextensions.k8s.io", CRD)
    with anyio.fail_after(10):
        while True:
            try:
                await k8s.resource("widgets.example.com")
                return
            except UnknownResourceError:
                await anyio.sleep(0.05)


def _object(kind: str, name: str) -> tuple[str, dict[str, Any]]:
    """A spelling and a fresh object of ``kind``, with one field ``x`` to play with."""
    if kind == "configmap":
        return "cm", {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name},
            "data": {"x": "1"},
        }
    if kind == "deployment":
        deployment = _deployment(name)
        deployment["metadata"]["annotations"] = {"x": "1"}
        return "deployments.apps", deployment
    return "widgets.v1.example.com", {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": name, "annotations": {"x": "1"}},
        "spec": {"size": 1},
    }


def _x(obj: dict[str, Any]) -> str | None:
    if obj["kind"] == "ConfigMap":
        return (obj.get("data") or {}).get("x")
    return (obj["metadata"].get("annotations") or {}).get("x")


def _set_x(kind: str, value: str) -> dict[str, Any]:
    if kind == "configmap":
        return {"data": {"x": value}}
    return {"metadata": {"annotations": {"x": value}}}


@pytest.mark.parametrize("kind", ["configmap", "deployment", "widget"])
async def test_every_verb_and_patch_type(k8s: asyncpod.Client, ns: str, kind: str) -> None:
    """create, get, list, replace, merge/json/strategic patch, apply and delete on each kind."""
    if kind == "widget":
        await _install_widgets(k8s)
    spelling, obj = _object(kind, "obj")
    created = await k8s.create(spelling, obj, namespace=ns, field_manager="creator")
    assert _x(created) == "1"
    fetched = await k8s.get(spelling, "obj", namespace=ns)
    assert fetched["metadata"]["uid"] == created["metadata"]["uid"]
    listed = [o["metadata"]["name"] async for o in k8s.list(spelling, namespace=ns)]
    assert "obj" in listed

    fetched_x = _set_x(kind, "2")
    if kind == "configmap":
        fetched["data"] = fetched_x["data"]
    else:
        fetched["metadata"]["annotations"] = fetched_x["metadata"]["annotations"]
    assert _x(await k8s.replace(spelling, fetched, namespace=ns)) == "2"

    assert _x(await k8s.patch(spelling, "obj", _set_x(kind, "3"), namespace=ns)) == "3"
    pointer = "/data/x" if kind == "configmap" else "/metadata/annotations/x"
    json_patch = [{"op": "replace", "path": pointer, "value": "4"}]
    assert _x(await k8s.patch(spelling, "obj", json_patch, namespace=ns, patch_type="json")) == "4"
    if kind == "widget":
        # Custom resources have no strategic merge: the server answers 415.
        with pytest.raises(asyncpod.APIError) as info:
            await k8s.patch(
                spelling, "obj", _set_x(kind, "5"), namespace=ns, patch_type="strategic"
            )
        assert info.value.status == 415
    else:
        strategic = await k8s.patch(
            spelling, "obj", _set_x(kind, "5"), namespace=ns, patch_type="strategic"
        )
        assert _x(strategic) == "5"

    _, desired = _object(kind, "obj")
    desired.update(_set_x(kind, "6") if kind == "configmap" else {})
    if kind != "configmap":
        desired["metadata"]["annotations"] = {"x": "6"}
    applied = await k8s.apply(desired, field_manager="applier", force=True, namespace=ns)
    assert _x(applied) == "6"
    assert "applier" in {f["manager"] for f in applied["metadata"]["managedFields"]}

    await k8s.delete(spelling, "obj", namespace=ns)
    with pytest.raises(NotFoundError):
        await k8s.get(spelling, "obj", namespace=ns)
