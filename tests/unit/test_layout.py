"""The core's import rules, checked on the source: tiers import one way, at the top of a module.

A lazy import of the core's own module inside a function hides an import
circle; a ``TYPE_CHECKING`` import of ``Client`` means a part that should take
a ``Session`` reaches back into the class above it; an ``arg-type`` ignore
means a type that does not fit was passed anyway.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
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


def _imports_inside(path: Path, block: Callable[[ast.AST], bool]) -> list[tuple[int, ast.AST]]:
    """Every import statement of ``path`` nested in a node that ``block`` picks, with its line."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        (inner.lineno, inner)
        for node in ast.walk(tree)
        if block(node)
        for inner in ast.walk(node)
        if isinstance(inner, ast.Import | ast.ImportFrom)
    ]


@pytest.mark.parametrize("path", CORE_MODULES, ids=_ids(CORE_MODULES))
def test_core_imports_its_own_modules_at_the_top(path: Path) -> None:
    """No ``import asyncpod...`` inside a function of the core (third-party ones may be lazy)."""
    in_function = _imports_inside(
        path, lambda node: isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    )
    lazy = [
        f"{path.name}:{line} imports {name}"
        for line, statement in in_function
        for name in _imported(statement)
        if name == "asyncpod" or name.startswith("asyncpod.")
    ]
    assert lazy == []


@pytest.mark.parametrize("path", BELOW_CLIENT, ids=_ids(BELOW_CLIENT))
def test_no_type_checking_import_of_the_client(path: Path) -> None:
    """Streams, lists and informers take a Session, not the Client above them."""
    guarded = _imports_inside(
        path,
        lambda node: isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"),
    )
    of_client = [
        f"{path.name}:{line}"
        for line, statement in guarded
        if isinstance(statement, ast.ImportFrom)
        and (
            statement.module == "asyncpod._client"
            or any(alias.name == "Client" for alias in statement.names)
        )
    ]
    assert of_client == []


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
