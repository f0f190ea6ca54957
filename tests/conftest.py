"""Shared fixtures: both event loops, one client factory, the fault-injecting servers.

The ``sandbox`` and ``pod_environment`` fixtures come from asyncpod's own pytest
plugin (``asyncpod.testing._plugin``). Test modules import helpers as
``from tests.servers.x import ...`` and ``from tests.helpers.x import ...``:
``tests`` is a package, so pytest puts the repository root on ``sys.path``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.helpers.clients import ClientFactory
from tests.helpers.clients import make_client as _make_client
from tests.servers.fault import FaultServer

# Property tests must not fail because a busy machine slowed them down: no
# deadline per example, and no health check on generation speed.
settings.register_profile("asyncpod", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("asyncpod")

# trio is part of the dev extra: every async test runs on both loops.
BACKENDS = ["asyncio", "trio"]


@pytest.fixture(params=BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """The event loop an async test runs on."""
    return str(request.param)


@pytest.fixture
def make_client() -> ClientFactory:
    """Builds clients of a Config, URL, Sandbox or test server (``helpers.clients.make_client``)."""
    return _make_client


@pytest.fixture
def server() -> Iterator[FaultServer]:
    """A fault-injecting HTTP server on 127.0.0.1."""
    with FaultServer() as fault_server:
        yield fault_server


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[FaultServer]:
    """A fault-injecting HTTPS server with its own CA in tmp_path."""
    with FaultServer(tls_dir=tmp_path) as fault_server:
        yield fault_server
