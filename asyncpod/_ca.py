"""``CAWatcher``: an SSL context that follows a CA bundle rotated on disk.

The kubelet rewrites ``ca.crt`` with the rest of the service-account folder
when the cluster's CA rotates. ``CAWatcher`` re-checks the file's identity at
most every ``interval`` seconds (and right after a TLS verification failure)
and builds a new context when it changed; new connections use it, pooled ones
keep the context they were opened with.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable
from pathlib import Path

from asyncpod._errors import ConfigError
from asyncpod._events import CAReloadEvent, EventHook, emit
from asyncpod._files import Identity, file_identity

logger = logging.getLogger("asyncpod")

CA_CHECK_INTERVAL = 5.0


class CAWatcher:
    """A ``TLSContextSource`` rebuilt whenever the CA bundle file changes.

    Args:
        ca_file: the CA bundle to watch.
        build: makes a verifying context from the current file; it raises
            ``ConfigError`` when the file does not hold a certificate.
        interval: the longest time between two checks of the file.
        clock: a monotonic clock (for tests).
        on_event: called with a ``CAReloadEvent`` after each rebuild
            (``Client(on_event=...)`` passes its hook here).

    Raises:
        ConfigError: the first build failed.
    """

    __slots__ = (
        "_build",
        "_clock",
        "_context",
        "_identity",
        "_next_check",
        "_on_event",
        "_verification_failed",
        "builds",
        "ca_file",
        "interval",
    )

    def __init__(
        self,
        ca_file: str | Path,
        build: Callable[[], ssl.SSLContext],
        *,
        interval: float = CA_CHECK_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        on_event: EventHook | None = None,
    ) -> None:
        self.ca_file = Path(ca_file)
        self.interval = interval
        self._build = build
        self._clock = clock
        self._on_event = on_event
        self._verification_failed = False
        self._identity = file_identity(self.ca_file)
        self._context = build()
        #: How many contexts were built (for diagnostics and tests).
        self.builds = 1
        self._next_check = clock() + interval

    def __repr__(self) -> str:
        return f"CAWatcher({str(self.ca_file)!r})"

    def ssl_context(self) -> ssl.SSLContext:
        """The context for a new connection."""
        now = self._clock()
        if now >= self._next_check:
            self._next_check = now + self.interval
            reason = "verification failed" if self._verification_failed else "changed"
            self._verification_failed = False
            identity = file_identity(self.ca_file)
            if identity is not None and identity != self._identity:
                self._rebuild(identity, reason)
        return self._context

    def verification_failed(self) -> None:
        """A server certificate did not verify: look at the file on the next connection."""
        self._next_check = 0.0
        self._verification_failed = True

    def _rebuild(self, identity: Identity, reason: str) -> None:
        try:
            context = self._build()
        except ConfigError as exc:
            # A half-written bundle: keep verifying with the old one and look again later.
            logger.warning("%s; keeping the previous CA bundle", exc)
            return
        self._identity = identity
        self._context = context
        self.builds += 1
        logger.info("CA bundle %s changed: new connections use it", self.ca_file)
        if self._on_event is not None:
            emit(self._on_event, CAReloadEvent(str(self.ca_file), reason))
