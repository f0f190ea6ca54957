"""Building the request target (path and query) from a path and parameters."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from urllib.parse import quote, urlencode

from asyncpod._errors import InvalidNameError

ParamValue = str | int | float | bool | None | Sequence[str]
Params = Mapping[str, ParamValue]


def _param_text(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@lru_cache(maxsize=4096)
def _encoded_path(path: str) -> str:
    # Keep what is already percent-encoded; encode spaces and other unsafe bytes.
    # A client asks for the same few paths again and again, and quote() is the
    # most expensive step of building a request, so its answers are cached.
    return quote(path, safe="/:@!$&'()*+,;=-._~%?")


def build_target(path: str, params: Params | None = None) -> str:
    """``path`` plus an encoded query; ``None`` values are left out.

    Raises:
        InvalidNameError: ``path`` is not an absolute path (also a ``ValueError``).
    """
    if not path.startswith("/") or path.startswith("//"):
        msg = f"path {path!r} must be an absolute path on the API server, such as '/api'"
        raise InvalidNameError(msg)
    target = _encoded_path(path)
    if not params:
        return target
    pairs: list[tuple[str, str]] = []
    for name, value in params.items():
        if value is None:
            continue
        if isinstance(value, (str, int, float)):
            pairs.append((name, _param_text(value)))
        else:  # a sequence of values: the parameter repeats, as for ``dryRun``
            pairs.extend((name, _param_text(item)) for item in value)
    if not pairs:
        return target
    separator = "&" if "?" in target else "?"
    return f"{target}{separator}{urlencode(pairs)}"
