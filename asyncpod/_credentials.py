"""Checking a bearer token before it goes into a header.

A token file is outside our control: a half-written file, a mounted secret of
the wrong kind or a hostile blob must give a ``ConfigError`` naming the file,
never a crash, a megabyte header, or a header injection through a newline.
No message here ever contains the token or any byte of it.
"""

from __future__ import annotations

from pathlib import Path

from asyncpod._errors import ConfigError

# Service-account JWTs are about 1 KB and OIDC tokens a few KB; anything near
# the API server's header limit (1 MB in Go's net/http) is not a token.
MAX_TOKEN_SIZE = 64 << 10


def token_problem(raw: bytes) -> str | None:
    """Why ``raw`` (already stripped) cannot be a bearer token, or ``None`` when it can.

    A token is sent as ``Authorization: Bearer <token>``, so it may only hold
    visible ASCII (RFC 9110 field values; RFC 6750's b64token is stricter).
    """
    if not raw:
        return "it is empty"
    if len(raw) > MAX_TOKEN_SIZE:
        return f"it is {len(raw)} bytes long, more than the {MAX_TOKEN_SIZE} bytes a token may have"
    for offset, byte in enumerate(raw):
        if not 0x21 <= byte <= 0x7E:
            return f"byte {offset} is not visible ASCII (0x{byte:02x})"
    return None


def check_token(token: str, where: str) -> str:
    """``token`` stripped, when it can be sent as a bearer token.

    Raises:
        ConfigError: it cannot; the message names ``where``, never the token.
    """
    raw = token.strip().encode("utf-8", errors="surrogateescape")
    problem = token_problem(raw)
    if problem is not None:
        msg = f"{where} does not hold a usable bearer token: {problem}"
        raise ConfigError(msg)
    return raw.decode("ascii")


def read_token_file(path: Path) -> str:
    """Read and check a token file, reading no more than a token may hold.

    Raises:
        ConfigError: the file cannot be read or holds no usable token.
    """
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_TOKEN_SIZE + 4096)  # room for surrounding whitespace
            too_long = bool(file.read(1))
    except OSError as exc:
        msg = f"cannot read the token file {path}: {exc.strerror or exc}"
        raise ConfigError(msg) from exc
    raw = raw.strip()
    if too_long:
        problem: str | None = f"it is larger than the {MAX_TOKEN_SIZE} bytes a token may have"
    else:
        problem = token_problem(raw)
    if problem is not None:
        msg = f"the token file {path} does not hold a usable bearer token: {problem}"
        raise ConfigError(msg)
    return raw.decode("ascii")


__all__ = ["MAX_TOKEN_SIZE", "check_token", "read_token_file", "token_problem"]
