"""Checking a bearer token before it goes into a header.

A token file is outside our control: a half-written file, a mounted secret of
the wrong kind or a hostile blob must give a ``ConfigError`` naming the file,
never a crash, a megabyte header, or a header injection through a newline.
No message here ever contains the token or any byte of it.
"""

from __future__ import annotations

from asyncpod._errors import ConfigError

# Service-account JWTs are about 1 KB and OIDC tokens a few KB; anything near
# the API server's header limit (1 MB in Go's net/http) is not a token.
MAX_TOKEN_SIZE = 64 << 10


def token_problem(raw: bytes) -> str | None:
    """Why ``raw`` (already stripped) cannot be a bearer token, or ``None`` when it can.

    The answer reads after a subject: "the token file F {problem}". A token is
    sent as ``Authorization: Bearer <token>``, so it may only hold visible
    ASCII (RFC 9110 field values; RFC 6750's b64token is stricter).
    """
    if not raw:
        return "is empty"
    if len(raw) > MAX_TOKEN_SIZE:
        return f"is {len(raw)} bytes long, more than the {MAX_TOKEN_SIZE} bytes a token may have"
    if raw.isascii() and raw.isalnum():
        return None  # the common case, checked in C
    for offset, byte in enumerate(raw):
        if not 0x21 <= byte <= 0x7E:
            return f"has a byte that is not visible ASCII at offset {offset} (0x{byte:02x})"
    return None


def check_token(token: str, where: str) -> str:
    """``token`` stripped, when it can be sent as a bearer token.

    Raises:
        ConfigError: it cannot; the message names ``where``, never the token.
    """
    # surrogatepass encodes every code point, so no encoding error (which
    # would carry the whole token) can arise; token_problem refuses non-ASCII.
    raw = token.strip().encode("utf-8", errors="surrogatepass")
    problem = token_problem(raw)
    if problem is not None:
        msg = f"{where} {problem}"
        raise ConfigError(msg)
    return raw.decode("ascii")


__all__ = ["MAX_TOKEN_SIZE", "check_token", "token_problem"]
