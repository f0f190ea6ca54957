"""The exception tree of asyncpod.

Every failure a caller can meet is an ``AsyncpodError``. Foreign exceptions
(aiohttp, h11, ssl, OSError) are mapped where they enter and chained with
``raise ... from exc``.
"""

from __future__ import annotations

from typing import Any


class AsyncpodError(Exception):
    """Base class of every error raised by asyncpod."""


class ConfigError(AsyncpodError):
    """No config link applied, or a file or variable is malformed."""


class UnknownResourceError(AsyncpodError, LookupError):
    """The resource spelling matches nothing the server serves."""


class InvalidNameError(AsyncpodError, ValueError):
    """A name, namespace or subresource could escape its URL path segment.

    Raised before any request is sent, so such a value never reaches another
    path on the server.
    """


class TransportError(AsyncpodError):
    """Could not connect, TLS verification failed, or the connection dropped.

    ``sent`` tells whether any byte of the request may have reached the server:
    ``False`` only when the failure provably happened before (connect, TLS
    handshake), which makes the request safe to retry for every verb.
    """

    def __init__(self, message: str, *, sent: bool = True) -> None:
        super().__init__(message)
        self.sent = sent


class ProtocolError(TransportError):
    """The server's answer could not be read (bad framing, a body that is not JSON)."""


class RequestTimeoutError(TransportError, TimeoutError):
    """A deadline passed before the server answered."""


class ResponseTooLargeError(ProtocolError):
    """The answer is larger than the client's ``max_response_size``."""


class APIError(AsyncpodError):
    """The API server answered with an error status.

    Attributes:
        status: the HTTP status code.
        reason: the Status ``reason`` (``"NotFound"``, ``"Conflict"``...), or the
            HTTP reason phrase when the body is not a Status.
        message: the human-readable message of the server.
        body: the server's ``Status`` object as a dict (empty when the body was
            not JSON).
        retry_after: seconds from a ``Retry-After`` header, when the server sent one.
    """

    status: int

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        body: dict[str, Any] | None = None,
        *,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.body: dict[str, Any] = body if body is not None else {}
        self.retry_after = retry_after

    @property
    def details(self) -> dict[str, Any]:
        """The Status ``details`` (name, kind, causes), empty when absent."""
        details = self.body.get("details")
        return details if isinstance(details, dict) else {}


class BadRequestError(APIError):
    """400: the request was malformed."""


class UnauthorizedError(APIError):
    """401: the credentials were missing, invalid or expired."""


class ForbiddenError(APIError):
    """403: the caller is not allowed to do this."""


class NotFoundError(APIError):
    """404: the object or path does not exist."""


class ConflictError(APIError):
    """409: the object exists already, or its resourceVersion is stale."""


class GoneError(APIError):
    """410: the resourceVersion or continue token is too old; list again."""


class InvalidError(APIError):
    """422: the object failed validation; ``details["causes"]`` says where."""


class TooManyRequestsError(APIError):
    """429: the server is throttling; ``retry_after`` says how long to wait."""


class ServerError(APIError):
    """5xx: the server failed."""


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    410: GoneError,
    422: InvalidError,
    429: TooManyRequestsError,
}


def error_class_for(status: int) -> type[APIError]:
    """The most specific ``APIError`` subclass for an HTTP status."""
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, APIError)
