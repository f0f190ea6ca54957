"""``asyncpod config``: which link of the chain applies, and why the others did not."""

from __future__ import annotations

import argparse

from asyncpod._chain import load_config
from asyncpod._commands._output import write


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser  # no options


def run(args: argparse.Namespace) -> int:
    del args
    # A ConfigError (no link applied) propagates: the command line prints its
    # link-by-link reasons and exits 1.
    config = load_config()
    write(f"link:      {config.source}")
    write(f"server:    {config.server or f'unix:{config.socket_path}'}")
    write(f"namespace: {config.namespace}")
    return 0
