"""``asyncpod apply -f FILE --field-manager NAME``: server-side apply."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from asyncpod._client import Client
from asyncpod._commands._output import run_async, write
from asyncpod._errors import AsyncpodError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-f", "--filename", required=True, help="a YAML or JSON file ('-' for stdin)"
    )
    parser.add_argument("--field-manager", default="asyncpod", help="who owns the applied fields")
    parser.add_argument(
        "--force-conflicts", action="store_true", help="take over fields other managers own"
    )
    parser.add_argument("-n", "--namespace", help="the namespace, over the file's")
    parser.add_argument("--dry-run", action="store_true", help="validate on the server only")


def load_documents(text: str, source: str) -> list[dict[str, Any]]:
    """The objects of a YAML or JSON file: every document, ``List`` items expanded.

    Raises:
        AsyncpodError: the file is not YAML, or a document is not an object.
    """
    import yaml

    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        msg = f"{source} is not YAML or JSON: {exc}".replace("\n", " ")
        raise AsyncpodError(msg) from exc
    objects: list[dict[str, Any]] = []
    for index, document in enumerate(documents):
        if document is None:
            continue
        if not isinstance(document, dict):
            msg = f"{source}: document {index + 1} is not an object"
            raise AsyncpodError(msg)
        if str(document.get("kind", "")).endswith("List") and "items" in document:
            objects.extend(document.get("items") or [])
        else:
            objects.append(document)
    for index, obj in enumerate(objects):
        if not obj.get("apiVersion") or not obj.get("kind"):
            msg = f"{source}: object {index + 1} has no apiVersion or kind"
            raise AsyncpodError(msg)
    return objects


def run(args: argparse.Namespace) -> int:
    if args.filename == "-":
        text, source = sys.stdin.read(), "stdin"
    else:
        try:
            text = Path(args.filename).read_text(encoding="utf-8")
        except OSError as exc:
            msg = f"cannot read {args.filename}: {exc.strerror or exc}"
            raise AsyncpodError(msg) from exc
        source = args.filename
    objects = load_documents(text, source)
    if not objects:
        msg = f"{source} holds no objects"
        raise AsyncpodError(msg)
    return run_async(lambda: _apply(args, objects))


async def _apply(args: argparse.Namespace, objects: list[dict[str, Any]]) -> int:
    async with Client() as k8s:
        for obj in objects:
            result = await k8s.apply(
                obj,
                field_manager=args.field_manager,
                force=args.force_conflicts,
                namespace=args.namespace,
                dry_run=args.dry_run,
            )
            resource = await k8s.discovery.resource_for_kind(obj["apiVersion"], obj["kind"])
            kind = resource.kind.lower() + (f".{resource.group}" if resource.group else "")
            name = (result.get("metadata") or {}).get("name", "")
            suffix = " (server dry run)" if args.dry_run else ""
            write(f"{kind}/{name} serverside-applied{suffix}")
    return 0
