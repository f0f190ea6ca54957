"""exec and port-forward, measured against the embedded sandbox.

    python -m benchmarks.streams            # asyncio and trio, and kubectl when installed
    python -m benchmarks.streams --quick    # fewer repetitions

- exec: the wall time of one ``exec(["true"])`` (upgrade, a process started by
  the sandbox's kubelet, its Status), median of N; and the round trip of one
  byte through ``cat`` inside one open session (``stream_exec``), median of N.
- ``kubectl exec POD -- true`` on the same sandbox, median of N (process start
  included, as a script calling kubectl pays it).
- port-forward: MB/s of one forwarded connection echoing 64 MiB (counted
  once, in one direction), and of 8 concurrent connections of 16 MiB, through
  ``forward_port`` to a local echo server.
- ``kubectl port-forward POD :80`` on the same sandbox (SPDY/3.1 tunneled in a
  WebSocket), the same two measures through its local port; and
  ``asyncpod port-forward POD :80``, whose forwarder also runs in a process of
  its own (the ``forward_port`` rows share this process, and its interpreter
  lock, with the sandbox and the echo server).

Both ends run on this machine: the sandbox answers in a thread of the same
process, so the figures are the client's and the sandbox's costs together.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

import anyio
import anyio.abc

import asyncpod
from asyncpod.testing import Sandbox

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "bench", "namespace": "default"},
    "spec": {"containers": [{"name": "app", "image": "app"}]},
}


async def _echo(client: anyio.abc.SocketStream) -> None:
    async with client:
        try:
            while True:
                await client.send(await client.receive(1 << 20))
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            return


async def _pump(port: int, size: int) -> None:
    block = os.urandom(1 << 20)
    async with await anyio.connect_tcp("127.0.0.1", port) as conn:

        async def send() -> None:
            for _ in range(size >> 20):
                await conn.send(block)

        received = 0
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(send)
            while received < size:
                received += len(await conn.receive(1 << 20))


async def _measure(sb: Sandbox, repeats: int) -> dict[str, float]:
    results: dict[str, float] = {}
    config = asyncpod.Config.from_kubeconfig(sb.kubeconfig)
    async with asyncpod.Client(config) as k8s:
        await k8s.exec("bench", ["true"])  # warm up: connection, discovery, TLS
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            await k8s.exec("bench", ["true"])
            times.append(time.perf_counter() - started)
        results["exec true, ms"] = statistics.median(times) * 1000
        async with k8s.stream_exec("bench", ["cat"], stdin=True) as proc:
            assert proc.stdin is not None
            times = []
            for _ in range(repeats * 10):
                started = time.perf_counter()
                await proc.stdin.send(b"x")
                await proc.stdout.receive()
                times.append(time.perf_counter() - started)
            await proc.close_stdin()
            await proc.wait()
        results["1-byte round trip in a session, ms"] = statistics.median(times) * 1000

        listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        sb.map_port("bench", 80, port)
        async with listener, anyio.create_task_group() as tasks:
            tasks.start_soon(listener.serve, _echo)
            async with k8s.forward_port("bench", 80) as forward:
                results.update(await _port_forward(forward.port))
            tasks.cancel_scope.cancel()
    return results


def _kubectl(sb: Sandbox, repeats: int) -> dict[str, float]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return {}
    env = {**os.environ, "KUBECACHEDIR": str(sb.directory / "kubecache")}
    command = [kubectl, "--kubeconfig", str(sb.kubeconfig), "exec", "bench", "--", "true"]
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=60)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(command, env=env, check=True, capture_output=True, timeout=60)
        times.append(time.perf_counter() - started)
    results = {"kubectl exec true (process included), ms": statistics.median(times) * 1000}
    results.update(anyio.run(_kubectl_port_forward, sb, kubectl))
    return results


async def _port_forward(port: int) -> dict[str, float]:
    results: dict[str, float] = {}
    size = 64 << 20
    started = time.perf_counter()
    await _pump(port, size)
    results["port-forward, 1 connection, MB/s"] = size / 1e6 / (time.perf_counter() - started)
    size = 16 << 20
    started = time.perf_counter()
    async with anyio.create_task_group() as pumps:
        for _ in range(8):
            pumps.start_soon(_pump, port, size)
    results["port-forward, 8 connections, MB/s"] = 8 * size / 1e6 / (time.perf_counter() - started)
    return results


async def _kubectl_port_forward(sb: Sandbox, kubectl: str) -> dict[str, float]:
    """The port-forward measures through ``kubectl port-forward`` to the same echo server."""
    command = [kubectl, "--kubeconfig", str(sb.kubeconfig), "port-forward", "pod/bench", ":80"]
    results = await _process_port_forward(sb, command)
    return {f"kubectl {name}": value for name, value in results.items()}


async def _cli_port_forward(sb: Sandbox) -> dict[str, float]:
    """The same through ``asyncpod port-forward``: a forwarder in its own process, as kubectl's."""
    command = [sys.executable, "-m", "asyncpod", "port-forward", "bench", ":80"]
    results = await _process_port_forward(sb, command)
    return {f"CLI {name}": value for name, value in results.items()}


async def _process_port_forward(sb: Sandbox, command: list[str]) -> dict[str, float]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("ASYNCPOD_", "KUBE"))},
        "KUBECONFIG": str(sb.kubeconfig),
        "KUBECACHEDIR": str(sb.directory / "kubecache"),
    }
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    sb.map_port("bench", 80, listener.extra(anyio.abc.SocketAttribute.local_port))
    async with listener, anyio.create_task_group() as tasks:
        tasks.start_soon(listener.serve, _echo)
        async with await anyio.open_process(command, env=env) as process:
            try:
                assert process.stdout is not None
                output = b""
                while not (match := re.search(rb"127\.0\.0\.1:(\d+) -> 80", output)):
                    output += await process.stdout.receive()
                results = await _port_forward(int(match.group(1)))
            finally:
                process.terminate()
                await process.wait()
        tasks.cancel_scope.cancel()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    repeats = 5 if args.quick else 30
    with Sandbox() as sb:
        sb.create(POD)
        sb.wait_running("bench")  # exec needs the pod bound to the node
        rows: list[tuple[str, str, float]] = []
        for backend in ("asyncio", "trio"):
            for name, value in anyio.run(_measure, sb, repeats, backend=backend).items():
                rows.append((backend, name, value))
        for name, value in anyio.run(_cli_port_forward, sb).items():
            rows.append(("asyncio", name, value))
        for name, value in _kubectl(sb, max(repeats // 3, 3)).items():
            rows.append(("kubectl", name, value))
    print(f"{'runner':<8}  {'measure':<44}  value")
    for runner, name, value in rows:
        print(f"{runner:<8}  {name:<44}  {value:9.2f}")


if __name__ == "__main__":
    main()
