"""Shared helpers of the commands: running a coroutine, printing objects as kubectl does."""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import anyio

from asyncpod import _json
from asyncpod._assemble import choose_engine
from asyncpod._discovery import Resource


def runtime_line() -> str:
    """The JSON decoder and the default engine per event loop: what decides speed."""
    engines = ", ".join(f"{lib} {choose_engine(lib)}" for lib in ("asyncio", "trio"))
    return f"decoder {_json.describe()}; default engine: {engines}"


def run_async(function: Callable[[], Awaitable[int]]) -> int:
    """Run ``function`` on asyncio (the CLI's event loop)."""
    return anyio.run(function)


def human_duration(seconds: float) -> str:
    """kubectl's ``HumanDuration`` (k8s.io/apimachinery/pkg/util/duration)."""
    if seconds < -1:
        return "<invalid>"
    s = max(int(seconds), 0)
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rest = s % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 24 * 8:
        rest = hours % 24
        return f"{days}d{rest}h" if rest else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    years = days // 365
    if days < 365 * 8:
        rest = days % 365
        return f"{years}y{rest}d" if rest else f"{years}y"
    return f"{years}y"


def age(obj: Mapping[str, Any], now: datetime | None = None) -> str:
    """The AGE column: time since ``metadata.creationTimestamp``."""
    stamp = (obj.get("metadata") or {}).get("creationTimestamp")
    if not isinstance(stamp, str):
        return "<unknown>"
    try:
        created = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return "<unknown>"
    now = now or datetime.now(timezone.utc)
    return human_duration((now - created).total_seconds())


def _pod_columns(obj: Mapping[str, Any]) -> list[str]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    containers = spec.get("containers") or []
    statuses = status.get("containerStatuses") or []
    ready = sum(1 for s in statuses if s.get("ready"))
    restarts = sum(int(s.get("restartCount") or 0) for s in statuses)
    phase = status.get("phase") or "Pending"
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        phase = "Terminating"
    return [f"{ready}/{len(containers)}", str(phase), str(restarts)]


def _deployment_columns(obj: Mapping[str, Any]) -> list[str]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    wanted = spec.get("replicas", 1)
    return [
        f"{status.get('readyReplicas', 0)}/{wanted}",
        str(status.get("updatedReplicas", 0)),
        str(status.get("availableReplicas", 0)),
    ]


def _configmap_columns(obj: Mapping[str, Any]) -> list[str]:
    count = len(obj.get("data") or {}) + len(obj.get("binaryData") or {})
    return [str(count)]


def _namespace_columns(obj: Mapping[str, Any]) -> list[str]:
    return [str((obj.get("status") or {}).get("phase") or "Active")]


# kind -> (headers between NAME and AGE, how to fill them), as kubectl prints.
COLUMNS: dict[tuple[str, str], tuple[list[str], Callable[[Mapping[str, Any]], list[str]]]] = {
    ("", "Pod"): (["READY", "STATUS", "RESTARTS"], _pod_columns),
    ("apps", "Deployment"): (["READY", "UP-TO-DATE", "AVAILABLE"], _deployment_columns),
    ("", "ConfigMap"): (["DATA"], _configmap_columns),
    ("", "Secret"): (["DATA"], _configmap_columns),
    ("", "Namespace"): (["STATUS"], _namespace_columns),
}


def table(
    resource: Resource,
    items: Sequence[Mapping[str, Any]],
    *,
    with_namespace: bool,
    now: datetime | None = None,
) -> str:
    """Objects as kubectl's default table: NAME, kind-specific columns, AGE."""
    extra_headers, extra = COLUMNS.get((resource.group, resource.kind), ([], lambda _: []))
    headers = ["NAME", *extra_headers, "AGE"]
    if with_namespace:
        headers.insert(0, "NAMESPACE")
    rows = [headers]
    for obj in items:
        metadata = obj.get("metadata") or {}
        row = [str(metadata.get("name", "")), *extra(obj), age(obj, now)]
        if with_namespace:
            row.insert(0, str(metadata.get("namespace", "")))
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(headers))]
    lines = [
        "   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    return "\n".join(lines)


def qualified_name(resource: Resource, obj: Mapping[str, Any]) -> str:
    """``-o name``: ``configmap/web``, ``deployment.apps/web``."""
    kind = resource.kind.lower()
    if resource.group:
        kind = f"{kind}.{resource.group}"
    return f"{kind}/{(obj.get('metadata') or {}).get('name', '')}"


def dump(value: Any, output: str) -> str:
    """``value`` as JSON (indented like kubectl) or YAML."""
    if output == "yaml":
        import yaml

        text: str = yaml.safe_dump(value, sort_keys=False, allow_unicode=True)
        return text.rstrip("\n")
    return json.dumps(value, indent=4, ensure_ascii=False)


def write(text: str) -> None:
    """Print a line to stdout and flush it (for pipes and watch)."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
