"""Just enough of the Kubernetes protobuf encoding to read what kubectl's typed clients send.

kubectl's generator commands (``create configmap``, ``create namespace``,
``run``, ``auth whoami``...) send ``application/vnd.kubernetes.protobuf``
bodies. The sandbox answers JSON (the client accepts it) but must read these
bodies: this module decodes the envelope and the kinds listed in ``KINDS``.
"""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from typing import Any

MAGIC = b"k8s\x00"

# A schema maps a field number to (json name, type). Types: "s" string, "i"
# integer, "b" bool, "bytes" (base64 in JSON), "time", "ios" (IntOrString),
# "q" (Quantity), ("m", schema) message, ("rm", schema) repeated message,
# "rs" repeated string, ("map", value type) map<string, value>.
Schema = dict[int, tuple[str, Any]]

TIME: Schema = {}
OWNER_REFERENCE: Schema = {
    1: ("kind", "s"),
    3: ("name", "s"),
    4: ("uid", "s"),
    5: ("apiVersion", "s"),
    6: ("controller", "b"),
    7: ("blockOwnerDeletion", "b"),
}
OBJECT_META: Schema = {
    1: ("name", "s"),
    2: ("generateName", "s"),
    3: ("namespace", "s"),
    5: ("uid", "s"),
    6: ("resourceVersion", "s"),
    7: ("generation", "i"),
    8: ("creationTimestamp", "time"),
    11: ("labels", ("map", "s")),
    12: ("annotations", ("map", "s")),
    13: ("ownerReferences", ("rm", OWNER_REFERENCE)),
    14: ("finalizers", "rs"),
}
LABEL_SELECTOR_REQUIREMENT: Schema = {1: ("key", "s"), 2: ("operator", "s"), 3: ("values", "rs")}
LABEL_SELECTOR: Schema = {
    1: ("matchLabels", ("map", "s")),
    2: ("matchExpressions", ("rm", LABEL_SELECTOR_REQUIREMENT)),
}
CONTAINER_PORT: Schema = {
    1: ("name", "s"),
    2: ("hostPort", "i"),
    3: ("containerPort", "i"),
    4: ("protocol", "s"),
    5: ("hostIP", "s"),
}
ENV_VAR: Schema = {1: ("name", "s"), 2: ("value", "s")}
RESOURCES: Schema = {1: ("limits", ("map", "q")), 2: ("requests", ("map", "q"))}
VOLUME_MOUNT: Schema = {
    1: ("name", "s"),
    2: ("readOnly", "b"),
    3: ("mountPath", "s"),
    4: ("subPath", "s"),
}
CONTAINER: Schema = {
    1: ("name", "s"),
    2: ("image", "s"),
    3: ("command", "rs"),
    4: ("args", "rs"),
    5: ("workingDir", "s"),
    6: ("ports", ("rm", CONTAINER_PORT)),
    7: ("env", ("rm", ENV_VAR)),
    8: ("resources", ("m", RESOURCES)),
    9: ("volumeMounts", ("rm", VOLUME_MOUNT)),
    13: ("terminationMessagePath", "s"),
    14: ("imagePullPolicy", "s"),
    16: ("stdin", "b"),
    17: ("stdinOnce", "b"),
    18: ("tty", "b"),
    20: ("terminationMessagePolicy", "s"),
}
POD_SPEC: Schema = {
    2: ("containers", ("rm", CONTAINER)),
    3: ("restartPolicy", "s"),
    4: ("terminationGracePeriodSeconds", "i"),
    5: ("activeDeadlineSeconds", "i"),
    6: ("dnsPolicy", "s"),
    7: ("nodeSelector", ("map", "s")),
    8: ("serviceAccountName", "s"),
    9: ("serviceAccount", "s"),
    10: ("nodeName", "s"),
    11: ("hostNetwork", "b"),
    20: ("initContainers", ("rm", CONTAINER)),
}
POD_TEMPLATE: Schema = {1: ("metadata", ("m", OBJECT_META)), 2: ("spec", ("m", POD_SPEC))}
ROLLING_UPDATE: Schema = {1: ("maxUnavailable", "ios"), 2: ("maxSurge", "ios")}
STRATEGY: Schema = {1: ("type", "s"), 2: ("rollingUpdate", ("m", ROLLING_UPDATE))}
DEPLOYMENT_SPEC: Schema = {
    1: ("replicas", "i"),
    2: ("selector", ("m", LABEL_SELECTOR)),
    3: ("template", ("m", POD_TEMPLATE)),
    4: ("strategy", ("m", STRATEGY)),
    5: ("minReadySeconds", "i"),
    6: ("revisionHistoryLimit", "i"),
    7: ("paused", "b"),
    9: ("progressDeadlineSeconds", "i"),
}
SERVICE_PORT: Schema = {
    1: ("name", "s"),
    2: ("protocol", "s"),
    3: ("port", "i"),
    4: ("targetPort", "ios"),
    5: ("nodePort", "i"),
}
SERVICE_SPEC: Schema = {
    1: ("ports", ("rm", SERVICE_PORT)),
    2: ("selector", ("map", "s")),
    3: ("clusterIP", "s"),
    4: ("type", "s"),
}
RESOURCE_ATTRIBUTES: Schema = {
    1: ("namespace", "s"),
    2: ("verb", "s"),
    3: ("group", "s"),
    4: ("version", "s"),
    5: ("resource", "s"),
    6: ("subresource", "s"),
    7: ("name", "s"),
}
NON_RESOURCE_ATTRIBUTES: Schema = {1: ("path", "s"), 2: ("verb", "s")}
SSAR_SPEC: Schema = {
    1: ("resourceAttributes", ("m", RESOURCE_ATTRIBUTES)),
    2: ("nonResourceAttributes", ("m", NON_RESOURCE_ATTRIBUTES)),
}
_META = {1: ("metadata", ("m", OBJECT_META))}
KINDS: dict[str, Schema] = {
    "ConfigMap": {
        **_META,
        2: ("data", ("map", "s")),
        3: ("binaryData", ("map", "bytes")),
        4: ("immutable", "b"),
    },
    "Secret": {
        **_META,
        2: ("data", ("map", "bytes")),
        3: ("type", "s"),
        4: ("stringData", ("map", "s")),
        5: ("immutable", "b"),
    },
    "Namespace": {**_META, 2: ("spec", ("m", {1: ("finalizers", "rs")}))},
    "ServiceAccount": {**_META, 4: ("automountServiceAccountToken", "b")},
    "Pod": {**_META, 2: ("spec", ("m", POD_SPEC))},
    "Deployment": {**_META, 2: ("spec", ("m", DEPLOYMENT_SPEC))},
    "Service": {**_META, 2: ("spec", ("m", SERVICE_SPEC))},
    "SelfSubjectReview": dict(_META),
    "SelfSubjectAccessReview": {**_META, 2: ("spec", ("m", SSAR_SPEC))},
    "DeleteOptions": {1: ("gracePeriodSeconds", "i"), 4: ("propagationPolicy", "s")},
}


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            msg = "truncated varint"
            raise ValueError(msg)
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            out.append((number, value))
        elif wire == 2:
            length, pos = _varint(data, pos)
            out.append((number, data[pos : pos + length]))
            pos += length
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            msg = f"unsupported wire type {wire}"
            raise ValueError(msg)
    return out


def _time(data: bytes) -> str | None:
    seconds = 0
    for number, value in _fields(data):
        if number == 1 and isinstance(value, int):
            seconds = value
    if not seconds:
        return None
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _scalar(kind: Any, value: int | bytes) -> Any:
    if kind == "s":
        return value.decode() if isinstance(value, bytes) else str(value)
    if kind == "i":
        if isinstance(value, int):
            return value - (1 << 64) if value >= 1 << 63 else value
        return 0
    if kind == "b":
        return bool(value)
    if kind == "bytes":
        return base64.b64encode(value if isinstance(value, bytes) else b"").decode()
    if kind == "time":
        return _time(value) if isinstance(value, bytes) else None
    if kind == "q":
        fields = dict(_fields(value)) if isinstance(value, bytes) else {}
        raw = fields.get(1, b"")
        return raw.decode() if isinstance(raw, bytes) else str(raw)
    if kind == "ios":
        fields = dict(_fields(value)) if isinstance(value, bytes) else {}
        if fields.get(1, 0) == 1:
            raw = fields.get(3, b"")
            return raw.decode() if isinstance(raw, bytes) else str(raw)
        number = fields.get(2, 0)
        return number if isinstance(number, int) else 0
    return None


def decode_message(data: bytes, schema: Schema) -> dict[str, Any]:
    """A message as the JSON object its fields name (unknown fields are skipped)."""
    out: dict[str, Any] = {}
    for number, value in _fields(data):
        if number not in schema:
            continue
        name, kind = schema[number]
        if isinstance(kind, tuple):
            tag, sub = kind
            raw = value if isinstance(value, bytes) else b""
            if tag == "m":
                out[name] = decode_message(raw, sub)
            elif tag == "rm":
                out.setdefault(name, []).append(decode_message(raw, sub))
            elif tag == "map":
                entry = dict(_fields(raw))
                key = entry.get(1, b"")
                out.setdefault(name, {})[key.decode() if isinstance(key, bytes) else str(key)] = (
                    _scalar(sub, entry.get(2, b"" if sub != "i" else 0))
                )
        elif kind == "rs":
            out.setdefault(name, []).append(_scalar("s", value))
        else:
            decoded = _scalar(kind, value)
            if decoded is not None:
                out[name] = decoded
    return out


# Go's protobuf encoding writes zero values that JSON (omitempty) leaves out;
# these fields keep a zero because it means something.
_KEEP_ZERO = frozenset({"replicas", "port", "containerPort", "targetPort", "generation"})
_KEEP_EMPTY = frozenset({"resources", "emptyDir", "securityContext", "data"})


def _drop_zero_values(value: Any) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, child in value.items():
            child = _drop_zero_values(child)
            if child is None or child is False or child == "":
                continue
            if type(child) is int and child == 0 and key not in _KEEP_ZERO:
                continue
            if child == {} and key not in _KEEP_EMPTY:
                continue
            out[key] = child
        return out
    if isinstance(value, list):
        return [_drop_zero_values(v) for v in value]
    return value


def decode_object(data: bytes) -> dict[str, Any]:
    """Decode a ``k8s\\x00`` envelope into a JSON-shaped object.

    Raises:
        ValueError: not a protobuf envelope, or a kind this module cannot read.
    """
    if not data.startswith(MAGIC):
        msg = "not a Kubernetes protobuf body"
        raise ValueError(msg)
    envelope = dict(_fields(data[len(MAGIC) :]))
    type_meta = envelope.get(1, b"")
    meta = dict(_fields(type_meta)) if isinstance(type_meta, bytes) else {}
    raw_version, raw_kind = meta.get(1, b""), meta.get(2, b"")
    api_version = raw_version.decode() if isinstance(raw_version, bytes) else ""
    kind = raw_kind.decode() if isinstance(raw_kind, bytes) else ""
    schema = KINDS.get(kind)
    if schema is None:
        msg = f"the sandbox cannot read protobuf bodies of kind {kind!r}"
        raise ValueError(msg)
    raw = envelope.get(2, b"")
    body: dict[str, Any] = _drop_zero_values(
        decode_message(raw if isinstance(raw, bytes) else b"", schema)
    )
    body.pop("generation", None)
    return {"apiVersion": api_version, "kind": kind, **body}
