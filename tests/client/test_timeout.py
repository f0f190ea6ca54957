"""The client's default deadline for one call, on asyncio and trio."""

from __future__ import annotations

import anyio
import pytest

from asyncpod import Client, Config, Request, RequestTimeoutError, Response
from tests.helpers.clients import FAST

pytestmark = pytest.mark.anyio


class SilentTransport:
    """A transport whose server never answers."""

    async def send(self, request: Request) -> Response:
        await anyio.sleep_forever()
        raise AssertionError  # pragma: no cover

    async def aclose(self) -> None:
        return None


class TimingOutTransport:
    """A transport that reports its own timeout (as a connect timeout would be)."""

    async def send(self, request: Request) -> Response:
        raise RequestTimeoutError("connect timed out")

    async def aclose(self) -> None:
        return None


async def test_a_call_without_answer_raises_request_timeout() -> None:
    """No answer within ``timeout`` raises RequestTimeoutError naming the call."""
    async with Client(Config.proxy(), transport=SilentTransport(), timeout=0.05) as k8s:
        with pytest.raises(RequestTimeoutError, match=r"GET /api got no answer within 0.05 s"):
            await k8s.request("GET", "/api")
        with pytest.raises(TimeoutError):
            await k8s.get_json("/api")


async def test_the_callers_deadline_wins_over_the_clients() -> None:
    """A shorter cancel scope of the caller cancels quietly, without RequestTimeoutError."""
    async with Client(Config.proxy(), transport=SilentTransport(), timeout=30) as k8s:
        with anyio.move_on_after(0.05) as scope:
            await k8s.request("GET", "/api")
        assert scope.cancelled_caught


async def test_a_transport_timeout_passes_through_unchanged() -> None:
    """A timeout the transport reports is not mistaken for the client's deadline."""
    # Retried as any timeout is (with short waits), then raised as the transport said.
    async with Client(
        Config.proxy(), transport=TimingOutTransport(), timeout=30, retries=FAST
    ) as k8s:
        with pytest.raises(RequestTimeoutError, match="connect timed out"):
            await k8s.request("GET", "/api")
