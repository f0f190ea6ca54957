"""The pure request builders: paths, queries, bodies and the namespace rules, as tables."""

from __future__ import annotations

from typing import Any

import pytest

from asyncpod import ALL, InvalidNameError, Resource
from asyncpod import _requests as build
from asyncpod._json import loads

PODS = Resource("", "v1", "pods", "Pod", True)
NODES = Resource("", "v1", "nodes", "Node", False)
DEPLOYMENTS = Resource("apps", "v1", "deployments", "Deployment", True)


def _obj(name: str = "x", namespace: str | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata}


@pytest.mark.parametrize(
    ("namespace", "body_namespace", "expected"),
    [
        (None, None, "cfg"),  # the config's namespace
        (None, "own", "own"),  # the object's
        ("arg", None, "arg"),  # the argument's
        ("same", "same", "same"),  # both, agreeing
    ],
)
def test_write_namespace_table(
    namespace: str | None, body_namespace: str | None, expected: str
) -> None:
    """A write goes to namespace=, else metadata.namespace, else the config's."""
    assert build.write_namespace(namespace, _obj(namespace=body_namespace), "cfg") == expected


@pytest.mark.parametrize(
    "builder",
    [
        lambda: build.create_request(
            PODS, _obj(namespace="b"), namespace="a", default_namespace="d"
        ),
        lambda: build.replace_request(
            PODS, _obj(namespace="b"), namespace="a", default_namespace="d"
        ),
        lambda: build.apply_request(
            PODS, _obj(namespace="b"), field_manager="m", namespace="a", default_namespace="d"
        ),
        lambda: build.patch_request(
            PODS, "x", {"metadata": {"namespace": "b"}}, namespace="a", default_namespace="d"
        ),
        lambda: build.patch_request(
            PODS,
            "x",
            [{"op": "replace", "path": "/metadata/namespace", "value": "b"}],
            namespace="a",
            default_namespace="d",
            patch_type="json",
        ),
    ],
    ids=["create", "replace", "apply", "merge-patch", "json-patch"],
)
def test_a_body_in_another_namespace_is_refused(builder: Any) -> None:
    """Every write refuses a body that names another namespace than namespace=, naming both."""
    with pytest.raises(InvalidNameError, match=r"\('b'\) does not match namespace='a'"):
        builder()


def test_the_body_is_sent_as_given() -> None:
    """A body without a namespace is not rewritten: the path carries the namespace."""
    obj = _obj()
    spec = build.create_request(PODS, obj, namespace="a", default_namespace="d")
    assert spec.json is obj
    assert spec.path == "/api/v1/namespaces/a/pods"
    assert "namespace" not in obj["metadata"]


def test_cluster_scoped_writes_ignore_namespaces() -> None:
    """A cluster-scoped resource has no namespace in its path, whatever was given."""
    spec = build.create_request(NODES, _obj("n1"), namespace="a", default_namespace="d")
    assert spec.path == "/api/v1/nodes"
    get = build.get_request(NODES, "n1", namespace=ALL, default_namespace="d")
    assert get.path == "/api/v1/nodes/n1"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: build.create_request(PODS, _obj(), namespace=ALL, default_namespace="d"), "ALL"),
        (lambda: build.get_request(PODS, "x", namespace=ALL, default_namespace="d"), "ALL"),
        (lambda: build.get_request(PODS, "../x", namespace=None, default_namespace="d"), "name"),
        (lambda: build.get_request(PODS, "x", namespace="a/b", default_namespace="d"), "namesp"),
        (
            lambda: build.replace_request(
                PODS, {"metadata": {}}, namespace="a", default_namespace="d"
            ),
            "metadata.name",
        ),
        (
            lambda: build.create_request(
                PODS, {"metadata": {"namespace": 7}}, namespace=None, default_namespace="d"
            ),
            "metadata.namespace",
        ),
        (
            lambda: build.apply_request(
                PODS, _obj(), field_manager="", namespace=None, default_namespace="d"
            ),
            "field_manager",
        ),
        (lambda: build.apply_kind({"metadata": {"name": "x"}}, "m"), "apiVersion and kind"),
    ],
)
def test_bad_arguments_are_refused_before_sending(call: Any, message: str) -> None:
    """Each builder refuses what would address another path or could not be a request."""
    with pytest.raises(InvalidNameError, match=message):
        call()


def test_read_namespaces() -> None:
    """Reads use namespace=, the config's by default, and ALL for every namespace."""
    assert build.collection_path(PODS, None, "d") == "/api/v1/namespaces/d/pods"
    assert build.collection_path(PODS, ALL, "d") == "/api/v1/pods"
    assert build.collection_path(PODS, "x", "d") == "/api/v1/namespaces/x/pods"
    assert build.collection_path(NODES, "x", "d") == "/api/v1/nodes"


def test_patch_request_shapes() -> None:
    """A patch names its content type; dicts and lists are encoded, bytes sent as they are."""
    merge = build.patch_request(PODS, "x", {"a": 1}, namespace=None, default_namespace="d")
    assert merge.headers == {"Content-Type": "application/merge-patch+json"}
    assert merge.content is not None
    assert loads(merge.content) == {"a": 1}
    raw = build.patch_request(
        DEPLOYMENTS,
        "web",
        b'{"spec":{}}',
        namespace="n",
        default_namespace="d",
        patch_type="strategic",
        subresource="scale",
        dry_run=True,
    )
    assert raw.path == "/apis/apps/v1/namespaces/n/deployments/web/scale"
    assert raw.content == b'{"spec":{}}'
    assert raw.params["dryRun"] == "All"
    with pytest.raises(ValueError, match="patch_type"):
        build.patch_request(PODS, "x", {}, namespace=None, default_namespace="d", patch_type="x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="patch must be"):
        build.patch_request(PODS, "x", 3, namespace=None, default_namespace="d")


def test_delete_and_evict_bodies() -> None:
    """DELETE carries DeleteOptions; an eviction is a policy/v1 Eviction of the pod."""
    spec = build.delete_request(
        PODS,
        "x",
        namespace=None,
        default_namespace="d",
        propagation_policy="Foreground",
        grace_period_seconds=0,
        preconditions={"uid": "u"},
        dry_run=True,
    )
    assert (spec.method, spec.path) == ("DELETE", "/api/v1/namespaces/d/pods/x")
    assert spec.json == {
        "kind": "DeleteOptions",
        "apiVersion": "v1",
        "propagationPolicy": "Foreground",
        "gracePeriodSeconds": 0,
        "preconditions": {"uid": "u"},
        "dryRun": ["All"],
    }
    evict = build.evict_request("x", namespace="n", default_namespace="d", dry_run=True)
    assert evict.path == "/api/v1/namespaces/n/pods/x/eviction"
    assert evict.json["metadata"] == {"name": "x", "namespace": "n"}
    assert evict.json["deleteOptions"] == {"dryRun": ["All"]}


def test_logs_request_query() -> None:
    """Log options become the query kubectl sends; unset ones are left out."""
    spec = build.logs_request(
        "web-0", namespace=None, default_namespace="d", container="c", follow=True, tail_lines=5
    )
    assert spec.path == "/api/v1/namespaces/d/pods/web-0/log"
    assert {k: v for k, v in spec.params.items() if v is not None} == {
        "container": "c",
        "follow": "true",
        "tailLines": 5,
    }
    with pytest.raises(InvalidNameError):
        build.logs_request("web-0", namespace=None, default_namespace="d", container="a/b")


@pytest.mark.parametrize(
    ("kwargs", "query"),
    [
        ({}, {"stdout": "true", "stderr": "true"}),
        ({"stdin": True}, {"stdin": "true", "stdout": "true", "stderr": "true"}),
        ({"tty": True}, {"stdout": "true", "tty": "true"}),
        ({"container": "app"}, {"container": "app", "stdout": "true", "stderr": "true"}),
    ],
)
def test_exec_request_table(kwargs: dict[str, Any], query: dict[str, str]) -> None:
    """exec: the command repeats, one argument each; a TTY has no stderr stream."""
    spec = build.exec_request(
        "web-0", ["sh", "-c", "echo a b"], namespace=None, default_namespace="d", **kwargs
    )
    assert (spec.method, spec.path) == ("GET", "/api/v1/namespaces/d/pods/web-0/exec")
    assert {k: v for k, v in spec.params.items() if v is not None and k != "command"} == query
    assert spec.params["command"] == ["sh", "-c", "echo a b"]


def test_exec_request_refuses_a_shell_line_and_an_empty_command() -> None:
    """A string is not split into arguments, and an empty command is refused."""
    with pytest.raises(TypeError, match="list of arguments"):
        build.exec_request("w", "ls -l", namespace=None, default_namespace="d")
    with pytest.raises(ValueError, match="at least the program"):
        build.exec_request("w", [], namespace=None, default_namespace="d")
    with pytest.raises(InvalidNameError):
        build.exec_request("../x", ["ls"], namespace=None, default_namespace="d")


def test_attach_request() -> None:
    """attach: the same streams as exec, no command."""
    spec = build.attach_request("w", namespace="ns", default_namespace="d", stdin=True)
    assert spec.path == "/api/v1/namespaces/ns/pods/w/attach"
    assert spec.params["stdin"] == "true"
    assert "command" not in spec.params


@pytest.mark.parametrize("port", [0, 65536, -1, True, "80"])
def test_portforward_request_refuses_bad_ports(port: Any) -> None:
    """A port outside 1..65535 (or not an int) is refused before anything is sent."""
    with pytest.raises(ValueError, match="TCP port number"):
        build.portforward_request("w", port, namespace=None, default_namespace="d")


def test_portforward_request() -> None:
    """port-forward: one port in the ports parameter."""
    spec = build.portforward_request("db-0", 5432, namespace="ns", default_namespace="d")
    assert (spec.path, dict(spec.params)) == (
        "/api/v1/namespaces/ns/pods/db-0/portforward",
        {"ports": 5432},
    )
