"""When to retry a request, and how long to wait first.

``RetryPolicy`` only decides; the client does the sleeping. The rules follow
DESIGN.md "Retries" and client-go's behaviour:

- a request that provably never reached the server (``TransportError.sent`` is
  false: connect or TLS handshake failed) is retried for every verb;
- any other connection failure is retried only for reads (GET, HEAD; a watch is
  a GET), because a write may have been applied before the connection dropped;
- 429 and 5xx answers carrying ``Retry-After`` are retried for every verb: the
  server tells us it did not act (kube-apiserver's priority and fairness and
  its max-in-flight filter send ``Retry-After`` with 429);
- other 5xx answers are retried only for reads;
- an answer that could not be read (``ProtocolError``) is never retried: the
  server did answer, and the same answer would come again.

No retry ever sleeps past the caller's deadline.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from attrs import field, frozen, validators

from asyncpod._errors import ProtocolError, TransportError

READ_METHODS = frozenset({"GET", "HEAD"})
RETRY_STATUSES = frozenset({500, 502, 503, 504})


@frozen
class Retry:
    """A decision to retry.

    Attributes:
        delay: seconds to wait before the next attempt.
        reason: why, for logs and events (``"HTTP 429"``, ``"connect failed"``).
    """

    delay: float
    reason: str


@frozen(kw_only=True)
class RetryPolicy:
    """Which failures are retried, how often, and how long to wait.

    Change a policy with ``attrs.evolve(policy, retries=3)``.

    Attributes:
        retries: the most retries of one call (0 disables retrying).
        backoff_base: the delay before the first retry, in seconds.
        backoff_max: the longest delay between two attempts.
        jitter: the fraction of each delay that is random (0 to 1), so that
            many clients failing together do not come back together.
        max_retry_after: the longest ``Retry-After`` honoured; a longer one is
            cut to this.
        read_methods: the methods retried after any connection failure and
            after a 5xx without ``Retry-After``.
        retry_statuses: the 5xx statuses retried for reads without
            ``Retry-After`` (501 Not Implemented will not get better).
        random: the source of jitter, a function returning a float in [0, 1).
    """

    retries: int = field(default=5, validator=validators.ge(0))
    backoff_base: float = field(default=0.1, validator=validators.ge(0))
    backoff_max: float = field(default=10.0, validator=validators.ge(0))
    jitter: float = field(default=0.5, validator=[validators.ge(0), validators.le(1)])
    max_retry_after: float = field(default=10.0, validator=validators.ge(0))
    read_methods: frozenset[str] = field(default=READ_METHODS, converter=frozenset)
    retry_statuses: frozenset[int] = field(default=RETRY_STATUSES, converter=frozenset)
    random: Callable[[], float] = field(default=random.random, eq=False, repr=False)

    @classmethod
    def from_retries(cls, retries: int | RetryPolicy) -> RetryPolicy:
        """The policy for ``Client(retries=...)``: a count, or a policy as is."""
        if isinstance(retries, RetryPolicy):
            return retries
        if isinstance(retries, bool) or not isinstance(retries, int):
            msg = f"retries must be an int or a RetryPolicy, not {type(retries).__name__}"
            raise TypeError(msg)
        return cls(retries=retries)

    def backoff(self, attempt: int) -> float:
        """The jittered delay before retry number ``attempt`` (1 for the first).

        Exponential: ``backoff_base * 2 ** (attempt - 1)``, at most
        ``backoff_max``, of which the ``jitter`` fraction is random.
        """
        exponent = min(max(attempt - 1, 0), 62)  # bound 2**n; the cap applies anyway
        delay = min(self.backoff_base * (2.0**exponent), self.backoff_max)
        return delay * (1.0 - self.jitter * self.random())

    def is_retryable_status(self, status: int) -> bool:
        """Whether an answer with ``status`` may be retried at all (cheap pre-check)."""
        return status == 429 or status >= 500

    def on_status(
        self,
        method: str,
        status: int,
        retry_after: float | None,
        attempt: int,
        remaining: float | None = None,
    ) -> Retry | None:
        """Decide about an error answer.

        Args:
            method: the request's method, upper case.
            status: the HTTP status of the answer.
            retry_after: seconds from the ``Retry-After`` header, or ``None``.
            attempt: the number this retry would have (1 for the first).
            remaining: seconds left until the caller's deadline, or ``None``.

        Returns:
            The retry to do, or ``None`` to hand the answer to the caller.
        """
        if attempt > self.retries:
            return None
        if retry_after is not None and (status == 429 or status >= 500):
            reason = f"HTTP {status} with Retry-After {retry_after:g}"
            delay = min(max(retry_after, 0.0), self.max_retry_after)
            # Honour the server, but never come back sooner than our own
            # backoff would: a "Retry-After: 0" must not turn into a busy loop.
            if delay == 0:
                delay = self.backoff(attempt)
        elif status in self.retry_statuses and method in self.read_methods:
            reason = f"HTTP {status}"
            delay = self.backoff(attempt)
        else:
            return None
        return self._within(Retry(delay, reason), remaining)

    def on_error(
        self,
        method: str,
        error: TransportError,
        attempt: int,
        remaining: float | None = None,
    ) -> Retry | None:
        """Decide about a request that failed without an answer.

        Args:
            method: the request's method, upper case.
            error: what the transport raised.
            attempt: the number this retry would have (1 for the first).
            remaining: seconds left until the caller's deadline, or ``None``.

        Returns:
            The retry to do, or ``None`` to raise ``error``.
        """
        if attempt > self.retries or isinstance(error, ProtocolError):
            return None
        if not error.sent:
            reason = "connect failed"
        elif method in self.read_methods:
            reason = "connection failed"
        else:
            return None
        return self._within(Retry(self.backoff(attempt), reason), remaining)

    @staticmethod
    def _within(retry: Retry, remaining: float | None) -> Retry | None:
        # A retry that cannot even start before the deadline only delays the
        # error the caller will get anyway; give the real failure at once.
        if remaining is not None and retry.delay >= remaining:
            return None
        return retry


NO_RETRIES = RetryPolicy(retries=0)

__all__ = ["NO_RETRIES", "READ_METHODS", "RETRY_STATUSES", "Retry", "RetryPolicy"]
