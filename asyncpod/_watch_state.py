"""The resume logic of a watch, sans-IO.

``WatchState`` decides and ``Watch`` does the I/O, as kube-runtime's watcher
is a state advanced by a step function and httpcore's pool decides
synchronously and returns the I/O to do. The state knows where to resume (the
last resourceVersion seen, bookmarks included), which objects the initial
ADDED events already handed out, how many failures came in a row and when the
caller's ``timeout_seconds`` ends. Time comes in as an argument and
randomness from the retry policy, so every decision is a plain function call
that a test drives with a fake clock.

The rules, after client-go's reflector:

- a stream that lived at least ``MIN_WATCH_DURATION`` and ended (the server's
  ``timeoutSeconds``, or silence) resumes at once and clears the failures;
- a stream that ended sooner is a failure, like a refused connection, a
  dropped one or an ERROR event with a 5xx or 429: the backoff of
  ``RetryPolicy`` grows, and two connections of one watch are at least
  ``MIN_WATCH_DURATION`` apart, so a server that ends watches at once cannot
  cause a reconnect storm;
- after more failures in a row than ``max_failures`` the watch gives up
  (``math.inf``: never, as an informer does);
- a watch without a resourceVersion that breaks before its initial events are
  over starts again from scratch, and reports the difference between what it
  handed out and the new initial events: ADDED for new objects, MODIFIED for
  changed ones, DELETED for those gone. A consumer keeping a dict never keeps
  an object deleted while the watch was away.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, Final

import attrs
from attrs import frozen

from asyncpod._errors import (
    APIError,
    AsyncpodError,
    RequestTimeoutError,
    ServerError,
    TooManyRequestsError,
    TransportError,
)
from asyncpod._retry import RetryPolicy
from asyncpod._status import status_error

# client-go's reflector calls a watch that ends within a second of its start
# a "very short watch" and backs off; a healthy server keeps a watch open for
# its timeoutSeconds (minutes).
MIN_WATCH_DURATION: Final = 1.0
# client-go's reflector backs off up to 30 s between watches
# (NewExponentialBackoffManager(800ms, 30s, ...)): a watch waits longer than a
# request, because an API server that is away for a while must not be hammered
# by every informer of a cluster.
WATCH_BACKOFF_MAX: Final = 30.0
# client-go asks for timeoutSeconds = minWatchTimeout * (1 + rand), with
# minWatchTimeout = 5 min, to spread reconnects of many clients over time.
MIN_WATCH_TIMEOUT: Final = 300.0

INITIAL_EVENTS_END: Final = "k8s.io/initial-events-end"

ObjectKey = tuple[str, str]


@frozen
class WatchEvent:
    """One event of a watch.

    Attributes:
        type: ``"ADDED"``, ``"MODIFIED"``, ``"DELETED"``, ``"BOOKMARK"`` or ``"ERROR"``.
        object: the object as the server sent it (a ``Status`` for ``ERROR``).
    """

    type: str
    object: dict[str, Any]

    @property
    def resource_version(self) -> str | None:
        """The object's ``metadata.resourceVersion``, when it has one."""
        metadata = self.object.get("metadata")
        if isinstance(metadata, dict):
            value = metadata.get("resourceVersion")
            if isinstance(value, str) and value:
                return value
        return None

    @property
    def is_initial_events_end(self) -> bool:
        """Whether this is the bookmark that ends a watch's initial ADDED events."""
        if self.type != "BOOKMARK":
            return False
        metadata = self.object.get("metadata")
        annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
        return isinstance(annotations, dict) and annotations.get(INITIAL_EVENTS_END) == "true"


@frozen
class Reconnect:
    """A decision to connect again.

    Attributes:
        delay: seconds to wait first.
        reason: why, for a ``WatchReconnectEvent`` (``"server timeout"``,
            ``"connection dropped"``, ``"HTTP 503"``...).
        attempt: failures in a row (1 after a stream that ended normally).
    """

    delay: float
    reason: str
    attempt: int


def watch_policy(policy: RetryPolicy) -> RetryPolicy:
    """The policy a watch backs off with: ``policy`` with a backoff cap of at least 30 s."""
    if policy.backoff_max >= WATCH_BACKOFF_MAX:
        return policy
    return attrs.evolve(policy, backoff_max=WATCH_BACKOFF_MAX)


class WatchState:
    """Where a watch stands, and what it does next.

    Args:
        resource_version: where the watch starts; ``None``, ``""`` or ``"0"``
            start with ADDED events for the current objects.
        policy: backoff, jitter and Retry-After cap (see ``watch_policy``).
        max_failures: failures in a row before giving up (``math.inf``: never).
        timeout_seconds: the caller's limit for the whole watch, or ``None``.
        bookmarks: whether BOOKMARK events are handed out.

    Attributes:
        resource_version: the last resourceVersion seen (bookmarks included).
        initial: whether the initial ADDED events are still coming.
        failures: failures in a row.
        reconnects: how many times the watch decided to connect again.
        closed: the watch was closed; the iteration ends.
        backlog: events to hand out before anything the server sends next
            (take them with ``held()``).
        steady: the initial events are over, nothing is held back and the
            watch is open: ``accept`` of an event only moves the resume point.
        path: the watched path, for error messages.
    """

    __slots__ = (
        "_opened_at",
        "_restarted",
        "_round",
        "_view",
        "backlog",
        "bookmarks",
        "closed",
        "deadline",
        "failures",
        "initial",
        "max_failures",
        "path",
        "policy",
        "reconnects",
        "resource_version",
        "start_version",
        "steady",
        "timeout_seconds",
    )

    def __init__(
        self,
        resource_version: str | None,
        *,
        policy: RetryPolicy,
        max_failures: float,
        timeout_seconds: float | None = None,
        bookmarks: bool = False,
    ) -> None:
        if max_failures < 0:
            msg = f"max_failures must be 0 or more, not {max_failures}"
            raise ValueError(msg)
        self.policy = policy
        self.max_failures = max_failures
        self.timeout_seconds = timeout_seconds
        self.bookmarks = bookmarks
        self.resource_version = resource_version
        self.start_version = resource_version or None
        # From no resourceVersion (or "0") the server first sends synthetic
        # ADDED events that are not in resourceVersion order: resuming from
        # one of them could skip objects, so until they are over a reconnect
        # starts from scratch.
        self.initial = resource_version in (None, "", "0")
        self.steady = not self.initial
        self.deadline: float | None = None
        self.failures = 0
        self.reconnects = 0
        self.closed = False
        self.path = ""
        self.backlog: deque[WatchEvent] = deque()
        self._opened_at: float | None = None
        # The objects handed out while the initial events come (what the
        # consumer believes), and the keys the current round has sent again.
        self._view: dict[ObjectKey, dict[str, Any]] = {}
        self._round: set[ObjectKey] = set()
        self._restarted = False

    # -- connecting ------------------------------------------------------------

    def remaining(self, now: float) -> float | None:
        """Seconds left of ``timeout_seconds`` (``None``: no limit)."""
        if self.deadline is None:
            if self.timeout_seconds is None:
                return None
            self.deadline = now + self.timeout_seconds
        return self.deadline - now

    def connect_params(self, now: float) -> dict[str, str | int | None]:
        """The watch parameters of the next connection (selectors are the caller's)."""
        server_timeout = MIN_WATCH_TIMEOUT * (1.0 + self.policy.random())
        remaining = self.remaining(now)
        if remaining is not None:
            server_timeout = min(server_timeout, max(1.0, math.ceil(remaining)))
        return {
            "watch": "true",
            "allowWatchBookmarks": "true",
            "resourceVersion": self.start_version if self.initial else self.resource_version,
            "timeoutSeconds": int(server_timeout),
        }

    @property
    def resume_version(self) -> str | None:
        """The resourceVersion the next connection asks for."""
        return self.start_version if self.initial else self.resource_version

    def connected(self, now: float) -> None:
        """A stream opened at ``now``."""
        self._opened_at = now

    def close(self) -> None:
        """The watch was closed: the iteration ends."""
        self.closed = True
        self.steady = False
        self.backlog.clear()
        self._view = {}
        self._round = set()

    # -- events ----------------------------------------------------------------

    def accept(self, event: WatchEvent) -> WatchEvent | None:
        """Track the resume point; return ``event`` when the consumer should see it.

        Returns ``None`` for an event to skip (a hidden bookmark, an ADDED
        event handed out before a restart). At the end of restarted initial
        events, the events reporting the difference come first: the first is
        returned, the others wait in ``backlog``.

        Raises:
            APIError: an ERROR event, as the error its Status stands for.
        """
        kind = event.type
        if kind == "ERROR":
            raise status_error(event.object)
        if self.initial:
            return self._accept_initial(event)
        # Performance: this runs for every event; no property, no helper call.
        metadata = event.object.get("metadata")
        if type(metadata) is dict:
            version = metadata.get("resourceVersion")
            if type(version) is str and version:
                self.resource_version = version
        if kind == "BOOKMARK" and not self.bookmarks:
            return None
        return event

    def _accept_initial(self, event: WatchEvent) -> WatchEvent | None:
        if event.type == "ADDED":
            key = _object_key(event.object)
            self._round.add(key)
            known = self._view.get(key)
            self._view[key] = event.object
            if known is None:
                return event
            if _version(known) == event.resource_version:
                return None  # handed out before the restart
            return WatchEvent("MODIFIED", event.object)
        # The first other event ends the initial ones (kube-apiserver sends
        # the initial-events-end bookmark only when asked for sendInitialEvents).
        self.initial = False
        out: list[WatchEvent] = []
        if self._restarted:
            out = [
                WatchEvent("DELETED", obj)
                for key, obj in self._view.items()
                if key not in self._round
            ]
        self._view = {}
        self._round = set()
        accepted = self.accept(event)
        if accepted is not None:
            out.append(accepted)
        if len(out) > 1:
            self.backlog.extend(out[1:])
        else:
            self.steady = not self.closed
        return out[0] if out else None

    def held(self) -> WatchEvent | None:
        """The next event held back in ``backlog``, or ``None``."""
        backlog = self.backlog
        if not backlog:
            return None
        event = backlog.popleft()
        if not backlog and not self.initial and not self.closed:
            self.steady = True
        return event

    # -- the end of a stream -----------------------------------------------------

    def on_end(self, now: float, reason: str = "server timeout") -> Reconnect | None:
        """The stream ended cleanly (or stayed silent too long) at ``now``.

        Returns:
            When and why to connect again, or ``None`` when the iteration
            ends (closed, or ``timeout_seconds`` is over).

        Raises:
            TransportError: the stream ended soon after it opened more often
                in a row than ``max_failures``.
        """
        return self._plan(now, reason, None)

    def on_failure(self, error: AsyncpodError, now: float) -> Reconnect | None:
        """Connecting or reading failed with ``error`` at ``now``.

        Returns:
            When and why to connect again, or ``None`` when the iteration
            ends (closed, or ``timeout_seconds`` is over).

        Raises:
            AsyncpodError: ``error`` itself when it is not transient (a 410,
                a 403, a bad line), or saying that the watch gave up after
                more failures in a row than ``max_failures``.
        """
        if self.closed:
            return None
        if not is_transient(error):
            raise error
        return self._plan(now, failure_reason(error), error)

    def _plan(self, now: float, reason: str, failure: AsyncpodError | None) -> Reconnect | None:
        if self.closed:
            return None
        opened, self._opened_at = self._opened_at, None
        lived = None if opened is None else now - opened
        short = lived is not None and lived < MIN_WATCH_DURATION
        if lived is not None and not short:
            self.failures = 0
        delay = 0.0
        if failure is not None or short:
            self.failures += 1
            if failure is None:
                reason = "stream ended early"
                msg = f"the server ended the watch {lived:.3f} s after it opened"
                failure = TransportError(msg, sent=True)
            if self.failures > self.max_failures:
                raise gave_up(failure, self.failures, self.path)
            policy = self.policy
            delay = policy.backoff(self.failures)
            if isinstance(failure, APIError) and failure.retry_after is not None:
                delay = max(delay, min(failure.retry_after, policy.max_retry_after))
            if lived is not None and short:
                # A floor between two connections of one watch.
                delay = max(delay, MIN_WATCH_DURATION - lived)
        remaining = self.remaining(now)
        if remaining is not None:
            if remaining <= 0:
                return None
            delay = min(delay, remaining)
        self.reconnects += 1
        if self.initial:
            # Start over; _accept_initial reports the difference.
            self._restarted = True
            self._round = set()
        return Reconnect(delay, reason, max(self.failures, 1))


def is_transient(error: AsyncpodError) -> bool:
    """Whether a watch resumes after ``error`` (rather than raising it)."""
    # A TransportError here is about the connection (a body cut short, a
    # reset); a bad line of a stream never gets here: the watch raises it.
    return isinstance(error, (TransportError, ServerError, TooManyRequestsError))


def failure_reason(failure: AsyncpodError) -> str:
    """A short reason for a ``WatchReconnectEvent``: never a message, which may be long."""
    if isinstance(failure, APIError):
        return f"HTTP {failure.status}"
    if isinstance(failure, RequestTimeoutError):
        return "no answer"
    if isinstance(failure, TransportError) and not failure.sent:
        return "connect failed"
    return "connection dropped"


def gave_up(failure: AsyncpodError, attempts: int, path: str) -> AsyncpodError:
    """``failure``, saying that the watch gave up after ``attempts`` attempts in a row."""
    if not isinstance(failure, TransportError) or type(failure) not in (
        TransportError,
        RequestTimeoutError,
    ):
        return failure  # an APIError carries the server's Status as it came
    msg = f"watch of {path} gave up after {attempts} attempts in a row: {failure}"
    error = type(failure)(msg, sent=failure.sent)
    error.__cause__ = failure
    return error


def _object_key(obj: dict[str, Any]) -> ObjectKey:
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict):
        return ("", "")
    return (str(metadata.get("namespace") or ""), str(metadata.get("name") or ""))


def _version(obj: dict[str, Any]) -> Any:
    metadata = obj.get("metadata")
    return metadata.get("resourceVersion") if isinstance(metadata, dict) else None
