"""The real ``kubectl port-forward`` against the sandbox: SPDY/3.1 tunneled in a WebSocket."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import anyio.abc
import pytest

from asyncpod.testing import Sandbox
from tests.helpers.processes import popen_interruptible, stop
from tests.helpers.sandbox import eventually
from tests.helpers.sandbox import pod as pod_manifest
from tests.servers.echo import echo_server

KUBECTL = shutil.which("kubectl")

if KUBECTL is None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("kubectl is required on CI (CI=true) but was not found", pytrace=False)
    pytest.skip("kubectl is not installed", allow_module_level=True)

pytestmark = [pytest.mark.kubectl, pytest.mark.anyio]

MIB = 1024 * 1024


class Forward:
    """A running ``kubectl port-forward``: its local ports by remote port, and its output."""

    def __init__(self, process: anyio.abc.Process) -> None:
        self.process = process
        self.ports: dict[int, int] = {}

    async def stderr(self) -> str:
        """Everything kubectl wrote on stderr, once it has exited (klog's quotes unescaped)."""
        assert self.process.stderr is not None
        chunks = [chunk async for chunk in self.process.stderr]
        return b"".join(chunks).decode().replace('\\"', '"')


@asynccontextmanager
async def kubectl_port_forward(sb: Sandbox, pod: str, *remote: int) -> AsyncIterator[Forward]:
    """``kubectl port-forward pod/POD :R...`` on free local ports; terminated and reaped after."""
    assert KUBECTL is not None
    command = [KUBECTL, "--kubeconfig", str(sb.kubeconfig), "port-forward", f"pod/{pod}"]
    env = {**os.environ, "KUBECACHEDIR": str(sb.directory / "kubecache")}
    process = await anyio.open_process([*command, *(f":{port}" for port in remote)], env=env)
    forward = Forward(process)
    async with process:
        try:
            assert process.stdout is not None
            with anyio.fail_after(60):
                # "Forwarding from 127.0.0.1:LOCAL -> REMOTE", then the same for [::1].
                output = b""
                while len(forward.ports) < len(remote):
                    try:
                        output += await process.stdout.receive()
                    except anyio.EndOfStream:
                        pytest.fail(f"kubectl ended before forwarding: {await forward.stderr()}")
                    for match in re.finditer(
                        rb"Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)", output
                    ):
                        forward.ports[int(match.group(2))] = int(match.group(1))
            yield forward
        finally:
            if process.returncode is None:
                process.terminate()
            with anyio.fail_after(30, shield=True):
                await process.wait()


async def _echo_through(port: int, payload: bytes) -> bytes:
    """Sends payload and reads as much back at once; then half-closes and expects the end."""
    async with await anyio.connect_tcp("127.0.0.1", port) as client:
        received = bytearray()
        async with anyio.create_task_group() as tasks:

            async def send() -> None:
                await client.send(payload)
                await client.send_eof()

            tasks.start_soon(send)
            while len(received) < len(payload):
                received += await client.receive(1 << 20)
        # The pod's side closes after the half-close: the tunnel carries the end back.
        with pytest.raises(anyio.EndOfStream):
            await client.receive()
    return bytes(received)


async def test_kubectl_port_forward_echoes_1_mib(sandbox: Sandbox, anyio_backend: str) -> None:
    """1 MiB goes through kubectl and back intact; kubectl used the tunnel, not a fallback."""
    name = f"pf-{anyio_backend}"
    sandbox.create(pod_manifest(name))
    sandbox.wait_running(name)  # port-forward needs the pod bound to the node
    payload = os.urandom(MIB)
    async with echo_server() as server:
        sandbox.map_port(name, 8080, server.port)
        async with kubectl_port_forward(sandbox, name, 8080) as forward:
            with anyio.fail_after(60):
                assert await _echo_through(forward.ports[8080], payload) == payload
                # A second connection on the same tunnel.
                assert await _echo_through(forward.ports[8080], b"again") == b"again"
            assert forward.process.returncode is None
        assert server.received == MIB + 5
        await eventually(lambda: server.open == 0)
    path = f"/api/v1/namespaces/default/pods/{name}/portforward"
    # Logged when the tunnel ends, once kubectl has gone.
    await eventually(lambda: sandbox.requests.count("GET", path) == 1)
    assert sandbox.requests.count("POST", path) == 0


async def test_kubectl_port_forward_eight_connections_at_once(
    sandbox: Sandbox, anyio_backend: str
) -> None:
    """Eight connections through one kubectl at once, on two ports, each intact."""
    name = f"pf8-{anyio_backend}"
    sandbox.create(pod_manifest(name))
    sandbox.wait_running(name)  # port-forward needs the pod bound to the node
    payloads = [os.urandom(256 * 1024 + i) for i in range(8)]
    results: dict[int, bytes] = {}
    async with echo_server() as first, echo_server() as second:
        sandbox.map_port(name, 80, first.port)
        sandbox.map_port(name, 5432, second.port)
        async with kubectl_port_forward(sandbox, name, 80, 5432) as forward:

            async def one(index: int) -> None:
                port = forward.ports[80 if index % 2 else 5432]
                results[index] = await _echo_through(port, payloads[index])

            with anyio.fail_after(60):
                async with anyio.create_task_group() as tasks:
                    for index in range(8):
                        tasks.start_soon(one, index)
        assert [results[i] for i in range(8)] == payloads
        assert first.received == sum(len(payloads[i]) for i in range(1, 8, 2))
        assert second.received == sum(len(payloads[i]) for i in range(0, 8, 2))


async def test_kubectl_port_forward_to_an_unmapped_port(
    sandbox: Sandbox, anyio_backend: str
) -> None:
    """Nothing on the pod's port: the connection ends and kubectl prints the kubelet's error."""
    name = f"pfno-{anyio_backend}"
    sandbox.create(pod_manifest(name))
    sandbox.wait_running(name)  # port-forward needs the pod bound to the node
    uid = sandbox.get("pods", name)["metadata"]["uid"]
    async with kubectl_port_forward(sandbox, name, 9999) as forward:
        with anyio.fail_after(60):
            async with await anyio.connect_tcp("127.0.0.1", forward.ports[9999]) as client:
                with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                    await client.receive()
            # kubectl 1.31+ gives up the whole forward after an error from the pod.
            code = await forward.process.wait()
        stderr = await forward.stderr()
    assert code != 0
    assert (
        f"error forwarding port 9999 to pod {uid}, uid : failed to connect to localhost:9999 "
        f'inside namespace "{uid}", IPv4: dial tcp4 127.0.0.1:9999: connect: connection refused'
    ) in stderr
    assert "lost connection to pod" in stderr


async def test_stopping_kubectl_closes_the_pods_side(sandbox: Sandbox, anyio_backend: str) -> None:
    """kubectl terminated mid-connection: the sandbox drops the connection to the pod's port."""
    name = f"pfstop-{anyio_backend}"
    sandbox.create(pod_manifest(name))
    sandbox.wait_running(name)  # port-forward needs the pod bound to the node
    async with echo_server() as server:
        sandbox.map_port(name, 80, server.port)
        async with kubectl_port_forward(sandbox, name, 80) as forward:
            client = await anyio.connect_tcp("127.0.0.1", forward.ports[80])
            async with client:
                with anyio.fail_after(60):
                    await client.send(b"hello")
                    assert await client.receive() == b"hello"
                assert server.open == 1
                forward.process.terminate()
                with anyio.fail_after(30):
                    await forward.process.wait()
                await eventually(lambda: server.open == 0)


def _echo_thread_server() -> tuple[socket.socket, threading.Thread]:
    """A blocking echo server, one connection at a time, in a thread; closing it stops it."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:  # the listener was closed: the test is over
                return
            with conn:
                while data := conn.recv(1 << 16):
                    conn.sendall(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener, thread


def test_kubectl_port_forward_through_the_sandbox_command(tmp_path: Path) -> None:
    """``asyncpod sandbox --map-port`` in one process, the real kubectl port-forward in another."""
    assert KUBECTL is not None
    (tmp_path / "pod.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: db-0}\n"
        "spec: {containers: [{name: db, image: db}]}\n"
    )
    kubeconfig = tmp_path / "kubeconfig"
    listener, thread = _echo_thread_server()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASYNCPOD_", "KUBE"))}
    env["KUBECACHEDIR"] = str(tmp_path / "kubecache")
    local = listener.getsockname()[1]
    command = [sys.executable, "-m", "asyncpod", "sandbox", "--kubeconfig", str(kubeconfig)]
    mapping = f"default/db-0:5432={local}"
    sandbox = popen_interruptible(
        [*command, "--load", str(tmp_path / "pod.yaml"), "--map-port", mapping],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    forward: subprocess.Popen[str] | None = None
    try:
        assert sandbox.stdout is not None
        for line in sandbox.stdout:
            if line.startswith("# Unix socket"):
                break
        forward = subprocess.Popen(
            [KUBECTL, "--kubeconfig", str(kubeconfig), "port-forward", "pod/db-0", ":5432"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert forward.stdout is not None
        match = re.match(r"Forwarding from 127\.0\.0\.1:(\d+) -> 5432", forward.stdout.readline())
        assert match, forward.stderr.read() if forward.stderr else ""
        payload = os.urandom(64 * 1024)
        with socket.create_connection(("127.0.0.1", int(match.group(1))), timeout=60) as client:
            client.sendall(payload)
            client.shutdown(socket.SHUT_WR)
            received = b""
            while data := client.recv(1 << 16):
                received += data
        assert received == payload
    finally:
        for process, sig in ((forward, signal.SIGTERM), (sandbox, signal.SIGINT)):
            if process is not None:
                stop(process, sig)
        listener.close()
        thread.join(timeout=10)
    assert sandbox.returncode == 0
