"""Shared fixtures: every async test runs on asyncio and, when installed, trio."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

# Helper modules are imported both as ``tests.helper`` and as ``helper``.
sys.path.insert(0, str(Path(__file__).parent))

BACKENDS = ["asyncio"]
if importlib.util.find_spec("trio") is not None:
    BACKENDS.append("trio")


@pytest.fixture(params=BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """The event loop an async test runs on."""
    return str(request.param)
