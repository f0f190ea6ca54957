"""The sandbox refuses invalid objects with the real API server's 422 and its causes."""

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
PODS = "/api/v1/namespaces/default/pods"
MERGE = {"Content-Type": "application/merge-patch+json"}


def _pod(name: str, *containers: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": list(containers), **spec},
    }


def _template(labels: dict[str, str], **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"labels": labels},
        "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec},
    }


async def test_invalid_name_matches_the_recorded_answer(sandbox: Sandbox) -> None:
    """A bad ConfigMap name gets the real 422: compact and newline ended, pretty for curl."""
    recorded = (DATA / "error-422-invalid-name.http").read_bytes().split(b"\r\n\r\n", 1)[1]
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad_Name"}}
    async with proxy_client(sandbox) as client:
        answer = await client.post("/api/v1/namespaces/default/configmaps", json=body)
    assert answer.status_code == 422
    compact = json.dumps(json.loads(recorded), separators=(",", ":"), ensure_ascii=False)
    assert answer.content == compact.encode() + b"\n"
    assert answer.headers["content-length"] == str(len(compact.encode()) + 1)
    # The recording was made with curl, which the API server answers pretty-printed.
    async with proxy_client(sandbox, headers={"User-Agent": "curl/8.5.0"}) as client:
        pretty = await client.post("/api/v1/namespaces/default/configmaps", json=body)
    assert pretty.content == recorded
    assert pretty.headers["content-length"] == "982"


async def test_container_without_name_is_refused(sandbox: Sandbox) -> None:
    """A pod container without a name is a 422 naming spec.containers[0].name; nothing stored."""
    async with asyncpod.Client(asyncpod.Config.proxy(sandbox.proxy_url)) as k8s:
        with pytest.raises(asyncpod.InvalidError) as caught:
            await k8s.create("pods", _pod("p", {"image": "busybox"}), namespace="default")
    err = caught.value
    assert err.status == 422
    assert err.body["message"] == 'Pod "p" is invalid: spec.containers[0].name: Required value'
    assert err.body["details"] == {
        "name": "p",
        "kind": "Pod",
        "causes": [
            {
                "reason": "FieldValueRequired",
                "message": "Required value",
                "field": "spec.containers[0].name",
            }
        ],
    }
    assert sandbox.requests.count("POST", PODS) == 1
    assert sandbox.objects("pods") == []


async def test_several_causes_are_listed_in_order(sandbox: Sandbox) -> None:
    """Every broken field is a cause; the message lists them in brackets as the server does."""
    pod = _pod(
        "p",
        {"name": "Web_1", "image": "busybox", "ports": [{"containerPort": 70000}]},
        {"name": "db"},
        restartPolicy="Sometimes",
    )
    async with proxy_client(sandbox) as client:
        answer = await client.post(PODS, json=pod)
    assert answer.status_code == 422
    causes = answer.json()["details"]["causes"]
    assert [(c["reason"], c["field"]) for c in causes] == [
        ("FieldValueInvalid", "spec.containers[0].name"),
        ("FieldValueInvalid", "spec.containers[0].ports[0].containerPort"),
        ("FieldValueRequired", "spec.containers[1].image"),
        ("FieldValueNotSupported", "spec.restartPolicy"),
    ]
    assert causes[1]["message"] == "Invalid value: 70000: must be between 1 and 65535, inclusive"
    assert causes[3]["message"] == (
        'Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"'
    )
    assert answer.json()["message"].startswith('Pod "p" is invalid: [spec.containers[0].name: ')


@pytest.mark.parametrize(
    ("path", "body", "field", "message"),
    [
        (
            "/apis/apps/v1/namespaces/default/deployments",
            {
                "metadata": {"name": "d"},
                "spec": {
                    "selector": {"matchLabels": {"a": "b"}},
                    "template": _template({"a": "c"}),
                },
            },
            "spec.template.metadata.labels",
            'Invalid value: map[string]string{"a":"c"}: `selector` does not match template '
            "`labels`",
        ),
        (
            "/apis/apps/v1/namespaces/default/statefulsets",
            {"metadata": {"name": "s"}, "spec": {"template": _template({"a": "b"})}},
            "spec.selector",
            "Required value",
        ),
        (
            "/apis/apps/v1/namespaces/default/daemonsets",
            {
                "metadata": {"name": "ds"},
                "spec": {
                    "selector": {"matchLabels": {"a": "b"}},
                    "template": _template({"a": "b"}, restartPolicy="Never"),
                },
            },
            "spec.template.spec.restartPolicy",
            'Unsupported value: "Never": supported values: "Always"',
        ),
        (
            "/apis/batch/v1/namespaces/default/jobs",
            {"metadata": {"name": "j"}, "spec": {"template": _template({})}},
            "spec.template.spec.restartPolicy",
            'Unsupported value: "Always": supported values: "OnFailure", "Never"',
        ),
        (
            "/api/v1/namespaces/default/services",
            {"metadata": {"name": "s"}, "spec": {"ports": [{"targetPort": 80}]}},
            "spec.ports[0].port",
            "Invalid value: 0: must be between 1 and 65535, inclusive",
        ),
        (
            "/api/v1/namespaces/default/configmaps",
            {"metadata": {"name": "c"}, "data": {"bad key": "v"}},
            "data[bad key]",
            'Invalid value: "bad key": a valid config key must consist of alphanumeric '
            "characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', "
            "regex used for validation is '[-._a-zA-Z0-9]+')",
        ),
        (
            "/api/v1/namespaces/default/secrets",
            {"metadata": {"name": "s", "labels": {"app": "a b"}}, "data": {}},
            "metadata.labels",
            'Invalid value: "a b": a valid label must be an empty string or consist of '
            "alphanumeric characters, '-', '_' or '.', and must start and end with an "
            "alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used "
            "for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
        ),
    ],
)
async def test_common_kinds_are_validated(
    sandbox: Sandbox, path: str, body: dict[str, Any], field: str, message: str
) -> None:
    """Deployments, StatefulSets, DaemonSets, Jobs, Services, ConfigMaps, Secrets: one cause."""
    async with proxy_client(sandbox) as client:
        answer = await client.post(path, json=body)
        stored = await client.get(f"{path}/{body['metadata']['name']}")
    assert answer.status_code == 422, answer.text
    assert answer.json()["details"]["causes"] == [
        {
            "reason": answer.json()["details"]["causes"][0]["reason"],
            "message": message,
            "field": field,
        }
    ]
    assert stored.status_code == 404


async def test_an_update_is_validated_too(sandbox: Sandbox) -> None:
    """A patch that drops a container's image is refused and the stored pod is unchanged."""
    sandbox.kubelet = False  # no scheduler or kubelet writes to the pod meanwhile
    sandbox.create(_pod("p", {"name": "c", "image": "busybox"}))
    before = sandbox.get("pods", "p")
    async with proxy_client(sandbox) as client:
        answer = await client.patch(
            f"{PODS}/p",
            json={"spec": {"containers": [{"name": "c", "image": None}]}},
            headers=MERGE,
        )
    assert answer.status_code == 422
    assert answer.json()["details"]["causes"][0]["field"] == "spec.containers[0].image"
    assert (
        sandbox.get("pods", "p")["metadata"]["resourceVersion"]
        == (before["metadata"]["resourceVersion"])
    )


WIDGETS = "/apis/example.com/v1/namespaces/default/widgets"
WIDGET_SCHEMA = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["size"],
            "properties": {
                "size": {"type": "integer", "minimum": 0},
                "mode": {"type": "string", "enum": ["fast", "slow"], "default": "fast"},
                "port": {"x-kubernetes-int-or-string": True},
                "tags": {"type": "array", "items": {"type": "string"}},
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            },
        },
        "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}},
    },
}


def _widget_crd() -> dict[str, Any]:
    return {
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
                    "schema": {"openAPIV3Schema": WIDGET_SCHEMA},
                }
            ],
        },
    }


def _widget(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": spec,
    }


async def test_custom_resources_are_pruned_and_defaulted(sandbox: Sandbox) -> None:
    """Unknown fields are dropped, defaults filled in, preserved subtrees kept as sent."""
    sandbox.create(_widget_crd())
    body = _widget("w", size=2, color="red", port="http", extra={"any": {"thing": 1}})
    body["topLevel"] = True
    async with proxy_client(sandbox) as client:
        created = await client.post(WIDGETS, json=body)
    assert created.status_code == 201, created.text
    stored = created.json()
    assert stored["spec"] == {
        "size": 2,
        "port": "http",
        "extra": {"any": {"thing": 1}},
        "mode": "fast",
    }
    assert "topLevel" not in stored
    assert sandbox.get("widgets.example.com", "w")["spec"] == stored["spec"]


@pytest.mark.parametrize(
    ("spec", "cause"),
    [
        (
            {"size": "big"},
            (
                "FieldValueTypeInvalid",
                "spec.size",
                'Invalid value: "string": spec.size in body must be of type integer: "string"',
            ),
        ),
        (
            {"size": -1},
            (
                "FieldValueInvalid",
                "spec.size",
                "Invalid value: -1: spec.size in body should be greater than or equal to 0",
            ),
        ),
        ({}, ("FieldValueRequired", "spec.size", "Required value")),
        (
            {"size": 1, "mode": "turbo"},
            (
                "FieldValueNotSupported",
                "spec.mode",
                'Unsupported value: "turbo": supported values: "fast", "slow"',
            ),
        ),
        (
            {"size": 1, "tags": ["a", 2]},
            (
                "FieldValueTypeInvalid",
                "spec.tags[1]",
                'Invalid value: "integer": spec.tags[1] in body must be of type string: "integer"',
            ),
        ),
    ],
)
async def test_custom_resources_are_validated_by_their_schema(
    sandbox: Sandbox, spec: dict[str, Any], cause: tuple[str, str, str]
) -> None:
    """A custom resource that breaks its schema is a 422 with the apiextensions causes."""
    sandbox.create(_widget_crd())
    async with proxy_client(sandbox) as client:
        answer = await client.post(WIDGETS, json=_widget("w", **spec))
    assert answer.status_code == 422, answer.text
    reason, field, message = cause
    assert answer.json()["details"]["causes"] == [
        {"reason": reason, "message": message, "field": field}
    ]
    assert answer.json()["details"]["group"] == "example.com"
    assert answer.json()["message"] == f'Widget.example.com "w" is invalid: {field}: {message}'
