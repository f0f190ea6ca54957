"""Fault injection and the log of requests the sandbox saw."""

from __future__ import annotations

import collections
import re
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal, NoReturn

from attrs import define, field, frozen

from asyncpod.testing import _status
from asyncpod.testing._status import StatusError

if TYPE_CHECKING:
    from aiohttp import web

FaultKind = Literal[
    "status", "throttle", "error", "drop_before", "drop_after", "slow", "watch_drop"
]
# The API server's wording for the statuses a fault can inject.
_INJECTED_MESSAGES = {
    429: "Too many requests, please try again later.",
    500: "Internal error occurred: injected by the sandbox",
    503: "the server is currently unable to handle the request",
    504: "the server was unable to return a response in the time allotted, but may still "
    "be processing the request",
}
KINDS = ("status", "throttle", "error", "drop_before", "drop_after", "slow", "watch_drop")


@define
class Fault:
    """One planned misbehaviour; see ``Faults.add``."""

    kind: str
    count: int
    path: re.Pattern[str] | None
    method: str | None
    status: int
    retry_after: float | None
    delay: float
    after: int
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method != method:
            return False
        return self.path is None or self.path.search(path) is not None


class Faults:
    """Planned misbehaviour for the next matching requests.

    Kinds:

    - ``"throttle"``: answer 429 ``TooManyRequests`` with ``Retry-After``
      (``retry_after`` seconds, default 1).
    - ``"error"`` / ``"status"``: answer ``status`` (default 500, or 503) with a
      Status body, and ``Retry-After`` when ``retry_after`` is given.
    - ``"drop_before"``: close the connection before reading the request body;
      nothing is done.
    - ``"drop_after"``: handle the request (a write is stored), then close the
      connection without answering.
    - ``"slow"``: wait ``delay`` seconds, then answer normally.
    - ``"watch_drop"``: a watch sends ``after`` events, then the connection
      drops without the final chunk.

    ``path`` is a regular expression searched in the request path (without
    the query), ``method`` an HTTP method; ``count`` requests are affected
    (``None``: every one until ``clear()``).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(
        self,
        kind: FaultKind,
        *,
        count: int | None = 1,
        path: str | None = None,
        method: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
        delay: float = 0.0,
        after: int = 0,
    ) -> Fault:
        """Plan a fault for the next ``count`` matching requests."""
        if kind not in KINDS:
            msg = f"unknown fault kind {kind!r}; expected one of {', '.join(KINDS)}"
            raise ValueError(msg)
        if kind == "throttle":
            status = status or 429
            retry_after = 1.0 if retry_after is None else retry_after
        fault = Fault(
            kind,
            -1 if count is None else count,
            re.compile(path) if path is not None else None,
            method.upper() if method else None,
            status or (500 if kind in ("error", "status") else 0),
            retry_after,
            delay,
            after,
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, method: str, path: str, *, watch: bool = False) -> Fault | None:
        """The fault for this request, if one is planned (it is used up)."""
        if not self._faults:
            return None
        with self._lock:
            for fault in self._faults:
                if fault.kind == "watch_drop" and not watch:
                    continue
                if fault.matches(method, path):
                    fault.hits += 1
                    if fault.count > 0:
                        fault.count -= 1
                        if fault.count == 0:
                            self._faults.remove(fault)
                    return fault
        return None

    def clear(self) -> None:
        """Forget every planned fault."""
        with self._lock:
            self._faults.clear()

    def __len__(self) -> int:
        return len(self._faults)


@frozen
class RequestRecord:
    """A request as the sandbox saw it."""

    method: str
    path: str
    query: str
    user: str
    listener: str
    status: int
    time: float = field(eq=False)


class RequestLog:
    """The requests the sandbox saw, in arrival order (``status`` 0: no answer sent).

    Args:
        limit: the most records kept (the oldest go first), so that a
            benchmark of millions of requests does not grow without bound.
    """

    def __init__(self, limit: int = 100_000) -> None:
        self._records: collections.deque[RequestRecord] = collections.deque(maxlen=limit)

    def append(self, record: RequestRecord) -> None:
        self._records.append(record)

    def __iter__(self) -> Iterator[RequestRecord]:
        return iter(list(self._records))

    def __len__(self) -> int:
        return len(self._records)

    def __getitem__(self, index: int) -> RequestRecord:
        return self._records[index]

    def filter(self, method: str | None = None, path: str | None = None) -> list[RequestRecord]:
        """Records of ``method`` whose path matches the regex ``path`` (fully)."""
        pattern = re.compile(path) if path is not None else None
        return [
            r
            for r in list(self._records)
            if (method is None or r.method == method.upper())
            and (pattern is None or pattern.fullmatch(r.path))
        ]

    def count(self, method: str | None = None, path: str | None = None) -> int:
        """How many requests of ``method`` on ``path`` (a regex, matched fully) arrived."""
        return len(self.filter(method, path))

    def clear(self) -> None:
        self._records.clear()


def now() -> float:
    return time.time()


class Drop(Exception):
    """Close the connection without an answer (raised where a fault says so)."""


def drop() -> NoReturn:
    """Close the connection without an answer: the handler catches ``Drop`` and aborts."""
    raise Drop


def abort(request: web.BaseRequest) -> None:
    """Close the request's connection at once, without an answer."""
    transport = request.transport
    if transport is not None:
        transport.abort()


def injected_error(fault: Fault) -> StatusError:
    """The answer of a ``status``, ``error`` or ``throttle`` fault, worded as the API server's.

    A 401 is exactly the real one, as if the token had just been revoked;
    ``retry_after`` adds ``Retry-After`` and ``details.retryAfterSeconds``.
    """
    code = fault.status
    if code == 401:
        return _status.unauthorized()
    message = _INJECTED_MESSAGES.get(code, f"the sandbox injected a {code} answer")
    details: dict[str, Any] = {}
    if fault.retry_after is not None:
        details["retryAfterSeconds"] = max(int(fault.retry_after), 1)
    err = StatusError(_status.status(code, message, details=details))
    if fault.retry_after is not None:
        err.headers["Retry-After"] = f"{fault.retry_after:g}"
    return err
