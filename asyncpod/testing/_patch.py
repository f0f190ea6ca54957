"""The three patch formats: JSON merge (RFC 7386), JSON patch (RFC 6902), strategic merge."""

from __future__ import annotations

import copy
from typing import Any


class PatchError(ValueError):
    """A patch that cannot be applied; ``status`` is what the server answers (400 or 422)."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, ``null`` removes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        msg = f"invalid JSON pointer: {path!r}"
        raise PatchError(msg)
    return [_unescape(t) for t in path[1:].split("/")]


def _parent(doc: Any, tokens: list[str], path: str) -> Any:
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict):
            if token not in node:
                msg = f"doc is missing path: {path!r}: missing value"
                raise PatchError(msg)
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, path)]
        else:
            msg = f"doc is missing path: {path!r}: missing value"
            raise PatchError(msg)
    return node


def _index(node: list[Any], part: str, path: str, *, insert: bool = False) -> int:
    if part == "-" and insert:
        return len(node)
    if not part.isdigit():
        msg = f"invalid array index {part!r} in {path!r}"
        raise PatchError(msg)
    index = int(part)
    if index > len(node) or (index == len(node) and not insert):
        msg = f"array index out of bounds in {path!r}"
        raise PatchError(msg)
    return index


def _get(doc: Any, path: str) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return doc
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, path)]
    msg = f"doc is missing path: {path!r}: missing value"
    raise PatchError(msg)


def _remove(doc: Any, path: str) -> Any:
    tokens = _pointer(path)
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict) and last in parent:
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_index(parent, last, path))
    msg = f"doc is missing path: {path!r}: missing value"
    raise PatchError(msg)


def _add(doc: Any, path: str, value: Any, *, replace: bool = False) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return value
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if replace and last not in parent:
            msg = f"doc is missing key: {path!r}: missing value"
            raise PatchError(msg)
        parent[last] = value
    elif isinstance(parent, list):
        if replace:
            parent[_index(parent, last, path)] = value
        else:
            parent.insert(_index(parent, last, path, insert=True), value)
    else:
        msg = f"doc is missing path: {path!r}: missing value"
        raise PatchError(msg)
    return doc


def json_patch(target: Any, operations: Any) -> Any:
    """RFC 6902: apply the operations in order, all or nothing."""
    if not isinstance(operations, list):
        msg = "json: cannot unmarshal object into Go value of type jsonpatch.Patch"
        raise PatchError(msg, status=400)
    doc = copy.deepcopy(target)
    for op in operations:
        if not isinstance(op, dict) or "op" not in op:
            msg = "Unexpected kind: missing op"
            raise PatchError(msg, status=400)
        kind, path = op["op"], op.get("path", "")
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            _remove(doc, path)
        elif kind == "replace":
            doc = _add(doc, path, copy.deepcopy(op.get("value")), replace=True)
        elif kind == "move":
            value = _remove(doc, op.get("from", ""))
            doc = _add(doc, path, value)
        elif kind == "copy":
            doc = _add(doc, path, copy.deepcopy(_get(doc, op.get("from", ""))))
        elif kind == "test":
            if _get(doc, path) != op.get("value"):
                msg = f"testing value {path} failed: test failed"
                raise PatchError(msg)
        else:
            msg = f"Unexpected kind: {kind}"
            raise PatchError(msg, status=400)
    return doc


# Merge keys of the lists that a strategic merge patch merges element by element,
# from the Kubernetes API types' patchMergeKey tags; other lists are replaced.
MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "ownerReferences": "uid",
    "conditions": "type",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
}
# Lists of scalars merged as sets (patchStrategy "merge" without a key).
MERGE_SETS = frozenset({"finalizers"})


def _ports_key(items: list[Any]) -> str | None:
    if items and isinstance(items[0], dict):
        if "containerPort" in items[0]:
            return "containerPort"
        if "port" in items[0]:
            return "port"
    return None


def merge_key(field: str, items: list[Any]) -> str | None:
    """The merge key of the list ``field``, or ``None`` when it is replaced whole."""
    if field == "ports":
        return _ports_key(items)
    return MERGE_KEYS.get(field)


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """Strategic merge: a merge patch whose keyed lists merge by their merge key."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") or key in ("$retainKeys", "$patch"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            current = result.get(field)
            if isinstance(current, list) and isinstance(value, list):
                result[field] = [v for v in current if v not in value]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list):
            result[key] = _merge_list(key, result.get(key), value)
        elif isinstance(value, dict):
            merged = strategic_merge_patch(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        else:
            result[key] = value
    return result


def _merge_list(field: str, current: Any, patch: list[Any]) -> list[Any]:
    if not isinstance(current, list):
        current = []
    if field in MERGE_SETS:
        merged = list(current)
        merged.extend(v for v in patch if v not in merged)
        return merged
    key = merge_key(field, patch or current)
    if key is None:
        if any(isinstance(v, dict) and v.get("$patch") == "replace" for v in patch):
            return [v for v in patch if not (isinstance(v, dict) and "$patch" in v)]
        return copy.deepcopy(patch)
    merged = [copy.deepcopy(v) for v in current]
    for item in patch:
        if not isinstance(item, dict):
            continue
        if item.get("$patch") == "replace":
            return [v for v in patch if isinstance(v, dict) and "$patch" not in v]
        position = next(
            (
                i
                for i, existing in enumerate(merged)
                if isinstance(existing, dict) and existing.get(key) == item.get(key)
            ),
            None,
        )
        if item.get("$patch") == "delete":
            if position is not None:
                merged.pop(position)
            continue
        if position is None:
            merged.append(strategic_merge_patch({}, item))
        else:
            merged[position] = strategic_merge_patch(merged[position], item)
    return merged
