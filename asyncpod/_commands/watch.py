"""``asyncpod watch RESOURCE``: one line per event until interrupted."""

from __future__ import annotations

import argparse
import json
from typing import Any

from asyncpod._client import Client
from asyncpod._commands._output import run_async, write
from asyncpod._paths import ALL


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("resource", help="a resource such as pods, cm or deployments.apps")
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", help="the namespace (default: the config's)")
    scope.add_argument(
        "-A", "--all-namespaces", action="store_true", help="events of every namespace"
    )
    parser.add_argument("-l", "--selector", help="a label selector, such as app=web")
    parser.add_argument("--field-selector", help="a field selector")
    parser.add_argument("--resource-version", help="start after this resourceVersion")
    parser.add_argument("--bookmarks", action="store_true", help="print BOOKMARK events too")
    parser.add_argument(
        "--timeout", type=float, default=None, help="stop quietly after this many seconds"
    )
    parser.add_argument(
        "-o", "--output", choices=["line", "json"], default="line", help="line format"
    )


def run(args: argparse.Namespace) -> int:
    return run_async(lambda: _watch(args))


async def _watch(args: argparse.Namespace) -> int:
    async with Client() as k8s:
        resource = await k8s.resource(args.resource)
        namespace: Any = ALL if args.all_namespaces else args.namespace
        kind = resource.kind.lower() + (f".{resource.group}" if resource.group else "")
        async with k8s.watch(
            resource,
            namespace=namespace,
            label_selector=args.selector,
            field_selector=args.field_selector,
            resource_version=args.resource_version,
            bookmarks=args.bookmarks,
            timeout_seconds=args.timeout,
        ) as events:
            async for event in events:
                if args.output == "json":
                    write(json.dumps({"type": event.type, "object": event.object}))
                    continue
                metadata = event.object.get("metadata") or {}
                name = metadata.get("name", "")
                where = metadata.get("namespace")
                target = f"{kind}/{name}" if name else kind
                if where:
                    target = f"{where}/{target}" if args.all_namespaces else target
                write(f"{event.type:<9} {target}  rv={metadata.get('resourceVersion', '')}")
    return 0
