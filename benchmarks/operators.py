"""The controller runtime, measured: reconcile throughput and leader failover time.

    python -m benchmarks.operators            # both, on asyncio and trio
    python -m benchmarks.operators --quick    # fewer objects and repetitions

Reconcile throughput: N ConfigMaps in the embedded sandbox, a ``Controller``
with ``max_concurrent_reconciles=8`` whose reconcile patches each object once
(so every object is reconciled twice: once to patch, once to see it done);
objects per second from start to the last object done, and the CPU per
object of the client's thread (the sandbox runs in another thread).
Failover: a leader in another process is killed with SIGKILL; the time
until a candidate in this process leads.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import textwrap
import time
from typing import Any

import anyio

import asyncpod
from asyncpod.testing import Sandbox


def _cpu() -> float:
    # The event loop's thread only: the sandbox serves from a thread of its own.
    return time.thread_time()


async def _converge(sandbox: Sandbox, objects: int, concurrency: int) -> tuple[float, float]:
    """Seconds and CPU seconds until every object is reconciled to done."""
    sandbox.reset()
    for i in range(objects):
        sandbox.create(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": f"cm-{i}", "labels": {"bench": "yes"}},
                "data": {},
            },
            namespace="default",
        )
    done: set[str] = set()
    finished = anyio.Event()
    config = asyncpod.Config.proxy(sandbox.proxy_url)
    async with asyncpod.Client(config) as k8s:

        async def reconcile(obj: dict[str, Any]) -> None:
            name = obj["metadata"]["name"]
            if (obj.get("data") or {}).get("done") != "yes":
                await k8s.patch("configmaps", name, {"data": {"done": "yes"}})
                return
            done.add(name)
            if len(done) == objects:
                finished.set()

        controller = asyncpod.Controller(
            k8s,
            "configmaps",
            reconcile,
            label_selector="bench=yes",
            max_concurrent_reconciles=concurrency,
        )
        started, cpu = time.perf_counter(), _cpu()
        async with anyio.create_task_group() as tg:
            tg.start_soon(controller.run)
            await finished.wait()
            elapsed, cpu = time.perf_counter() - started, _cpu() - cpu
            await controller.shutdown()
    return elapsed, cpu


LEADER = textwrap.dedent(
    """
    import sys, anyio, asyncpod

    async def main():
        async with asyncpod.Client(asyncpod.Config.proxy(sys.argv[1])) as k8s:
            lease, renew, retry = map(float, sys.argv[2:5])
            async with k8s.leader_election(
                "bench", identity="old", lease_duration=lease, renew_deadline=renew,
                retry_period=retry,
            ):
                print("LEADING", flush=True)
                await anyio.sleep_forever()

    anyio.run(main)
    """
)


async def _failover(sandbox: Sandbox, lease: float, renew: float, retry: float) -> float:
    """Seconds from killing the leader's process to a new leader."""
    sandbox.reset()
    command = [sys.executable, "-c", LEADER, sandbox.proxy_url, str(lease), str(renew), str(retry)]
    async with await anyio.open_process(command) as process:
        assert process.stdout is not None
        output = b""
        while b"LEADING" not in output:
            output += await process.stdout.receive()
        config = asyncpod.Config.proxy(sandbox.proxy_url)
        async with asyncpod.Client(config) as k8s:
            election = asyncpod.LeaderElection(
                k8s,
                "bench",
                namespace="default",
                identity="new",
                lease_duration=lease,
                renew_deadline=renew,
                retry_period=retry,
            )
            await election.try_acquire_or_renew()  # observe the live leader first
            process.kill()
            killed = time.perf_counter()
            await election.acquire()
            took = time.perf_counter() - killed
            await election.release()
        await process.wait()
    return took


def _spread(values: list[float]) -> str:
    return f"median {statistics.median(values):.2f} (min {min(values):.2f}, max {max(values):.2f})"


async def _main(args: argparse.Namespace) -> None:
    with Sandbox() as sandbox:
        rates, cpus = [], []
        for _ in range(args.reps):
            elapsed, cpu = await _converge(sandbox, args.objects, 8)
            rates.append(args.objects / elapsed)
            cpus.append(cpu / args.objects * 1e3)
        print(f"  reconcile, {args.objects} objects, concurrency 8:")
        print(f"    objects/s: {_spread(rates)}")
        print(f"    client CPU ms per object: {_spread(cpus)}")
        for lease, renew, retry in args.timings:
            times = [await _failover(sandbox, lease, renew, retry) for _ in range(args.failovers)]
            print(
                f"  failover after SIGKILL, lease {lease:g} s / renew {renew:g} s / "
                f"retry {retry:g} s: {_spread(times)} s"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer objects and repetitions")
    parser.add_argument("--defaults", action="store_true", help="also client-go's 15/10/2 s")
    options = parser.parse_args()
    args = argparse.Namespace(
        objects=100 if options.quick else 500,
        reps=2 if options.quick else 5,
        failovers=2 if options.quick else 5,
        timings=[(3.0, 2.0, 0.25)] + ([(15.0, 10.0, 2.0)] if options.defaults else []),
    )
    for backend in ("asyncio", "trio"):
        print(f"{backend}:")
        anyio.run(_main, args, backend=backend)


if __name__ == "__main__":
    main()
