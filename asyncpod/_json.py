"""JSON encoding and decoding: orjson when installed, else the standard library."""

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
else:
    loads = _orjson.loads
    dumps = _orjson.dumps
    ENGINE = "orjson"

__all__ = ["ENGINE", "dumps", "loads"]
