"""``asyncpod exec POD -- COMMAND...``: run a command in a container, as ``kubectl exec``.

The command's stdout and stderr are copied byte for byte; the exit status is
the command's own (kubectl's rule), 1 when it could not be run at all.
"""

from __future__ import annotations

import argparse
import os
import sys

import anyio
import anyio.abc

from asyncpod._client import Client
from asyncpod._commands._output import run_async
from asyncpod._remote import CommandError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pod", help="the pod (NAME or pod/NAME)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    parser.add_argument("-n", "--namespace", help="the namespace (default: the config's)")
    parser.add_argument("-c", "--container", help="the container (default: the only one)")
    parser.add_argument(
        "-i", "--stdin", action="store_true", help="pass stdin to the command, then close it"
    )
    parser.add_argument(
        "-t", "--tty", action="store_true", help="allocate a terminal (stderr joins stdout)"
    )


def pod_name(spec: str) -> str:
    """``pod/web`` and ``pods/web`` name the pod ``web``, as kubectl accepts them."""
    for prefix in ("pod/", "pods/", "po/"):
        if spec.startswith(prefix):
            return spec[len(prefix) :]
    return spec


def run(args: argparse.Namespace) -> int:
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        print(
            "asyncpod: error: you must specify at least one command for the container",
            file=sys.stderr,
        )
        return 1
    return run_async(lambda: _exec(args, command))


async def _copy_out(stream: anyio.abc.ByteReceiveStream | None, fileno: int) -> None:
    if stream is None:
        return
    out = sys.stdout.buffer if fileno == 1 else sys.stderr.buffer
    while True:
        try:
            data = await stream.receive()
        except anyio.EndOfStream:
            return
        out.write(data)
        out.flush()


async def _copy_in(proc_stdin: anyio.abc.ByteSendStream) -> None:
    fileno = sys.stdin.fileno()
    while data := await anyio.to_thread.run_sync(os.read, fileno, 65536, abandon_on_cancel=True):
        await proc_stdin.send(data)


async def _exec(args: argparse.Namespace, command: list[str]) -> int:
    async with (
        Client() as k8s,
        k8s.stream_exec(
            pod_name(args.pod),
            command,
            namespace=args.namespace,
            container=args.container,
            stdin=args.stdin,
            tty=args.tty,
        ) as proc,
    ):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(_copy_out, proc.stdout, 1)
            tasks.start_soon(_copy_out, proc.stderr, 2)
            if proc.stdin is not None:
                await _copy_in(proc.stdin)
                await proc.close_stdin()
        try:
            code = await proc.wait()
        except CommandError as exc:
            print(f"asyncpod: error: {exc}", file=sys.stderr)
            return 1
    if code != 0:
        print(f"command terminated with exit code {code}", file=sys.stderr)
    return code
