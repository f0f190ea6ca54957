"""Fault injection and the request log of the sandbox."""

from __future__ import annotations

import anyio
import httpx
import pytest

from asyncpod.testing import Sandbox
from tests.helpers.sandbox import CM, configmap, proxy_client

pytestmark = pytest.mark.anyio


async def test_throttle_answers_429_with_retry_after(sandbox: Sandbox) -> None:
    """The next N matching requests get 429 TooManyRequests with Retry-After, then normal."""
    sandbox.faults.add("throttle", count=2, path="/configmaps", retry_after=3)
    async with proxy_client(sandbox) as client:
        first = await client.get(CM)
        second = await client.get(CM)
        other = await client.get("/api")
        third = await client.get(CM)
    assert (first.status_code, second.status_code, third.status_code) == (429, 429, 200)
    assert first.headers["retry-after"] == "3"
    assert first.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Too many requests, please try again later.",
        "reason": "TooManyRequests",
        "details": {"retryAfterSeconds": 3},
        "code": 429,
    }
    assert other.status_code == 200


async def test_server_errors_by_method(sandbox: Sandbox) -> None:
    """An error fault can target one method and answer any 5xx."""
    sandbox.faults.add("error", status=503, method="POST")
    async with proxy_client(sandbox) as client:
        assert (await client.get(CM)).status_code == 200
        failed = await client.post(CM, json=configmap("x"))
        assert failed.status_code == 503
        assert failed.json()["reason"] == "ServiceUnavailable"
        assert "retry-after" not in failed.headers
        assert (await client.post(CM, json=configmap("x"))).status_code == 201


async def test_drop_before_does_nothing(sandbox: Sandbox) -> None:
    """drop_before closes the connection unanswered and the write does not happen."""
    sandbox.faults.add("drop_before", method="POST")
    async with proxy_client(sandbox) as client:
        # Closed with the body unread, the socket may also be reset (RST): either way
        # the client gets no answer.
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            await client.post(CM, json=configmap("never"))
        assert (await client.get(f"{CM}/never")).status_code == 404
    assert sandbox.requests.count("POST", CM) == 1


async def test_drop_after_does_the_write(sandbox: Sandbox) -> None:
    """drop_after stores the write, then closes the connection unanswered."""
    sandbox.faults.add("drop_after", method="POST")
    async with proxy_client(sandbox) as client:
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            await client.post(CM, json=configmap("stored"))
        assert (await client.get(f"{CM}/stored")).status_code == 200
    record = sandbox.requests.filter("POST", CM)[0]
    assert record.status == 0


async def test_slow_answers(sandbox: Sandbox) -> None:
    """A slow fault delays the answer by the given seconds."""
    sandbox.faults.add("slow", delay=0.3)
    async with proxy_client(sandbox) as client:
        began = anyio.current_time()
        response = await client.get("/api")
        took = anyio.current_time() - began
    assert response.status_code == 200
    assert took >= 0.3


async def test_unlimited_faults_until_cleared(sandbox: Sandbox) -> None:
    """count=None keeps the fault until faults.clear()."""
    sandbox.faults.add("error", count=None, status=500)
    async with proxy_client(sandbox) as client:
        codes = [(await client.get("/api")).status_code for _ in range(3)]
        sandbox.faults.clear()
        codes.append((await client.get("/api")).status_code)
    assert codes == [500, 500, 500, 200]


async def test_request_log_counts_by_method_and_path(sandbox: Sandbox) -> None:
    """The request log says what the server saw: method, path, listener, user, status."""
    async with proxy_client(sandbox) as client:
        await client.post(CM, json=configmap("a"))
        await client.get(f"{CM}/a")
        await client.get(f"{CM}/b")
    assert sandbox.requests.count("POST", CM) == 1
    assert sandbox.requests.count("GET", rf"{CM}/.*") == 2
    assert [r.status for r in sandbox.requests] == [201, 200, 404]
    assert {r.listener for r in sandbox.requests} == {"proxy"}
    assert sandbox.requests[0].user == "kubernetes-admin"


def test_unknown_fault_kind_is_refused(sandbox: Sandbox) -> None:
    """A misspelt kind is a ValueError naming the kinds."""
    with pytest.raises(ValueError, match="throttle"):
        sandbox.faults.add("explode")  # type: ignore[arg-type]


async def test_injected_401_is_the_real_unauthorized(sandbox: Sandbox) -> None:
    """An injected 401 is the server's exact Unauthorized answer (a revoked token)."""
    sandbox.faults.add("status", status=401)
    async with proxy_client(sandbox) as client:
        response = await client.get("/api")
    assert response.status_code == 401
    assert response.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }
