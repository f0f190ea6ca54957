"""JSON encoding and decoding: orjson, or the standard library where orjson has no wheel.

orjson is a required dependency on CPython, the interpreter it ships wheels for. Measured
against msgspec (benchmarks/, docs/benchmarks.md) it decodes a 4.5 KB Pod, a watch line
and a 2.2 MB PodList at least as fast, so the default install gets the fast decoder. On
other interpreters (PyPy) the import fails and the standard library decodes.
"""

from __future__ import annotations

import json as _stdlib_json
from collections.abc import Callable
from typing import Any

loads: Callable[[bytes | str], Any]
dumps: Callable[[Any], bytes]

try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised by the no-orjson nox session
    loads = _stdlib_json.loads

    def dumps(value: Any) -> bytes:
        return _stdlib_json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()

    ENGINE = "json"
    VERSION = ""
else:
    loads = _orjson.loads
    dumps = _orjson.dumps
    ENGINE = "orjson"
    VERSION = str(getattr(_orjson, "__version__", ""))


def describe() -> str:
    """The decoder that runs, as ``asyncpod --version`` and ``asyncpod config`` say it."""
    if ENGINE == "json":
        return "json (standard library; orjson is not installed)"
    return f"{ENGINE} {VERSION}".strip()


__all__ = ["ENGINE", "VERSION", "describe", "dumps", "loads"]
