"""The sandbox, measured: start-up time, and memory and time to hold 10,000 objects.

    python -m benchmarks.sandbox            # 10 starts, 10,000 objects
    python -m benchmarks.sandbox --quick    # 3 starts, 1,000 objects

Start-up: ``Sandbox().start()`` in a process that imported ``asyncpod.testing``
already (the CA and keys are made once per process, so the first start is
reported apart), until all three listeners accept connections. Memory: the
growth of Python's allocations (tracemalloc) and of the process's resident
set while ConfigMaps of about 1 KB are created, then Pods (with the fake
kubelet scheduling and running them), and the LIST time of each resource.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
import tracemalloc
from typing import Any

import httpx

from asyncpod.testing import Sandbox


def _rss_mb() -> float:
    # ru_maxrss is in KiB on Linux: the peak, which only grows while objects are added.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _starts(count: int) -> tuple[float, list[float]]:
    began = time.perf_counter()
    first = Sandbox().start()
    first_ms = (time.perf_counter() - began) * 1000
    first.close()
    times = []
    for _ in range(count):
        began = time.perf_counter()
        sb = Sandbox().start()
        times.append((time.perf_counter() - began) * 1000)
        sb.close()
    return first_ms, times


def _configmap(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"cm-{i:05d}", "labels": {"app": "bench", "shard": str(i % 16)}},
        "data": {"config.yaml": "x" * 900},
    }


def _pod(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"pod-{i:05d}", "labels": {"app": "bench"}},
        "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]},
    }


def _fill(sb: Sandbox, objects: int, make: Any, plural: str) -> None:
    tracemalloc.start()
    base, rss = tracemalloc.get_traced_memory()[0], _rss_mb()
    began = time.perf_counter()
    for i in range(objects):
        sb.create(make(i))
    took = time.perf_counter() - began
    if plural == "pods":
        # The kubelet starts pods in creation order: the last one running means all are.
        last = make(objects - 1)["metadata"]["name"]
        sb.wait_for(lambda: sb.get("pods", last)["status"].get("phase") == "Running", 600)
        took = time.perf_counter() - began
    grown = (tracemalloc.get_traced_memory()[0] - base) / 1e6
    tracemalloc.stop()
    with httpx.Client(base_url=sb.proxy_url, timeout=60) as client:
        listed = time.perf_counter()
        body = client.get(f"/api/v1/namespaces/default/{plural}").content
        list_ms = (time.perf_counter() - listed) * 1000
    done = "running" if plural == "pods" else "created"
    print(
        f"  {objects} {plural}: {done} in {took:.2f} s ({objects / took:.0f}/s), "
        f"+{grown:.1f} MB traced, peak RSS +{_rss_mb() - rss:.1f} MB, "
        f"LIST {len(body) / 1e6:.1f} MB in {list_ms:.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 starts, 1,000 objects")
    args = parser.parse_args()
    starts, objects = (3, 1_000) if args.quick else (10, 10_000)
    first, times = _starts(starts)
    print(
        f"start-up: first {first:.0f} ms (makes the CA), then median "
        f"{statistics.median(times):.0f} ms, max {max(times):.0f} ms over {starts}"
    )
    with Sandbox() as sb:
        _fill(sb, objects, _configmap, "configmaps")
        _fill(sb, objects, _pod, "pods")


if __name__ == "__main__":
    main()
