"""``TokenFile``: a bearer token read from a file that the kubelet rotates.

The kubelet renews a projected service-account token by writing a new
timestamped folder and swapping the ``..data`` symlink; the path ``token``
never changes but the file behind it does. ``TokenFile`` keeps the last good
token and the identity of that file (device, inode, mtime, size, following
symlinks), and:

- per request reads the monotonic clock once and returns the cached header;
- at most once a second ``stat``s the file and re-reads it when its identity
  changed;
- re-reads it at least every 60 s regardless (client-go's period for file
  tokens) and before the JWT's ``exp``;
- after a 401 on a request sent with the current token, re-reads at once; a
  burst of 401s for the same token causes a single read (client-go's "reset
  only tokens older than the request");
- keeps the last good token, with a warning, when the file is unreadable or
  empty: a half-written rotation must not break running requests.

The files are tiny and live on a tmpfs, so they are read synchronously: one
``stat`` a second costs microseconds, less than a thread hop would.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import anyio

from asyncpod._errors import ConfigError
from asyncpod._events import EventHook, TokenReloadEvent, emit
from asyncpod._files import Identity, file_identity, try_read_token

logger = logging.getLogger("asyncpod")

CHECK_INTERVAL = 1.0
MAX_AGE = 60.0
# Re-read this long before the token's own expiry, so that a token renewed on
# time is picked up before the server starts rejecting the old one.
EXPIRY_MARGIN = 5.0


def jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT as a Unix time, without verifying anything.

    Returns ``None`` for anything that is not a JWT with a numeric ``exp``.
    """
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1]
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        claims = json.loads(raw)
    except (binascii.Error, ValueError):
        return None
    if not isinstance(claims, dict):
        return None
    exp = claims.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        return None
    return float(exp)


class TokenFile:
    """Bearer-token auth from a file that is rotated in place (implements ``Auth``).

    Args:
        path: the token file (a symlink chain is followed).
        check_interval: the least time between two ``stat`` calls.
        max_age: the longest time a token is used without reading the file.
        clock: a monotonic clock (for tests).
        wall_clock: the Unix time (for the JWT ``exp``).
        on_event: called with a ``TokenReloadEvent`` after each read but the
            first (``Client(on_event=...)`` passes its hook here).

    Raises:
        ConfigError: the file cannot be read or is empty when the object is made.
    """

    __slots__ = (
        "_checked_after_401",
        "_clock",
        "_deadline",
        "_deadline_reason",
        "_header",
        "_identity",
        "_last_error",
        "_lock",
        "_next_check",
        "_on_event",
        "_wall_clock",
        "check_interval",
        "max_age",
        "path",
        "reads",
    )

    def __init__(
        self,
        path: str | Path,
        *,
        check_interval: float = CHECK_INTERVAL,
        max_age: float = MAX_AGE,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        on_event: EventHook | None = None,
    ) -> None:
        self.path = Path(path)
        self.check_interval = check_interval
        self.max_age = max_age
        self._clock = clock
        self._wall_clock = wall_clock
        self._on_event = on_event
        self._lock: anyio.Lock | None = None
        self._checked_after_401: tuple[str, float] | None = None
        #: How many times the file was read (for diagnostics and tests).
        self.reads = 0
        self._header = ""
        self._last_error: str | None = None
        self._identity: Identity | None = None
        now = clock()
        self._next_check = now + check_interval
        self._deadline = now + max_age
        # Why the read at ``_deadline`` happens, for TokenReloadEvent.
        self._deadline_reason = "periodic"
        error = self._read(now, None)
        if error is not None:
            msg = f"token file {self.path} {error}"
            raise ConfigError(msg)

    def __repr__(self) -> str:
        return f"TokenFile({str(self.path)!r})"

    async def authorization(self) -> str | None:
        """The ``Authorization`` header: ``Bearer <token>``."""
        # The hot path: one clock read and a comparison.
        now = self._clock()
        if now < self._next_check:
            return self._header
        self._check(now)
        return self._header

    async def unauthorized(self, sent: str | None) -> bool:
        """Re-read the file after a 401; True when a retry carries another token."""
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            if sent == self._header:
                now = self._clock()
                if not self._reread_recently(sent, now):
                    self._read(now, "401")
                    if self._header == sent:
                        self._checked_after_401 = (sent, now)
            return self._header != sent

    def _reread_recently(self, sent: str, now: float) -> bool:
        """True when a 401 for ``sent`` just made us read an unchanged file.

        Reading again would not help: the token in the file is the one the
        server rejects. A file whose identity changed since is read anyway.
        """
        checked = self._checked_after_401
        if checked is None or checked[0] != sent or now - checked[1] >= self.check_interval:
            return False
        identity = file_identity(self.path)
        return identity is None or identity == self._identity

    def _check(self, now: float) -> None:
        self._next_check = now + self.check_interval
        if now >= self._deadline:
            self._read(now, self._deadline_reason)
            return
        if file_identity(self.path) != self._identity:
            # Changed, or cannot be looked at: _read says which, and warns.
            self._read(now, "changed")

    def _read(self, now: float, reason: str | None) -> str | None:
        """Read the file; on failure keep the last token and return the reason.

        ``reason`` says why, for the ``TokenReloadEvent``; ``None`` (the first
        read) reports nothing.
        """
        self.reads += 1
        # Bounded and checked: a hostile or broken file must not become a
        # megabyte header, inject one through a newline, or block on a FIFO.
        result = try_read_token(self.path)
        if isinstance(result, str):
            error = result
            if self._header:
                # Warn once per kind of trouble, not at every check of a
                # file that stays broken.
                log = logger.warning if error != self._last_error else logger.debug
                log("token file %s %s; keeping the previous token", self.path, error)
                self._last_error = error
            # Try again at the next check rather than waiting a full period.
            self._deadline = now
            self._deadline_reason = "retry"
            if self._on_event is not None and reason is not None:
                emit(self._on_event, TokenReloadEvent(str(self.path), reason, False, error))
            return error
        token, identity = result
        if self._last_error is not None:
            logger.info("token file %s can be read again", self.path)
            self._last_error = None
        self._identity = identity
        header = f"Bearer {token}"
        changed = header != self._header
        self._header = header
        deadline = now + self.max_age
        self._deadline_reason = "periodic"
        exp = jwt_expiry(token)
        if exp is not None:
            before_exp = now + (exp - self._wall_clock()) - EXPIRY_MARGIN
            if before_exp < deadline:
                deadline = before_exp
                self._deadline_reason = "expiry"
        self._deadline = max(deadline, now + self.check_interval)
        logger.debug(
            "token file %s read (%s)", self.path, "new token" if changed else "token unchanged"
        )
        if self._on_event is not None and reason is not None:
            emit(self._on_event, TokenReloadEvent(str(self.path), reason, changed))
        return None
