"""The resource verbs as pure request builders: arguments in, a ``RequestSpec`` out.

No I/O and no client here: each builder takes a resolved ``Resource`` and the
config's namespace, applies the namespace rules, checks names before they
reach a path, and says what to send. ``Client`` resolves, builds, sends and
decodes; the rules are tested here as tables, without sockets.

The namespace rules follow the API server and kubectl:
- reads: ``namespace=`` (``ALL`` for every namespace), else the config's;
- writes: ``namespace=``, else the object's ``metadata.namespace``, else the
  config's. When ``namespace=`` and the object's namespace are both given and
  differ, the write is refused before it is sent, as kubectl refuses it ("the
  namespace from the provided object ... does not match") and as the API
  server would answer 400. The body is sent as the caller gave it: the client
  never moves an object to another namespace than its body says.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal

from attrs import field, frozen

from asyncpod import _json
from asyncpod._discovery import Resource
from asyncpod._errors import InvalidNameError
from asyncpod._paths import ALL, _AllNamespaces, segment, validate_segment
from asyncpod._target import Params

Namespace = str | _AllNamespaces | None
PatchType = Literal["merge", "json", "strategic"]
PropagationPolicy = Literal["Orphan", "Background", "Foreground"]

PATCH_CONTENT_TYPES: Final[Mapping[str, str]] = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
}
# Server-side apply takes YAML; JSON is YAML, and needs no YAML encoder here.
APPLY_CONTENT_TYPE: Final = "application/apply-patch+yaml"


@frozen
class RequestSpec:
    """What one verb sends: method, path, query, and an optional body.

    Attributes:
        method: the HTTP method.
        path: the URL path, its segments already checked.
        params: the query parameters (``None`` values are left out).
        json: a body to encode as JSON, or ``None``.
        content: a body already encoded (a patch given as bytes), or ``None``.
        headers: extra header fields (the patch content type).
    """

    method: str
    path: str
    params: Params = field(factory=dict)
    json: Any = None
    content: bytes | None = None
    headers: Mapping[str, str] | None = None


# -- namespaces ----------------------------------------------------------------


def read_namespace(namespace: Namespace, default: str) -> str | None:
    """The namespace a list or watch reads: ``None`` for all namespaces.

    Raises:
        InvalidNameError: ``namespace`` could escape its path segment.
    """
    if namespace is ALL:
        return None
    if namespace is None:
        return default
    return validate_segment(namespace, "namespace")


def one_namespace(namespace: Namespace, default: str) -> str:
    """The one namespace of a call on a named object (get, patch, delete, logs).

    Raises:
        InvalidNameError: ``namespace`` is ``ALL`` or could escape its segment.
    """
    if namespace is ALL:
        msg = "asyncpod.ALL selects namespaces to list or watch; this call needs one"
        raise InvalidNameError(msg)
    return read_namespace(namespace, default) or default


def write_namespace(namespace: Namespace, obj: Mapping[str, Any] | None, default: str) -> str:
    """The namespace a write goes to: ``namespace=``, else the object's, else ``default``.

    Raises:
        InvalidNameError: ``namespace`` is ``ALL``, a namespace could escape
            its path segment, or ``namespace=`` and the object's
            ``metadata.namespace`` differ.
    """
    if namespace is ALL:
        msg = "asyncpod.ALL selects namespaces to read; a write needs one namespace"
        raise InvalidNameError(msg)
    own = _body_namespace(obj)
    if namespace is not None:
        chosen = validate_segment(namespace, "namespace")
        check_same_namespace(own, chosen)
        return chosen
    if own is not None:
        return validate_segment(own, "metadata.namespace")
    return default


def check_same_namespace(body_namespace: str | None, namespace: str) -> None:
    """Refuse a body whose namespace is not the request's (kube-apiserver answers 400).

    Raises:
        InvalidNameError: they differ.
    """
    if body_namespace is not None and body_namespace != namespace:
        msg = (
            f"the namespace of the provided object ({body_namespace!r}) does not match "
            f"namespace={namespace!r}; drop one of them or make them agree"
        )
        raise InvalidNameError(msg)


def _body_namespace(obj: Mapping[str, Any] | None) -> str | None:
    if obj is None:
        return None
    if not isinstance(obj, Mapping):
        msg = f"the object must be a mapping (a Kubernetes object), not {type(obj).__name__}"
        raise InvalidNameError(msg)
    metadata = obj.get("metadata")
    if not isinstance(metadata, Mapping):
        return None
    value = metadata.get("namespace")
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        msg = f"metadata.namespace must be a string, not {type(value).__name__}"
        raise InvalidNameError(msg)
    return value


def _object_name(obj: Mapping[str, Any], what: str) -> str:
    if not isinstance(obj, Mapping):
        msg = f"{what} must be a mapping (a Kubernetes object), not {type(obj).__name__}"
        raise InvalidNameError(msg)
    metadata = obj.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    if not isinstance(name, str):
        msg = f"{what} has no metadata.name"
        raise InvalidNameError(msg)
    return validate_segment(name, "metadata.name")


def _dry_run(dry_run: bool) -> str | None:
    return "All" if dry_run else None


# -- builders ------------------------------------------------------------------


def get_request(
    res: Resource,
    name: str,
    *,
    namespace: Namespace,
    default_namespace: str,
    subresource: str | None = None,
) -> RequestSpec:
    """GET one object (or its subresource)."""
    validate_segment(name, "name")
    ns = one_namespace(namespace, default_namespace) if res.namespaced else None
    return RequestSpec("GET", res.path(namespace=ns, name=name, subresource=subresource))


def collection_path(res: Resource, namespace: Namespace, default_namespace: str) -> str:
    """The path a list or watch reads: one namespace, or all of them."""
    ns = read_namespace(namespace, default_namespace) if res.namespaced else None
    return res.path(namespace=ns)


def list_params(
    *,
    label_selector: str | None,
    field_selector: str | None,
    resource_version: str | None,
) -> dict[str, Any]:
    """The query of a list's first page."""
    return {
        "labelSelector": label_selector,
        "fieldSelector": field_selector,
        "resourceVersion": resource_version,
    }


def create_request(
    res: Resource,
    obj: Mapping[str, Any],
    *,
    namespace: Namespace,
    default_namespace: str,
    dry_run: bool = False,
    field_manager: str | None = None,
) -> RequestSpec:
    """POST an object to its collection."""
    ns = write_namespace(namespace, obj, default_namespace) if res.namespaced else None
    params = {"dryRun": _dry_run(dry_run), "fieldManager": field_manager}
    return RequestSpec("POST", res.path(namespace=ns), params, json=obj)


def replace_request(
    res: Resource,
    obj: Mapping[str, Any],
    *,
    namespace: Namespace,
    default_namespace: str,
    dry_run: bool = False,
    field_manager: str | None = None,
    subresource: str | None = None,
) -> RequestSpec:
    """PUT an object in place; its ``metadata.resourceVersion`` makes it conditional."""
    name = _object_name(obj, "the object")
    ns = write_namespace(namespace, obj, default_namespace) if res.namespaced else None
    params = {"dryRun": _dry_run(dry_run), "fieldManager": field_manager}
    path = res.path(namespace=ns, name=name, subresource=subresource)
    return RequestSpec("PUT", path, params, json=obj)


def patch_request(
    res: Resource,
    name: str,
    patch: Any,
    *,
    namespace: Namespace,
    default_namespace: str,
    patch_type: PatchType = "merge",
    subresource: str | None = None,
    dry_run: bool = False,
    field_manager: str | None = None,
) -> RequestSpec:
    """PATCH an object with a merge, JSON or strategic merge patch."""
    content_type = patch_content_type(patch_type)
    validate_segment(name, "name")
    ns = one_namespace(namespace, default_namespace) if res.namespaced else None
    if ns is not None:
        check_same_namespace(_patched_namespace(patch, patch_type), ns)
    path = res.path(namespace=ns, name=name, subresource=subresource)
    params = {"dryRun": _dry_run(dry_run), "fieldManager": field_manager}
    headers = {"Content-Type": content_type}
    return RequestSpec("PATCH", path, params, content=_encode(patch), headers=headers)


def patch_content_type(patch_type: str) -> str:
    """The content type of a patch type.

    Raises:
        ValueError: not ``"merge"``, ``"json"`` or ``"strategic"``.
    """
    content_type = PATCH_CONTENT_TYPES.get(patch_type)
    if content_type is None:
        msg = f"patch_type must be 'merge', 'json' or 'strategic', not {patch_type!r}"
        raise ValueError(msg)
    return content_type


def _patched_namespace(patch: Any, patch_type: PatchType) -> str | None:
    """The namespace a patch given as an object would set, if it sets one."""
    if patch_type == "json":
        if not isinstance(patch, Sequence) or isinstance(patch, (str, bytes)):
            return None
        for operation in patch:
            if (
                isinstance(operation, Mapping)
                and operation.get("op") in ("add", "replace")
                and operation.get("path") == "/metadata/namespace"
                and isinstance(operation.get("value"), str)
            ):
                return str(operation["value"])
        return None
    if isinstance(patch, Mapping):
        return _body_namespace(patch)
    return None


def apply_request(
    res: Resource,
    obj: Mapping[str, Any],
    *,
    field_manager: str,
    namespace: Namespace,
    default_namespace: str,
    force: bool = False,
    dry_run: bool = False,
    subresource: str | None = None,
) -> RequestSpec:
    """Server-side apply: PATCH with the apply content type and a field manager."""
    apply_kind(obj, field_manager)
    name = _object_name(obj, "the object to apply")
    ns = write_namespace(namespace, obj, default_namespace) if res.namespaced else None
    params = {
        "fieldManager": field_manager,
        "force": "true" if force else None,
        "dryRun": _dry_run(dry_run),
    }
    return RequestSpec(
        "PATCH",
        res.path(namespace=ns, name=name, subresource=subresource),
        params,
        content=_json.dumps(obj),
        headers={"Content-Type": APPLY_CONTENT_TYPE},
    )


def apply_kind(obj: Mapping[str, Any], field_manager: str) -> tuple[str, str]:
    """The ``apiVersion`` and ``kind`` that name the resource of an object to apply.

    Raises:
        InvalidNameError: one of them, or the field manager, is missing.
    """
    if not field_manager:
        msg = "server-side apply needs a field_manager"
        raise InvalidNameError(msg)
    if not isinstance(obj, Mapping):
        msg = f"the object to apply must be a mapping, not {type(obj).__name__}"
        raise InvalidNameError(msg)
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        msg = "the object to apply needs apiVersion and kind"
        raise InvalidNameError(msg)
    return api_version, kind


def delete_request(
    res: Resource,
    name: str,
    *,
    namespace: Namespace,
    default_namespace: str,
    propagation_policy: PropagationPolicy | None = None,
    grace_period_seconds: int | None = None,
    preconditions: Mapping[str, str] | None = None,
    dry_run: bool = False,
) -> RequestSpec:
    """DELETE an object, with ``DeleteOptions`` in the body."""
    validate_segment(name, "name")
    ns = one_namespace(namespace, default_namespace) if res.namespaced else None
    options: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
    if propagation_policy is not None:
        options["propagationPolicy"] = propagation_policy
    if grace_period_seconds is not None:
        options["gracePeriodSeconds"] = grace_period_seconds
    if preconditions:
        options["preconditions"] = dict(preconditions)
    if dry_run:
        options["dryRun"] = ["All"]
    return RequestSpec("DELETE", res.path(namespace=ns, name=name), json=options)


def evict_request(
    name: str,
    *,
    namespace: Namespace,
    default_namespace: str,
    grace_period_seconds: int | None = None,
    dry_run: bool = False,
) -> RequestSpec:
    """POST an ``Eviction`` to a pod's eviction subresource (honours disruption budgets)."""
    ns = one_namespace(namespace, default_namespace)
    path = f"/api/v1/namespaces/{segment(ns, 'namespace')}/pods/{segment(name, 'name')}/eviction"
    body: dict[str, Any] = {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": name, "namespace": ns},
    }
    options: dict[str, Any] = {}
    if grace_period_seconds is not None:
        options["gracePeriodSeconds"] = grace_period_seconds
    if dry_run:
        options["dryRun"] = ["All"]
    if options:
        body["deleteOptions"] = options
    return RequestSpec("POST", path, json=body)


def logs_request(
    name: str,
    *,
    namespace: Namespace,
    default_namespace: str,
    container: str | None = None,
    follow: bool = False,
    tail_lines: int | None = None,
    since_seconds: int | None = None,
    timestamps: bool = False,
    previous: bool = False,
) -> RequestSpec:
    """GET a container's log (a stream when following)."""
    ns = one_namespace(namespace, default_namespace)
    path = f"/api/v1/namespaces/{segment(ns, 'namespace')}/pods/{segment(name, 'name')}/log"
    params: dict[str, Any] = {
        "container": validate_segment(container, "container") if container else None,
        "follow": "true" if follow else None,
        "tailLines": tail_lines,
        "sinceSeconds": since_seconds,
        "timestamps": "true" if timestamps else None,
        "previous": "true" if previous else None,
    }
    return RequestSpec("GET", path, params)


def _pod_path(name: str, namespace: Namespace, default_namespace: str, sub: str) -> str:
    ns = one_namespace(namespace, default_namespace)
    return f"/api/v1/namespaces/{segment(ns, 'namespace')}/pods/{segment(name, 'name')}/{sub}"


def exec_request(
    name: str,
    command: Sequence[str],
    *,
    namespace: Namespace,
    default_namespace: str,
    container: str | None = None,
    stdin: bool = False,
    stdout: bool = True,
    stderr: bool = True,
    tty: bool = False,
) -> RequestSpec:
    """GET a pod's exec subresource, to be upgraded to a WebSocket.

    ``command`` repeats the ``command`` parameter, one argument each, as
    kubectl sends it; it is never joined into a shell line.

    Raises:
        TypeError: ``command`` is a string instead of a list.
        ValueError: ``command`` is empty.
        InvalidNameError: a name could escape its path segment.
    """
    if isinstance(command, (str, bytes)):
        msg = (
            f"command must be a list of arguments, not a string ({command!r}); "
            "write ['sh', '-c', '...'] for a shell line"
        )
        raise TypeError(msg)
    args = [str(arg) for arg in command]
    if not args:
        msg = "command must name at least the program to run"
        raise ValueError(msg)
    params = _stream_params(container, stdin, stdout, stderr, tty)
    params["command"] = args
    return RequestSpec("GET", _pod_path(name, namespace, default_namespace, "exec"), params)


def attach_request(
    name: str,
    *,
    namespace: Namespace,
    default_namespace: str,
    container: str | None = None,
    stdin: bool = False,
    stdout: bool = True,
    stderr: bool = True,
    tty: bool = False,
) -> RequestSpec:
    """GET a pod's attach subresource, to be upgraded to a WebSocket."""
    params = _stream_params(container, stdin, stdout, stderr, tty)
    return RequestSpec("GET", _pod_path(name, namespace, default_namespace, "attach"), params)


def _stream_params(
    container: str | None, stdin: bool, stdout: bool, stderr: bool, tty: bool
) -> dict[str, Any]:
    # kubelet refuses a session with no stream at all, and a TTY merges stderr
    # into stdout (there is no stderr channel then).
    return {
        "container": validate_segment(container, "container") if container else None,
        "stdin": "true" if stdin else None,
        "stdout": "true" if stdout else None,
        "stderr": "true" if stderr and not tty else None,
        "tty": "true" if tty else None,
    }


def portforward_request(
    name: str, port: int, *, namespace: Namespace, default_namespace: str
) -> RequestSpec:
    """GET a pod's portforward subresource for one port, to be upgraded to a WebSocket.

    Raises:
        ValueError: ``port`` is not a TCP port number.
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        msg = f"port must be a TCP port number from 1 to 65535, not {port!r}"
        raise ValueError(msg)
    path = _pod_path(name, namespace, default_namespace, "portforward")
    return RequestSpec("GET", path, {"ports": port})


def _encode(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, (Sequence, Mapping)):
        return _json.dumps(value)
    msg = f"a patch must be a dict, a list, str or bytes, not {type(value).__name__}"
    raise TypeError(msg)


__all__ = [
    "APPLY_CONTENT_TYPE",
    "PATCH_CONTENT_TYPES",
    "Namespace",
    "PatchType",
    "RequestSpec",
    "apply_kind",
    "apply_request",
    "attach_request",
    "check_same_namespace",
    "collection_path",
    "create_request",
    "delete_request",
    "evict_request",
    "exec_request",
    "get_request",
    "list_params",
    "logs_request",
    "one_namespace",
    "patch_content_type",
    "patch_request",
    "portforward_request",
    "read_namespace",
    "replace_request",
    "write_namespace",
]
