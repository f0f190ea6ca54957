"""``asyncpod config``: which link of the chain applies, and why the others did not."""

from __future__ import annotations

import argparse

from asyncpod._chain import load_config
from asyncpod._commands._output import runtime_line, write
from asyncpod._errors import ConfigError
from asyncpod._urls import redact

LINKS = ("unix", "proxy", "in-cluster", "kubeconfig")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser  # no options


def link_verdict(name: str) -> str:
    """What one link of the chain says about this environment, in one line."""
    try:
        config = load_config(chain=(name,))
    except ConfigError as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        prefix = f"{name}:"
        reasons = [line.removeprefix(prefix).strip() for line in lines[1:]] or lines
        return "; ".join(reasons)
    if config.source != name and not (name == "kubeconfig" and config.source == "explicit"):
        return f"applies ({config.source})"
    return "applies"


def run(args: argparse.Namespace) -> int:
    del args
    # A ConfigError (no link applied) propagates: the command line prints its
    # link-by-link reasons and exits 1.
    config = load_config()
    write(f"link:      {config.source}")
    # A URL may carry user:password@: shown as ***.
    server = redact(config.server) if config.server else f"unix:{config.socket_path}"
    write(f"server:    {server}")
    write(f"namespace: {config.namespace}")
    write(f"runtime:   {runtime_line()}")
    write("chain:")
    chosen = False
    for name in LINKS:
        verdict = link_verdict(name)
        if name == config.source and not chosen:
            verdict = "applies: used"
            chosen = True
        elif chosen and verdict.startswith("applies"):
            verdict = f"would apply too, but {config.source} comes first"
        write(f"  {name + ':':<12} {verdict}")
    return 0
