"""Representations of objects and lists: plain JSON, kubectl's Tables, metadata only.

The API server picks the representation from the ``Accept`` header:
``as=Table`` is what kubectl prints without ``-o``, ``as=PartialObjectMetadata``
(and its List) is what metadata-only informers ask for.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from asyncpod import _json
from asyncpod.testing._objects import Stored
from asyncpod.testing._resources import ResourceType


def partial(obj: dict[str, Any]) -> dict[str, Any]:
    """The object as ``PartialObjectMetadata``: its metadata only."""
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj["metadata"],
    }


def _age(timestamp: str | None) -> str:
    if not timestamp:
        return "<unknown>"
    try:
        created = time.mktime(time.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    except ValueError:
        return "<unknown>"
    seconds = max(int(time.time() - created), 0)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"


def _pod_cells(obj: dict[str, Any]) -> list[Any]:
    status = obj.get("status") or {}
    statuses = status.get("containerStatuses") or []
    total = len((obj.get("spec") or {}).get("containers") or [])
    ready = sum(1 for s in statuses if s.get("ready"))
    restarts = sum(int(s.get("restartCount", 0)) for s in statuses)
    return [f"{ready}/{total}", status.get("phase", ""), restarts]


def _deployment_cells(obj: dict[str, Any]) -> list[Any]:
    status = obj.get("status") or {}
    wanted = (obj.get("spec") or {}).get("replicas", 0)
    return [
        f"{status.get('readyReplicas', 0)}/{wanted}",
        status.get("updatedReplicas", 0),
        status.get("availableReplicas", 0),
    ]


def _service_cells(obj: dict[str, Any]) -> list[Any]:
    spec = obj.get("spec") or {}
    ports = ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in spec.get("ports") or [])
    return [spec.get("type", "ClusterIP"), spec.get("clusterIP", "<none>"), "<none>", ports]


Cells = Callable[[dict[str, Any]], list[Any]]

# Columns (besides Name and Age) of the API server's printers for the built-in kinds.
_PRINTERS: dict[str, tuple[tuple[str, ...], Cells]] = {
    "Pod": (("Ready", "Status", "Restarts"), _pod_cells),
    "Deployment": (("Ready", "Up-to-date", "Available"), _deployment_cells),
    "ConfigMap": (("Data",), lambda o: [len(o.get("data") or {}) + len(o.get("binaryData") or {})]),
    "Secret": (("Type", "Data"), lambda o: [o.get("type", ""), len(o.get("data") or {})]),
    "Namespace": (("Status",), lambda o: [(o.get("status") or {}).get("phase", "")]),
    "Service": (("Type", "Cluster-IP", "External-IP", "Port(s)"), _service_cells),
}
_INTEGER_COLUMNS = ("Restarts", "Data", "Up-to-date", "Available")


def table(
    rt: ResourceType, items: list[Stored], list_rv: int, query: Mapping[str, str]
) -> dict[str, Any]:
    """A ``meta.k8s.io/v1`` Table: what kubectl prints without ``-o``."""
    extra: tuple[str, ...] = ()
    cells_of: Cells | None = None
    if not rt.custom and rt.kind in _PRINTERS:
        extra, cells_of = _PRINTERS[rt.kind]
    names = ("Name", *extra, "Age")
    columns = [
        {
            "name": name,
            "type": "integer" if name in _INTEGER_COLUMNS else "string",
            "format": "name" if name == "Name" else "",
            "description": name,
            "priority": 0,
        }
        for name in names
    ]
    include = query.get("includeObject", "Metadata")
    rows = []
    for stored in items:
        obj = stored.obj
        cells: list[Any] = [obj["metadata"]["name"]]
        if cells_of is not None:
            cells += cells_of(obj)
        cells.append(_age(obj["metadata"].get("creationTimestamp")))
        row: dict[str, Any] = {"cells": cells}
        if include == "Object":
            row["object"] = obj
        elif include != "None":
            row["object"] = partial(obj)
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": str(list_rv)},
        "columnDefinitions": columns,
        "rows": rows,
    }


def render_object(
    stored: Stored,
    rt: ResourceType,
    version: str,
    accept: str,
    query: Mapping[str, str],
    list_rv: int,
) -> bytes:
    """One object in the representation ``accept`` asks for.

    A custom resource read through another served version is labelled with
    that version (the sandbox's conversion is the identity).
    """
    if "as=Table" in accept:
        return _json.dumps(table(rt, [stored], list_rv, query))
    if "as=PartialObjectMetadata" in accept:
        return _json.dumps(partial(stored.obj))
    if rt.custom and version != rt.version:
        obj = stored.copy()
        obj["apiVersion"] = f"{rt.group}/{version}"
        return _json.dumps(obj)
    return stored.full()


def encode_list(
    rt: ResourceType,
    items: list[Stored],
    list_rv: int,
    token: str | None,
    remaining: int | None,
) -> bytes:
    """A plain ``<Kind>List``, assembled from each object's cached encoding."""
    meta: dict[str, Any] = {"resourceVersion": str(list_rv)}
    if token:
        meta["continue"] = token
        if remaining is not None:
            meta["remainingItemCount"] = remaining
    head = _json.dumps({"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": meta})
    # Lists are the hot path: no decoding and re-encoding of the items.
    return b"".join((head[:-1], b',"items":[', b",".join(s.item() for s in items), b"]}"))


def render_list(
    rt: ResourceType,
    items: list[Stored],
    list_rv: int,
    token: str | None,
    remaining: int | None,
    accept: str,
    query: Mapping[str, str],
) -> bytes:
    """A list in the representation ``accept`` asks for."""
    if "as=Table" in accept:
        answer = table(rt, items, list_rv, query)
        if token:
            answer["metadata"]["continue"] = token
        return _json.dumps(answer)
    if "as=PartialObjectMetadataList" in accept:
        meta: dict[str, Any] = {"resourceVersion": str(list_rv)}
        if token:
            meta["continue"] = token
        return _json.dumps(
            {
                "kind": "PartialObjectMetadataList",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": meta,
                "items": [partial(s.obj) for s in items],
            }
        )
    return encode_list(rt, items, list_rv, token, remaining)
