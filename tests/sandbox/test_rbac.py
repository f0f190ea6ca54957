"""Sandbox(rbac=True): Roles, ClusterRoles and bindings decide, with the real 403s."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import asyncpod
from asyncpod.testing import Sandbox

pytestmark = pytest.mark.anyio

RBAC = "rbac.authorization.k8s.io/v1"


@pytest.fixture(scope="module")
def _rbac_sandbox() -> Iterator[Sandbox]:
    with Sandbox(rbac=True, kubelet=False) as sb:
        yield sb


@pytest.fixture
def sb(_rbac_sandbox: Sandbox) -> Sandbox:
    """A sandbox with RBAC on, reset for this test."""
    _rbac_sandbox.reset()
    _rbac_sandbox.ensure_namespace("team")
    return _rbac_sandbox


def _client(sb: Sandbox, tmp_path: Path, account: str = "robot") -> asyncpod.Client:
    pod = sb.pod_environment("team", account, root=tmp_path / account)
    return asyncpod.Client(asyncpod.Config.in_cluster(root=pod.root, environ=pod.environ))


def _role(kind: str, name: str, *rules: dict[str, Any], namespace: str = "team") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if kind == "Role":
        meta["namespace"] = namespace
    return {"apiVersion": RBAC, "kind": kind, "metadata": meta, "rules": list(rules)}


def _binding(kind: str, name: str, role_kind: str, role: str, account: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if kind == "RoleBinding":
        meta["namespace"] = "team"
    return {
        "apiVersion": RBAC,
        "kind": kind,
        "metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": "team"}],
    }


async def test_nothing_bound_is_forbidden_with_the_real_message(
    sb: Sandbox, tmp_path: Path
) -> None:
    """A service account without bindings gets the authorizer's 403 for a list."""
    async with _client(sb, tmp_path) as k8s:
        with pytest.raises(asyncpod.ForbiddenError) as caught:
            await k8s.get_json("/api/v1/namespaces/default/pods")
        whoami = await k8s.create(
            "selfsubjectreviews.authentication.k8s.io",
            {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        )
    assert caught.value.body["message"] == (
        'pods is forbidden: User "system:serviceaccount:team:robot" cannot list resource '
        '"pods" in API group "" in the namespace "default"'
    )
    assert caught.value.body["details"] == {"kind": "pods"}
    assert whoami["status"]["userInfo"]["username"] == "system:serviceaccount:team:robot"
    assert sb.requests.count("GET", "/api/v1/namespaces/default/pods") == 1


async def test_a_role_grants_its_verbs_in_its_namespace(sb: Sandbox, tmp_path: Path) -> None:
    """A RoleBinding to a Role allows its verbs and resource names there, nothing else."""
    sb.create(
        _role(
            "Role",
            "reader",
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]},
            {
                "apiGroups": [""],
                "resources": ["configmaps"],
                "verbs": ["delete"],
                "resourceNames": ["scratch"],
            },
        )
    )
    sb.create(_binding("RoleBinding", "robot-reads", "Role", "reader", "robot"))
    for name in ("app-config", "scratch"):
        sb.create(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}, namespace="team"
        )
    async with _client(sb, tmp_path) as k8s:
        names = [cm["metadata"]["name"] async for cm in k8s.list("configmaps")]
        await k8s.delete("configmaps", "scratch")
        with pytest.raises(asyncpod.ForbiddenError) as denied_delete:
            await k8s.delete("configmaps", "app-config")
        with pytest.raises(asyncpod.ForbiddenError):
            await k8s.get_json("/api/v1/namespaces/default/configmaps")
        with pytest.raises(asyncpod.ForbiddenError):
            await k8s.get_json("/api/v1/namespaces/team/secrets")
    assert "app-config" in names
    assert denied_delete.value.body["message"] == (
        'configmaps "app-config" is forbidden: User "system:serviceaccount:team:robot" cannot '
        'delete resource "configmaps" in API group "" in the namespace "team"'
    )
    assert denied_delete.value.body["details"] == {"name": "app-config", "kind": "configmaps"}
    assert [cm["metadata"]["name"] for cm in sb.objects("configmaps", namespace="team")] == [
        "app-config",
        "kube-root-ca.crt",
    ]


async def test_cluster_roles_and_access_reviews(sb: Sandbox, tmp_path: Path) -> None:
    """A ClusterRoleBinding grants everywhere; SelfSubjectAccessReview answers the same."""
    sb.create(
        _role(
            "ClusterRole",
            "pod-watcher",
            {
                "apiGroups": [""],
                "resources": ["pods", "pods/log"],
                "verbs": ["get", "list", "watch"],
            },
        )
    )
    sb.create(
        _binding("ClusterRoleBinding", "robot-watches", "ClusterRole", "pod-watcher", "robot")
    )

    def review(verb: str, resource: str, namespace: str) -> dict[str, Any]:
        return {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {
                "resourceAttributes": {"verb": verb, "resource": resource, "namespace": namespace}
            },
        }

    async with _client(sb, tmp_path) as k8s:
        pods = await k8s.get_json("/api/v1/pods")
        can_list = await k8s.create(
            "selfsubjectaccessreviews.authorization.k8s.io", review("list", "pods", "default")
        )
        can_create = await k8s.create(
            "selfsubjectaccessreviews.authorization.k8s.io", review("create", "pods", "default")
        )
    async with _client(sb, tmp_path, "other") as k8s:
        with pytest.raises(asyncpod.ForbiddenError):
            await k8s.get_json("/api/v1/pods")
    assert pods["kind"] == "PodList"
    assert can_list["status"]["allowed"] is True
    assert can_create["status"]["allowed"] is False


async def test_admin_and_bootstrap_roles(sb: Sandbox) -> None:
    """The admin kubeconfig is bound to cluster-admin, which is served like any ClusterRole."""
    async with asyncpod.Client(asyncpod.Config.from_kubeconfig(sb.kubeconfig)) as k8s:
        admin = await k8s.get("clusterroles.rbac.authorization.k8s.io", "cluster-admin")
        binding = await k8s.get(
            "clusterrolebindings.rbac.authorization.k8s.io", "kubeadm:cluster-admins"
        )
        await k8s.delete("configmaps", "kube-root-ca.crt", namespace="team")
    assert admin["rules"][0] == {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}
    assert binding["subjects"][0]["name"] == "kubeadm:cluster-admins"
