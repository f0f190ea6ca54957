"""Discovery documents: ``/version``, ``/api``, ``/api/v1``, ``/apis``, ``/apis/{g}/{v}``."""

from __future__ import annotations

from typing import Any

from asyncpod.testing._resources import REVIEW_GROUPS
from asyncpod.testing._store import Store

VERSION = {
    "major": "1",
    "minor": "36",
    "emulationMajor": "1",
    "emulationMinor": "36",
    "minCompatibilityMajor": "1",
    "minCompatibilityMinor": "35",
    "gitVersion": "v1.36.2",
    "gitCommit": "98b35193b2ac7a23a673325f5e9b830ecd5ba406",
    "gitTreeState": "clean",
    "buildDate": "2026-11-28T19:59:24Z",
    "goVersion": "go1.27.3",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def served_groups(store: Store) -> dict[str, list[str]]:
    groups = store.groups()
    for group in REVIEW_GROUPS:
        groups.setdefault(group, ["v1"])
    return groups


def group_entry(name: str, versions: list[str]) -> dict[str, Any]:
    ordered = sorted(versions, key=_version_priority)
    return {
        "name": name,
        "versions": [{"groupVersion": f"{name}/{v}", "version": v} for v in ordered],
        "preferredVersion": {"groupVersion": f"{name}/{ordered[0]}", "version": ordered[0]},
    }


def _version_priority(version: str) -> tuple[int, int, int]:
    # Kubernetes orders versions GA > beta > alpha, newer first.
    import re

    match = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not match:
        return (3, 0, 0)
    major, stage, minor = match.groups()
    rank = {None: 0, "beta": 1, "alpha": 2}[stage]
    return (rank, -int(major), -int(minor or 0))


def api_group_list(store: Store) -> dict[str, Any]:
    groups = served_groups(store)
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [group_entry(g, v) for g, v in groups.items() if g],
    }


def api_group(store: Store, group: str) -> dict[str, Any] | None:
    versions = served_groups(store).get(group)
    if not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **group_entry(group, versions)}


def resource_list(store: Store, group: str, version: str) -> dict[str, Any] | None:
    served = store.by_version.get((group, version))
    reviews = REVIEW_GROUPS.get(group) if version == "v1" else None
    if served is None and reviews is None:
        return None
    resources: list[dict[str, Any]] = []
    for plural in sorted(served or {}):
        resources.extend(served[plural].discovery_entries())  # type: ignore[index]
    resources.extend(reviews or [])
    body: dict[str, Any] = {"kind": "APIResourceList"}
    if group:
        body["apiVersion"] = "v1"
    body["groupVersion"] = f"{group}/{version}" if group else version
    body["resources"] = resources
    return body
