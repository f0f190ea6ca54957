"""Paths are built only from parts that stay in their segment."""

from __future__ import annotations

import pytest

import asyncpod
from asyncpod import InvalidNameError, Resource
from asyncpod._paths import resource_path, validate_segment

CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap", True)
NAMESPACES = Resource("", "v1", "namespaces", "Namespace", False)
DEPLOYMENTS = Resource("apps", "v1", "deployments", "Deployment", True)

ESCAPES = ["a/b", "..", ".", "%2F", "a%2e", "", "a\x00b", "a\nb", "a\rb", "\x7f", "a\x85", "/"]


@pytest.mark.parametrize("bad", ESCAPES)
def test_escaping_names_are_refused(bad: str) -> None:
    """A name that could leave its segment raises InvalidNameError, a ValueError."""
    with pytest.raises(InvalidNameError) as info:
        CONFIGMAPS.path(namespace="default", name=bad)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, asyncpod.AsyncpodError)
    assert "name" in str(info.value)


@pytest.mark.parametrize("bad", ESCAPES)
def test_escaping_namespaces_and_subresources_are_refused(bad: str) -> None:
    """Namespaces and subresources follow the same rule, and the error says which."""
    with pytest.raises(InvalidNameError, match="namespace"):
        CONFIGMAPS.path(namespace=bad, name="ok")
    with pytest.raises(InvalidNameError, match="subresource"):
        DEPLOYMENTS.path(namespace="default", name="web", subresource=bad)


def test_non_string_names_are_refused() -> None:
    """A name that is not a string is refused, not stringified."""
    with pytest.raises(InvalidNameError, match="string"):
        validate_segment(5, "name")


def test_paths_of_core_group_and_named_groups() -> None:
    """Core resources live under /api, others under /apis/<group>."""
    assert CONFIGMAPS.path(namespace="default") == "/api/v1/namespaces/default/configmaps"
    assert (
        DEPLOYMENTS.path(namespace="ns", name="web", subresource="scale")
        == "/apis/apps/v1/namespaces/ns/deployments/web/scale"
    )


def test_cluster_scoped_resources_ignore_the_namespace() -> None:
    """A namespace given for a cluster-scoped resource is not put in the path."""
    path = NAMESPACES.path(namespace="default", name="kube-system")
    assert path == "/api/v1/namespaces/kube-system"


def test_query_and_fragment_characters_are_encoded() -> None:
    """'?', '#' and spaces cannot start a query or fragment: they are percent-encoded."""
    path = resource_path("", "v1", "configmaps", namespace="d", name="a?b#c d")
    assert path == "/api/v1/namespaces/d/configmaps/a%3Fb%23c%20d"


def test_colons_stay_in_the_segment() -> None:
    """Names such as 'system:node' are valid and stay one segment."""
    path = resource_path("rbac.authorization.k8s.io", "v1", "clusterroles", name="system:node")
    assert path == "/apis/rbac.authorization.k8s.io/v1/clusterroles/system%3Anode"


def test_subresource_needs_a_name() -> None:
    """A subresource without an object name is refused."""
    with pytest.raises(InvalidNameError):
        resource_path("", "v1", "pods", subresource="log")


def test_all_is_a_singleton_with_a_readable_repr() -> None:
    """asyncpod.ALL is one object and says what it is."""
    assert repr(asyncpod.ALL) == "asyncpod.ALL"
    assert type(asyncpod.ALL)() is asyncpod.ALL
