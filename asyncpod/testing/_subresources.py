"""Subresources besides ``status``: scale, eviction, token, and where a log starts.

``status`` is a write path of the store (``subresource="status"``): it only
changes ``.status``, and the main resource never does for kinds that have it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from asyncpod.testing import _jwt, _status
from asyncpod.testing._objects import Stored
from asyncpod.testing._resources import ResourceType
from asyncpod.testing._routes import Route
from asyncpod.testing._store import Store

if TYPE_CHECKING:
    from asyncpod.testing._sandbox import Sandbox


def scale_of(obj: dict[str, Any], rt: ResourceType) -> dict[str, Any]:
    """Imitates GET ``.../scale``: an ``autoscaling/v1`` Scale of a workload."""
    meta = obj["metadata"]
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    selector = (spec.get("selector") or {}).get("matchLabels") or {}
    scale: dict[str, Any] = {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"],
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
            "creationTimestamp": meta.get("creationTimestamp"),
        },
        "spec": {"replicas": spec.get("replicas", 0)},
        "status": {"replicas": status.get("replicas", 0)},
    }
    if selector:
        scale["status"]["selector"] = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
    return scale


def update_scale(
    store: Store,
    rt: ResourceType,
    route: Route,
    body: Any,
    *,
    dry_run: bool,
    manager: str,
) -> dict[str, Any]:
    """Imitates PUT (and PATCH) ``.../scale``: sets ``spec.replicas`` of the workload."""
    assert route.name is not None
    current = store.get(rt, route.namespace, route.name)
    replicas = ((body or {}).get("spec") or {}).get("replicas")
    if not isinstance(replicas, int):
        raise _status.bad_request("spec.replicas must be an integer")
    wanted_rv = ((body or {}).get("metadata") or {}).get("resourceVersion")
    if wanted_rv and str(wanted_rv) != current.obj["metadata"]["resourceVersion"]:
        raise _status.conflict(rt.group, rt.plural, route.name)
    new = current.copy()
    new.setdefault("spec", {})["replicas"] = replicas
    stored = store.replace_object(
        rt, route.namespace, route.name, new, dry_run=dry_run, manager=manager
    )
    return scale_of(stored.obj, rt)


def evict(store: Store, rt: ResourceType, route: Route, *, dry_run: bool) -> dict[str, Any]:
    """Imitates POST ``pods/NAME/eviction`` without disruption budgets: the pod goes."""
    assert route.name is not None
    store.delete(rt, route.namespace, route.name, dry_run=dry_run)
    return _status.success(code=201)


def token_request(sb: Sandbox, rt: ResourceType, route: Route, body: Any) -> dict[str, Any]:
    """Imitates POST ``serviceaccounts/NAME/token``: a signed, expiring JWT (at least 10 min)."""
    assert route.name is not None
    assert route.namespace is not None
    sa = sb._store.get(rt, route.namespace, route.name)
    spec = (body or {}).get("spec") or {}
    lifetime = int(spec.get("expirationSeconds") or 3600)
    lifetime = max(lifetime, 600)
    token, claims = sb._authenticator.issue(
        route.namespace, route.name, sa.obj["metadata"]["uid"], lifetime
    )
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(claims["exp"]))
    return {
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {
            "name": route.name,
            "namespace": route.namespace,
            "creationTimestamp": None,
        },
        "spec": {
            "audiences": spec.get("audiences") or [_jwt.AUDIENCE],
            "expirationSeconds": lifetime,
            "boundObjectRef": spec.get("boundObjectRef"),
        },
        "status": {"token": token, "expirationTimestamp": expires},
    }


def _log_container(containers: list[str], wanted: str, pod: str) -> str:
    if not wanted:
        if len(containers) > 1:
            raise _status.bad_request(
                f"a container name must be specified for pod {pod}, choose one of: "
                f"[{' '.join(containers)}]"
            )
        return containers[0] if containers else ""
    if wanted not in containers:
        raise _status.bad_request(f"container {wanted} is not valid for pod {pod}")
    return wanted


LogKey = tuple[str, str, str]  # (namespace, pod, container)


def log_source(
    store: Store, rt: ResourceType, route: Route, query: Mapping[str, str]
) -> tuple[Stored, LogKey, int]:
    """Imitates GET ``pods/NAME/log``'s checks: the pod, its container, ``tailLines``.

    Returns the pod, the key of its container's lines and the first line to send.
    """
    assert route.name is not None
    assert route.namespace is not None
    pod = store.get(rt, route.namespace, route.name)
    containers = [str(c.get("name")) for c in (pod.obj.get("spec") or {}).get("containers") or []]
    container = _log_container(containers, query.get("container") or "", route.name)
    key = (route.namespace, route.name, container)
    start = 0
    tail = query.get("tailLines")
    if tail is not None and tail.isdigit():
        start = max(len(store.pod_logs.get(key, [])) - int(tail), 0)
    return pod, key, start
