"""URLs and hosts: origins, IPv6 brackets, loopback, and passwords kept out of sight.

A URL in a kubeconfig or a variable may carry ``user:password@``; every
message, ``repr`` and log line shows it through ``redact`` instead.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from asyncpod._errors import ConfigError

REDACTED = "***"


def redact(url: str) -> str:
    """``url`` with its userinfo (``user:password@``) replaced by ``***``."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    # The authority ends at the first "/", "?" or "#" (RFC 3986 section 3.2);
    # its userinfo ends at the last "@" in it.
    end = len(rest)
    for char in "/?#":
        index = rest.find(char)
        if index != -1:
            end = min(end, index)
    at = rest.rfind("@", 0, end)
    if at == -1:
        return url
    return f"{scheme}{sep}{REDACTED}@{rest[at + 1 :]}"


def bracket_host(host: str) -> str:
    """``host`` as it stands in a URL: IPv6 literals bracketed (RFC 3986 section 3.2.2)."""
    if ":" in host and not host.startswith("["):
        return f"[{host}]"
    return host


def join_origin(scheme: str, host: str, port: int) -> str:
    """``scheme://host:port``, bracketing IPv6 literals."""
    return f"{scheme}://{bracket_host(host)}:{port}"


def split_origin(url: str, *, schemes: tuple[str, ...], what: str) -> tuple[str, str, int]:
    """The scheme, host and port of an origin URL (the default port filled in).

    Args:
        url: ``scheme://host[:port]``, an optional ``/`` after it.
        schemes: the schemes accepted.
        what: what the URL is, for the message (``"proxy URL"``).

    Raises:
        ConfigError: another scheme, no host, a bad port, or a path, query or
            fragment; the message quotes the URL with its userinfo redacted.
    """
    shown = repr(redact(url))
    port: int | None = None
    try:
        parts = urlsplit(url)
        port = parts.port
        valid = True
    except ValueError:
        valid = False
    # Raised outside the except block: the ValueError quotes parts of the URL.
    if not valid:
        msg = f"{what} {shown} has an invalid port or host"
        raise ConfigError(msg)
    if parts.scheme not in schemes:
        msg = f"{what} {shown} must start with {' or '.join(s + '://' for s in schemes)}"
        raise ConfigError(msg)
    if not parts.hostname:
        msg = f"{what} {shown} has no host"
        raise ConfigError(msg)
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        msg = f"{what} {shown} must be an origin only (no path, query or fragment)"
        raise ConfigError(msg)
    default_port = 443 if parts.scheme == "https" else 80
    return parts.scheme, parts.hostname, port or default_port


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP literals."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def scheme_of(url: str) -> str:
    """The scheme of ``url``, lower case (``""`` when it has none)."""
    scheme, sep, _ = url.partition("://")
    return scheme.lower() if sep else ""


__all__ = [
    "REDACTED",
    "bracket_host",
    "is_loopback",
    "join_origin",
    "redact",
    "scheme_of",
    "split_origin",
]
