"""Reading the identity of an object (name, namespace, resourceVersion) as the server sent it.

Objects stay plain dicts. These accessors check the shape on the way, so a
malformed answer (``metadata`` that is a string, an item that is a number)
becomes a ``ProtocolError`` that says what was wrong, never an
``AttributeError`` from deep inside a loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from asyncpod._errors import ProtocolError


def metadata_of(obj: object, what: str) -> Mapping[str, Any]:
    """``obj["metadata"]`` (empty when absent).

    Raises:
        ProtocolError: ``obj`` is not an object, or its metadata is not one.
    """
    if not isinstance(obj, Mapping):
        msg = f"{what} is a JSON {_json_type(obj)}, not an object"
        raise ProtocolError(msg)
    metadata = obj.get("metadata")
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        msg = f"the metadata of {what} is a JSON {_json_type(metadata)}, not an object"
        raise ProtocolError(msg)
    return metadata


def object_key(obj: Mapping[str, Any], what: str = "an object") -> str:
    """``"namespace/name"`` of an object, or ``"name"`` when it has no namespace.

    Raises:
        ProtocolError: the object or its metadata is not a JSON object.
    """
    metadata = metadata_of(obj, what)
    name = str(metadata.get("name", ""))
    namespace = metadata.get("namespace")
    return f"{namespace}/{name}" if namespace else name


def resource_version_of(obj: Mapping[str, Any], what: str = "an object") -> str:
    """The object's ``metadata.resourceVersion``, ``""`` when it has none.

    Raises:
        ProtocolError: the object or its metadata is not a JSON object.
    """
    return str(metadata_of(obj, what).get("resourceVersion") or "")


def micro_time() -> str:
    """The time now as a Kubernetes ``MicroTime`` (RFC 3339 with microseconds, UTC)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    return type(value).__name__
