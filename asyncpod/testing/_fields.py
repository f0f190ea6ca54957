"""Field sets (``managedFields``/``fieldsV1``) and server-side apply.

A field set is a dict from a path to the value found there. A path is a
tuple of fieldsV1 tokens: ``f:<field>``, ``k:{"name":"c"}`` for an element of
a keyed list, ``v:<json>`` for an element of a set. The value of a map that
is owned as a whole (labels, data) is ``NODE``, shown as ``"."`` in fieldsV1.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from asyncpod.testing._patch import MERGE_SETS, merge_key, strategic_merge_patch

Path = tuple[str, ...]
NODE: Any = object()

# Free-form maps (map[string]string and friends): the map itself is owned ("."),
# unlike structs such as spec, whose presence is implied by their fields.
MAP_FIELDS = frozenset(
    {
        "labels",
        "annotations",
        "data",
        "binaryData",
        "stringData",
        "matchLabels",
        "nodeSelector",
        "limits",
        "requests",
        "capacity",
        "allocatable",
    }
)
_METADATA_FIELDS = ("labels", "annotations", "finalizers", "ownerReferences")


def _key_token(key: str, item: dict[str, Any]) -> str:
    values: dict[str, Any] = {key: item.get(key)}
    if key in ("containerPort", "port"):
        # Ports are keyed by number and protocol (listMapKeys), TCP by default.
        values["protocol"] = item.get("protocol", "TCP")
    return "k:" + json.dumps(values, separators=(",", ":"))


def _flatten_value(path: Path, name: str, value: Any, out: dict[Path, Any]) -> None:
    here = (*path, "f:" + name)
    if isinstance(value, dict):
        if not value:
            out[here] = {}
            return
        is_map = name in MAP_FIELDS or (
            name == "selector" and "matchLabels" not in value and "matchExpressions" not in value
        )
        if is_map:
            out[here] = NODE
        for key, child in value.items():
            _flatten_value(here, key, child, out)
        return
    if isinstance(value, list):
        if name in MERGE_SETS and all(not isinstance(v, dict | list) for v in value):
            if not value:
                out[here] = []
            for item in value:
                item_path = (*here, "v:" + json.dumps(item, separators=(",", ":")))
                out[item_path] = item
            return
        key = merge_key(name, value)
        if key and value and all(isinstance(v, dict) and key in v for v in value):
            for item in value:
                item_path = (*here, _key_token(key, item))
                out[item_path] = NODE
                for field, child in item.items():
                    _flatten_value(item_path, field, child, out)
            return
    out[here] = value


def flatten(obj: dict[str, Any], *, status: bool = True) -> dict[Path, Any]:
    """The field set of ``obj``: every owned path and its value.

    Args:
        obj: the object.
        status: include ``status`` (false when a status subresource owns it).
    """
    out: dict[Path, Any] = {}
    metadata = obj.get("metadata") or {}
    for name in _METADATA_FIELDS:
        if name in metadata:
            if name == "ownerReferences":
                _flatten_keyed(("f:metadata",), name, metadata[name], "uid", out)
            else:
                _flatten_value(("f:metadata",), name, metadata[name], out)
    for name, value in obj.items():
        if name in ("apiVersion", "kind", "metadata") or (name == "status" and not status):
            continue
        _flatten_value((), name, value, out)
    return out


def flatten_status(obj: dict[str, Any]) -> dict[Path, Any]:
    """The field set of ``obj["status"]`` alone."""
    out: dict[Path, Any] = {}
    if "status" in obj:
        _flatten_value((), "status", obj["status"], out)
    return out


def _flatten_keyed(path: Path, name: str, value: Any, key: str, out: dict[Path, Any]) -> None:
    here = (*path, "f:" + name)
    if not isinstance(value, list):
        out[here] = value
        return
    for item in value:
        if isinstance(item, dict):
            item_path = (*here, _key_token(key, item))
            out[item_path] = NODE
            for field, child in item.items():
                _flatten_value(item_path, field, child, out)


def to_fields_v1(paths: set[Path] | dict[Path, Any]) -> dict[str, Any]:
    """The nested ``fieldsV1`` form of a set of paths."""
    tree: dict[str, Any] = {}
    for path in sorted(paths):
        node = tree
        for token in path:
            node = node.setdefault(token, {})
        node.setdefault(".", None)
    return _finish(tree)


def _finish(node: dict[str, Any]) -> dict[str, Any]:
    owned = "." in node
    children = {k: _finish(v) for k, v in sorted(node.items()) if k != "."}
    if owned and children:
        return {".": {}, **children}
    return children


def from_fields_v1(tree: Any, path: Path = ()) -> set[Path]:
    """The paths named by a ``fieldsV1`` tree."""
    out: set[Path] = set()
    if not isinstance(tree, dict):
        return out
    for part, child in tree.items():
        if part == ".":
            out.add(path)
        elif isinstance(child, dict) and child:
            out |= from_fields_v1(child, (*path, part))
        else:
            out.add((*path, part))
    return out


def _describe(path: Path) -> str:
    parts = []
    for token in path:
        if token.startswith("f:"):
            parts.append("." + token[2:])
        elif token.startswith("k:"):
            pairs = json.loads(token[2:])
            parts.append("[" + ",".join(f"{k}={json.dumps(v)}" for k, v in pairs.items()) + "]")
        elif token.startswith("v:"):
            parts.append(f"[{token[2:]}]")
    return "".join(parts)


class ApplyConflict(Exception):
    """Server-side apply met fields owned by other managers with other values."""

    def __init__(self, conflicts: list[tuple[str, str, Path]]) -> None:
        self.conflicts = conflicts
        count = len(conflicts)
        if count == 1:
            manager, version, path = conflicts[0]
            message = (
                f'Apply failed with 1 conflict: conflict with "{manager}" using {version}: '
                f"{_describe(path)}"
            )
        else:
            lines = [f"Apply failed with {count} conflicts:"]
            by_manager: dict[tuple[str, str], list[Path]] = {}
            for manager, version, path in conflicts:
                by_manager.setdefault((manager, version), []).append(path)
            for (manager, version), paths in by_manager.items():
                lines.append(f'conflicts with "{manager}" using {version}:')
                lines.extend(f"- {_describe(p)}" for p in paths)
            message = "\n".join(lines)
        super().__init__(message)
        self.message = message

    def causes(self) -> list[dict[str, str]]:
        return [
            {
                "reason": "FieldManagerConflict",
                "message": f'conflict with "{manager}" using {version}',
                "field": _describe(path),
            }
            for manager, version, path in self.conflicts
        ]


def _entries(obj: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not obj:
        return []
    return [dict(e) for e in (obj.get("metadata") or {}).get("managedFields") or []]


def _entry_paths(entry: dict[str, Any]) -> set[Path]:
    paths = entry.get("_paths")
    if paths is None:
        paths = from_fields_v1(entry.get("fieldsV1") or {})
    return set(paths)


def _same_owner(entry: dict[str, Any], manager: str, operation: str, sub: str | None) -> bool:
    return (
        entry.get("manager") == manager
        and entry.get("operation") == operation
        and entry.get("subresource") == sub
    )


def _write_entries(obj: dict[str, Any], entries: list[tuple[dict[str, Any], set[Path]]]) -> None:
    managed = []
    for entry, paths in entries:
        if not paths:
            continue
        entry = {k: v for k, v in entry.items() if k != "_paths"}
        entry["fieldsType"] = "FieldsV1"
        entry["fieldsV1"] = to_fields_v1(paths)
        if entry.get("subresource") is None:
            entry.pop("subresource", None)
        managed.append(entry)
    metadata = obj.setdefault("metadata", {})
    if managed:
        metadata["managedFields"] = managed
    else:
        metadata.pop("managedFields", None)


def _new_entry(
    manager: str, operation: str, api_version: str, now: str, sub: str | None
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "manager": manager,
        "operation": operation,
        "apiVersion": api_version,
        "time": now,
    }
    if sub:
        entry["subresource"] = sub
    return entry


def _flat_for(obj: dict[str, Any], sub: str | None, split_status: bool) -> dict[Path, Any]:
    if sub == "status":
        return flatten_status(obj)
    return flatten(obj, status=not split_status)


def record_update(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    *,
    manager: str,
    api_version: str,
    now: str,
    subresource: str | None = None,
    split_status: bool = False,
) -> None:
    """Give ``manager`` the fields that an Update (create, put, patch) changed.

    The changed fields leave every other manager, as the API server does; no
    conflict is raised for an Update.
    """
    old_flat = _flat_for(old, subresource, split_status) if old else {}
    new_flat = _flat_for(new, subresource, split_status)
    changed = {p for p, v in new_flat.items() if p not in old_flat or old_flat[p] != v}
    removed = set(old_flat) - set(new_flat)
    entries: list[tuple[dict[str, Any], set[Path]]] = []
    mine: tuple[dict[str, Any], set[Path]] | None = None
    for entry in _entries(old):
        paths = _entry_paths(entry)
        if _same_owner(entry, manager, "Update", subresource):
            mine = (entry, paths)
            entries.append(mine)
        else:
            entries.append((entry, paths - changed - removed))
    if changed:
        if mine is None:
            mine = (_new_entry(manager, "Update", api_version, now, subresource), set())
            entries.append(mine)
        mine[0]["time"] = now
        mine[0]["apiVersion"] = api_version
        mine[1].update(changed)
    if mine is not None:
        mine[1].difference_update(removed)
    _write_entries(new, entries)


def _delete_path(obj: Any, path: Path) -> None:
    node = obj
    for i, token in enumerate(path):
        last = i == len(path) - 1
        if token.startswith("f:"):
            name = token[2:]
            if not isinstance(node, dict) or name not in node:
                return
            if last:
                del node[name]
                return
            node = node[name]
        elif token.startswith(("k:", "v:")):
            if not isinstance(node, list):
                return
            if token.startswith("k:"):
                want = json.loads(token[2:])
                index = next(
                    (
                        j
                        for j, item in enumerate(node)
                        if isinstance(item, dict)
                        and all(
                            item.get(k, "TCP" if k == "protocol" else None) == v
                            for k, v in want.items()
                        )
                    ),
                    None,
                )
            else:
                value = json.loads(token[2:])
                index = next((j for j, item in enumerate(node) if item == value), None)
            if index is None:
                return
            if last:
                node.pop(index)
                return
            node = node[index]


def _prune_empty(obj: dict[str, Any], path: Path) -> None:
    # After removing a field, drop the maps it leaves empty (not metadata itself).
    for depth in range(len(path) - 1, 0, -1):
        parent_path = path[:depth]
        node: Any = obj
        for token in parent_path:
            if token.startswith("f:") and isinstance(node, dict):
                node = node.get(token[2:])
            else:
                node = None
                break
        if isinstance(node, dict) and not node and parent_path != ("f:metadata",):
            _delete_path(obj, parent_path)
        else:
            return


def apply(
    live: dict[str, Any] | None,
    applied: dict[str, Any],
    *,
    manager: str,
    api_version: str,
    now: str,
    force: bool,
    subresource: str | None = None,
    split_status: bool = False,
) -> dict[str, Any]:
    """Server-side apply of ``applied`` by ``manager`` onto ``live``; the new object.

    Raises:
        ApplyConflict: other managers own some applied fields with other values
            and ``force`` is false.
    """
    # An applier owns the entries it sets, not a map itself (unlike an Update
    # that creates the map); elements of keyed lists it names it does own.
    applied_flat = {
        p: v
        for p, v in _flat_for(applied, subresource, split_status).items()
        if not (v is NODE and p[-1].startswith("f:"))
    }
    live_flat = _flat_for(live, subresource, split_status) if live else {}
    entries = [(e, _entry_paths(e)) for e in _entries(live)]
    conflicts: list[tuple[str, str, Path]] = []
    mine: tuple[dict[str, Any], set[Path]] | None = None
    for entry, paths in entries:
        if _same_owner(entry, manager, "Apply", subresource):
            mine = (entry, paths)
            continue
        if entry.get("subresource") != subresource:
            continue
        for path in paths & applied_flat.keys():
            value = applied_flat[path]
            if value is not NODE and live_flat.get(path, NODE) != value:
                conflicts.append((str(entry.get("manager")), str(entry.get("apiVersion")), path))
    if conflicts and not force:
        raise ApplyConflict(conflicts)
    lost = {path for _, _, path in conflicts}
    body = {k: v for k, v in applied.items() if k not in ("apiVersion", "kind", "metadata")}
    applied_meta = applied.get("metadata") or {}
    base = copy.deepcopy(live) if live else {}
    merged: dict[str, Any] = strategic_merge_patch(base, _strip_nulls(body))
    meta = merged.setdefault("metadata", {})
    for name in _METADATA_FIELDS:
        if name in applied_meta:
            current = meta.get(name)
            patch_value = _strip_nulls(applied_meta[name])
            if isinstance(patch_value, dict):
                meta[name] = strategic_merge_patch(current or {}, patch_value)
            elif name == "finalizers" and isinstance(patch_value, list):
                merged_list = list(current or [])
                merged_list.extend(v for v in patch_value if v not in merged_list)
                meta[name] = merged_list
            else:
                meta[name] = patch_value
    # Fields this manager applied before and no longer applies are removed,
    # unless another manager still owns them.
    previous = mine[1] if mine else set()
    others: set[Path] = set()
    for entry, paths in entries:
        if mine is None or entry is not mine[0]:
            others |= paths - lost
    for path in sorted(previous - applied_flat.keys() - others, key=len, reverse=True):
        _delete_path(merged, path)
        _prune_empty(merged, path)
    merged_flat = _flat_for(merged, subresource, split_status)
    changed = {p for p, v in merged_flat.items() if p not in live_flat or live_flat[p] != v}
    removed = set(live_flat) - set(merged_flat)
    new_entries: list[tuple[dict[str, Any], set[Path]]] = []
    for entry, paths in entries:
        if mine is not None and entry is mine[0]:
            continue
        paths = paths - lost - removed
        if entry.get("operation") != "Apply":
            paths -= changed
        new_entries.append((entry, paths))
    mine_entry = mine[0] if mine else _new_entry(manager, "Apply", api_version, now, subresource)
    mine_entry["time"] = now
    mine_entry["apiVersion"] = api_version
    new_entries.insert(
        0 if not mine else [e for e, _ in entries].index(mine[0]),
        (mine_entry, set(applied_flat) & set(merged_flat)),
    )
    _write_entries(merged, new_entries)
    return merged


def _strip_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip_nulls(v) for v in value]
    return value
