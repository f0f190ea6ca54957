"""Reading the files a config names: bounded, never blocking, errors in one wording.

Every file asyncpod reads (token, CA bundle, client certificate and key,
namespace, kubeconfig) comes from outside: a mounted secret, a user's home, a
path in a kubeconfig. A link to ``/dev/zero`` must not be read until memory
runs out, nor a FIFO block the event loop forever. So a file is opened with
``O_NONBLOCK`` (opening a FIFO for reading then returns at once), refused
unless ``fstat`` says it is a regular file, and read up to its limit plus one
byte, which tells "too large" from "exactly at the limit".
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from asyncpod._credentials import MAX_TOKEN_SIZE, token_problem
from asyncpod._errors import ConfigError

#: (device, inode, mtime in ns, size) of the file behind the symlinks: a
#: rotation that swaps the kubelet's ``..data`` link changes it.
Identity = tuple[int, int, int, int]

# A token and room for the whitespace around it (a trailing newline, CRLF).
MAX_TOKEN_FILE_SIZE = MAX_TOKEN_SIZE + 4096
_CHUNK = 64 << 10
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)


def identity_of(st: os.stat_result) -> Identity:
    """The identity of a file from its ``stat`` result."""
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


def file_identity(path: Path) -> Identity | None:
    """The identity of the file behind ``path``, ``None`` when it cannot be looked at."""
    try:
        return identity_of(os.stat(path))
    except OSError:
        return None


def describe(exc: BaseException) -> str:
    """An OS error in words (``strerror``), without the path or any content."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, UnicodeError):
        return "not UTF-8 text"
    return type(exc).__name__


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def regular_file_problem(
    path: Path, *, empty_ok: bool = True, limit: int | None = None
) -> str | None:
    """Why ``path`` is not a regular file that can be read, without reading it.

    The answer reads after the file's name ("token file F {problem}").
    """
    try:
        st = os.stat(path)
    except OSError as exc:
        return f"could not be read: {describe(exc)}"
    if not stat.S_ISREG(st.st_mode):
        return f"is {_kind(st.st_mode)}, not a regular file"
    if not empty_ok and st.st_size == 0:
        return "is empty"
    if limit is not None and st.st_size > limit:
        return f"is larger than {limit} bytes"
    return None


def try_read(path: Path, limit: int) -> tuple[bytes, Identity] | str:
    """The bytes and identity of a regular file of at most ``limit`` bytes, or why not.

    The reason reads after the file's name ("CA bundle F {reason}") and never
    quotes the content.
    """
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        return f"could not be read: {describe(exc)}"
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return f"is {_kind(st.st_mode)}, not a regular file"
        # O_NONBLOCK has no effect on regular files; clear it anyway so that
        # a file system that honours it cannot answer EAGAIN.
        os.set_blocking(fd, True)
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(_CHUNK, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        return f"could not be read: {describe(exc)}"
    finally:
        os.close(fd)
    if size > limit:
        return f"is larger than {limit} bytes"
    return b"".join(chunks), identity_of(st)


def read_file(path: Path, *, what: str, limit: int) -> bytes:
    """A whole regular file of at most ``limit`` bytes.

    Args:
        path: the file.
        what: what it is, for the message (``"CA bundle"``).
        limit: the most bytes it may hold.

    Raises:
        ConfigError: it cannot be read, is not a regular file or is too large
            (the message names ``what`` and the file).
    """
    result = try_read(path, limit)
    if isinstance(result, str):
        msg = f"{what} {path} {result}"
        raise ConfigError(msg)
    return result[0]


def read_text(path: Path, *, what: str, limit: int) -> str:
    """A whole regular UTF-8 text file of at most ``limit`` bytes.

    Raises:
        ConfigError: as ``read_file``, or the file is not UTF-8 text.
    """
    raw = read_file(path, what=what, limit=limit)
    try:
        text: str | None = raw.decode("utf-8")
    except UnicodeDecodeError:
        # The error object holds the whole file (a token, a key): it must
        # not ride along as the context of ours, so raise outside.
        text = None
    if text is None:
        msg = f"{what} {path} could not be read: not UTF-8 text"
        raise ConfigError(msg)
    return text


def try_read_token(path: Path) -> tuple[str, Identity] | str:
    """The token in ``path`` and the file's identity, or why there is none.

    The one token-file reader: bounded (``MAX_TOKEN_FILE_SIZE``) and checked
    by ``token_problem``. The reason reads after the file's name and never
    holds a byte of the token.
    """
    result = try_read(path, MAX_TOKEN_FILE_SIZE)
    if isinstance(result, str):
        return result
    raw, identity = result
    raw = raw.strip()
    problem = token_problem(raw)
    if problem is not None:
        return problem
    return raw.decode("ascii"), identity


def read_token_file(path: Path) -> str:
    """The token in ``path``.

    Raises:
        ConfigError: the file cannot be read or holds no usable token.
    """
    result = try_read_token(path)
    if isinstance(result, str):
        msg = f"token file {path} {result}"
        raise ConfigError(msg)
    return result[0]


def check_token_file(path: Path) -> None:
    """Refuse a token file that cannot hold a token, without reading it.

    The file is read when the client is entered (``TokenFile``); building a
    config only looks at it, so that the token is read once before the first
    request. An empty file, a directory, a FIFO or a device is refused here.

    Raises:
        ConfigError: the file is missing, not a regular file or empty.
    """
    problem = regular_file_problem(path, empty_ok=False, limit=MAX_TOKEN_FILE_SIZE)
    if problem is not None:
        msg = f"token file {path} {problem}"
        raise ConfigError(msg)


__all__ = [
    "MAX_TOKEN_FILE_SIZE",
    "Identity",
    "check_token_file",
    "describe",
    "file_identity",
    "identity_of",
    "read_file",
    "read_text",
    "read_token_file",
    "regular_file_problem",
    "try_read",
    "try_read_token",
]
