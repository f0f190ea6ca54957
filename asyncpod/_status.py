"""Turning an error response into the matching ``APIError``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from asyncpod import _json
from asyncpod._errors import APIError, error_class_for


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds form, RFC 9110 10.2.3).

    The value is the server's; the one cap on how long a client waits is
    ``RetryPolicy.max_retry_after``, for requests and watches alike.
    """
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    if seconds != seconds or seconds < 0:  # NaN or negative
        return None
    return seconds


def api_error(
    status: int, headers: Mapping[str, str], content: bytes, reason: str = ""
) -> APIError:
    """The ``APIError`` subclass for an error answer, carrying the server's Status."""
    body: dict[str, Any] = {}
    try:
        decoded = _json.loads(content) if content else None
    except ValueError:
        decoded = None
    if isinstance(decoded, dict):
        body = decoded
    if body.get("kind") == "Status":
        status_reason = str(body.get("reason") or reason or "Unknown")
        message = str(body.get("message") or status_reason)
    else:
        status_reason = reason or "Unknown"
        text = content[:512].decode("utf-8", errors="replace").strip()
        message = text or status_reason
    cls = error_class_for(status)
    return cls(
        status,
        status_reason,
        message,
        body,
        retry_after=parse_retry_after(headers.get("retry-after")),
    )


def status_error(status: Mapping[str, Any]) -> APIError:
    """The ``APIError`` a ``Status`` object stands for (an ERROR event of a watch)."""
    code = status.get("code")
    code = code if isinstance(code, int) else 500
    reason = str(status.get("reason") or "Unknown")
    message = str(status.get("message") or reason)
    return error_class_for(code)(code, reason, message, dict(status))
