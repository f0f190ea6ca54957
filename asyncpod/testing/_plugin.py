"""The pytest plugin of asyncpod (entry point ``asyncpod``): ``sandbox`` and ``pod_environment``.

One sandbox serves the whole session (starting one costs little, but a session
of many tests should not pay it per test); each test gets it reset to a fresh
cluster: no objects but the defaults, no faults, no rules, an empty request log.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from asyncpod.testing._podenv import PodEnvironment
    from asyncpod.testing._sandbox import Sandbox


@pytest.fixture(scope="session")
def _asyncpod_sandbox_session() -> Iterator[Sandbox]:
    from asyncpod.testing._sandbox import Sandbox

    sandbox = Sandbox()
    sandbox.start()
    try:
        yield sandbox
    finally:
        sandbox.close()


@pytest.fixture
def sandbox(_asyncpod_sandbox_session: Sandbox) -> Sandbox:
    """A running sandbox API server, reset to a fresh cluster for this test."""
    sb = _asyncpod_sandbox_session
    if not sb.running:
        sb.start()
    sb.reset()
    # Settings a test may have changed go back to the defaults.
    sb.bookmark_interval = 60.0
    sb.bookmark_lead = 2.0
    sb.token_lifetime = 3600.0
    sb.retention = None
    sb.history = 100_000
    return sb


@pytest.fixture
def pod_environment(sandbox: Sandbox, tmp_path: Path) -> PodEnvironment:
    """A pod's service-account folder (namespace ``default``, account ``default``)."""
    return sandbox.pod_environment(root=tmp_path / "serviceaccount")
