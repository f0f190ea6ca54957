"""``asyncpod get PATH`` and ``asyncpod get RESOURCE [NAME]``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from asyncpod import _json
from asyncpod._client import Client
from asyncpod._commands._output import dump, qualified_name, run_async, table, write
from asyncpod._errors import AsyncpodError
from asyncpod._paths import ALL


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "target",
        metavar="PATH|RESOURCE",
        help="a raw API path such as /api or /apis/apps/v1, or a resource such as pods",
    )
    parser.add_argument("name", nargs="?", help="one object's name")
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", help="the namespace (default: the config's)")
    scope.add_argument(
        "-A", "--all-namespaces", action="store_true", help="objects of every namespace"
    )
    parser.add_argument("-l", "--selector", help="a label selector, such as app=web")
    parser.add_argument("--field-selector", help="a field selector, such as metadata.name=web")
    parser.add_argument(
        "-o", "--output", choices=["json", "yaml", "name"], help="output format (default: a table)"
    )
    parser.add_argument(
        "--chunk-size", type=int, default=500, help="objects per page (0: one request)"
    )


def run(args: argparse.Namespace) -> int:
    if args.target.startswith("/"):
        return run_async(lambda: _get_path(args))
    return run_async(lambda: _get_resource(args))


async def _get_path(args: argparse.Namespace) -> int:
    async with Client() as k8s:
        response = await k8s.request("GET", args.target)
    try:
        value = _json.loads(response.content)
    except ValueError:
        sys.stdout.write(response.text)
        return 0
    write(json.dumps(value, indent=2, ensure_ascii=False))
    return 0


async def _get_resource(args: argparse.Namespace) -> int:
    async with Client() as k8s:
        resource = await k8s.resource(args.target)
        namespace: Any = ALL if args.all_namespaces else args.namespace
        if args.name is not None:
            if args.all_namespaces:
                msg = "a resource cannot be retrieved by name across all namespaces"
                raise AsyncpodError(msg)
            obj = await k8s.get(resource, args.name, namespace=namespace)
            if args.output == "name":
                write(qualified_name(resource, obj))
            elif args.output:
                write(dump(obj, args.output))
            else:
                write(table(resource, [obj], with_namespace=False))
            return 0
        items = [
            item
            async for item in k8s.list(
                resource,
                namespace=namespace,
                label_selector=args.selector,
                field_selector=args.field_selector,
                chunk_size=args.chunk_size or None,
            )
        ]
        where = args.namespace or k8s.config.namespace
    if args.output == "name":
        for item in items:
            write(qualified_name(resource, item))
    elif args.output:
        for item in items:
            item.setdefault("apiVersion", resource.api_version)
            item.setdefault("kind", resource.kind)
        listing = {"apiVersion": "v1", "kind": "List", "items": items, "metadata": {}}
        write(dump(listing, args.output))
    elif not items:
        if args.all_namespaces or not resource.namespaced:
            print("No resources found", file=sys.stderr)
        else:
            print(f"No resources found in {where} namespace.", file=sys.stderr)
    else:
        with_namespace = bool(args.all_namespaces and resource.namespaced)
        write(table(resource, items, with_namespace=with_namespace))
    return 0
