"""The controllers of a real cluster, run at once after each change to the store.

The garbage collector (ownerReferences), the namespace controller's cascade,
the service-account and root-CA controllers, CRD establishment, and the end
of a followed pod log when its pod goes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from asyncpod.testing._objects import Event, Key, ObjKey, Stored
from asyncpod.testing._resources import ResourceType, crd_types

if TYPE_CHECKING:
    from asyncpod.testing._store import Store

_ROOT_CA_DESCRIPTION = (
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal "
    "endpoints such as the internal service IP or kubernetes.default.svc. No other usage is "
    "guaranteed across distributions of Kubernetes clusters."
)


class OwnerIndex:
    """Which objects name an owner's uid in their ``ownerReferences``.

    Also remembers the owners being deleted with ``propagationPolicy=Orphan``.
    """

    def __init__(self) -> None:
        self.dependents: dict[str, set[tuple[Key, ObjKey]]] = {}
        self.orphaning: set[str] = set()

    def update(self, key: Key, okey: ObjKey, prev: Stored | None, new: Stored | None) -> None:
        """Index a change: ``prev``'s references go, ``new``'s come."""
        for stored, add in ((prev, False), (new, True)):
            if stored is None:
                continue
            for ref in stored.obj["metadata"].get("ownerReferences") or ():
                uid = ref.get("uid") if isinstance(ref, dict) else None
                if not uid:
                    continue
                if add:
                    self.dependents.setdefault(uid, set()).add((key, okey))
                else:
                    self.dependents.get(uid, set()).discard((key, okey))

    def orphan(self, uid: str) -> None:
        """The owner ``uid`` is deleted with Orphan: its dependents stay."""
        self.orphaning.add(uid)

    def concerns(self, uid: str) -> bool:
        """Whether deleting the owner ``uid`` has anything to collect."""
        return uid in self.dependents or uid in self.orphaning

    def take(self, uid: str) -> tuple[set[tuple[Key, ObjKey]], bool]:
        """The dependents of ``uid`` and whether to orphan them; forgets both."""
        orphan = uid in self.orphaning
        self.orphaning.discard(uid)
        return self.dependents.pop(uid, set()), orphan

    def clear(self) -> None:
        self.dependents.clear()
        self.orphaning.clear()


def collect_garbage(store: Store, owner: Stored) -> None:
    """Imitates the garbage collector's background cascade, done at once.

    Dependents (by ownerReferences) are deleted, or with Orphan lose the reference.
    """
    uid = owner.obj["metadata"].get("uid", "")
    dependents, orphan = store.owners.take(uid)
    for key, okey in sorted(dependents):
        rt = store.types.get(key)
        stored = store.data.get(key, {}).get(okey)
        if rt is None or stored is None:
            continue
        if orphan:
            new = stored.copy()
            refs = [r for r in new["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
            if refs:
                new["metadata"]["ownerReferences"] = refs
            else:
                new["metadata"].pop("ownerReferences", None)
            store._commit(rt, okey, new, "MODIFIED")
        else:
            store.delete(rt, okey[0] or None, okey[1])


def establish_crd(store: Store, event: Event) -> None:
    """Imitates the apiextensions server: a CRD's types are served at once, and go with it."""
    spec = event.obj.obj.get("spec") or {}
    group, plural = spec.get("group", ""), (spec.get("names") or {}).get("plural", "")
    if event.type == "DELETED":
        store.unregister(group, plural)
        store.data.pop((group, plural), None)
    elif (group, plural) not in store.types:
        for crt in crd_types(event.obj.obj):
            store.types.setdefault(crt.key, crt)
            store.by_version.setdefault((crt.group, crt.version), {})[crt.plural] = crt
            store.data.setdefault(crt.key, {})


def empty_namespace(store: Store, namespace: str) -> None:
    """Imitates the namespace controller: a deleted namespace's objects go with it."""
    for key, bucket in list(store.data.items()):
        owner = store.types.get(key)
        if owner is None or not owner.namespaced:
            continue
        for okey in [k for k in bucket if k[0] == namespace]:
            store._commit(owner, okey, None, "DELETED")


def namespace_defaults(store: Store, namespace: str) -> None:
    """Imitates the service-account and root-CA controllers in a new namespace."""
    sa = store.types[("", "serviceaccounts")]
    if (namespace, "default") not in store.data[sa.key]:
        store.create(
            sa, namespace, {"metadata": {"name": "default"}}, manager="kube-controller-manager"
        )
    if store.root_ca is not None:
        cm = store.types[("", "configmaps")]
        if (namespace, "kube-root-ca.crt") not in store.data[cm.key]:
            body = {
                "metadata": {
                    "name": "kube-root-ca.crt",
                    "annotations": {"kubernetes.io/description": _ROOT_CA_DESCRIPTION},
                },
                "data": {"ca.crt": store.root_ca},
            }
            store.create(cm, namespace, body, manager="kube-controller-manager")


def react(store: Store, rt: ResourceType, event: Event) -> None:
    """What the cluster's controllers do after ``event``."""
    if event.type == "DELETED" and store.owners.concerns(event.obj.obj["metadata"].get("uid")):
        collect_garbage(store, event.obj)
    if rt.key == ("apiextensions.k8s.io", "customresourcedefinitions"):
        establish_crd(store, event)
    elif rt.key == ("", "namespaces") and event.type == "DELETED":
        empty_namespace(store, event.obj.name)
    elif rt.key == ("", "pods") and event.type == "DELETED":
        # A followed log ends with its pod.
        waiters, store.log_waiters = store.log_waiters, []
        for wake in waiters:
            wake()
    elif rt.key == ("", "namespaces") and event.type == "ADDED":
        namespace_defaults(store, event.obj.name)
