"""A fake node whose pods run, as kwok does: the scheduler's and the kubelet's writes.

A new pod is bound to the node (``spec.nodeName``, ``PodScheduled``), then
reported ``Running`` with its conditions, ``podIP`` and ready container
statuses; a bound pod's deletion is graceful (``deletionTimestamp``), and the
kubelet removes it once its containers "stopped". No process runs: a test
decides when a container exits (``exit_container``).

Each step is a write of its own, a short ``delay`` after the one before, so
watchers see the same sequence of events as on a real cluster.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from asyncpod.testing import _status
from asyncpod.testing._discovery import VERSION
from asyncpod.testing._objects import Event, now_rfc3339

if TYPE_CHECKING:
    from asyncpod.testing._store import Store

NODE_NAME = "sandbox-node"
NODE_IP = "172.18.0.2"
_POD_NETWORK = ipaddress.IPv4Address("10.244.0.0")
Later = Callable[[float, Callable[[], None]], None]


def _condition(kind: str, now: str, status: str = "True", **extra: str) -> dict[str, Any]:
    return {
        "type": kind,
        "status": status,
        "lastProbeTime": None,
        "lastTransitionTime": now,
        **extra,
    }


def _image_ref(image: str) -> tuple[str, str]:
    """The image as the runtime reports it, and a stable image ID."""
    name = image
    if "/" not in name.split(":", 1)[0]:
        name = f"docker.io/library/{name}"
    elif "." not in name.split("/", 1)[0] and ":" not in name.split("/", 1)[0]:
        name = f"docker.io/{name}"
    if ":" not in name.rsplit("/", 1)[-1] and "@" not in name:
        name += ":latest"
    digest = hashlib.sha256(name.encode()).hexdigest()
    return name, f"{name.split('@')[0].rsplit(':', 1)[0]}@sha256:{digest}"


def node_object(now: str) -> dict[str, Any]:
    """The Node a kwok-style fake kubelet registers: Ready, with room for 110 pods."""
    capacity = {"cpu": "32", "ephemeral-storage": "1Ti", "memory": "256Gi", "pods": "110"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": NODE_NAME,
            "labels": {
                "beta.kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": NODE_NAME,
                "kubernetes.io/os": "linux",
                "type": "kwok",
            },
            "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {"podCIDR": "10.244.0.0/24", "podCIDRs": ["10.244.0.0/24"]},
        "status": {
            "capacity": capacity,
            "allocatable": dict(capacity),
            "conditions": [
                {
                    "type": kind,
                    "status": "False",
                    "lastHeartbeatTime": now,
                    "lastTransitionTime": now,
                    "reason": f"KubeletHas{reason}",
                    "message": message,
                }
                for kind, reason, message in (
                    ("MemoryPressure", "SufficientMemory", "kubelet has sufficient memory"),
                    ("DiskPressure", "NoDiskPressure", "kubelet has no disk pressure"),
                    ("PIDPressure", "SufficientPID", "kubelet has sufficient PID available"),
                )
            ]
            + [
                {
                    "type": "Ready",
                    "status": "True",
                    "lastHeartbeatTime": now,
                    "lastTransitionTime": now,
                    "reason": "KubeletReady",
                    "message": "kubelet is posting ready status",
                }
            ],
            "addresses": [
                {"type": "InternalIP", "address": NODE_IP},
                {"type": "Hostname", "address": NODE_NAME},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
                "kernelVersion": "",
                "osImage": "",
                "containerRuntimeVersion": "",
                "kubeletVersion": VERSION["gitVersion"],
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        },
    }


class FakeKubelet:
    """Schedules, runs and gracefully deletes the pods of the store, on one fake node.

    Args:
        store: the sandbox's store (only touched on its own thread).
        later: runs a function on that thread after a delay, or not at all
            when the sandbox is stopped.
        delay: seconds between the steps of a pod's life.
    """

    def __init__(self, store: Store, later: Later, *, delay: float = 0.02) -> None:
        self.store = store
        self.later = later
        self.delay = delay
        self.enabled = False
        self._ips = 0

    # ---- the node

    def register_node(self) -> None:
        """Create the Node object unless it exists."""
        rt = self.store.types[("", "nodes")]
        if self.store.find(rt, None, NODE_NAME) is None:
            self.store.create(rt, None, node_object(now_rfc3339()), manager="kubelet")

    def remove_node(self) -> None:
        """Delete the Node object (its pods stay, as on a cluster that lost a node)."""
        rt = self.store.types[("", "nodes")]
        if self.store.find(rt, None, NODE_NAME) is not None:
            self.store.delete(rt, None, NODE_NAME)

    def resync(self) -> None:
        """Pick up the pods nobody scheduled yet (after a start, or after enabling)."""
        if not self.enabled:
            return
        self.register_node()
        rt = self.store.types[("", "pods")]
        for (namespace, name), stored in list(self.store.data[rt.key].items()):
            self._consider(namespace, name, stored.obj)

    # ---- reacting to changes

    def on_change(self, event: Event) -> None:
        """The store's hook: pod events move pods along."""
        if not self.enabled or event.key != ("", "pods") or event.type == "DELETED":
            return
        meta = event.obj.obj["metadata"]
        self._consider(meta.get("namespace", ""), meta["name"], event.obj.obj)

    def _consider(self, namespace: str, name: str, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        spec = pod.get("spec") or {}
        uid = meta.get("uid", "")
        if meta.get("deletionTimestamp"):
            if spec.get("nodeName") == NODE_NAME and meta.get("deletionGracePeriodSeconds"):
                self.later(self.delay, lambda: self._remove(namespace, name, uid))
            return
        status = pod.get("status") or {}
        if not spec.get("nodeName") and not spec.get("schedulingGates"):
            self.later(self.delay, lambda: self._bind(namespace, name, uid))
        elif spec.get("nodeName") == NODE_NAME and "startTime" not in status:
            self.later(self.delay, lambda: self._start(namespace, name, uid))

    def _current(self, namespace: str, name: str, uid: str) -> dict[str, Any] | None:
        rt = self.store.types[("", "pods")]
        stored = self.store.find(rt, namespace, name)
        if stored is None or stored.obj["metadata"].get("uid") != uid:
            return None
        return stored.copy()

    def _write(self, pod: dict[str, Any]) -> None:
        rt = self.store.types[("", "pods")]
        meta = pod["metadata"]
        self.store._commit(rt, (meta["namespace"], meta["name"]), pod, "MODIFIED")

    def _bind(self, namespace: str, name: str, uid: str) -> None:
        """Imitates the scheduler's binding: ``spec.nodeName`` and ``PodScheduled``."""
        pod = self._current(namespace, name, uid)
        if pod is None or pod["spec"].get("nodeName") or pod["metadata"].get("deletionTimestamp"):
            return
        pod["spec"]["nodeName"] = NODE_NAME
        status = pod.setdefault("status", {})
        status["conditions"] = [_condition("PodScheduled", now_rfc3339())]
        self._write(pod)

    def _start(self, namespace: str, name: str, uid: str) -> None:
        """Imitates the kubelet starting every container: Running and Ready."""
        pod = self._current(namespace, name, uid)
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            return
        status = pod.setdefault("status", {})
        if "startTime" in status:
            return
        now = now_rfc3339()
        self._ips += 1
        pod_ip = str(_POD_NETWORK + 1 + self._ips % 65000)
        spec = pod["spec"]
        init = [self._container_status(c, now, done=True) for c in spec.get("initContainers") or []]
        containers = [self._container_status(c, now) for c in spec.get("containers") or []]
        new_status: dict[str, Any] = {
            "phase": "Running",
            "conditions": [
                _condition("PodReadyToStartContainers", now),
                _condition("Initialized", now),
                _condition("Ready", now),
                _condition("ContainersReady", now),
                _condition("PodScheduled", now),
            ],
            "hostIP": NODE_IP,
            "hostIPs": [{"ip": NODE_IP}],
            "podIP": pod_ip,
            "podIPs": [{"ip": pod_ip}],
            "startTime": now,
        }
        if init:
            new_status["initContainerStatuses"] = init
        new_status["containerStatuses"] = containers
        new_status["qosClass"] = status.get("qosClass", "BestEffort")
        pod["status"] = new_status
        self._write(pod)

    @staticmethod
    def _container_status(
        container: dict[str, Any], now: str, *, done: bool = False
    ) -> dict[str, Any]:
        image, image_id = _image_ref(str(container.get("image", "")))
        digest = hashlib.sha256(f"{container.get('name')}{now}".encode()).hexdigest()
        state: dict[str, Any]
        if done:
            state = {
                "terminated": {
                    "exitCode": 0,
                    "reason": "Completed",
                    "startedAt": now,
                    "finishedAt": now,
                    "containerID": f"containerd://{digest}",
                }
            }
        else:
            state = {"running": {"startedAt": now}}
        return {
            "name": container.get("name", ""),
            "state": state,
            "lastState": {},
            "ready": not done,
            "restartCount": 0,
            "image": image,
            "imageID": image_id,
            "containerID": f"containerd://{digest}",
            "started": not done,
        }

    def _remove(self, namespace: str, name: str, uid: str) -> None:
        """Imitates the kubelet's last word on a deleted pod: containers stopped, delete it now."""
        pod = self._current(namespace, name, uid)
        if pod is None:
            return
        rt = self.store.types[("", "pods")]
        self.store.delete(rt, namespace, name, grace_period=0)

    # ---- a container exits

    def exit_container(
        self,
        namespace: str,
        name: str,
        container: str | None,
        exit_code: int,
        reason: str | None,
        message: str | None,
    ) -> dict[str, Any]:
        """A running container exits with ``exit_code``; the pod follows its restart policy.

        ``Always`` (and ``OnFailure`` on a failure) restarts the container
        (``restartCount`` + 1, the exit in ``lastState``); otherwise it stays
        terminated, and once no container runs the pod is ``Succeeded`` (all
        exited 0) or ``Failed``.
        """
        rt = self.store.types[("", "pods")]
        stored = self.store.get(rt, namespace, name)
        pod = stored.copy()
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        target = container or (statuses[0]["name"] if statuses else None)
        entry = next((s for s in statuses if s["name"] == target), None)
        if entry is None or "running" not in entry["state"]:
            msg = f'container "{target}" of pod "{name}" is not running'
            raise _status.bad_request(msg)
        now = now_rfc3339()
        terminated: dict[str, Any] = {
            "exitCode": exit_code,
            "reason": reason or ("Completed" if exit_code == 0 else "Error"),
        }
        if message:
            terminated["message"] = message
        terminated.update(
            {
                "startedAt": entry["state"]["running"]["startedAt"],
                "finishedAt": now,
                "containerID": entry["containerID"],
            }
        )
        policy = pod["spec"].get("restartPolicy", "Always")
        if policy == "Always" or (policy == "OnFailure" and exit_code != 0):
            entry["lastState"] = {"terminated": terminated}
            entry["state"] = {"running": {"startedAt": now}}
            entry["restartCount"] = int(entry.get("restartCount", 0)) + 1
            self._write(pod)
            return pod
        entry["state"] = {"terminated": terminated}
        entry["ready"] = False
        entry["started"] = False
        status = pod["status"]
        ready = all(s.get("ready") for s in statuses)
        for condition in status.get("conditions") or []:
            if condition["type"] in ("Ready", "ContainersReady") and not ready:
                condition["status"] = "False"
                condition["lastTransitionTime"] = now
                condition["reason"] = "PodCompleted" if exit_code == 0 else "ContainersNotReady"
        if all("terminated" in s["state"] for s in statuses):
            codes = [s["state"]["terminated"]["exitCode"] for s in statuses]
            status["phase"] = "Succeeded" if all(c == 0 for c in codes) else "Failed"
            for condition in status.get("conditions") or []:
                if condition["type"] in ("Ready", "ContainersReady"):
                    condition["reason"] = "PodCompleted"
                if condition["type"] == "PodReadyToStartContainers":
                    condition["status"] = "False"
        self._write(pod)
        return pod
