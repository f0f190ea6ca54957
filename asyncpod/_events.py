"""Events for metrics and tracing: ``Client(on_event=callback)``.

The client calls ``on_event`` synchronously with one of the frozen events
below. A callback must be quick and must not block; an exception it raises is
logged and otherwise ignored, so a broken metrics hook never breaks a request.

Code that emits events (the client, the token file, the CA watcher, the watch
loop) receives the hook as an ``EventHook | None`` and calls ``emit(hook,
event)``; when no hook is set, the caller skips building the event at all
(``if hook is not None: emit(hook, ...)``) so the hot path stays cheap.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from attrs import frozen

logger = logging.getLogger("asyncpod")


@frozen
class RequestEvent:
    """One HTTP exchange ended (each attempt of a retried call is one event).

    Attributes:
        method: the HTTP method.
        path: the request path, without the query.
        status: the HTTP status, or ``None`` when no answer arrived.
        elapsed: seconds from sending to the answer's head (or the failure).
        error: the exception class name when no answer arrived.
    """

    method: str
    path: str
    status: int | None
    elapsed: float
    error: str | None = None


@frozen
class RetryEvent:
    """A call is about to be retried.

    Attributes:
        method: the HTTP method.
        path: the request path, without the query.
        reason: why (``"HTTP 429 with Retry-After 1"``, ``"connect failed"``).
        attempt: the number of this retry (1 for the first).
        delay: seconds the client waits before the retry.
    """

    method: str
    path: str
    reason: str
    attempt: int
    delay: float


@frozen
class TokenReloadEvent:
    """The bearer token was read again from its file.

    Attributes:
        path: the token file.
        reason: what triggered the read: ``"changed"`` (the file was replaced),
            ``"periodic"`` (the longest time between reads passed),
            ``"expiry"`` (the token's JWT ``exp`` is near), ``"401"`` (the
            server refused the token) or ``"retry"`` (the previous read failed).
        changed: whether a new token was found.
        error: why the file gave no token (the previous one stays in use), or
            ``None`` when the read worked. Never contains the token.
    """

    path: str
    reason: str
    changed: bool = True
    error: str | None = None


@frozen
class CAReloadEvent:
    """The CA bundle was read again and a new SSL context built.

    Attributes:
        path: the CA file.
        reason: what triggered the read: ``"changed"`` (the periodic check found
            a new file) or ``"verification failed"`` (a server certificate did
            not verify with the previous bundle).
    """

    path: str
    reason: str


@frozen
class WatchReconnectEvent:
    """A watch lost its connection and reconnects.

    Attributes:
        path: the watched collection's path.
        resource_version: where the watch resumes.
        reason: why it reconnects: ``"server timeout"`` (the server ended the
            stream), ``"stream ended early"`` (less than a second after it
            opened), ``"connection dropped"``, ``"inactivity"`` (no byte for
            the inactivity limit), ``"connect failed"``, ``"no answer"``, or
            ``"HTTP 503"`` (an error status or ERROR event).
        attempt: failures in a row (1 after a stream that ended normally).
        delay: seconds waited before reconnecting.
    """

    path: str
    resource_version: str | None
    reason: str
    attempt: int
    delay: float


@frozen
class ReconcileEvent:
    """A controller finished one reconcile of one key.

    Attributes:
        controller: the controller's name.
        key: the object's ``"namespace/name"`` (``"name"`` when cluster-scoped).
        elapsed: seconds the reconcile took.
        error: the exception class name when it failed (it is retried with
            backoff), else ``None``.
        requeue_after: seconds until the key is reconciled again, when the
            reconcile asked for it.
    """

    controller: str
    key: str
    elapsed: float
    error: str | None = None
    requeue_after: float | None = None


Event = (
    RequestEvent
    | RetryEvent
    | TokenReloadEvent
    | CAReloadEvent
    | WatchReconnectEvent
    | ReconcileEvent
)
EventHook = Callable[[Event], object]


def emit(hook: EventHook | None, event: Event) -> None:
    """Hand ``event`` to ``hook``; a failing hook is logged, never raised."""
    if hook is None:
        return
    try:
        hook(event)
    except Exception:
        logger.exception("the on_event callback failed on %s", type(event).__name__)


__all__ = [
    "CAReloadEvent",
    "Event",
    "EventHook",
    "RequestEvent",
    "RetryEvent",
    "TokenReloadEvent",
    "WatchReconnectEvent",
    "emit",
]
