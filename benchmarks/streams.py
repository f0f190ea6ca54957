"""exec and port-forward, measured against the embedded sandbox.

    python -m benchmarks.streams            # asyncio, trio, the official client, kubectl
    python -m benchmarks.streams --quick    # fewer repetitions

- exec: the wall time of one ``exec(["true"])`` (upgrade, a process started by
  the sandbox's kubelet, its Status), median of N; and the round trip of one
  byte through ``cat`` inside one open session (``stream_exec``), median of N.
- ``kubectl exec POD -- true`` on the same sandbox, median of N (process start
  included, as a script calling kubectl pays it).
- the official client (``kubernetes``): the same exec and port-forward measures
  through ``kubernetes.stream.stream()`` and ``portforward()``, in a process of
  its own in the ``peers`` environment (``benchmarks/_official_streams.py``),
  port-forward in 256 KiB exchanges only (its proxy thread cannot pump both ways).
- port-forward: MB/s of one forwarded connection echoing 64 MiB (counted
  once, in one direction), and of 8 concurrent connections of 16 MiB, through
  ``forward_port`` to the echo server; the same again in exchanges of
  256 KiB (send, read the echo, again), the way the official client can be
  measured.
- ``kubectl port-forward POD :80`` on the same sandbox (SPDY/3.1 tunneled in a
  WebSocket), the same four measures through its local port; and
  ``asyncpod port-forward POD :80``, whose forwarder runs in a process of its
  own, as kubectl's (the ``forward_port`` rows share this process with the
  pumps).

Everything runs on this machine, each in a process of its own: ``asyncpod
sandbox`` (its kubelet forwards the pod's port 80 to the echo server,
``--map-port bench:80=PORT``), the echo server, and the client measured
(asyncpod from this checkout in this process; kubectl and the official client
in theirs). Every figure is the client's and the sandbox's costs together.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import anyio.abc

import asyncpod
from benchmarks._envs import Env, default_root, here, prepare
from benchmarks._official_streams import EXCHANGES_1, EXCHANGES_8, STEP
from benchmarks._served import echo_process, sandbox_process

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "bench", "namespace": "default"},
    "spec": {"containers": [{"name": "app", "image": "app"}]},
}


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


async def _exchanges(port: int, size: int) -> None:
    """Send 256 KiB, read its echo, and again, as the official client's rows do."""
    block = os.urandom(STEP)
    async with await anyio.connect_tcp("127.0.0.1", port) as conn:
        for _ in range(size // STEP):
            await conn.send(block)
            received = 0
            while received < STEP:
                received += len(await conn.receive(STEP))


async def _create_pod(kubeconfig: Path) -> None:
    """Create the pod and wait until it runs: exec needs it bound to the node."""
    async with asyncpod.Client(asyncpod.Config.from_kubeconfig(kubeconfig)) as k8s:
        created = await k8s.create("pods", POD, namespace="default")
        with anyio.fail_after(30):
            async with k8s.watch(
                "pods", namespace="default", resource_version=created["metadata"]["resourceVersion"]
            ) as events:
                async for event in events:
                    if (event.object.get("status") or {}).get("phase") == "Running":
                        return


async def _measure(kubeconfig: Path, repeats: int) -> dict[str, float]:
    results: dict[str, float] = {}
    config = asyncpod.Config.from_kubeconfig(kubeconfig)
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

        async with k8s.forward_port("bench", 80) as forward:
            results.update(await _port_forward(forward.port))
    return results


def _kubectl(kubeconfig: Path, repeats: int) -> dict[str, float]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return {}
    env = {**os.environ, "KUBECACHEDIR": str(kubeconfig.parent / "kubecache")}
    command = [kubectl, "--kubeconfig", str(kubeconfig), "exec", "bench", "--", "true"]
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=60)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(command, env=env, check=True, capture_output=True, timeout=60)
        times.append(time.perf_counter() - started)
    results = {"kubectl exec true (process included), ms": statistics.median(times) * 1000}
    results.update(anyio.run(_kubectl_port_forward, kubeconfig, kubectl))
    return results


async def _port_forward(port: int) -> dict[str, float]:
    """The port-forward measures through a forwarding local ``port``."""
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
    size = 64 << 20
    started = time.perf_counter()
    await _exchanges(port, size)
    results[EXCHANGES_1] = size / 1e6 / (time.perf_counter() - started)
    size = 16 << 20
    started = time.perf_counter()
    async with anyio.create_task_group() as pumps:
        for _ in range(8):
            pumps.start_soon(_exchanges, port, size)
    results[EXCHANGES_8] = 8 * size / 1e6 / (time.perf_counter() - started)
    return results


async def _kubectl_port_forward(kubeconfig: Path, kubectl: str) -> dict[str, float]:
    """The port-forward measures through ``kubectl port-forward`` to the same echo server."""
    command = [kubectl, "--kubeconfig", str(kubeconfig), "port-forward", "pod/bench", ":80"]
    results = await _process_port_forward(kubeconfig, command)
    return {f"kubectl {name}": value for name, value in results.items()}


async def _cli_port_forward(kubeconfig: Path) -> dict[str, float]:
    """The same through ``asyncpod port-forward``: a forwarder in its own process, as kubectl's."""
    command = [sys.executable, "-m", "asyncpod", "port-forward", "bench", ":80"]
    results = await _process_port_forward(kubeconfig, command)
    return {f"CLI {name}": value for name, value in results.items()}


async def _process_port_forward(kubeconfig: Path, command: list[str]) -> dict[str, float]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("ASYNCPOD_", "KUBE"))},
        "KUBECONFIG": str(kubeconfig),
        "KUBECACHEDIR": str(kubeconfig.parent / "kubecache"),
    }
    async with await anyio.open_process(command, env=env) as process:
        try:
            assert process.stdout is not None
            output = b""
            while not (match := re.search(rb"127\.0\.0\.1:(\d+) -> 80", output)):
                output += await process.stdout.receive()
            return await _port_forward(int(match.group(1)))
        finally:
            process.terminate()
            await process.wait()


def _official(kubeconfig: Path, repeats: int, env: Env) -> dict[str, float]:
    """The official client's rows, from ``_official_streams`` run in ``env``."""
    spec = {"kubeconfig": str(kubeconfig), "pod": "bench", "port": 80, "repeats": repeats}
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" or not env.isolated}
    done = subprocess.run(
        [env.python, "-m", "benchmarks._official_streams", json.dumps(spec)],
        cwd=env.cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        print(f"# the official client failed:\n{done.stderr[-2000:]}")
        return {}
    results: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if "na" in results:
        print(f"# the official client: {results['na']}")
        return {}
    print(f"# the official client: kubernetes {results.pop('version')}")
    return {name: float(value) for name, value in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument(
        "--here",
        action="store_true",
        help="run the official client in this interpreter (when installed) instead of the "
        "peers environment",
    )
    parser.add_argument("--root", type=Path, default=default_root(), help="where venvs are kept")
    args = parser.parse_args()
    repeats = 5 if args.quick else 30
    env = here()["peers"] if args.here else prepare(args.root, need={"peers"}, before=None)["peers"]
    rows: list[tuple[str, str, float]] = []
    with (
        tempfile.TemporaryDirectory(prefix="asyncpod-streams-") as folder,
        echo_process() as echo_port,
        sandbox_process(Path(folder), [f"bench:80={echo_port}"]) as kubeconfig,
    ):
        anyio.run(_create_pod, kubeconfig)
        for backend in ("asyncio", "trio"):
            for name, value in anyio.run(_measure, kubeconfig, repeats, backend=backend).items():
                rows.append((backend, name, value))
        for name, value in anyio.run(_cli_port_forward, kubeconfig).items():
            rows.append(("asyncio", name, value))
        for name, value in _kubectl(kubeconfig, max(repeats // 3, 3)).items():
            rows.append(("kubectl", name, value))
        for name, value in _official(kubeconfig, repeats, env).items():
            rows.append(("official", name, value))
    print(f"{'runner':<8}  {'measure':<54}  value")
    for runner, name, value in rows:
        print(f"{runner:<8}  {name:<54}  {value:9.2f}")


if __name__ == "__main__":
    main()
