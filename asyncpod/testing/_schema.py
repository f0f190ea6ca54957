"""A custom resource's structural schema: pruning, defaulting and validation.

What the apiextensions server does with a CRD version's ``openAPIV3Schema``
on every write: fields the schema does not know are dropped (unless
``x-kubernetes-preserve-unknown-fields``), missing fields with a ``default``
get it, and the value is checked for ``type``, ``required``, ``enum``,
``minimum``/``maximum``, ``pattern``, ``minItems``/``maxItems`` and
``x-kubernetes-int-or-string``, with the real causes. CEL rules
(``x-kubernetes-validations``) and formats are not checked.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from asyncpod.testing._validation import Cause, invalid, not_supported, required

_TOP_LEVEL = ("apiVersion", "kind", "metadata")


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def _type_ok(kind: str, value: Any) -> bool:
    actual = _type_name(value)
    return actual == kind or (kind == "number" and actual == "integer")


def _number(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _walk(schema: dict[str, Any], value: Any, path: str) -> tuple[Any, list[Cause]]:
    """The value pruned and defaulted, and the causes it is refused for."""
    if value is None and schema.get("nullable"):
        return value, []
    if schema.get("x-kubernetes-int-or-string"):
        if not isinstance(value, (int, str)) or isinstance(value, bool):
            return value, [
                (
                    "FieldValueTypeInvalid",
                    path,
                    f'Invalid value: "{_type_name(value)}": {path} in body must be of type '
                    f'integer,string: "{_type_name(value)}"',
                )
            ]
        return value, []
    kind = schema.get("type")
    if kind and not _type_ok(kind, value):
        name = _type_name(value)
        message = f'Invalid value: "{name}": {path} in body must be of type {kind}: "{name}"'
        return value, [("FieldValueTypeInvalid", path, message)]
    causes: list[Cause] = []
    if "enum" in schema and value not in schema["enum"]:
        causes.append(not_supported(path, value, tuple(str(e) for e in schema["enum"])))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            bound = _number(schema["minimum"])
            causes.append(
                invalid(path, value, f"{path} in body should be greater than or equal to {bound}")
            )
        if "maximum" in schema and value > schema["maximum"]:
            bound = _number(schema["maximum"])
            causes.append(
                invalid(path, value, f"{path} in body should be less than or equal to {bound}")
            )
    if isinstance(value, str) and "pattern" in schema and not re.search(schema["pattern"], value):
        causes.append(invalid(path, value, f"{path} in body should match '{schema['pattern']}'"))
    if isinstance(value, dict):
        value, more = _walk_object(schema, value, path)
        causes += more
    elif isinstance(value, list):
        items = schema.get("items")
        if "minItems" in schema and len(value) < schema["minItems"]:
            causes.append(
                invalid(
                    path,
                    len(value),
                    f"{path} in body should have at least {schema['minItems']} items",
                )
            )
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            causes.append(
                (
                    "FieldValueTooMany",
                    path,
                    f"Too many: {len(value)}: must have at most {schema['maxItems']} items",
                )
            )
        if isinstance(items, dict):
            walked = []
            for i, item in enumerate(value):
                new, more = _walk(items, item, f"{path}[{i}]")
                walked.append(new)
                causes += more
            value = walked
    return value, causes


def _walk_object(
    schema: dict[str, Any], value: dict[str, Any], path: str, skip: tuple[str, ...] = ()
) -> tuple[dict[str, Any], list[Cause]]:
    properties: dict[str, Any] = schema.get("properties") or {}
    extra = schema.get("additionalProperties")
    keep_unknown = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
    causes: list[Cause] = []
    out: dict[str, Any] = {}
    for key, item in value.items():
        where = f"{path}.{key}" if path else key
        if key in skip:
            out[key] = item
        elif key in properties:
            out[key], more = _walk(properties[key], item, where)
            causes += more
        elif isinstance(extra, dict):
            out[key], more = _walk(extra, item, where)
            causes += more
        elif keep_unknown or extra is True:
            out[key] = item
        # else: pruned, as the apiextensions server drops unknown fields
    for key, sub in properties.items():
        if key not in out and isinstance(sub, dict) and "default" in sub and key not in skip:
            out[key] = copy.deepcopy(sub["default"])
    for key in schema.get("required") or ():
        if key not in out and key not in skip:
            causes.append(required(f"{path}.{key}" if path else key))
    return out, causes


def apply_schema(schema: dict[str, Any], obj: dict[str, Any]) -> list[Cause]:
    """Prune and default ``obj`` in place by its version's schema; the causes to refuse it."""
    walked, causes = _walk_object(schema, obj, "", skip=_TOP_LEVEL)
    obj.clear()
    obj.update(walked)
    return causes
