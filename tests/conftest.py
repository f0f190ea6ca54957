"""Shared fixtures: every async test runs on asyncio and, when installed, trio."""

from __future__ import annotations

import importlib.util

import pytest

BACKENDS = ["asyncio"]
if importlib.util.find_spec("trio") is not None:
    BACKENDS.append("trio")


@pytest.fixture(params=BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """The event loop an async test runs on."""
    return str(request.param)
