"""What the token-rotation check costs per request.

Two measurements in one run:

1. The auth hot path alone: ``await auth.authorization()`` for ``StaticToken``
   and for ``TokenFile`` (a kubelet-style folder), in ns per call.
2. End to end: requests/s of ``Client.get_json`` over HTTPS against the same
   local server (in a child process), with a static token and with a token
   file, alternating rounds so drift hits both alike.

The overhead is reported as the extra hot-path time relative to the time of
one request, and as the difference of the end-to-end medians.

Run: ``python benchmarks/token_check.py [--requests 3000] [--concurrency 32] [--rounds 5]``
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

import trustme

import asyncpod
from asyncpod import Client, Config, StaticToken, TokenFile

TOKEN = "bench-token-" + "x" * 900  # about the size of a real service-account JWT


def serve(port_queue: multiprocessing.Queue[int], cert_dir: str) -> None:
    """A minimal API server: any bearer token gets a small JSON answer."""
    from aiohttp import web

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(f"{cert_dir}/server.pem")
    body = b'{"kind":"APIVersions","versions":["v1"]}'

    async def handle(request: web.Request) -> web.Response:
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            return web.Response(status=401)
        return web.Response(body=body, content_type="application/json")

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/api", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        port_queue.put(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        await asyncio.Event().wait()

    asyncio.run(main())


async def hot_path(auth: asyncpod.Auth, calls: int) -> float:
    """Nanoseconds per ``authorization()`` call."""
    start = time.perf_counter_ns()
    for _ in range(calls):
        await auth.authorization()
    return (time.perf_counter_ns() - start) / calls


async def end_to_end(config: Config, requests: int, concurrency: int) -> float:
    """Requests per second of ``get_json('/api')``."""
    async with Client(config) as k8s:
        for _ in range(concurrency):  # warm the pool
            await k8s.get_json("/api")
        remaining = requests

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                await k8s.get_json("/api")

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return requests / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=1_000_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        ca = trustme.CA()
        ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(f"{tmp}/server.pem")
        ca.cert_pem.write_to_path(f"{tmp}/ca.pem")
        # A kubelet-style folder: token -> ..data/token -> ..<timestamp>/token.
        data = Path(tmp, "..2026_11_28_20_37_39.1")
        data.mkdir()
        (data / "token").write_text(TOKEN)
        os.symlink(data.name, f"{tmp}/..data")
        os.symlink("..data/token", f"{tmp}/token")

        queue: multiprocessing.Queue[int] = multiprocessing.Queue()
        server = multiprocessing.Process(target=serve, args=(queue, tmp), daemon=True)
        server.start()
        try:
            port = queue.get(timeout=30)
            url = f"https://127.0.0.1:{port}"
            static = Config.https(url, token=TOKEN, ca_file=f"{tmp}/ca.pem")
            rotating = Config.https(url, token_file=f"{tmp}/token", ca_file=f"{tmp}/ca.pem")

            async def run() -> None:
                ns_static = await hot_path(StaticToken(TOKEN), args.calls)
                ns_file = await hot_path(TokenFile(f"{tmp}/token"), args.calls)
                print(f"python {sys.version.split()[0]}, asyncpod {asyncpod.__version__}")
                print(f"hot path  StaticToken: {ns_static:7.1f} ns/call")
                print(f"hot path  TokenFile:   {ns_file:7.1f} ns/call")
                results: dict[str, list[float]] = {"static": [], "file": []}
                for _ in range(args.rounds):
                    for name, config in (("static", static), ("file", rotating)):
                        results[name].append(
                            await end_to_end(config, args.requests, args.concurrency)
                        )
                s = statistics.median(results["static"])
                f = statistics.median(results["file"])
                per_request_ns = 1e9 / s
                print(
                    f"end to end StaticToken: {s:7.0f} req/s  "
                    f"(rounds: {', '.join(f'{v:.0f}' for v in results['static'])})"
                )
                print(
                    f"end to end TokenFile:   {f:7.0f} req/s  "
                    f"(rounds: {', '.join(f'{v:.0f}' for v in results['file'])})"
                )
                extra = ns_file - ns_static
                share = 100 * extra / per_request_ns
                print(
                    f"rotation check: {extra:+.0f} ns per request = {share:+.3f} % of one "
                    f"request ({per_request_ns / 1e3:.0f} us)"
                )
                print(
                    f"end-to-end difference of medians: {100 * (s - f) / s:+.2f} % (noise included)"
                )

            asyncio.run(run())
        finally:
            server.kill()
            server.join()


if __name__ == "__main__":
    main()
