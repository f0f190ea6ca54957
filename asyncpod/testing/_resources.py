"""The resource types the sandbox serves, and how they appear in discovery."""

from __future__ import annotations

from typing import Any

from attrs import define, field

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@define(eq=False)
class ResourceType:
    """One resource (``pods``, ``deployments.apps``, a custom resource)."""

    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    # subresource name -> kind it serves ("status" serves the object itself)
    subresources: dict[str, str] = field(factory=dict)
    has_generation: bool = False
    custom: bool = False
    # extra versions a custom resource is served at (all share one storage)
    versions: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> tuple[str, str]:
        return (self.group, self.plural)

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    def discovery_entries(self) -> list[dict[str, Any]]:
        """This resource's entries in an ``APIResourceList``."""
        entry: dict[str, Any] = {
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(self.verbs),
        }
        if self.short_names:
            entry["shortNames"] = list(self.short_names)
        if self.categories:
            entry["categories"] = list(self.categories)
        entries = [entry]
        for sub, kind in sorted(self.subresources.items()):
            sub_entry: dict[str, Any] = {
                "name": f"{self.plural}/{sub}",
                "singularName": "",
                "namespaced": self.namespaced,
                "kind": kind,
                "verbs": list(_SUBRESOURCE_VERBS.get(sub, ("get", "patch", "update"))),
            }
            if sub == "scale":
                sub_entry["group"] = "autoscaling"
                sub_entry["version"] = "v1"
            if sub == "eviction":
                sub_entry["group"] = "policy"
                sub_entry["version"] = "v1"
            if sub == "token":
                sub_entry["group"] = "authentication.k8s.io"
                sub_entry["version"] = "v1"
            entries.append(sub_entry)
        return entries


_SUBRESOURCE_VERBS = {
    "log": ("get",),
    "eviction": ("create",),
    "token": ("create",),
    "status": ("get", "patch", "update"),
    "scale": ("get", "patch", "update"),
}


def builtin_types() -> list[ResourceType]:
    """The resources a fresh sandbox serves."""
    return [
        ResourceType("", "v1", "configmaps", "configmap", "ConfigMap", True, short_names=("cm",)),
        ResourceType("", "v1", "events", "event", "Event", True, short_names=("ev",)),
        ResourceType(
            "",
            "v1",
            "namespaces",
            "namespace",
            "Namespace",
            False,
            short_names=("ns",),
            verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
            subresources={"status": "Namespace"},
        ),
        ResourceType(
            "",
            "v1",
            "pods",
            "pod",
            "Pod",
            True,
            short_names=("po",),
            categories=("all",),
            subresources={"status": "Pod", "log": "Pod", "eviction": "Eviction"},
            has_generation=True,
        ),
        ResourceType("", "v1", "secrets", "secret", "Secret", True),
        ResourceType(
            "",
            "v1",
            "serviceaccounts",
            "serviceaccount",
            "ServiceAccount",
            True,
            short_names=("sa",),
            subresources={"token": "TokenRequest"},
        ),
        ResourceType(
            "",
            "v1",
            "services",
            "service",
            "Service",
            True,
            short_names=("svc",),
            categories=("all",),
            subresources={"status": "Service"},
        ),
        ResourceType(
            "apps",
            "v1",
            "deployments",
            "deployment",
            "Deployment",
            True,
            short_names=("deploy",),
            categories=("all",),
            subresources={"status": "Deployment", "scale": "Scale"},
            has_generation=True,
        ),
        ResourceType("coordination.k8s.io", "v1", "leases", "lease", "Lease", True),
        ResourceType("events.k8s.io", "v1", "events", "event", "Event", True, short_names=("ev",)),
        ResourceType(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "customresourcedefinition",
            "CustomResourceDefinition",
            False,
            short_names=("crd", "crds"),
            categories=("api-extensions",),
            subresources={"status": "CustomResourceDefinition"},
            has_generation=True,
        ),
    ]


# Groups served that hold no stored resources but answer POSTs (reviews).
REVIEW_GROUPS: dict[str, list[dict[str, Any]]] = {
    "authentication.k8s.io": [
        {
            "name": "selfsubjectreviews",
            "singularName": "selfsubjectreview",
            "namespaced": False,
            "kind": "SelfSubjectReview",
            "verbs": ["create"],
        },
        {
            "name": "tokenreviews",
            "singularName": "tokenreview",
            "namespaced": False,
            "kind": "TokenReview",
            "verbs": ["create"],
        },
    ],
    "authorization.k8s.io": [
        {
            "name": "selfsubjectaccessreviews",
            "singularName": "selfsubjectaccessreview",
            "namespaced": False,
            "kind": "SelfSubjectAccessReview",
            "verbs": ["create"],
        },
    ],
}


def crd_types(crd: dict[str, Any]) -> list[ResourceType]:
    """The resource types one CustomResourceDefinition serves (one per served version)."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group = spec.get("group", "")
    plural = names.get("plural", "")
    kind = names.get("kind", "")
    served = [v for v in spec.get("versions") or [] if v.get("served", True)]
    types = []
    for version in served:
        subs: dict[str, str] = {}
        declared = version.get("subresources") or {}
        if "status" in declared:
            subs["status"] = kind
        if "scale" in declared:
            subs["scale"] = "Scale"
        types.append(
            ResourceType(
                group,
                version.get("name", "v1"),
                plural,
                names.get("singular") or kind.lower(),
                kind,
                spec.get("scope", "Namespaced") == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                subresources=subs,
                has_generation=True,
                custom=True,
                versions=tuple(v.get("name", "v1") for v in served),
            )
        )
    return types
