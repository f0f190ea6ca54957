"""A minimal OpenAPI v3 description: just enough for kubectl's validation to use the server.

kubectl reads ``/openapi/v3`` and then the document of an object's group-version,
looking for a PATCH operation of the object's kind that takes the
``fieldValidation`` query parameter. Finding it, kubectl leaves validation to
the server instead of validating against schemas itself.
"""

from __future__ import annotations

import hashlib
from typing import Any

from asyncpod.testing._store import Store

_PARAMETERS = [
    {"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
    for name in ("dryRun", "fieldManager", "fieldValidation", "force", "pretty")
]


def _gv_path(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def index(store: Store) -> dict[str, Any]:
    """``/openapi/v3``: one entry per served group-version."""
    paths = {}
    for group, version in store.by_version:
        path = _gv_path(group, version)
        digest = hashlib.sha256(repr(sorted(store.by_version[(group, version)])).encode())
        paths[path] = {
            "serverRelativeURL": f"/openapi/v3/{path}?hash={digest.hexdigest()[:32].upper()}"
        }
    return {"paths": paths}


def document(store: Store, gv_path: str) -> dict[str, Any] | None:
    """``/openapi/v3/<gv>``: the operations of one group-version (without schemas)."""
    parts = gv_path.strip("/").split("/")
    if parts[:1] == ["api"] and len(parts) == 2:
        group, version = "", parts[1]
    elif parts[:1] == ["apis"] and len(parts) == 3:
        group, version = parts[1], parts[2]
    else:
        return None
    served = store.by_version.get((group, version))
    if served is None:
        return None
    prefix = "/" + _gv_path(group, version)
    paths: dict[str, Any] = {}
    for rt in served.values():
        gvk = {"group": group, "version": version, "kind": rt.kind}
        base = (
            f"{prefix}/namespaces/{{namespace}}/{rt.plural}"
            if rt.namespaced
            else f"{prefix}/{rt.plural}"
        )
        extension = {"x-kubernetes-group-version-kind": gvk}
        paths[base] = {
            "get": {"operationId": f"list{rt.kind}", **extension, "x-kubernetes-action": "list"},
            "post": {
                "operationId": f"create{rt.kind}",
                **extension,
                "x-kubernetes-action": "post",
                "parameters": _PARAMETERS,
            },
        }
        paths[base + "/{name}"] = {
            "get": {"operationId": f"read{rt.kind}", **extension, "x-kubernetes-action": "get"},
            "put": {
                "operationId": f"replace{rt.kind}",
                **extension,
                "x-kubernetes-action": "put",
                "parameters": _PARAMETERS,
            },
            "patch": {
                "operationId": f"patch{rt.kind}",
                **extension,
                "x-kubernetes-action": "patch",
                "parameters": _PARAMETERS,
            },
            "delete": {
                "operationId": f"delete{rt.kind}",
                **extension,
                "x-kubernetes-action": "delete",
            },
        }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.36.2"},
        "paths": paths,
        "components": {"schemas": {}},
    }
