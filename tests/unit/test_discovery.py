"""kubectl's resource spellings, matched against recorded discovery documents."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asyncpod import Resource, UnknownResourceError
from asyncpod._discovery import (
    groups_from_discovery,
    match_spelling,
    parse_spelling,
    resources_from_list,
)

DATA = Path(__file__).parent.parent / "data"


def _load(name: str) -> dict[str, object]:
    result: dict[str, object] = json.loads((DATA / name).read_text())
    return result


GROUPS = groups_from_discovery(_load("get-api.json"), _load("get-apis.json"))
LISTS = {
    ("", "v1"): resources_from_list("", "v1", _load("get-api-v1.json")),
    ("apps", "v1"): resources_from_list("apps", "v1", _load("get-apis-apps-v1.json")),
}


def _match(text: str) -> Resource | None:
    return match_spelling(parse_spelling(text), GROUPS, LISTS)


@pytest.mark.parametrize(
    ("spelling", "group", "plural"),
    [
        ("pods", "", "pods"),
        ("pod", "", "pods"),
        ("Pod", "", "pods"),
        ("po", "", "pods"),
        ("cm", "", "configmaps"),
        ("ConfigMap", "", "configmaps"),
        ("deploy", "apps", "deployments"),
        ("deployments", "apps", "deployments"),
        ("deployments.apps", "apps", "deployments"),
        ("deployments.v1.apps", "apps", "deployments"),
        ("Deployment.apps", "apps", "deployments"),
        ("deployment.v1.apps", "apps", "deployments"),
        ("ns", "", "namespaces"),
    ],
)
def test_kubectl_spellings(spelling: str, group: str, plural: str) -> None:
    """Every spelling kubectl accepts names the same resource here."""
    found = _match(spelling)
    assert found is not None
    assert (found.group, found.plural) == (group, plural)


def test_discovery_fills_scope_verbs_short_names_and_subresources() -> None:
    """Scope, verbs, short names and subresources come from the resource list."""
    deploy = _match("deploy")
    assert deploy == Resource(
        "apps",
        "v1",
        "deployments",
        "Deployment",
        True,
        singular="deployment",
        short_names=("deploy",),
        verbs=deploy.verbs if deploy else (),
        subresources=("scale", "status"),
    )
    assert deploy is not None
    assert "watch" in deploy.verbs
    assert deploy.api_version == "apps/v1"
    namespaces = _match("namespaces")
    assert namespaces is not None
    assert not namespaces.namespaced


@pytest.mark.parametrize("spelling", ["deployments.v2.apps", "pods.apps", "nothing", "po.v1"])
def test_unmatched_spellings(spelling: str) -> None:
    """A spelling no group serves matches nothing."""
    assert _match(spelling) is None


@pytest.mark.parametrize("spelling", ["", " pods", "pods/log", "a..b", "pods.", ".pods", "po ds"])
def test_malformed_spellings_raise_unknown_resource(spelling: str) -> None:
    """A malformed spelling raises UnknownResourceError, also a LookupError."""
    with pytest.raises(UnknownResourceError) as info:
        parse_spelling(spelling)
    assert isinstance(info.value, LookupError)


def test_resource_is_frozen_and_hashable() -> None:
    """A Resource is a value: equal by fields, usable as a dict key."""
    a = Resource("", "v1", "pods", "Pod", True)
    assert a == Resource("", "v1", "pods", "Pod", True)
    assert {a: 1}[Resource("", "v1", "pods", "Pod", True)] == 1
    with pytest.raises(AttributeError):
        a.plural = "x"  # type: ignore[misc]
