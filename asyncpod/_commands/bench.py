"""``asyncpod bench``: concurrent GETs, then requests per second and latency percentiles."""

from __future__ import annotations

import argparse
import math
import sys
import time
from typing import TextIO

import anyio

from asyncpod._chain import load_config
from asyncpod._client import Client
from asyncpod._errors import AsyncpodError

BAR_WIDTH = 30
# Redrawing the bar more often than this costs more than the requests it reports.
REDRAW_SECONDS = 0.1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``asyncpod bench``."""
    parser.add_argument(
        "-n", "--requests", type=int, default=1000, help="how many GETs to send (default 1000)"
    )
    parser.add_argument(
        "-c", "--concurrency", type=int, default=32, help="GETs in flight at once (default 32)"
    )
    parser.add_argument(
        "--loop",
        choices=("asyncio", "trio"),
        default="asyncio",
        help="the event loop to run on (trio uses the anyio engine)",
    )
    parser.add_argument(
        "path", nargs="?", default="/api", help="the API path to GET (default /api)"
    )


def percentile(sorted_values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return float("nan")
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


class ProgressBar:
    """A one-line progress bar, redrawn in place at most ten times a second."""

    def __init__(self, total: int, out: TextIO) -> None:
        self.total = total
        self.out = out
        self.started = time.perf_counter()
        self._drawn = 0.0

    def update(self, done: int, *, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self._drawn < REDRAW_SECONDS:
            return
        self._drawn = now
        filled = BAR_WIDTH * done // self.total if self.total else BAR_WIDTH
        rate = done / (now - self.started) if now > self.started else 0.0
        self.out.write(
            f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{self.total} "
            f"{100 * done // max(self.total, 1):3d}% {rate:,.0f} req/s"
        )
        self.out.flush()

    def close(self) -> None:
        self.out.write("\n")
        self.out.flush()


async def _bench(args: argparse.Namespace) -> int:
    total, concurrency, path = args.requests, args.concurrency, args.path
    config = load_config()
    async with Client(config, max_connections=concurrency) as k8s:
        # One request first: a wrong path or config fails at once with the
        # client's own error, and the pool holds a warm connection.
        await k8s.request("GET", path)
        latencies: list[float] = []
        failures: list[AsyncpodError] = []
        issued = 0
        bar = ProgressBar(total, sys.stderr)

        async def worker() -> None:
            nonlocal issued
            while issued < total:
                issued += 1
                start = time.perf_counter()
                try:
                    await k8s.request("GET", path)
                except AsyncpodError as exc:
                    failures.append(exc)
                else:
                    latencies.append(time.perf_counter() - start)
                bar.update(len(latencies) + len(failures))

        started = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for _ in range(min(concurrency, total)):
                tg.start_soon(worker)
        elapsed = time.perf_counter() - started
        bar.update(total, force=True)
        bar.close()
    latencies.sort()
    print(f"server:       {config.server or config.socket_path} ({config.source})")
    print(f"path:         {path}")
    print(f"requests:     {total} ({len(failures)} failed)")
    print(f"concurrency:  {concurrency}")
    print(f"elapsed:      {elapsed:.3f} s")
    print(f"throughput:   {total / elapsed if elapsed else 0.0:,.1f} req/s")
    for name, fraction in (("p50", 0.50), ("p90", 0.90), ("p99", 0.99)):
        print(f"latency {name}:  {percentile(latencies, fraction) * 1000:.2f} ms")
    if failures:
        print(
            f"asyncpod: error: {len(failures)} requests failed; first: {failures[0]}",
            file=sys.stderr,
        )
        return 1
    return 0


def run(args: argparse.Namespace) -> int:
    """Run the benchmark; exit 1 when a request failed."""
    if args.requests < 1 or args.concurrency < 1:
        print("asyncpod: error: --requests and --concurrency must be at least 1", file=sys.stderr)
        return 2
    return int(anyio.run(_bench, args, backend=args.loop))
