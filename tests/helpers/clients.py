"""The client factory behind the ``make_client`` fixture, and a namespace helper."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import asyncpod
from asyncpod import Client, Config, RetryPolicy
from asyncpod.testing import Sandbox
from tests.servers.fault import TOKEN

# Short waits keep the suite fast; the policy's rules are the same.
FAST = RetryPolicy(backoff_base=0.05, backoff_max=0.5)

ClientFactory = Callable[..., Client]


def client_config(target: object, *, proxy: bool = False) -> Config:
    """The config of a client of ``target``: a Config, a URL, a Sandbox or a test server.

    A sandbox is reached through its admin kubeconfig (HTTPS with a token), or
    through its plain proxy listener with ``proxy=True``. A test server with a
    ``ca_file`` is reached over HTTPS with the bearer token ``TOKEN``; a URL or
    any other server with a ``url`` attribute through ``Config.proxy``.
    """
    if isinstance(target, Config):
        return target
    if isinstance(target, Sandbox):
        return (
            Config.proxy(target.proxy_url) if proxy else Config.from_kubeconfig(target.kubeconfig)
        )
    if isinstance(target, str):
        return Config.proxy(target)
    url = getattr(target, "url", None)
    if not isinstance(url, str):
        raise TypeError(f"no client config for {target!r}")
    ca_file = getattr(target, "ca_file", None)
    if ca_file is not None:
        return Config.https(url, token=TOKEN, ca_file=ca_file)
    return Config.proxy(url)


def make_client(target: object, *, proxy: bool = False, **kwargs: Any) -> Client:
    """A client of ``target`` (see ``client_config``) with short retry waits by default.

    The client is an async context manager: ``async with make_client(server) as k8s``.
    Keyword arguments go to ``Client`` (``retries=0`` turns retries off).
    """
    kwargs.setdefault("retries", FAST)
    return Client(client_config(target, proxy=proxy), **kwargs)


async def new_namespace(k8s: asyncpod.Client, prefix: str = "t") -> str:
    """Create a namespace with a unique name and return it."""
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    await k8s.create("namespaces", {"metadata": {"name": name}})
    return name
