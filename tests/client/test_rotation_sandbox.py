"""Token rotation against the embedded sandbox: the kubelet's folder, the sandbox's JWTs.

The same behaviour as tests/client/test_rotation.py, with the sandbox as API server:
its service-account tokens are real JWTs, refused ``grace`` seconds after a
rotation, and its request log shows what the client sent.
"""

from __future__ import annotations

import logging

import anyio
import pytest

from asyncpod import AsyncpodError, Config, ForbiddenError
from asyncpod.testing import PodEnvironment, Sandbox
from tests.helpers.clients import make_client
from tests.helpers.sandbox import https_client

pytestmark = pytest.mark.anyio


def in_cluster(pod: PodEnvironment) -> Config:
    """The config a process in this pod gets from the chain."""
    return Config.in_cluster(root=pod.root, environ=pod.environ)


def bearer(token: str) -> dict[str, str]:
    """The Authorization header of ``token``."""
    return {"Authorization": f"Bearer {token}"}


def token_reads(caplog: pytest.LogCaptureFixture) -> int:
    """How many times the token file was read, from the DEBUG log."""
    return sum(
        "token file" in r.getMessage() and " read (" in r.getMessage() for r in caplog.records
    )


@pytest.mark.slow
async def test_rotation_under_load(
    sandbox: Sandbox, pod_environment: PodEnvironment, caplog: pytest.LogCaptureFixture
) -> None:
    """2,000 requests, 32 at a time, across 10 rotations with 1 s grace: zero failures.

    The one load test of rotation: the server counts the answers, every
    rotated-out token is refused by the server afterwards (so each rotation was
    real), the newest one is accepted, and no token shows up in the log.
    """
    caplog.set_level(logging.DEBUG)
    tokens = [pod_environment.token]
    failures: list[Exception] = []
    started = 0
    async with make_client(in_cluster(pod_environment), retries=0) as k8s:
        assert k8s.config.source == "in-cluster"

        async def worker() -> None:
            nonlocal started
            while started < 2000:
                started += 1
                try:
                    await k8s.get_json("/api")
                except AsyncpodError as exc:
                    failures.append(exc)
                await anyio.sleep(0.05)

        async def rotator() -> None:
            # A grace several times the slowest request on a loaded machine: a
            # request whose token was rotated out twice before it reached the
            # server fails after its one re-read, as it would with client-go.
            for _ in range(10):
                await anyio.sleep(0.25)
                tokens.append(pod_environment.rotate_token(grace=1.0))

        async with anyio.create_task_group() as tg:
            tg.start_soon(rotator)
            for _ in range(32):
                tg.start_soon(worker)

    assert failures == []
    assert len(tokens) == 11
    statuses = [r.status for r in sandbox.requests.filter("GET", "/api")]
    assert statuses.count(200) == 2000
    logged = caplog.text
    assert not [t for t in tokens if t in logged]
    # Not even a JWT's signature part may show up.
    assert not [t.rsplit(".", 1)[-1] for t in tokens if t.rsplit(".", 1)[-1] in logged]
    async with https_client(sandbox) as raw:
        for old in tokens[:-1]:
            # Refused once its grace is over; polled, as the grace runs on the server's clock.
            with anyio.fail_after(10):
                while True:
                    if (await raw.get("/api", headers=bearer(old))).status_code == 401:
                        break
                    await anyio.sleep(0.05)
        assert (await raw.get("/api", headers=bearer(tokens[-1]))).status_code == 200


async def test_burst_of_401s_reads_once(
    sandbox: Sandbox, pod_environment: PodEnvironment, caplog: pytest.LogCaptureFixture
) -> None:
    """32 concurrent requests rejected with 401 cause one token read, then all succeed."""
    caplog.set_level(logging.DEBUG, logger="asyncpod")
    async with make_client(in_cluster(pod_environment), retries=0) as k8s:
        before = token_reads(caplog)
        pod_environment.rotate_token(grace=0.0)
        results: list[object] = []

        async def call() -> None:
            results.append(await k8s.get_json("/api"))

        async with anyio.create_task_group() as tg:
            for _ in range(32):
                tg.start_soon(call)
    assert len(results) == 32
    assert token_reads(caplog) - before == 1
    statuses = [r.status for r in sandbox.requests.filter("GET", "/api")]
    assert statuses.count(401) == 32
    assert statuses.count(200) == 32


async def test_403_is_not_retried(
    sandbox: Sandbox, pod_environment: PodEnvironment, caplog: pytest.LogCaptureFixture
) -> None:
    """A service account refused by RBAC gets one 403: no token read, no retry."""
    caplog.set_level(logging.DEBUG, logger="asyncpod")
    # The policy of the reference recordings: own-namespace reads only.
    sandbox.rules.restrict_service_accounts()
    async with make_client(in_cluster(pod_environment), retries=0) as k8s:
        before = token_reads(caplog)
        with pytest.raises(ForbiddenError):
            await k8s.get_json("/api/v1/namespaces/kube-system/secrets")
    assert [r.status for r in sandbox.requests.filter("GET", ".*/secrets")] == [403]
    assert token_reads(caplog) == before


async def test_kubeconfig_of_the_sandbox(sandbox: Sandbox) -> None:
    """The sandbox's admin kubeconfig resolves and reaches the server."""
    config = Config.from_kubeconfig(sandbox.kubeconfig)
    assert config.source == "kubeconfig"
    async with make_client(config, retries=0) as k8s:
        versions = await k8s.get_json("/api")
    assert versions["kind"] == "APIVersions"
