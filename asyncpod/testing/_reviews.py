"""Reviews: create-only resources answered from who is asking, never stored."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from asyncpod.testing import _jwt, _status
from asyncpod.testing._auth import ANONYMOUS, User
from asyncpod.testing._objects import now_rfc3339

if TYPE_CHECKING:
    from asyncpod.testing._sandbox import Sandbox


def protobuf_review(raw: bytes) -> dict[str, Any]:
    """A review sent as protobuf (as kubectl sends ``auth whoami``); ``{}`` if unreadable."""
    from asyncpod.testing._protobuf import decode_object

    try:
        return decode_object(raw)
    except ValueError:
        return {}


def self_subject_review(user: User) -> dict[str, Any]:
    """Imitates POST ``selfsubjectreviews`` (``kubectl auth whoami``)."""
    return {
        "kind": "SelfSubjectReview",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"creationTimestamp": now_rfc3339()},
        "status": {"userInfo": user.user_info()},
    }


def self_subject_access_review(sb: Sandbox, body: dict[str, Any], user: User) -> dict[str, Any]:
    """Imitates POST ``selfsubjectaccessreviews`` (``kubectl auth can-i``)."""
    attrs = (body.get("spec") or {}).get("resourceAttributes") or {}
    resource = str(attrs.get("resource", ""))
    if attrs.get("subresource"):
        resource += "/" + str(attrs["subresource"])
    allowed = user is not ANONYMOUS and sb.rules.allowed(
        user,
        str(attrs.get("verb", "")),
        str(attrs.get("group", "")),
        resource,
        attrs.get("namespace") or None,
    )
    return {
        "kind": "SelfSubjectAccessReview",
        "apiVersion": "authorization.k8s.io/v1",
        "metadata": {"creationTimestamp": None},
        "spec": body.get("spec") or {},
        "status": {"allowed": allowed},
    }


def token_review(sb: Sandbox, body: dict[str, Any]) -> dict[str, Any]:
    """Imitates POST ``tokenreviews``: who a token authenticates as, if anyone."""
    token = str((body.get("spec") or {}).get("token", ""))
    who = sb._authenticator.authenticate(f"Bearer {token}") if token else None
    status: dict[str, Any] = {"authenticated": who is not None and who is not ANONYMOUS}
    if who is not None and who is not ANONYMOUS:
        status["user"] = who.user_info()
        status["audiences"] = [_jwt.AUDIENCE]
    return {
        "kind": "TokenReview",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"creationTimestamp": None},
        "spec": body.get("spec") or {},
        "status": status,
    }


def review(sb: Sandbox, plural: str, body: dict[str, Any], user: User) -> dict[str, Any]:
    """The answer to a review of kind ``plural``; 404 for anything else."""
    if plural == "selfsubjectreviews":
        return self_subject_review(user)
    if plural == "selfsubjectaccessreviews":
        return self_subject_access_review(sb, body, user)
    if plural == "tokenreviews":
        return token_review(sb, body)
    raise _status.unknown_resource()
