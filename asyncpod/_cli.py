"""The ``asyncpod`` command line: one module per command in ``asyncpod._commands``."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from asyncpod import __version__
from asyncpod._commands._output import runtime_line
from asyncpod._errors import AsyncpodError, ConfigError

# Each name is a module in asyncpod._commands that defines
# ``add_arguments(parser)`` and ``run(args) -> int``.
COMMANDS = {
    "demo": "run the embedded sandbox and walk the three transports, a watch and a rotation",
    "get": "GET a raw API path, or objects of a resource as kubectl shows them",
    "watch": "print one line per event of a resource until interrupted",
    "apply": "server-side apply of a YAML or JSON file",
    "config": "which config link applies, and why the others did not",
    "sandbox": "serve the embedded sandbox API server to kubectl and other clients until Ctrl-C",
    "bench": "concurrent GETs: requests per second and latency percentiles",
    "exec": "run a command in a pod's container, as kubectl exec",
    "port-forward": "forward local ports to a pod's ports, as kubectl port-forward",
}


def version_text() -> str:
    """What ``asyncpod --version`` prints."""
    return f"asyncpod {__version__} ({runtime_line()})"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="asyncpod",
        description="Talk to the Kubernetes API from inside a Pod.",
        # Keeps the --version line whole.
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=version_text())
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        try:
            module = importlib.import_module(f"asyncpod._commands.{name.replace('-', '_')}")
        except ModuleNotFoundError as exc:
            if exc.name != f"asyncpod._commands.{name.replace('-', '_')}":
                raise
            continue
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(sub)
        sub.set_defaults(_run=module.run)
    return parser


def _print_error(exc: BaseException) -> None:
    lines = str(exc).splitlines() or [type(exc).__name__]
    print(f"asyncpod: error: {lines[0]}", file=sys.stderr)
    for line in lines[1:]:
        print(line, file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; errors print one line (plus a ConfigError's reasons) and exit 1."""
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args))
    except KeyboardInterrupt:
        return 130
    except ConfigError as exc:
        _print_error(exc)
        return 1
    except AsyncpodError as exc:
        _print_error(exc)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
