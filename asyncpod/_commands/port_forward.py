"""``asyncpod port-forward POD [LOCAL:]REMOTE...``: local ports to a pod's, as kubectl's.

``8080`` forwards local 8080 to the pod's 8080, ``8080:80`` local 8080 to 80,
``:80`` a port the system picks to 80. Each accepted connection gets its own
WebSocket; a failed one is reported and the others go on. Runs until
interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import sys

import anyio

from asyncpod._client import Client
from asyncpod._commands._output import run_async
from asyncpod._commands.exec import pod_name
from asyncpod._errors import AsyncpodError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pod", help="the pod (NAME or pod/NAME)")
    parser.add_argument("ports", nargs="+", metavar="[LOCAL:]REMOTE", help="ports to forward")
    parser.add_argument("-n", "--namespace", help="the namespace (default: the config's)")
    parser.add_argument(
        "--address", default="127.0.0.1", help="the local address to listen on (127.0.0.1)"
    )


def parse_ports(spec: str) -> tuple[int, int]:
    """``(local, remote)`` of one ``[LOCAL:]REMOTE`` spec; local 0 lets the system pick.

    Raises:
        AsyncpodError: the spec is not one or two port numbers.
    """
    local_text, _, remote_text = spec.rpartition(":")
    if ":" not in spec:
        local_text = remote_text
    try:
        remote = int(remote_text)
        local = int(local_text) if local_text else 0
    except ValueError:
        remote = local = -1
    if not 1 <= remote <= 65535 or not 0 <= local <= 65535:
        msg = f"invalid port spec {spec!r}: expected [LOCAL:]REMOTE with port numbers"
        raise AsyncpodError(msg)
    return local, remote


def run(args: argparse.Namespace) -> int:
    specs = [parse_ports(spec) for spec in args.ports]
    return run_async(lambda: _forward(args, specs))


async def _forward(args: argparse.Namespace, specs: list[tuple[int, int]]) -> int:
    name = pod_name(args.pod)
    async with Client() as k8s, contextlib.AsyncExitStack() as stack:
        for local, remote in specs:
            listener = await stack.enter_async_context(
                k8s.forward_port(
                    name, remote, local_port=local, namespace=args.namespace, host=args.address
                )
            )
            print(f"Forwarding from {listener.host}:{listener.port} -> {remote}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            await anyio.sleep_forever()
    print("", file=sys.stderr)
    return 0
