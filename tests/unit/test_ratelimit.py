"""The client-side token bucket."""

from __future__ import annotations

import anyio
import pytest

from asyncpod._ratelimit import RateLimiter, TokenBucket

pytestmark = pytest.mark.anyio


def test_burst_then_rate() -> None:
    """A full bucket lets ``burst`` through at once, then one per 1/qps."""
    bucket = TokenBucket(10.0, 3)
    waits = [bucket.reserve(0.0) for _ in range(5)]
    assert waits == pytest.approx([0.0, 0.0, 0.0, 0.1, 0.2])


def test_refills_over_time_up_to_burst() -> None:
    """A quiet period refills the bucket, never beyond ``burst``."""
    bucket = TokenBucket(10.0, 2)
    bucket.reserve(0.0)
    bucket.reserve(0.0)
    assert bucket.reserve(100.0) == 0.0
    assert bucket.reserve(100.0) == 0.0
    assert bucket.reserve(100.0) == pytest.approx(0.1)


def test_cancel_gives_the_token_back() -> None:
    """A cancelled wait returns its token."""
    bucket = TokenBucket(1.0, 1)
    bucket.reserve(0.0)
    assert bucket.reserve(0.0) == pytest.approx(1.0)
    bucket.cancel()
    assert bucket.reserve(0.0) == pytest.approx(1.0)


def test_bad_settings() -> None:
    """qps must be positive and burst at least 1."""
    with pytest.raises(ValueError, match="qps"):
        TokenBucket(0.0, 1)
    with pytest.raises(ValueError, match="burst"):
        TokenBucket(1.0, 0)


async def test_limiter_paces_requests() -> None:
    """20 acquisitions at 50 qps, burst 5, take about 0.3 s."""
    limiter = RateLimiter(50, 5)
    start = anyio.current_time()
    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(limiter.acquire)
    elapsed = anyio.current_time() - start
    # The upper bound leaves room for a busy machine; no pacing at all fails the lower one.
    assert 0.25 <= elapsed < 5.0
