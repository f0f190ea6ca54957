"""The sandbox's pure pieces: selectors, patches, field sets, protobuf bodies, tokens, tiers."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import asyncpod.testing
from asyncpod.testing import _jwt
from asyncpod.testing._fields import NODE, flatten, from_fields_v1, to_fields_v1
from asyncpod.testing._patch import PatchError, json_patch, merge_patch, strategic_merge_patch
from asyncpod.testing._pki import shared_pki
from asyncpod.testing._protobuf import decode_object
from asyncpod.testing._selectors import SelectorError, field_matcher, label_matcher


def _obj(**labels: str) -> dict[str, Any]:
    return {"metadata": {"name": "n", "namespace": "ns", "labels": labels}}


def test_label_selector_parse_errors() -> None:
    """A selector that does not parse raises with the server's wording."""
    with pytest.raises(SelectorError, match="unable to parse requirement"):
        label_matcher("a in b")


def test_label_selector_set_with_spaces() -> None:
    """Set-based terms tolerate spaces and commas inside the parentheses."""
    matcher = label_matcher("env in ( prod , staging ),tier")
    assert matcher is not None
    assert matcher(_obj(env="prod", tier="x"))
    assert not matcher(_obj(env="dev", tier="x"))


def test_field_selector_on_nested_fields() -> None:
    """Pod field selectors read nested fields; a missing field is the empty string."""
    matcher = field_matcher("status.phase=Running,spec.nodeName=", "pods")
    assert matcher is not None
    assert matcher({"metadata": {}, "status": {"phase": "Running"}, "spec": {}})


def test_json_patch_pointer_escapes_and_move() -> None:
    """~1 and ~0 unescape; move and copy work; a bad index is an error."""
    doc = {"a/b": {"c~d": 1}, "list": [1, 2]}
    out = json_patch(
        doc,
        [
            {"op": "copy", "from": "/a~1b/c~0d", "path": "/x"},
            {"op": "move", "from": "/list/0", "path": "/list/-"},
        ],
    )
    assert out == {"a/b": {"c~d": 1}, "list": [2, 1], "x": 1}
    assert doc["list"] == [1, 2]
    with pytest.raises(PatchError):
        json_patch(doc, [{"op": "remove", "path": "/list/5"}])


def test_merge_patch_replaces_lists() -> None:
    """RFC 7386: lists are replaced whole."""
    assert merge_patch({"l": [1, 2], "k": 1}, {"l": [3]}) == {"l": [3], "k": 1}


def test_strategic_patch_directives() -> None:
    """$patch: replace, $deleteFromPrimitiveList and finalizers as a set."""
    current = {"metadata": {"finalizers": ["a"]}, "spec": {"env": [{"name": "A"}]}}
    patch = {
        "metadata": {"finalizers": ["b", "a"]},
        "spec": {"env": [{"name": "B"}, {"$patch": "replace"}]},
        "$deleteFromPrimitiveList/tags": ["x"],
    }
    out = strategic_merge_patch({**current, "tags": ["x", "y"]}, patch)
    assert out["metadata"]["finalizers"] == ["a", "b"]
    assert out["spec"]["env"] == [{"name": "B"}]
    assert out["tags"] == ["y"]


def test_field_set_of_a_pod() -> None:
    """Containers are keyed by name, labels owned as a map, ports by number and protocol."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "labels": {"app": "x"}},
        "spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80}]}]},
    }
    flat = flatten(pod)
    assert flat[("f:metadata", "f:labels")] is NODE
    container = ("f:spec", "f:containers", 'k:{"name":"c"}')
    assert flat[(*container, "f:image")] == "i"
    assert (*container, "f:ports", 'k:{"containerPort":80,"protocol":"TCP"}') in flat
    tree = to_fields_v1(flat)
    assert tree["f:metadata"]["f:labels"] == {".": {}, "f:app": {}}


paths = st.lists(
    st.lists(st.sampled_from(["f:a", "f:b", 'k:{"name":"x"}', "f:c"]), min_size=1, max_size=4).map(
        tuple
    ),
    max_size=12,
)


@given(paths)
def test_fields_v1_round_trip(generated: list[tuple[str, ...]]) -> None:
    """fieldsV1 encodes any set of paths and decodes to the same set."""
    assert from_fields_v1(to_fields_v1(set(generated))) == set(generated)


def _varint(value: int) -> bytes:
    out = b""
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out += bytes([byte | 0x80])
        else:
            return out + bytes([byte])


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def test_protobuf_config_map() -> None:
    """A ConfigMap in the k8s protobuf envelope decodes to its JSON form."""
    meta = _field(1, b"settings") + _field(3, b"team")
    entry = _field(1, b"a") + _field(2, b"b")
    raw = _field(1, meta) + _field(2, entry)
    type_meta = _field(1, b"v1") + _field(2, b"ConfigMap")
    body = b"k8s\x00" + _field(1, type_meta) + _field(2, raw)
    assert decode_object(body) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": "team"},
        "data": {"a": "b"},
    }
    with pytest.raises(ValueError, match="cannot read"):
        decode_object(b"k8s\x00" + _field(1, _field(1, b"v1") + _field(2, b"Binding")))


def test_jwt_round_trip_and_tamper() -> None:
    """A token verifies with the sandbox key; any change to it does not."""
    pki = shared_pki()
    claims = _jwt.service_account_claims("ns", "sa", "uid", lifetime=600)
    token = _jwt.encode(claims, pki.signing_key, pki.key_id)
    assert _jwt.decode(token, pki.signing_key.public_key()) == claims
    header, payload, signature = token.split(".")
    assert _jwt.decode(f"{header}.{payload}x.{signature}", pki.signing_key.public_key()) is None
    assert claims["exp"] - claims["iat"] == 600


# The sandbox's modules that decide (no I/O): they must not reach the HTTP side.
_SYNC_MODULES = (
    "_admission",
    "_controllers",
    "_defaults",
    "_lists",
    "_objects",
    "_reviews",
    "_routes",
    "_store",
    "_subresources",
    "_tables",
    "_verbs",
)
_HTTP_MODULES = {"aiohttp", "asyncpod.testing._server", "asyncpod.testing._watchserver"}
_HTTP_MODULES |= {"asyncpod.testing._podlogs", "asyncpod.testing._sandbox"}


def _runtime_imports(source: str) -> set[str]:
    """Modules a source imports outside ``if TYPE_CHECKING:`` blocks."""
    tree = ast.parse(source)
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            return
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return names


@pytest.mark.parametrize("module", _SYNC_MODULES)
def test_sync_sandbox_modules_do_no_http(module: str) -> None:
    """Verbs, admission, lists, tables and the store import neither aiohttp nor the HTTP side."""
    source = (Path(asyncpod.testing.__file__).parent / f"{module}.py").read_text()
    reached = {
        name
        for name in _runtime_imports(source)
        if name in _HTTP_MODULES or name.split(".")[0] == "aiohttp"
    }
    assert reached == set()
