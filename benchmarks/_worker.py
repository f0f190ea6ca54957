"""One client running one workload, in its own fresh process.

Run by the harness as ``python -m benchmarks._worker SPEC_JSON``; prints one
JSON line ``{"result": {...}}``. A client that cannot run the workload prints
``{"result": {"na": "why"}}``.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
import traceback
from typing import Any

import anyio

from benchmarks._clients import CLIENTS, BenchClient, Context


def rss_mb() -> float:
    """The resident set size of this process, in MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds() -> float:
    """User plus system CPU time of this process (all its threads) so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Counter:
    def __init__(self, total: int, deadline: float) -> None:
        self.total = total
        self.deadline = deadline
        self.started = 0
        self.done = 0
        self.errors = 0
        self.first_error = ""

    def fail(self, exc: BaseException) -> None:
        self.errors += 1
        if not self.first_error:
            self.first_error = f"{type(exc).__name__}: {exc}"[:300]


async def _many(op: Any, counter: Counter, concurrency: int) -> None:
    """Run ``op`` ``counter.total`` times, ``concurrency`` at a time."""

    async def worker() -> None:
        while counter.started < counter.total and time.perf_counter() < counter.deadline:
            counter.started += 1
            try:
                await op()
            except Exception as exc:
                counter.fail(exc)
            counter.done += 1

    async with anyio.create_task_group() as tg:
        for _ in range(concurrency):
            tg.start_soon(worker)


async def run(client: BenchClient, spec: dict[str, Any]) -> dict[str, Any]:
    if spec["route"] not in client.routes:
        return {"na": f"no {spec['route']} route"}
    if spec.get("rotating") and not client.rotating_token:
        return {"na": "no rotating token file"}
    ctx = Context(route=spec["route"], connections=spec["connections"], **spec["ctx"])
    await client.open(ctx)
    kind, n, namespace = spec["kind"], spec["n"], spec["namespace"]
    concurrency = spec.get("concurrency", 1)
    result: dict[str, Any] = {"runtime": {**client.runtime(), "python": sys.executable}}
    if kind == "get":
        # Warm up: open the pool's connections (TLS handshakes) before timing.
        warm = Counter(concurrency, time.perf_counter() + 30)
        await _many(lambda: client.get(namespace), warm, concurrency)
        if warm.errors:
            result["warmup_error"] = warm.first_error
    elif kind == "list":
        await client.list(namespace)
    t0, c0 = time.perf_counter(), cpu_seconds()
    counter = Counter(n, t0 + spec["max_seconds"])
    if kind == "get":
        await _many(lambda: client.get(namespace), counter, concurrency)
        ops = counter.done
    elif kind == "list":

        async def one_list() -> None:
            items = await client.list(namespace)
            if items != 500:
                msg = f"the list had {items} items"
                raise AssertionError(msg)

        await _many(one_list, counter, 1)
        ops = counter.done
    elif kind == "watch":
        with anyio.move_on_after(spec["max_seconds"]):
            try:
                await client.watch(namespace, n)
            except Exception as exc:
                counter.fail(exc)
        ops = counter.done = client.events
    elif kind == "idle":
        return await _idle(client, spec, counter, result["runtime"])
    else:
        msg = f"unknown workload kind {kind!r}"
        raise ValueError(msg)
    seconds = time.perf_counter() - t0
    cpu = cpu_seconds() - c0
    result.update(
        ops=ops,
        seconds=seconds,
        cpu=cpu,
        rate=ops / seconds if seconds else 0.0,
        cpu_per_1000=cpu / ops * 1000 if ops else None,
        errors=counter.errors,
        error=counter.first_error,
        capped=ops < n,
        rss_mb=rss_mb(),
        note=client.note,
    )
    await client.aclose()
    return result


async def _idle(
    client: BenchClient, spec: dict[str, Any], counter: Counter, runtime: dict[str, Any]
) -> dict[str, Any]:
    """Open ``n`` idle watches, let them settle, then measure CPU and memory while idle."""
    rss_before = rss_mb()

    async def hold() -> None:
        try:
            await client.idle_watch(spec["namespace"])
        except Exception as exc:
            counter.fail(exc)

    async with anyio.create_task_group() as tg:
        for _ in range(spec["n"]):
            tg.start_soon(hold)
        # Wait until the server holds every watch open (the harness says so
        # through a file), then let the last handshakes settle.
        ready = spec.get("ready_file")
        waited = time.perf_counter()
        while ready and not os.path.exists(ready):  # noqa: ASYNC240 - a stat, nothing to wait on
            if time.perf_counter() - waited > spec["open_timeout"]:
                break
            await anyio.sleep(0.1)
        open_seconds = time.perf_counter() - waited
        await anyio.sleep(spec["settle_seconds"])
        t0, c0 = time.perf_counter(), cpu_seconds()
        await anyio.sleep(spec["idle_seconds"])
        seconds = time.perf_counter() - t0
        cpu = cpu_seconds() - c0
        result = {
            "ops": spec["n"],
            "seconds": seconds,
            "cpu": cpu,
            "idle_cpu_percent": cpu / seconds * 100,
            "rss_mb": rss_mb(),
            "rss_before_mb": rss_before,
            "open_seconds": open_seconds,
            "errors": counter.errors,
            "error": counter.first_error,
            "note": client.note,
            "runtime": runtime,
        }
        # Let the harness count the watches the server holds open, then quit
        # without tearing down a thousand connections.
        print(json.dumps({"result": result}), flush=True)
        sys.stdin.readline()
        os._exit(0)
    return result  # pragma: no cover


def main() -> None:
    spec = json.loads(sys.argv[1])
    if spec.get("cpu") is not None:
        os.sched_setaffinity(0, {spec["cpu"]})
    client = CLIENTS[spec["client"]]()
    reason = client.unavailable()
    if reason is not None:
        result: dict[str, Any] = {"na": reason}
    else:
        try:
            result = anyio.run(run, client, spec, backend=client.backend)
        except ImportError as exc:
            result = {"na": f"not installed ({exc.name})"}
        except BaseException as exc:
            traceback.print_exc()
            result = {"failed": f"{type(exc).__name__}: {exc}"[:300]}
    print(json.dumps({"result": result}), flush=True)
    os._exit(0)


if __name__ == "__main__":
    main()
