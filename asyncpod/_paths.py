"""Building API paths from validated parts only.

Every name, namespace and subresource becomes exactly one path segment. A value
that could leave its segment (``/``, ``.``, ``..``, ``%``, control characters)
is refused before any request is made, so ``get("pods", "../secrets/x")`` can
never read another path on the server. The rule follows the API server's own
``IsValidPathSegmentName`` (k8s.io/apimachinery/pkg/api/validation/path), plus
control characters, which no Kubernetes name may contain.
"""

from __future__ import annotations

from typing import Final, final
from urllib.parse import quote

from asyncpod._errors import InvalidNameError


@final
class _AllNamespaces:
    """The type of ``asyncpod.ALL``: list or watch across every namespace."""

    _instance: _AllNamespaces | None = None

    def __new__(cls) -> _AllNamespaces:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "asyncpod.ALL"

    def __reduce__(self) -> str:
        return "ALL"


ALL: Final = _AllNamespaces()
"""Pass as ``namespace=`` to list or watch across all namespaces."""

_FORBIDDEN_SEGMENTS = frozenset({".", ".."})


def validate_segment(value: object, what: str) -> str:
    """Return ``value`` when it is safe as one URL path segment.

    Args:
        value: the name, namespace or subresource given by the caller.
        what: how to call it in the error (``"name"``, ``"namespace"``).

    Raises:
        InvalidNameError: it is not a string, is empty, is ``.`` or ``..``, or
            contains ``/``, ``%`` or a control character.
    """
    if not isinstance(value, str):
        msg = f"{what} must be a string, not {type(value).__name__}"
        raise InvalidNameError(msg)
    if not value:
        msg = f"{what} must not be empty"
        raise InvalidNameError(msg)
    if value in _FORBIDDEN_SEGMENTS:
        msg = f"{what} {value!r} is not allowed: it would address another path"
        raise InvalidNameError(msg)
    for char in value:
        if char in "/%":
            msg = f"{what} {value!r} may not contain {char!r}: it would address another path"
            raise InvalidNameError(msg)
        if ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F:
            msg = f"{what} {value!r} may not contain control characters"
            raise InvalidNameError(msg)
    return value


def segment(value: object, what: str) -> str:
    """``value`` validated and percent-encoded as one path segment (``?`` and ``#`` too)."""
    return quote(validate_segment(value, what), safe="")


def group_version_prefix(group: str, version: str) -> str:
    """``/api/v1`` for the core group, ``/apis/<group>/<version>`` otherwise."""
    if not group:
        return f"/api/{segment(version, 'version')}"
    return f"/apis/{segment(group, 'group')}/{segment(version, 'version')}"


def resource_path(
    group: str,
    version: str,
    plural: str,
    *,
    namespace: str | None = None,
    name: str | None = None,
    subresource: str | None = None,
) -> str:
    """The path of a collection, an object or an object's subresource.

    Raises:
        InvalidNameError: a part could escape its path segment, or a
            subresource was given without a name.
    """
    parts = [group_version_prefix(group, version)]
    if namespace is not None:
        parts.append(f"namespaces/{segment(namespace, 'namespace')}")
    parts.append(segment(plural, "resource"))
    if name is not None:
        parts.append(segment(name, "name"))
    if subresource is not None:
        if name is None:
            msg = f"subresource {subresource!r} needs an object name"
            raise InvalidNameError(msg)
        parts.append(segment(subresource, "subresource"))
    return "/".join(parts)
