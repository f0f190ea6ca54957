"""Checking a bearer token before it goes into a header.

A token file is outside our control: a half-written file, a mounted secret of
the wrong kind or a hostile blob must give a ``ConfigError`` naming the file,
never a crash, a megabyte header, or a header injection through a newline.
No message here ever contains the token or any byte of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

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


def read_token(handle: BinaryIO) -> tuple[str, str | None]:
    """Read a token from an open file, reading no more than a token may hold.

    Returns:
        ``(token, None)``, or ``("", problem)`` when the file holds no usable
        token (see ``token_problem``).

    Raises:
        OSError: the file could not be read.
    """
    raw = handle.read(MAX_TOKEN_SIZE + 4096).strip()  # room for surrounding whitespace
    if handle.read(1):
        return "", f"is larger than the {MAX_TOKEN_SIZE} bytes a token may have"
    problem = token_problem(raw)
    if problem is not None:
        return "", problem
    return raw.decode("ascii"), None


def check_token(token: str, where: str) -> str:
    """``token`` stripped, when it can be sent as a bearer token.

    Raises:
        ConfigError: it cannot; the message names ``where``, never the token.
    """
    raw = token.strip().encode("utf-8", errors="surrogateescape")
    problem = token_problem(raw)
    if problem is not None:
        msg = f"{where} {problem}"
        raise ConfigError(msg)
    return raw.decode("ascii")


def read_token_file(path: Path) -> str:
    """Read and check a token file.

    Raises:
        ConfigError: the file cannot be read or holds no usable token.
    """
    try:
        with path.open("rb") as handle:
            token, problem = read_token(handle)
    except OSError as exc:
        msg = f"the token file {path} could not be read: {exc.strerror or exc}"
        raise ConfigError(msg) from exc
    if problem is not None:
        msg = f"the token file {path} {problem}"
        raise ConfigError(msg)
    return token


__all__ = ["MAX_TOKEN_SIZE", "check_token", "read_token", "read_token_file", "token_problem"]
