"""``Status`` objects, shaped exactly as kube-apiserver shapes them."""

from __future__ import annotations

from typing import Any

REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


class StatusError(Exception):
    """An error answer: ``status`` is the HTTP code, ``body`` the Status object."""

    def __init__(self, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(body.get("message", ""))
        self.body = body
        self.status = int(body.get("code", 500))
        self.headers = headers or {}


def status(
    code: int,
    message: str,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
    *,
    metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A failure Status; ``details=None`` leaves the field out (as for 401 and 410)."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": metadata or {},
        "status": "Failure",
        "message": message,
        "reason": reason if reason is not None else REASONS.get(code, "Unknown"),
    }
    if details is not None:
        body["details"] = details
    body["code"] = code
    return body


def _details(name: str | None, group: str, plural: str) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    details["kind"] = plural
    return details


def _what(group: str, plural: str) -> str:
    return f"{plural}.{group}" if group else plural


def not_found(group: str, plural: str, name: str) -> StatusError:
    return StatusError(
        status(
            404,
            f'{_what(group, plural)} "{name}" not found',
            "NotFound",
            _details(name, group, plural),
        )
    )


def already_exists(group: str, plural: str, name: str) -> StatusError:
    return StatusError(
        status(
            409,
            f'{_what(group, plural)} "{name}" already exists',
            "AlreadyExists",
            _details(name, group, plural),
        )
    )


def conflict(group: str, plural: str, name: str) -> StatusError:
    message = (
        f'Operation cannot be fulfilled on {_what(group, plural)} "{name}": the object has '
        "been modified; please apply your changes to the latest version and try again"
    )
    return StatusError(status(409, message, "Conflict", _details(name, group, plural)))


def unknown_resource() -> StatusError:
    return StatusError(
        status(404, "the server could not find the requested resource", "NotFound", {})
    )


def bad_request(message: str) -> StatusError:
    return StatusError(status(400, message, "BadRequest"))


def unauthorized() -> StatusError:
    # The reference 401 carries no details field.
    return StatusError(status(401, "Unauthorized", "Unauthorized"))


def invalid(
    kind: str, name: str, causes: list[tuple[str, str, str]], group: str = ""
) -> StatusError:
    """422 Invalid; ``causes`` are ``(reason, field, message)``."""
    parts = [f"{field}: {message}" for _, field, message in causes]
    joined = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    details: dict[str, Any] = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = kind
    details["causes"] = [
        {"reason": reason, "message": message, "field": field} for reason, field, message in causes
    ]
    # The message names the GroupKind ("Deployment.apps"), the details the bare kind.
    qualified = f"{kind}.{group}" if group else kind
    return StatusError(
        status(422, f'{qualified} "{name}" is invalid: {joined}', "Invalid", details)
    )


def forbidden(
    user: str,
    verb: str,
    group: str,
    plural: str,
    subresource: str | None,
    namespace: str | None,
    name: str | None,
) -> StatusError:
    resource = f"{plural}/{subresource}" if subresource else plural
    where = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    subject = f'{_what(group, plural)} "{name}"' if name else _what(group, plural)
    message = (
        f'{subject} is forbidden: User "{user}" cannot {verb} resource "{resource}" '
        f'in API group "{group}" {where}'
    )
    return StatusError(status(403, message, "Forbidden", _details(name, group, plural)))


def namespace_terminating(group: str, plural: str, name: str, namespace: str) -> StatusError:
    """Imitates the NamespaceLifecycle admission plugin's 403 for a namespace being deleted."""
    details = _details(name, group, plural)
    details["causes"] = [
        {
            "reason": "NamespaceTerminating",
            "message": f"namespace {namespace} is being terminated",
            "field": "metadata.namespace",
        }
    ]
    message = (
        f'{_what(group, plural)} "{name}" is forbidden: unable to create new content in '
        f"namespace {namespace} because it is being terminated"
    )
    return StatusError(status(403, message, "Forbidden", details))


def forbidden_path(user: str, verb: str, path: str) -> StatusError:
    return StatusError(
        status(403, f'forbidden: User "{user}" cannot {verb} path "{path}"', "Forbidden", {})
    )


def expired(message: str, continue_token: str | None = None) -> StatusError:
    metadata = {"continue": continue_token} if continue_token else None
    return StatusError(status(410, message, "Expired", metadata=metadata))


def success(details: dict[str, Any] | None = None, code: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
    }
    if details is not None:
        body["details"] = details
    if code is not None:
        body["code"] = code
    return body
