"""``WorkQueue``: the keys a controller must reconcile, as client-go's workqueue hands them out.

The guarantees a controller builds on (client-go ``util/workqueue``):
- a key is queued at most once, however often it is added while it waits;
- a key is never handed to two workers at once: added while a worker holds
  it, it is queued again when that worker calls ``done``;
- ``add_after`` delays a key (``requeue_after``); ``add_rate_limited``
  delays it by its own exponential backoff (client-go's
  ``ItemExponentialFailureRateLimiter``: 5 ms doubling up to 1000 s) or the
  overall token bucket (10 per second, burst 100), whichever is longer, as
  ``DefaultControllerRateLimiter`` does; ``forget`` resets the backoff;
- ``shutdown`` refuses new keys, still hands out what is queued, and (with
  ``drain``) waits until every key handed out is done.

The decisions live in the sans-IO ``QueueState`` and ``ItemBackoff``, which
take the time as an argument; ``WorkQueue`` only waits.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import deque
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

import anyio
from attrs import define, field, validators

from asyncpod._errors import AsyncpodError
from asyncpod._ratelimit import TokenBucket

K = TypeVar("K", bound=Hashable)

# client-go's DefaultControllerRateLimiter.
DEFAULT_BACKOFF_BASE = 0.005
DEFAULT_BACKOFF_MAX = 1000.0
DEFAULT_QPS = 10.0
DEFAULT_BURST = 100


class QueueShutDownError(AsyncpodError):
    """The work queue was shut down and holds no more keys."""


@define
class ItemBackoff(Generic[K]):
    """Per-key exponential backoff: ``base * 2 ** failures``, at most ``cap``.

    Attributes:
        base: the delay after the first failure, in seconds.
        cap: the longest delay.
    """

    base: float = field(default=DEFAULT_BACKOFF_BASE, validator=validators.ge(0))
    cap: float = field(default=DEFAULT_BACKOFF_MAX, validator=validators.ge(0))
    _failures: dict[K, int] = field(factory=dict, init=False)

    def when(self, key: K) -> float:
        """Count one more failure of ``key``; the seconds to wait before its retry."""
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        return min(self.base * 2.0 ** min(failures, 1023), self.cap)

    def forget(self, key: K) -> None:
        """``key`` succeeded: its next failure starts from ``base`` again."""
        self._failures.pop(key, None)

    def failures(self, key: K) -> int:
        """How many failures in a row ``key`` has had."""
        return self._failures.get(key, 0)


@define
class QueueState(Generic[K]):
    """The queue's bookkeeping, without a clock or waiting; every method takes ``now``.

    A key is in at most one of: queued (waiting for a worker), held by a
    worker, or delayed until a time. ``dirty`` marks keys that must be handed
    out once more (queued ones, and held ones added again).
    """

    _queue: deque[K] = field(factory=deque, init=False)
    _dirty: set[K] = field(factory=set, init=False)
    _processing: set[K] = field(factory=set, init=False)
    _delayed: list[tuple[float, int, K]] = field(factory=list, init=False)
    _due: dict[K, float] = field(factory=dict, init=False)
    _order: itertools.count[int] = field(factory=itertools.count, init=False)
    shutting_down: bool = field(default=False, init=False)

    def add(self, key: K) -> bool:
        """Queue ``key`` unless it is queued already; whether a waiter may take it now."""
        if self.shutting_down or key in self._dirty:
            return False
        self._dirty.add(key)
        if key in self._processing:
            return False  # queued again by ``done``
        self._queue.append(key)
        return True

    def add_after(self, key: K, due: float, now: float) -> bool:
        """Queue ``key`` at time ``due``; an earlier due time of the same key wins."""
        if self.shutting_down:
            return False
        if due <= now:
            return self.add(key)
        current = self._due.get(key)
        if current is not None and current <= due:
            return False
        self._due[key] = due
        heapq.heappush(self._delayed, (due, next(self._order), key))
        return True

    def promote(self, now: float) -> None:
        """Queue the delayed keys whose time has come."""
        delayed = self._delayed
        while delayed and delayed[0][0] <= now:
            due, _, key = heapq.heappop(delayed)
            if self._due.get(key) == due:  # else superseded by an earlier time
                del self._due[key]
                self.add(key)

    def next_due(self) -> float | None:
        """When the next delayed key is due, or ``None``."""
        delayed = self._delayed
        while delayed and self._due.get(delayed[0][2]) != delayed[0][0]:
            heapq.heappop(delayed)
        return delayed[0][0] if delayed else None

    def pop(self) -> K | None:
        """Hand the next queued key to a worker, or ``None`` when none is queued."""
        if not self._queue:
            return None
        key = self._queue.popleft()
        self._processing.add(key)
        self._dirty.discard(key)
        return key

    def done(self, key: K) -> bool:
        """A worker finished ``key``; whether it was queued again (added meanwhile)."""
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.append(key)
            return True
        return False

    def shut_down(self) -> None:
        """Refuse new keys and drop the delayed ones; queued keys are still handed out."""
        self.shutting_down = True
        self._delayed.clear()
        self._due.clear()

    @property
    def queued(self) -> int:
        """How many keys wait for a worker."""
        return len(self._queue)

    @property
    def processing(self) -> int:
        """How many keys workers hold."""
        return len(self._processing)

    @property
    def delayed(self) -> int:
        """How many keys wait for their time."""
        return len(self._due)


class WorkQueue(Generic[K]):
    """Keys to process, de-duplicated, one worker per key, with backoff and delays.

    Use it from several worker tasks::

        async for key in queue:          # ends after shutdown, once empty
            try:
                await reconcile(key)
            except Exception:
                queue.add_rate_limited(key)    # again, after its backoff
            else:
                queue.forget(key)
            finally:
                queue.done(key)

    Args:
        backoff_base: the first per-key retry delay of ``add_rate_limited``.
        backoff_max: the longest per-key retry delay.
        qps: the overall rate of ``add_rate_limited`` retries.
        burst: how many of those may come at once.
        clock: the time source, ``anyio.current_time`` by default.
    """

    def __init__(
        self,
        *,
        backoff_base: float = DEFAULT_BACKOFF_BASE,
        backoff_max: float = DEFAULT_BACKOFF_MAX,
        qps: float = DEFAULT_QPS,
        burst: int = DEFAULT_BURST,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._state: QueueState[K] = QueueState()
        self._backoff: ItemBackoff[K] = ItemBackoff(backoff_base, backoff_max)
        self._bucket = TokenBucket(qps, burst)
        self._clock = clock or anyio.current_time
        self._changed: anyio.Event | None = None

    def __repr__(self) -> str:
        state = self._state
        return (
            f"WorkQueue(queued={state.queued}, processing={state.processing}, "
            f"delayed={state.delayed}, shutting_down={state.shutting_down})"
        )

    def __len__(self) -> int:
        """How many keys wait for a worker (not counting delayed ones)."""
        return self._state.queued

    @property
    def shutting_down(self) -> bool:
        """Whether ``shutdown`` was called."""
        return self._state.shutting_down

    def add(self, key: K) -> None:
        """Queue ``key`` now (nothing happens when it is queued already)."""
        if self._state.add(key):
            self._wake()

    def add_after(self, key: K, delay: float) -> None:
        """Queue ``key`` after ``delay`` seconds (an earlier pending time wins)."""
        now = self._clock()
        if self._state.add_after(key, now + delay, now):
            self._wake()

    def add_rate_limited(self, key: K) -> None:
        """Queue ``key`` after its own backoff or the overall rate limit, whichever is longer."""
        delay = max(self._backoff.when(key), self._bucket.reserve(self._clock()))
        self.add_after(key, delay)

    def forget(self, key: K) -> None:
        """``key`` succeeded: reset its backoff."""
        self._backoff.forget(key)

    def num_requeues(self, key: K) -> int:
        """How many times ``key`` was added with ``add_rate_limited`` since its last ``forget``."""
        return self._backoff.failures(key)

    async def get(self) -> K:
        """Wait for a key and hold it until ``done(key)``.

        Raises:
            QueueShutDownError: the queue was shut down and is empty.
        """
        state = self._state
        while True:
            state.promote(self._clock())
            key = state.pop()
            if key is not None:
                return key
            if state.shutting_down:
                msg = "the work queue is shut down"
                raise QueueShutDownError(msg)
            if self._changed is None:
                self._changed = anyio.Event()
            changed = self._changed
            due = state.next_due()
            wait = math.inf if due is None else max(due - self._clock(), 0.0)
            with anyio.move_on_after(wait):
                await changed.wait()

    def done(self, key: K) -> None:
        """A worker finished ``key``; if it was added meanwhile, it is queued again."""
        self._state.done(key)
        self._wake()

    async def shutdown(self, *, drain: bool = True) -> None:
        """Refuse new keys; with ``drain``, wait until every key handed out is done.

        Keys already queued are still handed out to workers that ask (as
        client-go's ``ShutDownWithDrain`` does); delayed keys are dropped.
        """
        self._state.shut_down()
        self._wake()
        while drain and self._state.processing:
            if self._changed is None:
                self._changed = anyio.Event()
            await self._changed.wait()

    def __aiter__(self) -> WorkQueue[K]:
        return self

    async def __anext__(self) -> K:
        try:
            return await self.get()
        except QueueShutDownError:
            raise StopAsyncIteration from None

    def _wake(self) -> None:
        changed, self._changed = self._changed, None
        if changed is not None:
            changed.set()


__all__ = ["ItemBackoff", "QueueShutDownError", "QueueState", "WorkQueue"]
