"""A client-side token bucket: ``Client(rate_limit=(qps, burst))``.

client-go protects the API server with a token bucket in every client
(``QPS`` and ``Burst`` in ``rest.Config``). Ours is off by default: a process
in a pod usually wants the API server's own priority and fairness to decide.
"""

from __future__ import annotations

import anyio
from attrs import define, field


@define
class TokenBucket:
    """The arithmetic of a token bucket, without a clock or sleeping.

    ``reserve(now)`` takes one token and says how long the caller must wait
    for it. Tokens may go negative: each caller reserves its own slot in the
    future, so waiters are served in order without a lock (as Go's
    ``rate.Limiter.Reserve`` does).

    Attributes:
        rate: tokens added per second.
        burst: the most tokens kept, and the starting amount.
    """

    rate: float
    burst: int
    _tokens: float = field(init=False)
    _last: float | None = field(init=False, default=None)

    def __attrs_post_init__(self) -> None:
        if not self.rate > 0:
            msg = f"rate_limit qps must be above 0, got {self.rate!r}"
            raise ValueError(msg)
        if self.burst < 1:
            msg = f"rate_limit burst must be at least 1, got {self.burst!r}"
            raise ValueError(msg)
        self._tokens = float(self.burst)

    def reserve(self, now: float) -> float:
        """Take a token at time ``now``; the seconds to wait before using it."""
        if self._last is not None:
            self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate)
        self._last = now
        self._tokens -= 1.0
        if self._tokens >= 0:
            return 0.0
        return -self._tokens / self.rate

    def cancel(self) -> None:
        """Give back a token whose wait was cancelled."""
        self._tokens = min(float(self.burst), self._tokens + 1.0)


class RateLimiter:
    """Waits for a token of a ``TokenBucket`` on the running event loop.

    Args:
        qps: requests per second allowed on average.
        burst: requests allowed at once after a quiet period.
    """

    __slots__ = ("bucket",)

    def __init__(self, qps: float, burst: int) -> None:
        self.bucket = TokenBucket(float(qps), int(burst))

    def __repr__(self) -> str:
        return f"RateLimiter(qps={self.bucket.rate:g}, burst={self.bucket.burst})"

    async def acquire(self) -> None:
        """Wait until a request may be sent."""
        delay = self.bucket.reserve(anyio.current_time())
        if delay <= 0:
            return
        try:
            await anyio.sleep(delay)
        except BaseException:
            self.bucket.cancel()
            raise


__all__ = ["RateLimiter", "TokenBucket"]
