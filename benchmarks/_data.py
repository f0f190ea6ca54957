"""Canned Kubernetes JSON: a Pod, a PodList of 500 pods and a watch stream.

The pod is modelled on what kube-apiserver 1.36 returns for a small Deployment
pod (managed fields, a projected service-account volume, probes, status with
conditions and container statuses), compact as the API server sends it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

LIST_PODS = 500
WATCH_EVENTS = 20_000


def pod(i: int, *, namespace: str = "default", resource_version: int = 1000) -> dict[str, Any]:
    """A realistic Pod object of about 4.5 KB."""
    name = f"web-{i}"
    uid = f"5aa4a5b7-059a-452b-afd3-{i:012d}"
    labels = {"app": "web", "pod-template-hash": "7d4b9c8f6d", "tier": "frontend"}
    mount = {
        "name": "kube-api-access-r6dc4",
        "readOnly": True,
        "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
    }
    container = {
        "name": "web",
        "image": "registry.example/web:1.27.3",
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
        "env": [
            {"name": "LOG_LEVEL", "value": "info"},
            {
                "name": "POD_NAME",
                "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}},
            },
            {
                "name": "POD_NAMESPACE",
                "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}},
            },
        ],
        "resources": {
            "limits": {"cpu": "500m", "memory": "256Mi"},
            "requests": {"cpu": "100m", "memory": "128Mi"},
        },
        "volumeMounts": [mount],
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP"},
            "timeoutSeconds": 1,
            "periodSeconds": 10,
            "successThreshold": 1,
            "failureThreshold": 3,
        },
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "imagePullPolicy": "IfNotPresent",
    }
    condition_types = [
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
        "PodScheduled",
    ]
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "generateName": "web-7d4b9c8f6d-",
            "namespace": namespace,
            "uid": uid,
            "resourceVersion": str(resource_version),
            "generation": 1,
            "creationTimestamp": "2026-11-28T20:29:38Z",
            "labels": labels,
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": "web-7d4b9c8f6d",
                    "uid": "0b8e1c52-3f0e-4d7a-9d7e-2b7a3c1f9e10",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
            "managedFields": [
                {
                    "manager": "kube-controller-manager",
                    "operation": "Update",
                    "apiVersion": "v1",
                    "time": "2026-11-28T20:29:38Z",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {
                        "f:metadata": {
                            "f:generateName": {},
                            "f:labels": {
                                ".": {},
                                "f:app": {},
                                "f:pod-template-hash": {},
                                "f:tier": {},
                            },
                            "f:ownerReferences": {
                                ".": {},
                                'k:{"uid":"0b8e1c52-3f0e-4d7a-9d7e-2b7a3c1f9e10"}': {},
                            },
                        },
                        "f:spec": {
                            "f:containers": {
                                'k:{"name":"web"}': {
                                    ".": {},
                                    "f:env": {},
                                    "f:image": {},
                                    "f:imagePullPolicy": {},
                                    "f:livenessProbe": {},
                                    "f:name": {},
                                    "f:ports": {},
                                    "f:resources": {},
                                }
                            },
                            "f:dnsPolicy": {},
                            "f:enableServiceLinks": {},
                            "f:restartPolicy": {},
                            "f:schedulerName": {},
                            "f:securityContext": {},
                            "f:terminationGracePeriodSeconds": {},
                        },
                    },
                },
                {
                    "manager": "kubelet",
                    "operation": "Update",
                    "apiVersion": "v1",
                    "time": "2026-11-28T20:29:45Z",
                    "fieldsType": "FieldsV1",
                    "subresource": "status",
                    "fieldsV1": {
                        "f:status": {
                            "f:conditions": {},
                            "f:containerStatuses": {},
                            "f:hostIP": {},
                            "f:hostIPs": {},
                            "f:phase": {},
                            "f:podIP": {},
                            "f:podIPs": {},
                            "f:startTime": {},
                        }
                    },
                },
            ],
        },
        "spec": {
            "volumes": [
                {
                    "name": "kube-api-access-r6dc4",
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
            ],
            "containers": [container],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default",
            "serviceAccount": "default",
            "nodeName": "worker-3",
            "securityContext": {},
            "schedulerName": "default-scheduler",
            "tolerations": [
                {
                    "key": "node.kubernetes.io/not-ready",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                },
                {
                    "key": "node.kubernetes.io/unreachable",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                },
            ],
            "priority": 0,
            "enableServiceLinks": True,
            "preemptionPolicy": "PreemptLowerPriority",
        },
        "status": {
            "phase": "Running",
            "conditions": [
                {
                    "type": kind,
                    "status": "True",
                    "lastProbeTime": None,
                    "lastTransitionTime": "2026-11-28T20:29:45Z",
                }
                for kind in condition_types
            ],
            "hostIP": "10.0.3.17",
            "hostIPs": [{"ip": "10.0.3.17"}],
            "podIP": f"10.244.3.{i % 250 + 2}",
            "podIPs": [{"ip": f"10.244.3.{i % 250 + 2}"}],
            "startTime": "2026-11-28T20:29:38Z",
            "containerStatuses": [
                {
                    "name": "web",
                    "state": {"running": {"startedAt": "2026-11-28T20:29:44Z"}},
                    "lastState": {},
                    "ready": True,
                    "restartCount": 0,
                    "image": "registry.example/web:1.27.3",
                    "imageID": "registry.example/web@sha256:"
                    "4c1e0f1d5b6a8e9f2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0",
                    "containerID": f"containerd://{i:064x}",
                    "started": True,
                    "volumeMounts": [{**mount, "recursiveReadOnly": "Disabled"}],
                }
            ],
            "qosClass": "Burstable",
        },
    }


def _compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def write_data(folder: Path) -> dict[str, int]:
    """Write the pod, the lists and the watch stream into ``folder``; return their sizes."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pod.json").write_bytes(_compact(pod(0)))
    pod_list = {
        "kind": "PodList",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": "5000"},
        "items": [pod(i) for i in range(LIST_PODS)],
    }
    (folder / "list.json").write_bytes(_compact(pod_list))
    (folder / "list1.json").write_bytes(_compact({**pod_list, "items": pod_list["items"][:1]}))
    with (folder / "watch.ndjson").open("wb") as out:
        for i in range(WATCH_EVENTS):
            event = {
                "type": "MODIFIED" if i >= LIST_PODS else "ADDED",
                "object": pod(i % LIST_PODS, resource_version=10_000 + i),
            }
            out.write(_compact(event) + b"\n")
    return {
        name: (folder / name).stat().st_size for name in ("pod.json", "list.json", "watch.ndjson")
    }
