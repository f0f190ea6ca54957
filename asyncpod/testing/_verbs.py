"""The resource verbs, as synchronous functions of the store.

Each takes what the HTTP side has read from the request (the route, the
decoded body, the query) and returns what to answer, or raises a
``StatusError``; none of them does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from asyncpod import _json
from asyncpod.testing import _fields, _lists, _status
from asyncpod.testing._objects import Stored, now_rfc3339
from asyncpod.testing._patch import PatchError, json_patch, merge_patch, strategic_merge_patch
from asyncpod.testing._resources import ResourceType
from asyncpod.testing._routes import TRUE, Route
from asyncpod.testing._selectors import Matcher, SelectorError, field_matcher, label_matcher
from asyncpod.testing._status import StatusError
from asyncpod.testing._store import Store
from asyncpod.testing._subresources import scale_of, update_scale

PATCH_TYPES = {
    "application/merge-patch+json": "merge",
    "application/json-patch+json": "json",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
    "application/apply-patch+cbor": "apply",
}

Listing = tuple[list[Stored], int, str | None, int | None]


def method_not_allowed() -> StatusError:
    """405, as for a POST to a named object."""
    return StatusError(
        _status.status(
            405,
            "the server does not allow this method on the requested resource",
            "MethodNotAllowed",
            {},
        )
    )


def matchers(query: Mapping[str, str], rt: ResourceType) -> tuple[Matcher | None, Matcher | None]:
    """The ``labelSelector`` and ``fieldSelector`` of a query; 400 when malformed."""
    try:
        return (
            label_matcher(query.get("labelSelector")),
            field_matcher(query.get("fieldSelector"), rt.plural),
        )
    except SelectorError as exc:
        raise _status.bad_request(str(exc)) from None


def decode_body(raw: bytes, content_type: str, *, empty_ok: bool = False) -> Any:
    """A request body in JSON, YAML or (for a few kinds) protobuf."""
    if "protobuf" in content_type:
        from asyncpod.testing._protobuf import decode_object

        try:
            return decode_object(raw)
        except ValueError as exc:
            raise StatusError(
                _status.status(
                    415,
                    f"{exc}; send application/json or application/yaml",
                    "UnsupportedMediaType",
                    {},
                )
            ) from None
    if not raw.strip():
        if empty_ok:
            return None
        raise _status.bad_request("the body of the request is empty")
    try:
        return _json.loads(raw)
    except ValueError:
        pass
    try:
        return yaml.safe_load(raw.decode())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise _status.bad_request(f"the body of the request could not be decoded: {exc}") from None


def patch_type(content_type: str, rt: ResourceType) -> str:
    """``merge``, ``json``, ``strategic`` or ``apply``; 415 for other media types.

    Custom resources have no strategic merge patch (no patch strategies).
    """
    kind = PATCH_TYPES.get(content_type.split(";")[0].strip())
    accepted = (
        "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
    )
    if not rt.custom:
        accepted += ", application/strategic-merge-patch+json"
    if kind is None or (kind == "strategic" and rt.custom):
        raise StatusError(
            _status.status(
                415,
                "the body of the request was in an unknown format - accepted media types "
                f"include: {accepted}",
                "UnsupportedMediaType",
                {},
            )
        )
    return kind


def list_objects(
    store: Store, rt: ResourceType, namespace: str | None, query: Mapping[str, str]
) -> Listing:
    """Imitates LIST: selectors, ``limit``/``continue`` pages, ``resourceVersion`` semantics."""
    labels, fields = matchers(query, rt)
    try:
        limit = int(query.get("limit") or 0)
    except ValueError:
        raise _status.bad_request(f"invalid limit: {query.get('limit')}") from None
    return _lists.select(
        store,
        rt,
        namespace,
        labels=labels,
        fields=fields,
        limit=max(limit, 0),
        continue_token=query.get("continue") or None,
        resource_version=query.get("resourceVersion"),
        resource_version_match=query.get("resourceVersionMatch"),
    )


def create(
    store: Store, rt: ResourceType, route: Route, body: Any, *, dry_run: bool, manager: str
) -> Stored:
    """Imitates POST to a collection: admission, defaults, a new uid and resourceVersion."""
    if route.name:
        raise method_not_allowed()
    return store.create(rt, route.namespace, body, dry_run=dry_run, manager=manager)


def replace(
    store: Store, rt: ResourceType, route: Route, body: Any, *, dry_run: bool, manager: str
) -> Stored:
    """Imitates PUT: a whole new object, checked against the body's resourceVersion."""
    assert route.name is not None
    return store.update(
        rt,
        route.namespace,
        route.name,
        body,
        dry_run=dry_run,
        manager=manager,
        subresource=route.subresource,
    )


def patch(
    store: Store,
    rt: ResourceType,
    route: Route,
    kind: str,
    raw: bytes,
    *,
    dry_run: bool,
    manager: str,
) -> Stored | dict[str, Any]:
    """Imitates PATCH (merge, JSON or strategic): the current object, patched, then stored.

    Returns the stored object, or the new Scale for the ``scale`` subresource.
    """
    assert route.name is not None
    try:
        change = _json.loads(raw)
    except ValueError as exc:
        raise _status.bad_request(f"error decoding patch: {exc}") from None
    current = store.get(rt, route.namespace, route.name)
    sub = route.subresource
    target = scale_of(current.obj, rt) if sub == "scale" else current.copy()
    try:
        if kind == "merge":
            patched = merge_patch(target, change)
        elif kind == "json":
            patched = json_patch(target, change)
        else:
            patched = strategic_merge_patch(target, change)
    except PatchError as exc:
        if exc.status == 400:
            raise _status.bad_request(str(exc)) from None
        raise StatusError(_status.status(422, str(exc), "Invalid", {})) from None
    if not isinstance(patched, dict):
        raise _status.bad_request("the patched object is not a JSON object")
    if sub == "scale":
        return update_scale(store, rt, route, patched, dry_run=dry_run, manager=manager)
    return store.replace_object(
        rt,
        route.namespace,
        route.name,
        patched,
        dry_run=dry_run,
        manager=manager,
        subresource=sub,
    )


def _field_manager_required() -> StatusError:
    return StatusError(
        _status.status(
            422,
            'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is '
            "required for apply patch",
            "Invalid",
            {
                "group": "meta.k8s.io",
                "kind": "PatchOptions",
                "causes": [
                    {
                        "reason": "FieldValueRequired",
                        "message": "Required value: is required for apply patch",
                        "field": "fieldManager",
                    }
                ],
            },
        )
    )


def apply(
    store: Store,
    rt: ResourceType,
    route: Route,
    raw: bytes,
    query: Mapping[str, str],
    *,
    dry_run: bool,
) -> tuple[Stored, bool]:
    """Imitates server-side apply (PATCH ``application/apply-patch+yaml``).

    Creates the object when it is missing; otherwise merges the applied
    configuration by field ownership, with 409 on conflicts unless ``force``.
    Returns the stored object and whether it was created.
    """
    assert route.name is not None
    manager = query.get("fieldManager")
    if not manager:
        raise _field_manager_required()
    try:
        applied = yaml.safe_load(raw.decode()) if raw.strip() else None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise _status.bad_request(f"error decoding YAML: {exc}") from None
    if not isinstance(applied, dict):
        raise _status.bad_request("the apply patch must be an object")
    meta = applied.get("metadata") or {}
    if meta.get("name") not in (None, route.name):
        raise _status.bad_request(
            f"the name of the object ({meta.get('name')}) does not match the name on the "
            f"URL ({route.name})"
        )
    force = query.get("force") in TRUE
    current = store.find(rt, route.namespace, route.name)
    split = "status" in rt.subresources
    sub = route.subresource
    now = now_rfc3339()
    try:
        if current is None:
            if sub:
                raise _status.not_found(rt.group, rt.plural, route.name)
            merged = _fields.apply(
                None,
                applied,
                manager=manager,
                api_version=rt.api_version,
                now=now,
                force=force,
                split_status=split,
            )
            body = {k: v for k, v in merged.items() if k != "metadata"}
            body["metadata"] = {
                **{k: v for k, v in meta.items() if k not in ("managedFields", "resourceVersion")},
                "name": route.name,
                **{k: merged["metadata"][k] for k in merged["metadata"]},
            }
            stored = store.create(
                rt, route.namespace, body, dry_run=dry_run, manager=manager, apply_manager=manager
            )
            return stored, True
        if meta.get("resourceVersion") and str(meta["resourceVersion"]) != str(
            current.obj["metadata"]["resourceVersion"]
        ):
            raise _status.conflict(rt.group, rt.plural, route.name)
        merged = _fields.apply(
            current.copy(),
            applied,
            manager=manager,
            api_version=rt.api_version,
            now=now,
            force=force,
            subresource=sub if sub == "status" else None,
            split_status=split,
        )
    except _fields.ApplyConflict as conflict:
        raise StatusError(
            _status.status(409, conflict.message, "Conflict", {"causes": conflict.causes()})
        ) from None
    merged["metadata"].pop("resourceVersion", None)
    if meta.get("namespace"):
        # The applied namespace is part of the result: one naming another
        # namespace than the URL is refused when stored (after any conflict).
        merged["metadata"]["namespace"] = meta["namespace"]
    stored = store.replace_object(
        rt,
        route.namespace,
        route.name,
        merged,
        dry_run=dry_run,
        manager=manager,
        subresource=sub,
        record=False,
    )
    return stored, False


def delete(
    store: Store,
    rt: ResourceType,
    route: Route,
    options: Any,
    query: Mapping[str, str],
    *,
    dry_run: bool,
) -> Stored | dict[str, Any]:
    """Imitates DELETE of one object, with preconditions and ``propagationPolicy``.

    As the real registries do, most kinds answer a Success Status once the
    object is gone; pods, namespaces and custom resources (and any object a
    finalizer keeps) answer the object itself.
    """
    assert route.name is not None
    opts = options if isinstance(options, dict) else {}
    stored, gone = store.delete(
        rt,
        route.namespace,
        route.name,
        dry_run=dry_run,
        preconditions=opts.get("preconditions"),
        propagation=query.get("propagationPolicy") or opts.get("propagationPolicy"),
    )
    if not gone or rt.kind in ("Pod", "Namespace") or rt.custom:
        return stored
    details: dict[str, Any] = {"name": route.name}
    if rt.group:
        details["group"] = rt.group
    details["kind"] = rt.plural
    details["uid"] = stored.obj["metadata"].get("uid")
    return _status.success(details)


def delete_collection(
    store: Store,
    rt: ResourceType,
    namespace: str | None,
    query: Mapping[str, str],
    *,
    dry_run: bool,
) -> list[Stored]:
    """Imitates DELETE of a collection: every object the selectors match, one by one."""
    labels, fields = matchers(query, rt)
    items, _, _, _ = _lists.select(store, rt, namespace, labels=labels, fields=fields)
    deleted = []
    for stored in items:
        result, _ = store.delete(
            rt,
            namespace or stored.obj["metadata"].get("namespace"),
            stored.name,
            dry_run=dry_run,
        )
        deleted.append(result)
    return deleted
