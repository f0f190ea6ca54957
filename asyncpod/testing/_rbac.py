"""RBAC as the real authorizer evaluates it: Roles, ClusterRoles and their bindings.

Opt-in (``Sandbox(rbac=True)``). A request is allowed when a rule of a role
bound to the user, one of its groups or its service account covers the verb,
API group, resource (``pods``, ``pods/log``) and, when the rule names them, the
object's name. ClusterRoleBindings grant everywhere; RoleBindings grant in
their own namespace (a RoleBinding may refer to a ClusterRole). There is no
deny: anything not granted is refused. ClusterRole aggregation is not done.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from asyncpod.testing._auth import User

if TYPE_CHECKING:
    from asyncpod.testing._store import Store

RBAC = "rbac.authorization.k8s.io"

# The bootstrap policy of a kubeadm cluster that the sandbox's users rely on.
BOOTSTRAP: tuple[dict[str, Any], ...] = (
    {
        "apiVersion": f"{RBAC}/v1",
        "kind": "ClusterRole",
        "metadata": {
            "name": "cluster-admin",
            "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
        },
        "rules": [
            {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
            {"nonResourceURLs": ["*"], "verbs": ["*"]},
        ],
    },
    {
        "apiVersion": f"{RBAC}/v1",
        "kind": "ClusterRole",
        "metadata": {
            "name": "system:basic-user",
            "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
        },
        "rules": [
            {
                "apiGroups": ["authorization.k8s.io"],
                "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                "verbs": ["create"],
            },
            {
                "apiGroups": ["authentication.k8s.io"],
                "resources": ["selfsubjectreviews"],
                "verbs": ["create"],
            },
        ],
    },
    *(
        {
            "apiVersion": f"{RBAC}/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {
                "name": name,
                "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
            },
            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": RBAC, "kind": "Group", "name": group}],
        }
        for name, role, group in (
            ("cluster-admin", "cluster-admin", "system:masters"),
            ("kubeadm:cluster-admins", "cluster-admin", "kubeadm:cluster-admins"),
            ("system:basic-user", "system:basic-user", "system:authenticated"),
        )
    ),
)


def _covers(values: Iterable[str] | None, wanted: str) -> bool:
    items = list(values or ())
    return "*" in items or wanted in items


def _resource_covered(resources: Iterable[str] | None, resource: str) -> bool:
    items = list(resources or ())
    if "*" in items or resource in items:
        return True
    # "*/scale" covers the scale subresource of every resource.
    sub = resource.partition("/")[2]
    return bool(sub) and f"*/{sub}" in items


def rule_allows(
    rule: dict[str, Any], verb: str, group: str, resource: str, name: str | None
) -> bool:
    """Whether one PolicyRule covers the request."""
    if not isinstance(rule, dict) or ("nonResourceURLs" in rule and "resources" not in rule):
        return False
    if not _covers(rule.get("verbs"), verb) or not _covers(rule.get("apiGroups"), group):
        return False
    if not _resource_covered(rule.get("resources"), resource):
        return False
    names = rule.get("resourceNames")
    return not names or (name is not None and name in names)


def _subject_matches(subject: Any, user: User, binding_namespace: str) -> bool:
    if not isinstance(subject, dict):
        return False
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "User":
        return bool(name == user.name)
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        return user.name == f"system:serviceaccount:{namespace}:{name}"
    return False


def _rules_of(store: Store, ref: Any, namespace: str) -> list[Any]:
    if not isinstance(ref, dict):
        return []
    if ref.get("kind") == "ClusterRole":
        role = store.data[(RBAC, "clusterroles")].get(("", str(ref.get("name"))))
    elif ref.get("kind") == "Role":
        role = store.data[(RBAC, "roles")].get((namespace, str(ref.get("name"))))
    else:
        return []
    return list((role.obj.get("rules") or []) if role is not None else [])


def allows(
    store: Store,
    user: User,
    verb: str,
    group: str,
    resource: str,
    namespace: str | None,
    name: str | None,
) -> bool:
    """Whether the stored RBAC objects grant ``verb`` on ``resource`` to ``user``."""
    bindings = [(b, "") for b in store.data[(RBAC, "clusterrolebindings")].values()]
    if namespace:
        bindings += [
            (b, namespace)
            for (ns, _), b in store.data[(RBAC, "rolebindings")].items()
            if ns == namespace
        ]
    for binding, binding_ns in bindings:
        obj = binding.obj
        if not any(_subject_matches(s, user, binding_ns) for s in obj.get("subjects") or ()):
            continue
        for rule in _rules_of(store, obj.get("roleRef"), binding_ns):
            if rule_allows(rule, verb, group, resource, name):
                return True
    return False
