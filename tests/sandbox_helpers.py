"""Helpers shared by the sandbox tests: an httpx client for any listener."""

from __future__ import annotations

import ssl
from typing import Any

import httpx

from asyncpod.testing import Sandbox


def https_client(sb: Sandbox, token: str | None = None, **kwargs: Any) -> httpx.AsyncClient:
    """An httpx client of the sandbox's HTTPS listener, verifying its CA."""
    context = ssl.create_default_context(cafile=str(sb.ca_file))
    headers = {"Authorization": f"Bearer {token if token is not None else sb.admin_token}"}
    if token == "":
        headers = {}
    return httpx.AsyncClient(base_url=sb.server_url, verify=context, headers=headers, **kwargs)


def proxy_client(sb: Sandbox, **kwargs: Any) -> httpx.AsyncClient:
    """An httpx client of the proxy listener (no auth)."""
    return httpx.AsyncClient(base_url=sb.proxy_url, **kwargs)


def unix_client(sb: Sandbox, **kwargs: Any) -> httpx.AsyncClient:
    """An httpx client of the Unix-socket listener (no auth)."""
    transport = httpx.AsyncHTTPTransport(uds=sb.unix_socket)
    return httpx.AsyncClient(base_url="http://localhost", transport=transport, **kwargs)


def configmap(name: str, data: dict[str, str] | None = None, **labels: str) -> dict[str, Any]:
    """A ConfigMap body."""
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data or {"k": "v"}}


CM = "/api/v1/namespaces/default/configmaps"
