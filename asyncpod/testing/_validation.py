"""Validation: the API server's 422 ``Invalid`` for the kinds operators write most.

Hand-written checks of the fields a real v1.36 server refuses most often
(required fields, names, labels, ports, restart policies, selectors), with
its messages and ``details.causes``. They run after defaulting, on every
write path, as the real strategies' ``Validate`` and ``ValidateUpdate`` do.
Custom resources and the other kinds are not validated beyond their names.
"""

from __future__ import annotations

import re
from typing import Any

from asyncpod.testing import _status
from asyncpod.testing._resources import ResourceType

Cause = tuple[str, str, str]

_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
    "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
_QUALIFIED_NAME_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_PREFIX_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_NAME_PART_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and "
    "end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "
    "used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
_LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
_CONFIG_KEY_RE = re.compile(r"^[-._a-zA-Z0-9]+$")
_CONFIG_KEY_MSG = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. "
    "'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is "
    "'[-._a-zA-Z0-9]+')"
)
_RESTART_POLICIES = ("Always", "OnFailure", "Never")
_SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
_PROTOCOLS = ("SCTP", "TCP", "UDP")


def _go(value: Any) -> str:
    # How Go's %v-style field errors print a value: strings quoted, numbers bare.
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        inner = ", ".join(f'"{k}":"{v}"' for k, v in sorted(value.items()))
        return f"map[string]string{{{inner}}}"
    return str(value)


def required(field: str, detail: str = "") -> Cause:
    return ("FieldValueRequired", field, "Required value" + (f": {detail}" if detail else ""))


def invalid(field: str, value: Any, detail: str) -> Cause:
    return ("FieldValueInvalid", field, f"Invalid value: {_go(value)}: {detail}")


def not_supported(field: str, value: Any, supported: tuple[str, ...]) -> Cause:
    choices = ", ".join(f'"{s}"' for s in supported)
    return (
        "FieldValueNotSupported",
        field,
        f"Unsupported value: {_go(value)}: supported values: {choices}",
    )


def duplicate(field: str, value: Any) -> Cause:
    return ("FieldValueDuplicate", field, f"Duplicate value: {_go(value)}")


def _labels(labels: Any, field: str) -> list[Cause]:
    causes: list[Cause] = []
    if not isinstance(labels, dict):
        return causes
    for key, value in labels.items():
        prefix, _, name = str(key).rpartition("/")
        if (prefix and not _PREFIX_RE.match(prefix)) or not _QUALIFIED_NAME_RE.match(name):
            causes.append(invalid(field, key, _NAME_PART_MSG))
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE_RE.match(value):
            causes.append(invalid(field, value, _LABEL_VALUE_MSG))
    return causes


def _port(value: Any, field: str) -> list[Cause]:
    if not isinstance(value, int) or not 1 <= value <= 65535:
        return [invalid(field, value or 0, "must be between 1 and 65535, inclusive")]
    return []


def _containers(items: Any, field: str, *, required_list: bool) -> list[Cause]:
    if not items:
        return [required(field)] if required_list else []
    causes: list[Cause] = []
    seen: set[str] = set()
    for i, container in enumerate(items if isinstance(items, list) else []):
        at = f"{field}[{i}]"
        if not isinstance(container, dict):
            continue
        name = container.get("name")
        if not name:
            causes.append(required(f"{at}.name"))
        elif not isinstance(name, str) or len(name) > 63 or not _LABEL_RE.match(name):
            causes.append(invalid(f"{at}.name", name, _DNS_LABEL_MSG))
        elif name in seen:
            causes.append(duplicate(f"{at}.name", name))
        else:
            seen.add(name)
        if not container.get("image"):
            causes.append(required(f"{at}.image"))
        for j, port in enumerate(container.get("ports") or []):
            if isinstance(port, dict):
                causes += _port(port.get("containerPort"), f"{at}.ports[{j}].containerPort")
                if port.get("protocol", "TCP") not in _PROTOCOLS:
                    causes.append(
                        not_supported(f"{at}.ports[{j}].protocol", port["protocol"], _PROTOCOLS)
                    )
    return causes


def pod_spec(spec: Any, field: str, *, restart: tuple[str, ...] = _RESTART_POLICIES) -> list[Cause]:
    """The causes a pod spec (of a Pod or a template) is refused for."""
    if not isinstance(spec, dict):
        return [required(f"{field}.containers")]
    causes = _containers(spec.get("containers"), f"{field}.containers", required_list=True)
    causes += _containers(
        spec.get("initContainers"), f"{field}.initContainers", required_list=False
    )
    policy = spec.get("restartPolicy")
    if policy not in restart:
        causes.append(not_supported(f"{field}.restartPolicy", policy, restart))
    return causes


def _template(spec: dict[str, Any], *, restart: tuple[str, ...]) -> list[Cause]:
    template = spec.get("template")
    if not isinstance(template, dict):
        return [required("spec.template")]
    meta = template.get("metadata") or {}
    causes = _labels(meta.get("labels"), "spec.template.metadata.labels")
    return causes + pod_spec(template.get("spec"), "spec.template.spec", restart=restart)


def _selector_matches(spec: dict[str, Any]) -> list[Cause]:
    selector = spec.get("selector")
    if not isinstance(selector, dict) or not (
        selector.get("matchLabels") or selector.get("matchExpressions")
    ):
        return [required("spec.selector")]
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    wanted = selector.get("matchLabels") or {}
    if isinstance(labels, dict) and any(labels.get(k) != v for k, v in wanted.items()):
        return [
            invalid(
                "spec.template.metadata.labels",
                labels,
                "`selector` does not match template `labels`",
            )
        ]
    return []


def _replicas(spec: dict[str, Any]) -> list[Cause]:
    replicas = spec.get("replicas")
    if isinstance(replicas, int) and replicas < 0:
        return [invalid("spec.replicas", replicas, "must be greater than or equal to 0")]
    return []


def _workload(spec: Any, *, replicas: bool = True) -> list[Cause]:
    if not isinstance(spec, dict):
        return [required("spec.selector"), required("spec.template")]
    causes = _replicas(spec) if replicas else []
    causes += _selector_matches(spec)
    return causes + _template(spec, restart=("Always",))


def _job(spec: Any) -> list[Cause]:
    if not isinstance(spec, dict):
        return [required("spec.template")]
    return _template(spec, restart=("OnFailure", "Never"))


def _service(spec: Any) -> list[Cause]:
    if not isinstance(spec, dict):
        return []
    causes: list[Cause] = []
    kind = spec.get("type", "ClusterIP")
    if kind not in _SERVICE_TYPES:
        causes.append(not_supported("spec.type", kind, _SERVICE_TYPES))
    ports = spec.get("ports")
    if not ports and kind != "ExternalName" and spec.get("clusterIP") != "None":
        causes.append(required("spec.ports"))
    names: set[str] = set()
    port_list = ports if isinstance(ports, list) else []
    for i, port in enumerate(port_list):
        if not isinstance(port, dict):
            continue
        at = f"spec.ports[{i}]"
        if len(port_list) > 1 and not port.get("name"):
            causes.append(required(f"{at}.name"))
        elif port.get("name") in names:
            causes.append(duplicate(f"{at}.name", port["name"]))
        elif port.get("name"):
            names.add(port["name"])
        causes += _port(port.get("port"), f"{at}.port")
        if port.get("protocol", "TCP") not in _PROTOCOLS:
            causes.append(not_supported(f"{at}.protocol", port["protocol"], _PROTOCOLS))
    if kind == "ExternalName" and not spec.get("externalName"):
        causes.append(required("spec.externalName"))
    return causes


def _config_keys(obj: dict[str, Any], *fields: str) -> list[Cause]:
    causes: list[Cause] = []
    for field in fields:
        data = obj.get(field)
        for key in data if isinstance(data, dict) else ():
            if not _CONFIG_KEY_RE.match(str(key)) or len(str(key)) > 253:
                causes.append(invalid(f"{field}[{key}]", key, _CONFIG_KEY_MSG))
    return causes


def validate(rt: ResourceType, obj: dict[str, Any], schema_causes: list[Cause]) -> None:
    """422 with the real causes when the object breaks a rule of its kind or its schema.

    Raises:
        StatusError: 422 ``Invalid``, as the API server answers.
    """
    causes = _labels(obj["metadata"].get("labels"), "metadata.labels") + schema_causes
    if not rt.custom:
        causes += _kind_causes(rt.kind, obj)
    if causes:
        raise _status.invalid(rt.kind, obj["metadata"]["name"], causes, rt.group)


def _kind_causes(kind: str, obj: dict[str, Any]) -> list[Cause]:
    spec = obj.get("spec")
    if kind == "Pod":
        return pod_spec(spec, "spec")
    if kind in ("Deployment", "StatefulSet", "ReplicaSet"):
        return _workload(spec)
    if kind == "DaemonSet":
        return _workload(spec, replicas=False)
    if kind == "Job":
        return _job(spec)
    if kind == "CronJob":
        if not isinstance(spec, dict) or not spec.get("schedule"):
            return [required("spec.schedule")]
        job_template = spec.get("jobTemplate") or {}
        return [
            (reason, field.replace("spec.", "spec.jobTemplate.spec.", 1), message)
            for reason, field, message in _job(job_template.get("spec"))
        ]
    if kind == "Service":
        return _service(spec)
    if kind == "ConfigMap":
        return _config_keys(obj, "data", "binaryData")
    if kind == "Secret":
        return _config_keys(obj, "data")
    return []
