"""The core's import rules, checked on the source: tiers import one way, at the top of a module.

A lazy import of the core's own module inside a function hides an import
circle; a ``TYPE_CHECKING`` import of ``Client`` means a part that should take
a ``Session`` reaches back into the class above it; an ``arg-type`` ignore
means a type that does not fit was passed anyway.
"""

from __future__ import annotations

import ast
from pathlib import Path

import asyncpod_transports
import pytest

import asyncpod

CORE = Path(asyncpod.__file__).parent
CORE_MODULES = sorted(CORE.glob("*.py"))
BELOW_CLIENT = [path for path in CORE_MODULES if path.name not in {"__init__.py", "_client.py"}]
TRANSPORT_MODULES = sorted(Path(asyncpod_transports.__file__).parent.glob("*.py"))


def _ids(paths: list[Path]) -> list[str]:
    return [path.name for path in paths]


def _imported(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.module:
        return [node.module]
    return []


@pytest.mark.parametrize("path", CORE_MODULES, ids=_ids(CORE_MODULES))
def test_core_imports_its_own_modules_at_the_top(path: Path) -> None:
    """No ``import asyncpod...`` inside a function of the core (third-party ones may be lazy)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    lazy = [
        f"{path.name}:{inner.lineno} imports {name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        for inner in ast.walk(node)
        for name in _imported(inner)
        if name == "asyncpod" or name.startswith("asyncpod.")
    ]
    assert lazy == []


@pytest.mark.parametrize("path", BELOW_CLIENT, ids=_ids(BELOW_CLIENT))
def test_no_type_checking_import_of_the_client(path: Path) -> None:
    """Streams, lists and informers take a Session, not the Client above them."""
    tree = ast.parse(path.read_text(), filename=str(path))
    guarded = [
        f"{path.name}:{inner.lineno}"
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING")
        for inner in ast.walk(node)
        if isinstance(inner, ast.ImportFrom)
        and (inner.module == "asyncpod._client" or any(a.name == "Client" for a in inner.names))
    ]
    assert guarded == []


@pytest.mark.parametrize(
    "path", CORE_MODULES + TRANSPORT_MODULES, ids=_ids(CORE_MODULES + TRANSPORT_MODULES)
)
def test_no_argument_type_is_forced(path: Path) -> None:
    """No ``type: ignore[arg-type]``: every call passes what its callee declares."""
    lines = [
        f"{path.name}:{number}"
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if "type: ignore[arg-type]" in line
    ]
    assert lines == []
