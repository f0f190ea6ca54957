"""A body naming another namespace than its URL is a 400, as kube-apiserver answers it."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from asyncpod.testing import Sandbox
from tests.sandbox_helpers import CM, configmap, https_client

pytestmark = pytest.mark.anyio

# kube-apiserver 1.36's answer body (error-400-namespace-mismatch), byte for byte.
MISMATCH_BODY = (
    b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
    b'"message":"the namespace of the provided object does not match the namespace sent on '
    b'the request","reason":"BadRequest","code":400}'
)
MERGE = {"Content-Type": "application/merge-patch+json"}
APPLY = {"Content-Type": "application/apply-patch+yaml"}


def _elsewhere(name: str, **fields: Any) -> dict[str, Any]:
    body = configmap(name)
    body["metadata"]["namespace"] = "kube-system"
    body.update(fields)
    return body


def _assert_mismatch(response: httpx.Response) -> None:
    assert response.status_code == 400
    assert response.content == MISMATCH_BODY
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-length"] == str(len(MISMATCH_BODY))
    assert response.headers["cache-control"] == "no-cache, private"
    assert "audit-id" in response.headers


def _configmaps(sandbox: Sandbox) -> dict[tuple[str, str], str]:
    """Every ConfigMap but the defaults, by (namespace, name): its resourceVersion."""
    return {
        (o["metadata"]["namespace"], o["metadata"]["name"]): o["metadata"]["resourceVersion"]
        for o in sandbox.objects("configmaps")
        if o["metadata"]["name"] != "kube-root-ca.crt"
    }


async def test_create_in_another_namespace_is_400(sandbox: Sandbox) -> None:
    """POST to default of an object naming kube-system: 400 and nothing stored anywhere."""
    async with https_client(sandbox) as client:
        response = await client.post(CM, json=_elsewhere("cm"))
    _assert_mismatch(response)
    assert _configmaps(sandbox) == {}
    assert sandbox.requests.filter("POST", CM)[-1].status == 400


async def test_create_naming_a_missing_namespace_is_400_not_404(sandbox: Sandbox) -> None:
    """The namespace check comes before the lookup of the body's namespace."""
    body = configmap("cm")
    body["metadata"]["namespace"] = "no-such-namespace"
    async with https_client(sandbox) as client:
        response = await client.post(CM, json=body)
    _assert_mismatch(response)
    assert _configmaps(sandbox) == {}


async def test_body_without_namespace_takes_the_url_namespace(sandbox: Sandbox) -> None:
    """POST and PUT bodies with no namespace (or the same one) land in the URL's namespace."""
    async with https_client(sandbox) as client:
        created = await client.post(CM, json=configmap("plain"))
        same = configmap("same")
        same["metadata"]["namespace"] = "default"
        created_same = await client.post(CM, json=same)
        replaced = await client.put(f"{CM}/plain", json=configmap("plain", {"k": "w"}))
    assert created.status_code == 201
    assert created.json()["metadata"]["namespace"] == "default"
    assert created_same.status_code == 201
    assert replaced.status_code == 200
    assert replaced.json()["metadata"]["namespace"] == "default"
    assert set(_configmaps(sandbox)) == {("default", "plain"), ("default", "same")}


async def test_replace_into_another_namespace_is_400(sandbox: Sandbox) -> None:
    """PUT of a body naming kube-system: 400, the stored object keeps its version."""
    sandbox.create(configmap("cm"))
    before = _configmaps(sandbox)
    async with https_client(sandbox) as client:
        response = await client.put(f"{CM}/cm", json=_elsewhere("cm", data={"k": "moved"}))
    _assert_mismatch(response)
    assert _configmaps(sandbox) == before
    assert sandbox.get("configmaps", "cm")["data"] == {"k": "v"}


async def test_merge_patch_setting_another_namespace_is_400(sandbox: Sandbox) -> None:
    """A merge patch that sets metadata.namespace elsewhere: 400, nothing changed."""
    sandbox.create(configmap("cm"))
    before = _configmaps(sandbox)
    patch = {"metadata": {"namespace": "kube-system"}, "data": {"k": "moved"}}
    async with https_client(sandbox) as client:
        response = await client.patch(f"{CM}/cm", content=json.dumps(patch), headers=MERGE)
        same = await client.patch(
            f"{CM}/cm",
            content=json.dumps({"metadata": {"namespace": "default"}, "data": {"k": "w"}}),
            headers=MERGE,
        )
    _assert_mismatch(response)
    assert same.status_code == 200
    assert same.json()["data"] == {"k": "w"}
    assert set(_configmaps(sandbox)) == set(before)


async def test_apply_to_another_namespace_is_400(sandbox: Sandbox) -> None:
    """Server-side apply naming kube-system: 400 for an existing object and for a new one.

    The applied field has no other owner: a field conflict (409) would come first.
    """
    sandbox.create(configmap("cm"))
    before = _configmaps(sandbox)
    config = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n"
        "  namespace: kube-system\ndata:\n  applied: 'yes'\n"
    )
    async with https_client(sandbox) as client:
        existing = await client.patch(
            f"{CM}/cm",
            params={"fieldManager": "test"},
            content=config.format(name="cm"),
            headers=APPLY,
        )
        new = await client.patch(
            f"{CM}/fresh",
            params={"fieldManager": "test"},
            content=config.format(name="fresh"),
            headers=APPLY,
        )
    _assert_mismatch(existing)
    _assert_mismatch(new)
    assert _configmaps(sandbox) == before
    assert sandbox.get("configmaps", "cm")["data"] == {"k": "v"}
