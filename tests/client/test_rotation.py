"""Token and CA rotation end to end: a kubelet-style folder, a real client, a real TLS server.

The server (tests/servers/token.py) accepts only the tokens it was told to and
rejects a rotated-out token shortly after its rotation, as an API server does
once the old token expires.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
import trustme

from asyncpod import Config, ForbiddenError, TransportError
from tests.helpers.clients import make_client
from tests.helpers.sa_folder import make_sa_folder, rotate
from tests.servers.token import TokenServer

pytestmark = pytest.mark.anyio


def new_token(label: str) -> str:
    """A distinctive token, easy to search for in logs."""
    return f"sa-token-{label}-{secrets.token_hex(12)}"


@pytest.fixture
def ca() -> trustme.CA:
    """The cluster CA."""
    return trustme.CA()


@pytest.fixture
def server(ca: trustme.CA) -> Iterator[TokenServer]:
    """The API server, serving a certificate from ``ca``."""
    with TokenServer(ca).running() as running:
        yield running


class Pod:
    """A pod's view of the cluster: its service-account folder and environment."""

    def __init__(self, root: Path, server: TokenServer, ca: trustme.CA) -> None:
        self.root = root
        self.server = server
        self.ca_pem = ca.cert_pem.bytes()
        self.token = new_token("0")
        self.tokens = [self.token]
        server.allow(self.token)
        make_sa_folder(root, self._files())
        self.environ = {
            "KUBERNETES_SERVICE_HOST": "127.0.0.1",
            "KUBERNETES_SERVICE_PORT_HTTPS": str(server.port),
        }

    def _files(self) -> dict[str, bytes]:
        return {"token": self.token.encode(), "ca.crt": self.ca_pem, "namespace": b"default"}

    def rotate_token(self, grace: float) -> None:
        """A new token swapped in atomically; the old one is rejected ``grace`` s later."""
        old, self.token = self.token, new_token(str(len(self.tokens)))
        self.tokens.append(self.token)
        self.server.allow(self.token)
        rotate(self.root, self._files())
        self.server.revoke(old, after=grace)

    def rotate_ca(self, ca: trustme.CA) -> None:
        """A new CA bundle swapped in atomically."""
        self.ca_pem = ca.cert_pem.bytes()
        rotate(self.root, self._files())

    def config(self) -> Config:
        return Config.in_cluster(root=self.root, environ=self.environ)


@pytest.fixture
def pod(tmp_path: Path, server: TokenServer, ca: trustme.CA) -> Pod:
    """A pod whose token the server accepts."""
    return Pod(tmp_path / "sa", server, ca)


def token_reads(caplog: pytest.LogCaptureFixture) -> int:
    """How many times the token file was read, from the DEBUG log."""
    return sum(
        "token file" in r.getMessage() and " read (" in r.getMessage() for r in caplog.records
    )


async def test_burst_of_401s_reads_once(
    pod: Pod, server: TokenServer, caplog: pytest.LogCaptureFixture
) -> None:
    """32 concurrent requests rejected with 401 cause one token read, then all succeed."""
    caplog.set_level(logging.DEBUG, logger="asyncpod")
    async with make_client(pod.config(), retries=0) as k8s:
        before = token_reads(caplog)
        # The file changes and the old token dies at once, inside the client's
        # one-second check interval: only the 401 can tell it.
        pod.rotate_token(grace=0.0)
        results: list[object] = []

        async def call() -> None:
            results.append(await k8s.get_json("/api"))

        async with anyio.create_task_group() as tg:
            for _ in range(32):
                tg.start_soon(call)
    assert len(results) == 32
    assert token_reads(caplog) - before == 1
    assert server.statuses().count(401) == 32
    assert server.statuses().count(200) == 32


async def test_403_is_not_retried(
    pod: Pod, server: TokenServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A 403 is an authorization answer: no token read, no retry."""
    caplog.set_level(logging.DEBUG, logger="asyncpod")
    async with make_client(pod.config(), retries=0) as k8s:
        before = token_reads(caplog)
        with pytest.raises(ForbiddenError):
            await k8s.get_json("/forbidden")
    assert server.statuses() == [403]
    assert token_reads(caplog) == before


async def test_ca_swap_is_picked_up(pod: Pod, server: TokenServer) -> None:
    """A new cluster CA on disk and on the server is used without restarting the client."""
    async with make_client(pod.config(), retries=0) as k8s:
        await k8s.get_json("/api")
        new_ca = trustme.CA()
        pod.rotate_ca(new_ca)
        server.swap_ca(new_ca)
        # The first new connection may still meet the old bundle (checked every
        # 5 s); its verification failure makes the client look at the file at
        # once, so the next connection verifies against the new CA.
        outcomes: list[bool] = []
        with anyio.fail_after(4):
            while outcomes[-3:] != [True, True, True]:
                try:
                    await k8s.get_json("/api")
                    outcomes.append(True)
                except TransportError:
                    outcomes.append(False)
        assert outcomes.count(False) <= 1
        assert server.statuses()[-3:] == [200, 200, 200]
