"""Defaulting: the fields the API server fills in for the built-in kinds."""

from __future__ import annotations

import base64
import random
from typing import Any

from asyncpod.testing._resources import ResourceType

_METADATA_ORDER = (
    "name",
    "generateName",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
)


def ordered_metadata(meta: dict[str, Any]) -> dict[str, Any]:
    # The API server writes metadata fields in the order of the ObjectMeta struct.
    ordered = {k: meta[k] for k in _METADATA_ORDER if k in meta}
    ordered.update({k: v for k, v in meta.items() if k not in ordered})
    return ordered


_POD_SPEC_ORDER = (
    "volumes",
    "initContainers",
    "containers",
    "ephemeralContainers",
    "restartPolicy",
    "terminationGracePeriodSeconds",
    "activeDeadlineSeconds",
    "dnsPolicy",
    "nodeSelector",
    "serviceAccountName",
    "serviceAccount",
    "automountServiceAccountToken",
    "nodeName",
    "hostNetwork",
    "hostPID",
    "hostIPC",
    "shareProcessNamespace",
    "securityContext",
    "imagePullSecrets",
    "hostname",
    "subdomain",
    "affinity",
    "schedulerName",
    "tolerations",
    "hostAliases",
    "priorityClassName",
    "priority",
    "dnsConfig",
    "readinessGates",
    "runtimeClassName",
    "enableServiceLinks",
    "preemptionPolicy",
    "overhead",
    "topologySpreadConstraints",
    "setHostnameAsFQDN",
    "os",
    "hostUsers",
    "schedulingGates",
    "resourceClaims",
    "resources",
)
_CONTAINER_ORDER = (
    "name",
    "image",
    "command",
    "args",
    "workingDir",
    "ports",
    "envFrom",
    "env",
    "resources",
    "resizePolicy",
    "restartPolicy",
    "volumeMounts",
    "volumeDevices",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "lifecycle",
    "terminationMessagePath",
    "terminationMessagePolicy",
    "imagePullPolicy",
    "securityContext",
    "stdin",
    "stdinOnce",
    "tty",
)
SERVICE_ACCOUNT_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
# The DefaultTolerationSeconds admission plugin's tolerations.
_DEFAULT_TOLERATIONS = tuple(
    {
        "key": f"node.kubernetes.io/{taint}",
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": 300,
    }
    for taint in ("not-ready", "unreachable")
)


def _ordered(obj: dict[str, Any], order: tuple[str, ...]) -> dict[str, Any]:
    # The API server writes fields in the order of the Go struct.
    ordered = {k: obj[k] for k in order if k in obj}
    ordered.update({k: v for k, v in obj.items() if k not in ordered})
    return ordered


def _image_pull_policy(image: str) -> str:
    tail = image.rsplit("/", 1)[-1]
    if "@" in tail:
        return "IfNotPresent"
    if ":" not in tail or tail.endswith(":latest"):
        return "Always"
    return "IfNotPresent"


def _containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        c
        for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
        if isinstance(c, dict)
    ]


def _pod_spec_defaults(spec: dict[str, Any]) -> dict[str, Any]:
    for field in ("initContainers", "containers"):
        items = spec.get(field)
        if isinstance(items, list):
            spec[field] = [_container_defaults(c) if isinstance(c, dict) else c for c in items]
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    return _ordered(spec, _POD_SPEC_ORDER)


def _container_defaults(container: dict[str, Any]) -> dict[str, Any]:
    resources = container.setdefault("resources", {})
    if isinstance(resources, dict) and isinstance(resources.get("limits"), dict):
        # Requests default to the limits (pod defaulting, SetDefaults_ResourceList).
        requests = resources.setdefault("requests", {})
        if isinstance(requests, dict):
            for name, value in resources["limits"].items():
                requests.setdefault(name, value)
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    container.setdefault("imagePullPolicy", _image_pull_policy(str(container.get("image", ""))))
    for port in container.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
    return _ordered(container, _CONTAINER_ORDER)


def qos_class(spec: dict[str, Any]) -> str:
    """The pod's QoS class, as ``GetPodQOS`` computes it from requests and limits."""
    requests: list[dict[str, Any]] = []
    limits: list[dict[str, Any]] = []
    for container in _containers(spec):
        resources = container.get("resources") or {}
        requests.append(resources.get("requests") or {})
        limits.append(resources.get("limits") or {})
    if not any(r for r in requests) and not any(lim for lim in limits):
        return "BestEffort"
    guaranteed = all(
        {"cpu", "memory"} <= set(lim) and all(req.get(k, lim[k]) == lim[k] for k in lim)
        for req, lim in zip(requests, limits, strict=True)
    )
    return "Guaranteed" if guaranteed else "Burstable"


def _suffix() -> str:
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return "".join(random.choice(alphabet) for _ in range(5))


def pod_admission(spec: dict[str, Any], service_account_automount: bool = True) -> None:
    """What the default admission plugins add to a new pod.

    ServiceAccount: the service account, and unless automounting is off the
    ``kube-api-access-*`` projected volume (token, CA, namespace) mounted in
    every container. DefaultTolerationSeconds: the not-ready and unreachable
    tolerations. Priority: priority 0 and its preemption policy.
    """
    spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    automount = spec.get("automountServiceAccountToken")
    if automount is None:
        automount = service_account_automount
    mounted = any(
        isinstance(m, dict) and m.get("mountPath") == SERVICE_ACCOUNT_MOUNT
        for c in _containers(spec)
        for m in c.get("volumeMounts") or []
    )
    if automount and not mounted:
        name = f"kube-api-access-{_suffix()}"
        spec.setdefault("volumes", []).append(
            {
                "name": name,
                "projected": {
                    "sources": [
                        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                        {
                            "configMap": {
                                "name": "kube-root-ca.crt",
                                "items": [{"key": "ca.crt", "path": "ca.crt"}],
                            }
                        },
                        {
                            "downwardAPI": {
                                "items": [
                                    {
                                        "path": "namespace",
                                        "fieldRef": {
                                            "apiVersion": "v1",
                                            "fieldPath": "metadata.namespace",
                                        },
                                    }
                                ]
                            }
                        },
                    ],
                    "defaultMode": 420,
                },
            }
        )
        for container in _containers(spec):
            container.setdefault("volumeMounts", []).append(
                {"name": name, "readOnly": True, "mountPath": SERVICE_ACCOUNT_MOUNT}
            )
    tolerations = spec.setdefault("tolerations", [])
    if isinstance(tolerations, list):
        present = {(t.get("key"), t.get("effect")) for t in tolerations if isinstance(t, dict)}
        for toleration in _DEFAULT_TOLERATIONS:
            if (toleration["key"], "NoExecute") not in present and (
                toleration["key"],
                None,
            ) not in present:
                tolerations.append(dict(toleration))
    spec.setdefault("priority", 0)
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    for field in ("initContainers", "containers"):
        if isinstance(spec.get(field), list):
            spec[field] = [
                _ordered(c, _CONTAINER_ORDER) if isinstance(c, dict) else c for c in spec[field]
            ]


def _template_defaults(spec: dict[str, Any]) -> None:
    template = spec.get("template")
    if isinstance(template, dict) and isinstance(template.get("spec"), dict):
        template["spec"] = _pod_spec_defaults(template["spec"])


def _job_spec_defaults(spec: dict[str, Any]) -> None:
    _template_defaults(spec)
    spec.setdefault("parallelism", 1)
    spec.setdefault("completions", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")


def _job_labels(obj: dict[str, Any], spec: dict[str, Any]) -> None:
    # The Job strategy's generated selector: labels keyed by the Job's uid.
    if spec.get("manualSelector") or spec.get("selector"):
        return
    uid = obj["metadata"]["uid"]
    labels = {
        "batch.kubernetes.io/controller-uid": uid,
        "batch.kubernetes.io/job-name": obj["metadata"]["name"],
        "controller-uid": uid,
        "job-name": obj["metadata"]["name"],
    }
    spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    spec["manualSelector"] = False
    template = spec.setdefault("template", {})
    if isinstance(template, dict):
        meta = template.setdefault("metadata", {})
        if isinstance(meta, dict):
            meta["labels"] = {**(meta.get("labels") or {}), **labels}
    obj["metadata"]["labels"] = {**labels, **(obj["metadata"].get("labels") or {})}


def _job_order(spec: dict[str, Any]) -> dict[str, Any]:
    return _ordered(
        spec,
        (
            "parallelism",
            "completions",
            "activeDeadlineSeconds",
            "podFailurePolicy",
            "successPolicy",
            "backoffLimit",
            "backoffLimitPerIndex",
            "maxFailedIndexes",
            "selector",
            "manualSelector",
            "template",
            "ttlSecondsAfterFinished",
            "completionMode",
            "suspend",
            "podReplacementPolicy",
            "managedBy",
        ),
    )


# The status a create starts from, for kinds whose create strategy resets it.
_INITIAL_STATUS: dict[str, dict[str, Any]] = {
    "DaemonSet": {
        "currentNumberScheduled": 0,
        "numberMisscheduled": 0,
        "desiredNumberScheduled": 0,
        "numberReady": 0,
    },
    "StatefulSet": {"replicas": 0, "availableReplicas": 0},
    "ReplicaSet": {"replicas": 0},
    "ReplicationController": {"replicas": 0},
    "Service": {"loadBalancer": {}},
    "Namespace": {"phase": "Active"},
    "PersistentVolume": {"phase": "Pending"},
    "PersistentVolumeClaim": {"phase": "Pending"},
}
# Kinds whose create keeps the status it is sent (the kubelet registers a Node with one).
_STATUS_KEPT_ON_CREATE = frozenset({"Node", "CustomResourceDefinition"})


def initial_status(rt: ResourceType, obj: dict[str, Any]) -> None:
    """Reset ``status`` on create, as the create strategies of kinds with a status do."""
    if "status" not in rt.subresources or rt.kind in _STATUS_KEPT_ON_CREATE:
        return
    obj.pop("status", None)
    if rt.custom:
        return
    if rt.kind == "Pod":
        spec = obj.get("spec")
        qos = qos_class(spec) if isinstance(spec, dict) else "BestEffort"
        obj["status"] = {"phase": "Pending", "qosClass": qos}
    else:
        obj["status"] = dict(_INITIAL_STATUS.get(rt.kind, {}))


def defaults(rt: ResourceType, obj: dict[str, Any], *, creating: bool = False) -> None:
    """The defaults the API server fills in for the built-in kinds."""
    obj["metadata"] = ordered_metadata(obj["metadata"])
    if rt.custom:
        return
    kind = rt.kind
    spec = obj.get("spec")
    if kind == "Namespace":
        labels = obj["metadata"].setdefault("labels", {})
        labels["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj.setdefault("status", {}).setdefault("phase", "Active")
    elif kind == "Pod":
        spec = obj.setdefault("spec", {})
        obj["spec"] = spec = _pod_spec_defaults(spec)
        if creating:
            pod_admission(spec)
        obj["spec"] = _ordered(spec, _POD_SPEC_ORDER)
        obj.setdefault("status", {"phase": "Pending", "qosClass": qos_class(spec)})
    elif kind in ("Deployment", "StatefulSet", "ReplicaSet", "DaemonSet", "ReplicationController"):
        spec = obj.setdefault("spec", {})
        _template_defaults(spec)
        _workload_defaults(kind, obj, spec, creating=creating)
    elif kind == "Job" and isinstance(spec, dict):
        if creating:
            _job_labels(obj, spec)
        _job_spec_defaults(spec)
        obj["spec"] = _job_order(spec)
        obj.setdefault("status", {})
    elif kind == "CronJob" and isinstance(spec, dict):
        spec.setdefault("concurrencyPolicy", "Allow")
        spec.setdefault("suspend", False)
        spec.setdefault("successfulJobsHistoryLimit", 3)
        spec.setdefault("failedJobsHistoryLimit", 1)
        job_template = spec.get("jobTemplate")
        if isinstance(job_template, dict) and isinstance(job_template.get("spec"), dict):
            _template_defaults(job_template["spec"])
        obj.setdefault("status", {})
    elif kind == "Secret":
        obj.setdefault("type", "Opaque")
        string_data = obj.pop("stringData", None)
        if isinstance(string_data, dict):
            data = obj.setdefault("data", {})
            for key, value in string_data.items():
                data[key] = base64.b64encode(str(value).encode()).decode()
    elif kind == "Service":
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        for port in spec.get("ports", []):
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")
                port.setdefault("targetPort", port.get("port"))
        obj.setdefault("status", {"loadBalancer": {}})
    elif kind == "CustomResourceDefinition":
        _crd_status(obj)


def _workload_defaults(
    kind: str, obj: dict[str, Any], spec: dict[str, Any], *, creating: bool
) -> None:
    if kind != "DaemonSet":
        spec.setdefault("replicas", 1)
    if kind == "Deployment":
        spec.setdefault(
            "strategy",
            {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
            },
        )
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
    elif kind == "StatefulSet":
        spec.setdefault("podManagementPolicy", "OrderedReady")
        spec.setdefault(
            "updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
        )
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault(
            "persistentVolumeClaimRetentionPolicy",
            {"whenDeleted": "Retain", "whenScaled": "Retain"},
        )
    elif kind == "DaemonSet":
        spec.setdefault(
            "updateStrategy",
            {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
        )
        spec.setdefault("revisionHistoryLimit", 10)
        if creating:
            annotations = obj["metadata"].setdefault("annotations", {})
            annotations.setdefault("deprecated.daemonset.template.generation", "1")
    elif kind == "ReplicationController":
        template = spec.get("template")
        meta = template.get("metadata") if isinstance(template, dict) else None
        labels = meta.get("labels") if isinstance(meta, dict) else None
        if isinstance(labels, dict) and labels:
            spec.setdefault("selector", dict(labels))
            obj["metadata"].setdefault("labels", dict(labels))
    obj.setdefault("status", dict(_INITIAL_STATUS.get(kind, {})))


def _crd_status(obj: dict[str, Any]) -> None:
    spec = obj.get("spec") or {}
    names = dict(spec.get("names") or {})
    names.setdefault("singular", str(names.get("kind", "")).lower())
    names.setdefault("listKind", f"{names.get('kind', '')}List")
    status = obj.setdefault("status", {})
    status["acceptedNames"] = names
    status["conditions"] = [
        {
            "type": "NamesAccepted",
            "status": "True",
            "lastTransitionTime": obj["metadata"]["creationTimestamp"],
            "reason": "NoConflicts",
            "message": "no conflicts found",
        },
        {
            "type": "Established",
            "status": "True",
            "lastTransitionTime": obj["metadata"]["creationTimestamp"],
            "reason": "InitialNamesAccepted",
            "message": "the initial names have been accepted",
        },
    ]
    status["storedVersions"] = [
        v.get("name") for v in spec.get("versions") or [] if v.get("storage")
    ]
