"""Admission: what every write goes through before the store keeps it.

One rule, ``admit``, decides the server-owned metadata (uid,
resourceVersion, generation, creationTimestamp, deletion fields,
managedFields) for every write path: create, replace, patch and apply.
"""

from __future__ import annotations

import random
import re
import uuid
from typing import Any

from asyncpod.testing import _status
from asyncpod.testing._defaults import defaults, ordered_metadata
from asyncpod.testing._resources import ResourceType

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
    "regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
    "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
# Set once by the server and kept by every later write, whatever the client sends.
_IMMUTABLE = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds")


def generate_name(prefix: str) -> str:
    """A ``generateName`` result: the prefix and five random characters."""
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return prefix + "".join(random.choice(alphabet) for _ in range(5))


def prepare(rt: ResourceType, body: Any, namespace: str | None) -> dict[str, Any]:
    """The object a create or replace body describes, typed by the URL.

    The body's ``kind`` and ``apiVersion`` give way to the resource's; a
    ``metadata`` that is not an object counts as empty.
    """
    if not isinstance(body, dict):
        raise _status.bad_request("the body of the request is not a JSON object")
    obj: dict[str, Any] = {"kind": rt.kind, "apiVersion": rt.api_version}
    obj.update({k: v for k, v in body.items() if k not in ("kind", "apiVersion")})
    metadata = obj.get("metadata")
    obj["metadata"] = dict(metadata) if isinstance(metadata, dict) else {}
    check_namespace(rt, obj["metadata"], namespace)
    return obj


def check_namespace(rt: ResourceType, meta: dict[str, Any], namespace: str | None) -> None:
    """400, as the API server answers, when the object names another namespace than the URL.

    An object without a namespace takes the URL's.
    """
    body_ns = meta.get("namespace")
    if rt.namespaced and namespace and body_ns and body_ns != namespace:
        raise _status.bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
        )


def check_name(meta: dict[str, Any], name: str) -> None:
    """400 when the object names another object than the URL; no name takes the URL's."""
    if meta.get("name") and meta["name"] != name:
        raise _status.bad_request(
            f"the name of the object ({meta['name']}) does not match the name on the URL ({name})"
        )


def validate_name(rt: ResourceType, name: str) -> None:
    """422 for a missing name or one that is not a DNS subdomain (a DNS label for some kinds)."""
    label_only = rt.key in (("", "namespaces"), ("", "services"))
    pattern, rule = (_LABEL, _LABEL_MSG) if label_only else (_SUBDOMAIN, _SUBDOMAIN_MSG)
    if not name:
        raise _status.invalid(
            rt.kind,
            "",
            [
                (
                    "FieldValueRequired",
                    "metadata.name",
                    "Required value: name or generateName is required",
                )
            ],
            rt.group,
        )
    if len(name) > (63 if label_only else 253) or not pattern.match(name):
        raise _status.invalid(
            rt.kind,
            name,
            [("FieldValueInvalid", "metadata.name", f'Invalid value: "{name}": {rule}')],
            rt.group,
        )


def _spec_of(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "kind", "apiVersion")}


def admit(
    rt: ResourceType,
    obj: dict[str, Any],
    old: dict[str, Any] | None,
    *,
    name: str,
    namespace: str,
    now: str,
    keep_managed_fields: bool = False,
) -> dict[str, Any]:
    """The object a write stores: server-owned metadata set, defaults filled in.

    The one rule for every write path (``old`` is ``None`` on create):

    - ``name`` and ``namespace`` come from the URL (cluster-scoped objects
      have no namespace); ``selfLink`` is never stored.
    - ``uid`` and ``creationTimestamp`` are new on create and kept from the
      stored object afterwards, as are ``deletionTimestamp`` and
      ``deletionGracePeriodSeconds`` (only a delete sets those).
    - ``resourceVersion`` is the stored one (the commit sets the next).
    - ``generation`` is 1 on create and grows when anything but metadata
      and status changed, for the kinds that have one; other kinds keep
      the value a create sent, and no update changes it.
    - ``managedFields`` sent on create are dropped (the write records its
      own entry) unless ``keep_managed_fields`` (server-side apply computed
      them); an update without them keeps the stored ones.
    """
    meta = obj["metadata"]
    meta.pop("selfLink", None)
    meta["name"] = name
    if rt.namespaced:
        meta["namespace"] = namespace
    else:
        meta.pop("namespace", None)
    old_meta: dict[str, Any] = old["metadata"] if old is not None else {}
    for field in _IMMUTABLE:
        if field in old_meta:
            meta[field] = old_meta[field]
        else:
            meta.pop(field, None)
    if old is None:
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now
        if not keep_managed_fields:
            meta.pop("managedFields", None)
    elif "managedFields" not in meta and "managedFields" in old_meta:
        meta["managedFields"] = old_meta["managedFields"]
    meta["resourceVersion"] = old_meta.get("resourceVersion", "")
    sent_generation = meta.pop("generation", None)
    defaults(rt, obj)
    generation = old_meta.get("generation")
    if rt.has_generation:
        generation = 1
        if old is not None:
            generation = int(old_meta.get("generation", 1))
            if _spec_of(obj) != _spec_of(old):
                generation += 1
    elif old is None:
        # Kinds without a generation keep what a create sent (their strategy
        # leaves it alone); no update can change it.
        generation = sent_generation
    if generation is not None:
        obj["metadata"]["generation"] = generation
    obj["metadata"] = ordered_metadata(obj["metadata"])
    return obj
