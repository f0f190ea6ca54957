"""Helpers shared by the tests that run against the embedded sandbox."""

from __future__ import annotations

import importlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

import asyncpod


def engine_available(backend: str) -> bool:
    """Whether the bundled transports can run on ``backend``."""
    if backend == "asyncio":
        return True
    factory = importlib.import_module("asyncpod_transports._factory")
    source = getattr(factory, "__file__", "") or ""
    with open(source, encoding="utf-8") as handle:
        return '"anyio"' in handle.read()


@asynccontextmanager
async def client(url: str, backend: str, **kwargs: object) -> AsyncIterator[asyncpod.Client]:
    """A client of the sandbox's proxy listener; skips when no engine fits ``backend``."""
    if not engine_available(backend):
        pytest.skip(f"no transport engine for {backend} in this tree")
    async with asyncpod.Client(asyncpod.Config.proxy(url), **kwargs) as k8s:  # type: ignore[arg-type]
        yield k8s


async def new_namespace(k8s: asyncpod.Client, prefix: str = "t") -> str:
    """Create a namespace with a unique name and return it."""
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    await k8s.create("namespaces", {"metadata": {"name": name}})
    return name
