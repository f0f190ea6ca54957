"""Writing ``docs/benchmarks.md`` (the results section) and ``docs/benchmarks.png``."""

from __future__ import annotations

import datetime
import platform
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent.parent / "docs"
START, END = "<!-- results:start -->", "<!-- results:end -->"
PLOTTED = ("W1", "W2", "W3", "W4-unix", "W4-proxy", "W6")


def plot(summary: dict[str, dict[str, Any]], path: Path) -> bool:
    """Throughput relative to raw aiohttp, one panel per workload; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    keys = [k for k in PLOTTED if k in summary]
    if not keys:
        return False
    clients: list[str] = []
    for rows in summary.values():
        clients += [c for c in rows if c not in clients]
    panels = len(keys) + ("W5" in summary)
    fig, axes = plt.subplots(1, panels, figsize=(3.2 * panels, 4.4), sharey=True)
    axes = list(axes) if panels > 1 else [axes]
    if "W5" in summary:
        ax = axes[-1]
        rows = summary["W5"]
        rss = [(rows.get(c) or {}).get("rss_mb", 0.0) or 0.0 for c in clients]
        ax.barh(range(len(clients)), rss, color="tab:purple")
        ax.axvline(100, color="red", linewidth=0.8)
        ax.set_title("W5 memory")
        ax.set_xlabel("RSS MiB, 1,000 idle watches")
        for i, client in enumerate(clients):
            row = rows.get(client) or {"na": 1}
            label = "n/a" if "na" in row else f"{row['rss_mb']:.0f}"
            ax.text(max(rss[i], 0) + 5, i, label, va="center", fontsize=7)
    for ax, key in zip(axes, keys, strict=False):
        rows = summary[key]
        values = [
            (rows.get(c) or {}).get("vs_aiohttp") or 0.0
            if "na" not in (rows.get(c) or {"na": 1})
            else 0.0
            for c in clients
        ]
        colors = [
            "tab:blue"
            if c.startswith("asyncpod")
            else "tab:gray"
            if "aiohttp" in c
            else "tab:orange"
            for c in clients
        ]
        ax.barh(range(len(clients)), values, color=colors)
        ax.axvline(1.0, color="black", linewidth=0.8)
        ax.set_title(key)
        ax.set_xlabel("throughput / raw aiohttp")
        for i, (client, value) in enumerate(zip(clients, values, strict=True)):
            row = rows.get(client) or {}
            label = "n/a" if "na" in row else f"{value:.2f}"
            ax.text(max(value, 0) + 0.02, i, label, va="center", fontsize=7)
    axes[0].set_yticks(range(len(clients)))
    axes[0].set_yticklabels(clients)
    axes[0].invert_yaxis()
    fig.suptitle("asyncpod and peers against raw aiohttp (median of runs; higher is better)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def results_section(record: dict[str, Any], table: str, checks: list[Any]) -> str:
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    sizes = record["sizes"]
    installed = record.get("installed", False)
    load = record.get("load_average") or []
    lines = [
        START,
        f"Run of {stamp}: Python {platform.python_version()}, "
        f"{'quick, ' if record['quick'] else ''}median of {record['repeat']} runs "
        f"({record.get('peer_repeat', record['repeat'])} for the peer clients), "
        f"whole run {record['elapsed_seconds']:.0f} s"
        + (
            f", load average {load[0]:.2f} at the start and {load[1]:.2f} at the end"
            if len(load) == 2
            else ""
        )
        + ". "
        + (
            "asyncpod from a plain `pip install` in its own venv (no extras; trio added for "
            "the trio rows), the peers and msgspec in another. "
            if installed
            else "Every client in the developer's environment (`--here`). "
        )
        + f"Pod {sizes['pod.json']:,} B, "
        f"PodList {sizes['list.json']:,} B, watch stream {sizes['watch.ndjson']:,} B. "
        "Ratios are medians of the ratios of runs of the same round, with their range.",
        "",
        "![throughput relative to raw aiohttp](benchmarks.png)",
        "",
        "Targets:",
        "",
    ]
    for name, value, ok in checks:
        mark = "n/a" if ok is None else ("met" if ok else "**missed**")
        lines.append(f"- {name}: {value} ({mark})")
    lines += ["", table.strip(), "", END]
    return "\n".join(lines)


TEMPLATE = f"""# Benchmarks

Run with `python -m benchmarks` (or `nox -s bench`); `--quick` for a short run.

{START}
{END}
"""


def write_docs(record: dict[str, Any], table: str, checks: list[Any]) -> Path:
    """Replace the results section of docs/benchmarks.md and redraw the plot."""
    DOCS.mkdir(exist_ok=True)
    plot(record["summary"], DOCS / "benchmarks.png")
    page = DOCS / "benchmarks.md"
    text = page.read_text() if page.exists() else TEMPLATE
    if START not in text or END not in text:
        text = text.rstrip() + "\n\n" + START + "\n" + END + "\n"
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    page.write_text(head + results_section(record, table, checks) + tail)
    return page
