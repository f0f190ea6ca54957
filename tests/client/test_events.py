"""``Client(on_event=...)`` receives the token, CA and watch events, against the sandbox.

Each test records what a user's callback gets while the sandbox rotates the
pod's token, while a CA bundle is replaced, or while a watch loses its
connection; and checks that no event carries a token.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

import anyio
import pytest
import trustme

import asyncpod
from asyncpod import (
    CAReloadEvent,
    Client,
    Config,
    Event,
    TokenReloadEvent,
    UnauthorizedError,
    WatchReconnectEvent,
)
from asyncpod.testing import PodEnvironment, Sandbox
from tests.helpers.clients import new_namespace

pytestmark = pytest.mark.anyio


def in_cluster(pod: PodEnvironment) -> Config:
    """The config a process in this pod gets from the chain."""
    return Config.in_cluster(root=pod.root, environ=pod.environ)


E = TypeVar("E", bound=Event)


def of_type(events: Sequence[Event], kind: type[E]) -> list[E]:
    """The events of one class, in order."""
    return [e for e in events if isinstance(e, kind)]


def assert_no_secret(events: Sequence[Event], *secrets: str) -> None:
    """No event, in any field, holds a token or the signature part of a JWT."""
    shown = " ".join(repr(e) for e in events)
    for secret in secrets:
        assert secret not in shown
        assert secret.rsplit(".", 1)[-1] not in shown


async def test_token_rotation_is_reported(
    sandbox: Sandbox, pod_environment: PodEnvironment
) -> None:
    """A rotated token file gives a TokenReloadEvent with a new token; no event shows it."""
    events: list[Event] = []
    tokens = [pod_environment.token]
    async with Client(in_cluster(pod_environment), on_event=events.append) as k8s:
        await k8s.get_json("/api")
        assert of_type(events, TokenReloadEvent) == []  # the first read is not a reload
        # The old token keeps working for a while, as after a real rotation.
        tokens.append(await anyio.to_thread.run_sync(pod_environment.rotate_token, 30.0))
        with anyio.fail_after(5):
            while not of_type(events, TokenReloadEvent):
                await k8s.get_json("/api")
                await anyio.sleep(0.1)
    [reload] = of_type(events, TokenReloadEvent)
    assert reload == TokenReloadEvent(str(pod_environment.root / "token"), "changed", changed=True)
    assert [r.status for r in sandbox.requests.filter("GET", "/api")].count(401) == 0
    assert_no_secret(events, *tokens)


async def test_refused_token_is_reported_with_reason_401(
    sandbox: Sandbox, pod_environment: PodEnvironment
) -> None:
    """A 401 re-reads the file at once: reason "401", and a rotated token is picked up."""
    events: list[Event] = []
    tokens = [pod_environment.token]
    async with Client(in_cluster(pod_environment), on_event=events.append) as k8s:
        await k8s.get_json("/api")
        # Refused and not rotated: the re-read finds the same token, the call fails.
        pod_environment.expire_token()
        with pytest.raises(UnauthorizedError):
            await k8s.get_json("/api")
        assert of_type(events, TokenReloadEvent)[-1] == TokenReloadEvent(
            str(pod_environment.token_file), "401", changed=False
        )
        # Rotated and the old token refused at once: the next call still works.
        tokens.append(await anyio.to_thread.run_sync(pod_environment.rotate_token, 0.0))
        await k8s.get_json("/api")
    last = of_type(events, TokenReloadEvent)[-1]
    # The refused call re-reads at once; a stat check a second later may come first.
    assert (last.reason, last.changed, last.error) in {("401", True, None), ("changed", True, None)}
    assert_no_secret(events, *tokens)


async def test_token_near_its_expiry_is_read_again(sandbox: Sandbox, tmp_path: Path) -> None:
    """A token whose JWT exp is near is read again before it: reason "expiry"."""
    # 6 s of life, re-read 5 s before exp: the next check after a second reads it.
    pod = await anyio.to_thread.run_sync(
        lambda: sandbox.pod_environment(root=tmp_path / "sa", token_lifetime=6.0)
    )
    events: list[Event] = []
    async with Client(in_cluster(pod), on_event=events.append) as k8s:
        await k8s.get_json("/api")
        await anyio.sleep(1.1)
        await k8s.get_json("/api")
    assert of_type(events, TokenReloadEvent) == [
        TokenReloadEvent(str(pod.token_file), "expiry", changed=False)
    ]
    assert_no_secret(events, pod.token)


def _replace(path: Path, data: bytes) -> None:
    """Write ``path`` anew (another inode), as a kubelet or an editor does."""
    temporary = path.with_suffix(".tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


async def test_ca_rotation_is_reported(sandbox: Sandbox, tmp_path: Path) -> None:
    """A failed verification, then a corrected CA file: CAReloadEvent("verification failed")."""
    ca_file = tmp_path / "ca.crt"
    _replace(ca_file, trustme.CA().cert_pem.bytes())  # not the sandbox's CA
    config = Config.https(sandbox.server_url, token=sandbox.admin_token, ca_file=ca_file)
    events: list[Event] = []
    async with Client(config, retries=0, on_event=events.append) as k8s:
        with pytest.raises(asyncpod.TransportError):
            await k8s.get_json("/api")
        assert of_type(events, CAReloadEvent) == []
        _replace(ca_file, sandbox.ca_file.read_bytes())
        await k8s.get_json("/api")
    assert of_type(events, CAReloadEvent) == [CAReloadEvent(str(ca_file), "verification failed")]
    assert_no_secret(events, sandbox.admin_token)


async def test_watch_reconnects_are_reported(
    sandbox: Sandbox, pod_environment: PodEnvironment
) -> None:
    """A dropped watch, then a 503 on reconnecting: two WatchReconnectEvents, then it resumes."""
    events: list[Event] = []
    async with Client(in_cluster(pod_environment), on_event=events.append) as k8s:
        ns = await new_namespace(k8s)
        path = f"/api/v1/namespaces/{ns}/configmaps"
        items = k8s.list("configmaps", namespace=ns)
        async for _ in items:
            pass
        sandbox.faults.add("watch_drop", after=2, path=path)
        sandbox.faults.add("error", status=503, method="GET", path=path)
        names: list[str] = []
        seen: list[str | None] = []
        with anyio.fail_after(15):
            async with k8s.watch(
                "configmaps", namespace=ns, resource_version=items.resource_version
            ) as watch:
                for i in range(3):
                    await k8s.create("configmaps", {"metadata": {"name": f"cm-{i}"}}, namespace=ns)
                async for event in watch:
                    names.append(event.object["metadata"]["name"])
                    seen.append(event.resource_version)
                    if len(names) == 3:
                        break
    assert names == ["cm-0", "cm-1", "cm-2"]
    reconnects = of_type(events, WatchReconnectEvent)
    assert [(e.path, e.reason, e.attempt) for e in reconnects] == [
        (path, "connection dropped", 1),
        (path, "HTTP 503", 2),
    ]
    # Both resume after the last event the caller saw, with a growing backoff.
    assert [e.resource_version for e in reconnects] == [seen[1], seen[1]]
    assert all(e.delay > 0 for e in reconnects)
    assert_no_secret(events, pod_environment.token)
