"""The side-by-side benchmark: one nginx, every client in its own process, ratios."""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import _envs
from benchmarks._clients import CLIENTS
from benchmarks._server import Server, TokenRotator, running_server

REFERENCE = "aiohttp"
DECODER_REFERENCE = "aiohttp-msgspec"
RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Workload:
    key: str
    title: str
    kind: str
    route: str
    namespace: str
    n: int
    quick_n: int
    concurrency: int = 1
    unit: str = "req/s"
    rotating: bool = False
    connections: int = 100


WORKLOADS = {
    w.key: w
    for w in (
        Workload(
            "W1",
            "GET a 4.5 KB Pod, 64 concurrent, TLS + token",
            "get",
            "https",
            "default",
            5000,
            1000,
            64,
        ),
        Workload(
            "W2",
            "LIST 500 Pods (2.2 MB), TLS + token",
            "list",
            "https",
            "default",
            20,
            5,
            unit="lists/s",
        ),
        Workload(
            "W3",
            "WATCH 20,000 events, TLS + token",
            "watch",
            "https",
            "default",
            20_000,
            5000,
            unit="events/s",
        ),
        Workload(
            "W4-unix",
            "GET over the Unix socket, 64 concurrent",
            "get",
            "unix",
            "default",
            5000,
            500,
            64,
        ),
        Workload(
            "W4-proxy",
            "GET over the loopback proxy port, 64 concurrent",
            "get",
            "proxy",
            "default",
            5000,
            500,
            64,
        ),
        Workload(
            "W5",
            "1,000 idle watches on one client",
            "idle",
            "https",
            "idle",
            1000,
            1000,
            unit="watches",
            connections=1100,
        ),
        Workload(
            "W6",
            "W1 with the token file rotating every second",
            "get",
            "https",
            "rotate",
            5000,
            1000,
            64,
            rotating=True,
        ),
    )
}


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="asyncpod against raw aiohttp and peer clients, on one nginx.",
    )
    parser.add_argument("--quick", action="store_true", help="fewer requests, one repetition")
    parser.add_argument(
        "-w",
        "--workloads",
        default=",".join(WORKLOADS),
        help=f"comma-separated, of {','.join(WORKLOADS)} (W4 = both W4s)",
    )
    parser.add_argument(
        "-c",
        "--clients",
        default=",".join(CLIENTS),
        help=f"comma-separated, of {','.join(CLIENTS)}",
    )
    parser.add_argument("--repeat", type=int, default=None, help="repetitions (default 5, quick 1)")
    parser.add_argument(
        "--peer-repeat",
        type=int,
        default=1,
        help="repetitions of the peer clients (default 1: they are far from the references)",
    )
    parser.add_argument(
        "--before",
        metavar="REF",
        default=None,
        help="also run a plain install of this git revision (rows asyncpod-before*)",
    )
    parser.add_argument(
        "--here",
        action="store_true",
        help="run every client in this interpreter from the checkout (quick, not as installed)",
    )
    parser.add_argument(
        "--envs", type=Path, default=None, help="where to keep the client environments"
    )
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=None,
        help="cap on one measured run; a slower client is measured on what it did",
    )
    parser.add_argument(
        "--json", type=Path, default=RESULTS / "latest.json", help="where to write the raw results"
    )
    parser.add_argument(
        "--docs", action="store_true", help="also write docs/benchmarks.md and docs/benchmarks.png"
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    return parser.parse_args(argv)


def _selected(value: str, known: dict[str, Any], what: str) -> list[str]:
    names: list[str] = []
    for raw in value.split(","):
        name = raw.strip()
        if not name:
            continue
        expanded = [k for k in known if k.startswith(name + "-")] if name not in known else [name]
        if not expanded:
            raise SystemExit(f"unknown {what} {name!r}; choose from {', '.join(known)}")
        names += [k for k in expanded if k not in names]
    return names


def _context(server: Server) -> dict[str, str]:
    return {
        "https_url": server.https_url,
        "http_url": server.http_url,
        "unix_socket": str(server.unix_socket),
        "ca_file": str(server.ca_file),
        "token": server.tokens[0],
        "token_file": str(server.token_file),
        "kubeconfig": str(server.kubeconfig),
        "proxy_kubeconfig": str(server.proxy_kubeconfig),
    }


def run_one(
    client: str,
    workload: Workload,
    server: Server,
    args: argparse.Namespace,
    cpu: int | None,
    env: _envs.Env,
) -> dict[str, Any]:
    """Run ``client`` on ``workload`` in a fresh process and return its result."""
    max_seconds = args.max_seconds or (8.0 if args.quick else 10.0)
    spec = {
        "client": client,
        "kind": workload.kind,
        "route": workload.route,
        "namespace": workload.namespace,
        "n": workload.quick_n if args.quick else workload.n,
        "concurrency": workload.concurrency,
        "connections": workload.connections,
        "rotating": workload.rotating,
        "max_seconds": max_seconds,
        "settle_seconds": 1.0 if args.quick else 2.0,
        "idle_seconds": 3.0 if args.quick else 10.0,
        "open_timeout": 30.0,
        "ready_file": str(server.root / f"ready-{client}"),
        "cpu": cpu,
        "ctx": _context(server),
    }
    environ = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if env.isolated:
        for name in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):
            environ.pop(name, None)
    process = subprocess.Popen(
        [env.python, "-m", "benchmarks._worker", json.dumps(spec)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environ,
        cwd=env.cwd,
    )
    killer = threading.Timer(max_seconds + 90, process.kill)
    killer.start()
    if workload.kind == "idle":
        _signal_when_open(server, spec["n"], Path(spec["ready_file"]), spec["open_timeout"])
    result: dict[str, Any] = {"failed": "no result"}
    try:
        assert process.stdout is not None
        assert process.stdin is not None
        for line in process.stdout:
            if line.startswith('{"result"'):
                result = json.loads(line)["result"]
                if workload.kind == "idle":
                    result["server_open"] = server.idle_open()
                break
        process.stdin.close()
        stderr = process.stderr.read() if process.stderr else ""
        process.wait()
    finally:
        killer.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
    if "failed" in result and stderr:
        result["stderr"] = stderr[-2000:]
    return result


def _signal_when_open(server: Server, n: int, ready: Path, timeout: float) -> None:
    """Create ``ready`` once the server holds ``n`` idle watches open (or at ``timeout``)."""
    ready.unlink(missing_ok=True)

    def watch() -> None:
        deadline = time.monotonic() + timeout
        while server.idle_open() < n and time.monotonic() < deadline:
            time.sleep(0.05)
        ready.touch()

    threading.Thread(target=watch, daemon=True).start()


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _good(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in results if "na" not in r and "failed" not in r]


def _spread(values: list[float]) -> dict[str, float] | None:
    """Median, min and max of ``values`` (None when there are none)."""
    values = [v for v in values if v == v]  # drop NaN
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def paired(
    mine: list[dict[str, Any]], theirs: list[dict[str, Any]], field: str, *, invert: bool = False
) -> dict[str, float] | None:
    """Ratios of ``field`` between runs of the same round (run i against run i), with spread.

    Rounds are interleaved, so run i of two clients met about the same load: the ratio of a
    pair is steadier than the ratio of two medians. A client with fewer runs (the peers) is
    paired with the first runs of the other.
    """
    ratios = []
    for a, b in zip(mine, theirs, strict=False):
        if "na" in a or "failed" in a or "na" in b or "failed" in b:
            continue
        x, y = a.get(field), b.get(field)
        if not x or not y:
            continue
        ratios.append(y / x if invert else x / y)
    return _spread(ratios)


def summarize(runs: dict[str, dict[str, list[dict[str, Any]]]]) -> dict[str, dict[str, Any]]:
    """Median and spread per client and workload, and the paired ratios to the references."""
    summary: dict[str, dict[str, Any]] = {}
    for key, by_client in runs.items():
        rows: dict[str, Any] = {}
        for client, results in by_client.items():
            good = _good(results)
            if not good:
                first = results[0] if results else {"na": "not run"}
                reason = str(first.get("na") or first.get("failed", "failed"))
                rows[client] = {"na": reason.splitlines()[0]}
                continue
            rate = _spread([r.get("rate", 0.0) for r in good]) or {}
            cpu = _spread([r["cpu_per_1000"] for r in good if r.get("cpu_per_1000") is not None])
            row: dict[str, Any] = {
                "rate": rate.get("median", 0.0),
                "rate_spread": rate,
                "cpu_per_1000": (cpu or {}).get("median", float("nan")),
                "cpu_spread": cpu,
                "errors": sum(r.get("errors", 0) for r in good),
                "error": next((r["error"] for r in good if r.get("error")), ""),
                "capped": any(r.get("capped") for r in good),
                "rss_mb": _median([r["rss_mb"] for r in good if "rss_mb" in r]),
                "note": next((r["note"] for r in good if r.get("note")), ""),
                "runtime": good[0].get("runtime", {}),
                "runs": len(good),
            }
            if key == "W5":
                row["idle_cpu_percent"] = _median([r["idle_cpu_percent"] for r in good])
                row["server_open"] = min(r.get("server_open", 0) for r in good)
            if key == "W6":
                row["tokens_seen"] = good[-1].get("tokens_seen", {})
            rows[client] = row
        for reference, field in ((REFERENCE, "vs_aiohttp"), (DECODER_REFERENCE, "vs_msgspec")):
            ref = rows.get(reference)
            if not ref or "na" in ref:
                continue
            for client, row in rows.items():
                if "na" in row:
                    continue
                theirs = by_client[reference]
                rate = paired(by_client[client], theirs, "rate")
                cpu = paired(by_client[client], theirs, "cpu_per_1000")
                row[field] = rate["median"] if rate else None
                row[field + "_spread"] = rate
                row[field + "_cpu"] = cpu["median"] if cpu else None
                row[field + "_cpu_spread"] = cpu
        summary[key] = rows
    # W6 is W1 with a rotating token: compare it with W1 of the same run.
    if "W6" in summary and "W1" in summary:
        w1 = summary["W1"]
        ref = w1.get(REFERENCE)
        for client, row in summary["W6"].items():
            if "na" in row:
                continue
            if ref and "na" not in ref and ref["rate"]:
                row["vs_aiohttp"] = row["rate"] / ref["rate"]
            pair = paired(runs["W6"][client], runs["W1"].get(client, []), "rate")
            if pair:
                row["vs_w1"] = pair["median"]
    return summary


def _fmt_ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _fmt_spread(spread: dict[str, float] | None) -> str:
    """``1.02 (0.97-1.08)``: the median of the paired ratios and their range."""
    if not spread:
        return ""
    if spread["min"] == spread["max"]:
        return f"{spread['median']:.2f}"
    return f"{spread['median']:.2f} ({spread['min']:.2f}-{spread['max']:.2f})"


def _runtime_cells(row: dict[str, Any]) -> list[str]:
    runtime = row.get("runtime") or {}
    return [str(runtime.get("decoder", "")), str(runtime.get("engine", ""))]


def format_table(summary: dict[str, dict[str, Any]]) -> str:
    """A plain-text table of every workload (markdown-compatible)."""
    lines: list[str] = []
    for key, rows in summary.items():
        workload = WORKLOADS[key]
        lines.append(f"\n### {key}: {workload.title}\n")
        if key == "W5":
            lines.append(
                "| client | decoder | engine | RSS MiB | idle CPU % | watches open at server "
                "| errors |"
            )
            lines.append("| --- | --- | --- | ---: | ---: | ---: | ---: |")
            for client, row in rows.items():
                if "na" in row:
                    lines.append(f"| {client} | | | n/a: {row['na']} | | | |")
                    continue
                lines.append(
                    f"| {client} | {' | '.join(_runtime_cells(row))} | {row['rss_mb']:.0f} | "
                    f"{row['idle_cpu_percent']:.1f} | {row.get('server_open', '')} | "
                    f"{row['errors']} |"
                )
            continue
        both = key in ("W2", "W3")
        if key == "W6":
            lines.append("(vs aiohttp: against raw aiohttp's W1; vs own W1 in the notes)\n")
        head = (
            f"| client | decoder | engine | runs | {workload.unit} (min-max) | vs aiohttp "
            "| CPU us/op | CPU vs aiohttp |"
        )
        rule = "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"
        if both:
            head += " vs msgspec | CPU vs msgspec |"
            rule += " ---: | ---: |"
        lines += [head + " errors |", rule + " ---: |"]
        for client, row in rows.items():
            if "na" in row:
                lines.append(f"| {client} | | | | n/a: {row['na']} |" + " |" * (6 if both else 4))
                continue
            flag = " (capped)" if row["capped"] else ""
            spread = row.get("rate_spread") or {}

            def amount(value: float) -> str:
                return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"

            rate = amount(row["rate"])
            if spread and spread["min"] != spread["max"]:
                rate += f" ({amount(spread['min'])}-{amount(spread['max'])})"
            cells = [
                client,
                *_runtime_cells(row),
                str(row["runs"]),
                rate + flag,
                _fmt_spread(row.get("vs_aiohttp_spread")) or _fmt_ratio(row.get("vs_aiohttp")),
                f"{row['cpu_per_1000'] * 1000:.0f}",
                _fmt_spread(row.get("vs_aiohttp_cpu_spread")),
            ]
            if both:
                cells += [
                    _fmt_spread(row.get("vs_msgspec_spread")),
                    _fmt_spread(row.get("vs_msgspec_cpu_spread")),
                ]
            cells.append(str(row["errors"]))
            lines.append("| " + " | ".join(cells) + " |")
        notes = [f"{c}: {r['note']}" for c, r in rows.items() if r.get("note")]
        notes += [f"{c}: first error: {r['error']}" for c, r in rows.items() if r.get("error")]
        if key == "W6":
            notes += [
                f"{c}: {_fmt_ratio(r.get('vs_w1'))} of its own W1 (runs paired with W1's); "
                f"requests per token, from nginx's log of the last run: {r.get('tokens_seen')}"
                for c, r in rows.items()
                if "na" not in r
            ]
        if notes:
            lines.append("")
            lines += [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def targets(
    summary: dict[str, dict[str, Any]],
    runs: dict[str, dict[str, list[dict[str, Any]]]] | None = None,
) -> list[tuple[str, str, bool | None]]:
    """The issue's targets, each with the measured value and whether it is met."""

    def row(key: str, client: str) -> dict[str, Any] | None:
        r = summary.get(key, {}).get(client)
        return None if r is None or "na" in r else r

    checks: list[tuple[str, str, bool | None]] = []

    def ratio_check(name: str, spread: dict[str, float] | None, floor: float) -> None:
        if spread is None:
            checks.append((name, "n/a", None))
        else:
            checks.append((name, _fmt_spread(spread), spread["median"] >= floor))

    for key in ("W1", "W4-unix", "W4-proxy"):
        if r := row(key, "asyncpod"):
            ratio_check(f"{key} asyncpod >= 1.0 x aiohttp", r.get("vs_aiohttp_spread"), 1.0)
    for key in ("W2", "W3"):
        if r := row(key, "asyncpod"):
            ratio_check(f"{key} asyncpod >= 1.0 x aiohttp+msgspec", r.get("vs_msgspec_spread"), 1.0)
    default = row("W1", "asyncpod")
    if default and str(default["runtime"].get("engine", "")).startswith("aiohttp"):
        # The aiohttp engine as the default must cost what raw aiohttp costs.
        for key in ("W1", "W4-unix", "W4-proxy"):
            if r := row(key, "asyncpod"):
                spread = r.get("vs_aiohttp_cpu_spread")
                checks.append(
                    (
                        f"{key} asyncpod CPU per request <= 1.1 x aiohttp",
                        _fmt_spread(spread),
                        None if spread is None else spread["median"] <= 1.1,
                    )
                )
    if runs is not None:
        for key in ("W1", "W2", "W3", "W4-unix", "W4-proxy"):
            mine = runs.get(key, {}).get("asyncpod-trio")
            theirs = runs.get(key, {}).get("asyncpod")
            if mine and theirs:
                ratio_check(
                    f"{key} asyncpod on trio >= 0.9 x asyncpod on asyncio",
                    paired(mine, theirs, "rate"),
                    0.9,
                )
    w6, w1 = row("W6", "asyncpod"), row("W1", "asyncpod")
    if w6 and w1:
        ratio = w6.get("vs_w1") or w6["rate"] / w1["rate"]
        checks.append(
            (
                "W6 >= 0.98 x W1 (asyncpod), 0 failures",
                f"{ratio:.2f}, {w6['errors']} failures",
                ratio >= 0.98 and w6["errors"] == 0,
            )
        )
    for client in ("asyncpod", "asyncpod-trio"):
        if w5 := row("W5", client):
            checks.append(
                (
                    f"W5 {client} <= 100 MiB RSS for 1,000 idle watches",
                    f"{w5['rss_mb']:.0f} MiB",
                    w5["rss_mb"] <= 100 and w5["errors"] == 0,
                )
            )
    return checks


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # run the cleanup: stop the client process and nginx


CORE = ("aiohttp", "aiohttp-msgspec")


def _repeat_of(client: str, args: argparse.Namespace, repeat: int) -> int:
    """Runs per workload: the references and asyncpod get ``repeat``, the peers fewer."""
    if client.startswith("asyncpod") or client in CORE:
        return repeat
    return min(repeat, max(1, args.peer_repeat))


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _terminate)
    args = _parse_args(argv)
    workloads = _selected(args.workloads, WORKLOADS, "workload")
    clients = _selected(args.clients, CLIENTS, "client")
    if args.before is None:
        clients = [c for c in clients if CLIENTS[c].env != "before"]
    repeat = args.repeat or (1 if args.quick else 5)
    if args.here:
        envs = _envs.here()
    else:
        need = {CLIENTS[c].env for c in clients}
        envs = _envs.prepare(args.envs or _envs.default_root(), need=need, before=args.before)
    cpus = sorted(os.sched_getaffinity(0))
    server_cpu, client_cpu = (
        (cpus[0], cpus[1]) if len(cpus) >= 2 and not args.no_pin else (None, None)
    )
    if server_cpu is not None:
        os.sched_setaffinity(0, {server_cpu})  # the harness itself stays off the client's CPU
    started = time.monotonic()
    load_before = os.getloadavg()
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    with running_server(server_cpu) as (server, nginx_pid):
        print(
            f"nginx on CPU {server_cpu}, clients on CPU {client_cpu}; "
            f"pod {server.sizes['pod.json']} B, list {server.sizes['list.json']} B, "
            f"watch {server.sizes['watch.ndjson']} B; load average {load_before[0]:.2f}",
            file=sys.stderr,
        )
        # W6 is judged against W1, so each W6 run follows the same client's
        # W1 run: on a shared machine, load drifts more between workloads
        # than between two neighbouring runs.
        paired_keys = {"W1": "W6"} if "W1" in workloads and "W6" in workloads else {}
        for key in workloads:
            if key in paired_keys.values():
                continue
            reps = 1 if WORKLOADS[key].kind == "idle" else repeat
            for rep in range(reps):
                for client in clients:
                    if rep >= _repeat_of(client, args, reps):
                        continue
                    for each in (key, paired_keys.get(key)):
                        if each is None:
                            continue
                        workload = WORKLOADS[each]
                        previous = runs.setdefault(each, {c: [] for c in clients})[client]
                        if previous and ("na" in previous[0] or "failed" in previous[0]):
                            continue
                        env = envs[CLIENTS[client].env]
                        t0 = time.monotonic()
                        if workload.rotating:
                            server.clear_rotate_log(nginx_pid)
                            with TokenRotator(server):
                                result = run_one(client, workload, server, args, client_cpu, env)
                            result["tokens_seen"] = server.rotate_log_counts(nginx_pid)
                        else:
                            result = run_one(client, workload, server, args, client_cpu, env)
                        previous.append(result)
                        print(
                            f"[{time.monotonic() - started:6.0f}s] {each} {client} #{rep + 1}: "
                            f"{_one_line(result)} ({time.monotonic() - t0:.1f}s)",
                            file=sys.stderr,
                        )
    load_after = os.getloadavg()
    summary = summarize(runs)
    table = format_table(summary)
    print(table)
    checks = targets(summary, runs)
    for name, value, ok in checks:
        mark = "n/a" if ok is None else ("ok" if ok else "MISSED")
        print(f"  [{mark:6}] {name}: {value}")
    elapsed = time.monotonic() - started
    print(
        f"\nwhole run: {elapsed:.0f} s; load average {load_before[0]:.2f} before, "
        f"{load_after[0]:.2f} after",
        file=sys.stderr,
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "quick": args.quick,
        "repeat": repeat,
        "peer_repeat": args.peer_repeat,
        "installed": not args.here,
        "before": args.before,
        "load_average": [load_before[0], load_after[0]],
        "elapsed_seconds": elapsed,
        "sizes": server.sizes,
        "runs": runs,
        "summary": summary,
        "targets": checks,
    }
    args.json.write_text(json.dumps(record, indent=1))
    if args.docs:
        from benchmarks._report import write_docs

        write_docs(record, table, checks)
    return 0


def _one_line(result: dict[str, Any]) -> str:
    if "na" in result:
        return f"n/a ({result['na']})"
    if "failed" in result:
        return f"FAILED {result['failed']}"
    runtime = result.get("runtime") or {}
    stack = f" [{runtime.get('decoder', '?')}, {runtime.get('engine', '?')}]"
    if "idle_cpu_percent" in result:
        return (
            f"RSS {result['rss_mb']:.0f} MiB, idle CPU {result['idle_cpu_percent']:.1f} %, "
            f"{result.get('server_open')} open, {result['errors']} errors{stack}"
        )
    errors = f", {result['errors']} errors ({result['error']})" if result.get("errors") else ""
    return (
        f"{result['ops']} in {result['seconds']:.2f}s = {result['rate']:,.0f}/s, "
        f"CPU {result['cpu']:.2f}s{errors}{stack}"
    )
