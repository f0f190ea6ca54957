"""Retries and restarts against the sandbox's fault injection, over HTTPS with a token."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import anyio
import pytest

from asyncpod import (
    Client,
    ConflictError,
    RequestTimeoutError,
    RetryPolicy,
    ServerError,
    TransportError,
)
from asyncpod.testing import Sandbox
from tests.helpers.sandbox import CM, configmap
from tests.servers.fault import wait_until

pytestmark = pytest.mark.anyio


def _configmaps(sb: Sandbox) -> list[str]:
    """Names of the configmaps made by a test (not the sandbox's own)."""
    names = [o["metadata"]["name"] for o in sb.objects("configmaps", namespace="default")]
    return [name for name in names if name != "kube-root-ca.crt"]


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    """One sandbox for the module, reset before each test."""
    with Sandbox() as sb:
        yield sb


@pytest.fixture
def sb(sandbox: Sandbox) -> Sandbox:
    """The sandbox, fresh: no objects, faults or log from earlier tests."""
    if not sandbox.running:
        sandbox.start()
    sandbox.reset()
    return sandbox


async def test_throttle_retried_after_retry_after(
    sb: Sandbox, make_client: Callable[..., Client]
) -> None:
    """The sandbox's 429 with Retry-After: 1 is waited out, then the create succeeds once."""
    sb.faults.add("throttle", method="POST", path="configmaps$", retry_after=1)
    async with make_client(sb) as k8s:
        start = anyio.current_time()
        await k8s.request("POST", CM, json=configmap("throttled"))
        assert 0.9 <= anyio.current_time() - start < 6.0
    assert sb.requests.count("POST", CM) == 2
    assert _configmaps(sb) == ["throttled"]


async def test_503_on_get_retried(sb: Sandbox, make_client: Callable[..., Client]) -> None:
    """Two 503s on a GET are retried; the third try answers."""
    sb.faults.add("error", status=503, method="GET", path="^/api$", count=2)
    async with make_client(sb) as k8s:
        assert (await k8s.get_json("/api"))["kind"] == "APIVersions"
    assert sb.requests.count("GET", "/api") == 3


async def test_500_on_post_raised(sb: Sandbox, make_client: Callable[..., Client]) -> None:
    """A 500 on a POST without Retry-After is raised, not replayed."""
    sb.faults.add("error", status=500, method="POST")
    async with make_client(sb) as k8s:
        with pytest.raises(ServerError):
            await k8s.request("POST", CM, json=configmap("once"))
    assert sb.requests.count("POST", CM) == 1


async def test_post_dropped_after_handling_not_replayed(
    sb: Sandbox, make_client: Callable[..., Client]
) -> None:
    """A create the server stored before dropping the connection is not sent again."""
    sb.faults.add("drop_after", method="POST")
    async with make_client(sb) as k8s:
        with pytest.raises(TransportError) as caught:
            await k8s.request("POST", CM, json=configmap("stored"))
        assert caught.value.sent
        # Had it been replayed, the second try would have met a 409.
        with pytest.raises(ConflictError):
            await k8s.request("POST", CM, json=configmap("stored"))
    assert sb.requests.count("POST", CM) == 2
    assert _configmaps(sb) == ["stored"]


async def test_get_dropped_before_answer_retried(
    sb: Sandbox, make_client: Callable[..., Client]
) -> None:
    """A GET whose connection drops is retried and answers."""
    sb.faults.add("drop_before", method="GET", path="^/api$")
    async with make_client(sb) as k8s:
        await k8s.get_json("/api")


async def test_slow_answer_times_out(sb: Sandbox, make_client: Callable[..., Client]) -> None:
    """An answer slower than the client's timeout raises RequestTimeoutError.

    Through the proxy listener: a TLS connection the client abandons while the
    sandbox is still sleeping sometimes leaks the sandbox's server-side
    transport (a sandbox matter, not the client's).
    """
    sb.faults.add("slow", delay=2.0, path="^/api$")
    async with make_client(sb, proxy=True, timeout=0.3) as k8s:
        with pytest.raises(RequestTimeoutError):
            await k8s.get_json("/api")
    # The sandbox logs the request once its delay is over: wait for that here,
    # or it lands in the request log of the next test.
    assert await wait_until(lambda: sb.requests.count("GET", "/api") == 1, within=15)


async def test_sandbox_restart_under_load(sb: Sandbox, make_client: Callable[..., Client]) -> None:
    """1,000 GETs at 64 concurrent across a sandbox stop and start: all finish in time.

    Through the proxy listener: stopping the sandbox while TLS handshakes are
    in flight leaks server-side sockets (a sandbox matter, not the client's).
    """
    total, concurrency = 1000, 64
    done = 0
    failures: list[BaseException] = []
    policy = RetryPolicy(backoff_base=0.05, backoff_max=1.0, retries=8)

    async with make_client(sb, proxy=True, retries=policy, timeout=10.0) as k8s:

        async def worker(count: int) -> None:
            nonlocal done
            for _ in range(count):
                try:
                    await k8s.get_json("/api")
                except TransportError as exc:
                    failures.append(exc)
                done += 1

        async def restarter() -> None:
            await wait_until(lambda: done >= 300, within=30)
            await anyio.to_thread.run_sync(sb.stop)
            await anyio.sleep(0.3)
            await anyio.to_thread.run_sync(sb.start)

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(restarter)
                for index in range(concurrency):
                    share = total // concurrency + (index < total % concurrency)
                    tg.start_soon(worker, share)

    assert done == total
    assert len(failures) <= 5, failures[:3]
    assert all(str(exc) for exc in failures)
