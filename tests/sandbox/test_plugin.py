"""asyncpod.Client against the sandbox, and the pytest fixtures."""

from __future__ import annotations

import pytest

import asyncpod
from asyncpod.testing import PodEnvironment, Sandbox
from tests.helpers.sandbox import CM, configmap

pytestmark = pytest.mark.anyio


def _configs(sb: Sandbox, pod: PodEnvironment) -> list[asyncpod.Config]:
    return [
        asyncpod.Config.https(sb.server_url, token_file=pod.token_file, ca_file=pod.ca_file),
        asyncpod.Config.proxy(sb.proxy_url),
        asyncpod.Config.unix_socket(sb.unix_socket),
    ]


async def test_client_over_the_three_transports(
    sandbox: Sandbox, pod_environment: PodEnvironment
) -> None:
    """The client reads, writes and gets Status errors through every listener."""
    for number, config in enumerate(_configs(sandbox, pod_environment)):
        async with asyncpod.Client(config) as k8s:
            await k8s.request("POST", CM, json=configmap(f"via-{number}"))
            listed = await k8s.get_json(CM)
            with pytest.raises(asyncpod.NotFoundError) as caught:
                await k8s.get_json(f"{CM}/missing")
        assert f"via-{number}" in [i["metadata"]["name"] for i in listed["items"]]
        assert caught.value.body["reason"] == "NotFound"
    listeners = {r.listener for r in sandbox.requests}
    assert listeners == {"https", "proxy", "unix"}


async def test_client_from_the_sandbox_kubeconfig(sandbox: Sandbox) -> None:
    """The admin kubeconfig works with Config.from_kubeconfig."""
    async with asyncpod.Client(asyncpod.Config.from_kubeconfig(sandbox.kubeconfig)) as k8s:
        assert (await k8s.get_json("/api"))["kind"] == "APIVersions"


async def test_client_sees_throttling(sandbox: Sandbox) -> None:
    """A 429 reaches the client as TooManyRequestsError with retry_after (when not retried)."""
    sandbox.faults.add("throttle", count=None, retry_after=2)
    async with asyncpod.Client(asyncpod.Config.proxy(sandbox.proxy_url), retries=0) as k8s:
        with pytest.raises(asyncpod.TooManyRequestsError) as caught:
            await k8s.get_json("/api")
    assert caught.value.retry_after == 2


def test_fixture_state_is_reset_first(sandbox: Sandbox) -> None:
    """(1/2) A test may leave objects, faults and rules behind..."""
    sandbox.create(configmap("leftover"))
    sandbox.faults.add("error", count=None)
    sandbox.rules.deny()


def test_fixture_state_is_reset_second(sandbox: Sandbox) -> None:
    """(2/2) ...the next test gets a fresh cluster from the same server."""
    assert [c["metadata"]["name"] for c in sandbox.objects("configmaps", namespace="default")] == [
        "kube-root-ca.crt"
    ]
    assert len(sandbox.faults) == 0
    assert len(sandbox.rules) == 0
    assert len(sandbox.requests) == 0


def test_pod_environment_fixture(pod_environment: PodEnvironment) -> None:
    """The pod_environment fixture is a default/default folder with a valid token."""
    assert (pod_environment.root / "namespace").read_text() == "default"
    assert pod_environment.service_account == "default"
    assert (pod_environment.root / "token").read_text() == pod_environment.token
