"""The in-memory object store: objects, one resourceVersion counter, the event history."""

from __future__ import annotations

import collections
import ipaddress
import time
from collections.abc import Callable, Iterator
from typing import Any

from asyncpod.testing import _admission, _controllers, _fields, _status
from asyncpod.testing._defaults import ordered_metadata
from asyncpod.testing._objects import Event, Key, ObjKey, Stored, Watcher, now_rfc3339
from asyncpod.testing._resources import ResourceType, builtin_types
from asyncpod.testing._status import StatusError

SYSTEM_NAMESPACES = ("default", "kube-node-lease", "kube-public", "kube-system")


class Store:
    """Objects, types, history and watchers. Used from one thread (the server's loop).

    Args:
        history: the most events kept for watch resumption; older ones are
            compacted (a watch from before them gets 410 Expired).
        retention: seconds an event stays resumable; ``None`` keeps them
            until ``history`` is reached or ``compact()`` is called.
    """

    def __init__(self, *, history: int = 100_000, retention: float | None = None) -> None:
        self.history = history
        self.retention = retention
        self.rv = 1
        self.compacted = 0
        self.types: dict[Key, ResourceType] = {}
        self.by_version: dict[tuple[str, str], dict[str, ResourceType]] = {}
        self.data: dict[Key, dict[ObjKey, Stored]] = {}
        self.log: collections.deque[tuple[float, Event]] = collections.deque()
        self.watchers: dict[Key, set[Watcher]] = {}
        self.pod_logs: dict[tuple[str, str, str], list[str]] = {}
        self.log_waiters: list[Callable[[], None]] = []
        self.on_change: list[Callable[[Event], None]] = []
        self.owners = _controllers.OwnerIndex()
        self.service_ips = 0
        for rt in builtin_types():
            self.register(rt)
        self.bootstrap()

    # ---- types

    def register(self, rt: ResourceType) -> None:
        self.types.setdefault(rt.key, rt)
        self.by_version.setdefault((rt.group, rt.version), {})[rt.plural] = rt
        self.data.setdefault(rt.key, {})

    def unregister(self, group: str, plural: str) -> None:
        rt = self.types.pop((group, plural), None)
        if rt is None:
            return
        for version in {rt.version, *rt.versions}:
            served = self.by_version.get((group, version), {})
            served.pop(plural, None)
            if not served:
                self.by_version.pop((group, version), None)
        for watcher in list(self.watchers.pop((group, plural), ())):
            watcher.close()

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        served = self.by_version.get((group, version))
        return None if served is None else served.get(plural)

    def groups(self) -> dict[str, list[str]]:
        """Served API groups (``""`` is the core group) and their versions."""
        out: dict[str, list[str]] = {}
        for group, version in self.by_version:
            out.setdefault(group, [])
            if version not in out[group]:
                out[group].append(version)
        return out

    # ---- state

    def bootstrap(self) -> None:
        """Create what a fresh cluster has: the system namespaces and their defaults."""
        self.service_ips = 0
        for name in SYSTEM_NAMESPACES:
            self.create(self.types[("", "namespaces")], None, {"metadata": {"name": name}})
        # The API server's own service, the first address of the service range.
        self.create(
            self.types[("", "services")],
            "default",
            {
                "metadata": {
                    "name": "kubernetes",
                    "labels": {"component": "apiserver", "provider": "kubernetes"},
                },
                "spec": {
                    "ports": [{"name": "https", "port": 443, "targetPort": 6443}],
                    "sessionAffinity": "None",
                    "type": "ClusterIP",
                },
            },
            manager="kube-apiserver",
        )

    def reset(self) -> None:
        """Drop every object, custom type and watch; keep the counter moving forward."""
        for watchers in self.watchers.values():
            for watcher in list(watchers):
                watcher.close()
        self.watchers.clear()
        for key, rt in list(self.types.items()):
            if rt.custom:
                self.unregister(*key)
        for bucket in self.data.values():
            bucket.clear()
        self.owners.clear()
        self.log.clear()
        self.pod_logs.clear()
        self.rv += 1
        self.compacted = self.rv
        self.bootstrap()

    def compact(self, rv: int | None = None) -> int:
        """Forget events up to ``rv`` (default: all of them); returns the compacted version."""
        target = self.rv if rv is None else min(rv, self.rv)
        while self.log and self.log[0][1].rv <= target:
            self.log.popleft()
        self.compacted = max(self.compacted, target)
        return self.compacted

    def _trim(self) -> None:
        while len(self.log) > self.history:
            self.compacted = self.log.popleft()[1].rv
        if self.retention is not None:
            horizon = time.monotonic() - self.retention
            while self.log and self.log[0][0] < horizon:
                self.compacted = self.log.popleft()[1].rv

    def _commit(
        self, rt: ResourceType, okey: ObjKey, obj: dict[str, Any] | None, type_: str
    ) -> Stored:
        bucket = self.data[rt.key]
        prev = bucket.get(okey)
        self.rv += 1
        if obj is None:
            assert prev is not None
            obj = prev.copy()
            obj["metadata"]["resourceVersion"] = str(self.rv)
            stored = Stored(obj)
            del bucket[okey]
        else:
            obj["metadata"]["resourceVersion"] = str(self.rv)
            stored = Stored(obj)
            bucket[okey] = stored
        event = Event(self.rv, rt.key, type_, stored, prev)
        self.owners.update(rt.key, okey, prev, None if type_ == "DELETED" else stored)
        self.log.append((time.monotonic(), event))
        self._trim()
        for watcher in list(self.watchers.get(rt.key, ())):
            watcher.offer(event)
        for hook in self.on_change:
            hook(event)
        _controllers.react(self, rt, event)
        return stored

    root_ca: str | None = None

    # ---- reads

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> Stored:
        stored = self.data[rt.key].get((namespace or "", name) if rt.namespaced else ("", name))
        if stored is None:
            raise _status.not_found(rt.group, rt.plural, name)
        return stored

    def find(self, rt: ResourceType, namespace: str | None, name: str) -> Stored | None:
        return self.data[rt.key].get((namespace or "", name) if rt.namespaced else ("", name))

    # ---- writes

    def _check_namespace(self, rt: ResourceType, namespace: str | None) -> str:
        if not rt.namespaced:
            return ""
        if not namespace:
            raise _status.bad_request("the server could not find the requested resource")
        if ("", namespace) not in self.data[("", "namespaces")]:
            raise _status.not_found("", "namespaces", namespace)
        return namespace

    def create(
        self,
        rt: ResourceType,
        namespace: str | None,
        body: Any,
        *,
        dry_run: bool = False,
        manager: str = "unknown",
        apply_manager: str | None = None,
    ) -> Stored:
        """Create an object; it gets uid, creationTimestamp and a resourceVersion."""
        obj = _admission.prepare(rt, body, namespace)
        metadata = obj["metadata"]
        if not metadata.get("name") and metadata.get("generateName"):
            metadata["name"] = _admission.generate_name(str(metadata["generateName"]))
        name = str(metadata.get("name") or "")
        _admission.validate_name(rt, name)
        ns = self._check_namespace(rt, namespace or metadata.get("namespace"))
        if (ns, name) in self.data[rt.key]:
            raise _status.already_exists(rt.group, rt.plural, name)
        now = now_rfc3339()
        obj = _admission.admit(
            rt,
            obj,
            None,
            name=name,
            namespace=ns,
            now=now,
            keep_managed_fields=apply_manager is not None,
        )
        if rt.key == ("", "services"):
            self._allocate_cluster_ip(obj)
        if apply_manager is None:
            _fields.record_update(
                None,
                obj,
                manager=manager,
                api_version=rt.api_version,
                now=now,
                split_status=bool(rt.subresources.get("status")),
            )
        if dry_run:
            return Stored(obj)
        return self._commit(rt, (ns, name), obj, "ADDED")

    def _allocate_cluster_ip(self, obj: dict[str, Any]) -> None:
        # The service IP allocator, from the default 10.96.0.0/12 range.
        spec = obj["spec"]
        if spec.get("type") == "ExternalName" or spec.get("clusterIP") == "None":
            return
        if not spec.get("clusterIP"):
            self.service_ips += 1
            number = self.service_ips
            spec["clusterIP"] = str(ipaddress.IPv4Address("10.96.0.0") + number)
        spec.setdefault("clusterIPs", [spec["clusterIP"]])
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")

    def update(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        body: Any,
        *,
        dry_run: bool = False,
        manager: str = "unknown",
        subresource: str | None = None,
    ) -> Stored:
        """Replace an object (PUT), with optimistic concurrency on resourceVersion."""
        obj = _admission.prepare(rt, body, namespace)
        return self.replace_object(
            rt, namespace, name, obj, dry_run=dry_run, manager=manager, subresource=subresource
        )

    def replace_object(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        new: dict[str, Any],
        *,
        dry_run: bool = False,
        manager: str = "unknown",
        subresource: str | None = None,
        record: bool = True,
    ) -> Stored:
        """Store ``new`` (a PUT body, or a patch of the current object) over the current one.

        ``subresource="status"`` changes only ``.status``; otherwise a kind
        with a status subresource keeps its stored status.
        """
        meta = new.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise _status.bad_request("metadata must be an object")
        ns = (namespace or "") if rt.namespaced else ""
        _admission.check_namespace(rt, meta, ns)
        _admission.check_name(meta, name)
        current = self.get(rt, ns, name)
        old = current.obj
        wanted_rv = meta.get("resourceVersion")
        if wanted_rv and str(wanted_rv) != old["metadata"]["resourceVersion"]:
            raise _status.conflict(rt.group, rt.plural, name)
        if subresource == "status":
            status = new.get("status")
            new = current.copy()
            if status is None:
                new.pop("status", None)
            else:
                new["status"] = status
        elif "status" in rt.subresources:
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
        body = {k: v for k, v in new.items() if k not in ("kind", "apiVersion")}
        new = {"kind": rt.kind, "apiVersion": rt.api_version, **body}
        now = now_rfc3339()
        new = _admission.admit(rt, new, old, name=name, namespace=ns, now=now)
        if record:
            _fields.record_update(
                old,
                new,
                manager=manager,
                api_version=rt.api_version,
                now=now,
                subresource=subresource if subresource == "status" else None,
                split_status="status" in rt.subresources,
            )
        if _same(new, old):
            # A write that changes nothing is not stored: no new resourceVersion, no event.
            return current
        if dry_run:
            return Stored(new)
        okey = (ns, name)
        if old["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            return self._commit(rt, okey, None, "DELETED") if okey in self.data[rt.key] else current
        return self._commit(rt, okey, new, "MODIFIED")

    def delete(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        *,
        dry_run: bool = False,
        preconditions: dict[str, Any] | None = None,
        propagation: str | None = None,
    ) -> tuple[Stored, bool]:
        """Delete an object; returns it and whether it is gone (finalizers may keep it).

        Dependents (objects whose ownerReferences name it) are deleted too,
        unless ``propagation`` is ``"Orphan"``: then they only lose the reference.
        """
        ns = (namespace or "") if rt.namespaced else ""
        current = self.get(rt, ns, name)
        meta = current.obj["metadata"]
        if propagation == "Orphan" and not dry_run:
            self.owners.orphan(str(meta.get("uid", "")))
        if preconditions:
            want_uid = preconditions.get("uid")
            if want_uid and want_uid != meta.get("uid"):
                raise StatusError(
                    _status.status(
                        409,
                        f"Precondition failed: UID in precondition: {want_uid}, UID in object "
                        f"meta: {meta.get('uid')}",
                        "Conflict",
                        {"name": name, "kind": rt.plural},
                    )
                )
            want_rv = preconditions.get("resourceVersion")
            if want_rv and str(want_rv) != meta.get("resourceVersion"):
                raise _status.conflict(rt.group, rt.plural, name)
        if dry_run:
            return current, True
        if meta.get("finalizers"):
            if meta.get("deletionTimestamp"):
                return current, False
            new = current.copy()
            new["metadata"]["deletionTimestamp"] = now_rfc3339()
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            if rt.key == ("", "namespaces"):
                new.setdefault("status", {})["phase"] = "Terminating"
            new["metadata"] = ordered_metadata(new["metadata"])
            return self._commit(rt, (ns, name), new, "MODIFIED"), False
        if rt.key == ("", "namespaces"):
            new = current.copy()
            new["metadata"]["deletionTimestamp"] = now_rfc3339()
            new.setdefault("status", {})["phase"] = "Terminating"
            self._commit(rt, (ns, name), None, "DELETED")
            return Stored(new), True
        return self._commit(rt, (ns, name), None, "DELETED"), True

    # ---- watches

    def expire(self) -> None:
        """Apply the retention window now (it is otherwise applied on writes)."""
        self._trim()

    def events_since(self, key: Key, rv: int) -> Iterator[Event]:
        for _, event in self.log:
            if event.rv > rv and event.key == key:
                yield event

    def add_watcher(self, watcher: Watcher) -> None:
        self.watchers.setdefault(watcher.key, set()).add(watcher)

    def remove_watcher(self, watcher: Watcher) -> None:
        self.watchers.get(watcher.key, set()).discard(watcher)

    # ---- pod logs

    def append_log(self, namespace: str, pod: str, container: str, lines: list[str]) -> None:
        self.pod_logs.setdefault((namespace, pod, container), []).extend(lines)
        waiters, self.log_waiters = self.log_waiters, []
        for wake in waiters:
            wake()


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    def strip(obj: dict[str, Any]) -> dict[str, Any]:
        meta = {k: v for k, v in obj["metadata"].items() if k != "managedFields"}
        return {**obj, "metadata": meta}

    if strip(a) != strip(b):
        return False

    # Same content: only managedFields may differ in their timestamps.
    def owners(obj: dict[str, Any]) -> list[Any]:
        return [
            {k: v for k, v in e.items() if k != "time"}
            for e in obj["metadata"].get("managedFields") or []
        ]

    return owners(a) == owners(b)
