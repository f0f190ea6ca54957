"""JSON encoding and decoding: orjson, or the standard library where orjson has no wheel.

orjson is a required dependency on CPython, the interpreter it ships wheels for. Measured
against msgspec (benchmarks/, docs/benchmarks.md) it decodes a 4.5 KB Pod, a watch line
and a 2.2 MB PodList at least as fast, so the default install gets the fast decoder. On
other interpreters (PyPy) the import fails and the standard library decodes.
"""

from __future__ import annotations

import gc
import json as _stdlib_json
from collections.abc import Callable
from typing import Any, Final

loads: Callable[[bytes | str], Any]
dumps: Callable[[Any], bytes]

# Bodies from this size on are decoded with the cyclic garbage collector paused.
LARGE_BODY: Final = 256 * 1024

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


def loads_body(data: bytes | str) -> Any:
    """Decode a response body, which may be large (``loads`` for a watch line or a small value).

    Performance: a 2.2 MB PodList decodes into about 75,000 dicts and lists.
    While they are being built, every 700 allocations start a young-generation
    collection that walks them again, though none can be garbage yet: a fifth
    to a third of the decoding time (``python -m benchmarks.decoders``, orjson:
    16.6 ms per list, 12.9 ms with the collector paused, the one collection
    afterwards included). A
    large body is therefore decoded with the collector paused; small ones (a
    Pod, a watch event) never trigger it. The pause is skipped when the
    program has disabled the collector itself (a thread that disables it
    while another thread's large decode runs finds it enabled afterwards).
    """
    if len(data) < LARGE_BODY or not gc.isenabled():
        return loads(data)
    gc.disable()
    try:
        return loads(data)
    finally:
        gc.enable()


def describe() -> str:
    """The decoder that runs, as ``asyncpod --version`` and ``asyncpod config`` say it."""
    if ENGINE == "json":
        return "json (standard library; orjson is not installed)"
    return f"{ENGINE} {VERSION}".strip()


__all__ = ["ENGINE", "LARGE_BODY", "VERSION", "describe", "dumps", "loads", "loads_body"]
