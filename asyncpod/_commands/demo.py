"""``asyncpod demo``: the sandbox, a pod's folder, three transports, a watch and a rotation."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from asyncpod._client import Client
from asyncpod._commands.sandbox import sandbox_class
from asyncpod._config import Config
from asyncpod._errors import AsyncpodError
from asyncpod._events import Event, TokenReloadEvent

if TYPE_CHECKING:
    from asyncpod.testing import PodEnvironment, Sandbox

CONFIGMAPS = "/api/v1/namespaces/demo/configmaps"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workers", type=int, default=50, help="concurrent requests during the rotation"
    )
    parser.add_argument(
        "--rotations", type=int, default=3, help="token rotations under load (one a second)"
    )
    parser.add_argument(
        "--grace",
        type=float,
        default=0.5,
        help="seconds an old token keeps working after a rotation",
    )


def _say(text: str = "") -> None:
    print(text, flush=True)


def _step(number: int, title: str) -> None:
    _say()
    _say(f"{number}. {title}")
    _say("-" * (len(title) + 3))


def _tree(root: Path) -> None:
    for entry in sorted(os.listdir(root)):
        path = root / entry
        if path.is_symlink():
            _say(f"   {entry} -> {os.readlink(path)}")
        else:
            _say(f"   {entry}/  ({', '.join(sorted(os.listdir(path)))})")


def pod_config(pod: PodEnvironment) -> Config:
    """What a process in the pod gets: the in-cluster config, from the folder and variables."""
    return Config.in_cluster(root=pod.root, environ=pod.environ)


async def _transports(sb: Sandbox, pod: PodEnvironment) -> None:
    _step(3, "The three ways in, each with asyncpod.Client")
    routes = [
        ("direct HTTPS, Config.in_cluster(): bearer token from the folder", pod_config(pod)),
        ("kubectl-proxy style, plain HTTP on localhost", Config.proxy(sb.proxy_url)),
        ("kubectl-proxy style, Unix socket", Config.unix_socket(sb.unix_socket)),
    ]
    for label, config in routes:
        async with Client(config) as k8s:
            began = time.perf_counter()
            body = await k8s.get_json(CONFIGMAPS)
            took = (time.perf_counter() - began) * 1000
        where = config.server or config.socket_path
        _say(f"   {label}")
        _say(f"     {where}: {len(body['items'])} ConfigMap(s) in 'demo' ({took:.1f} ms)")


async def _write_list_watch(pod: PodEnvironment) -> None:
    _step(4, "A write, a list and a watch")
    async with Client(pod_config(pod)) as k8s:
        first = await k8s.get_json(CONFIGMAPS)
        rv = first["metadata"]["resourceVersion"]
        _say(f"   list: {len(first['items'])} item(s) at resourceVersion {rv}")
        events: list[str] = []

        async def watch() -> None:
            # Resumes by itself after a dropped connection or a server timeout.
            async with k8s.watch("configmaps", resource_version=rv) as stream:
                async for event in stream:
                    name = event.object["metadata"].get("name", "")
                    events.append(event.type)
                    _say(f"   watch: {event.type:<8} {name or '-':<10} rv={event.resource_version}")
                    if event.type == "DELETED":
                        return

        async with anyio.create_task_group() as tg:
            tg.start_soon(watch)
            await anyio.sleep(0.1)
            body: dict[str, Any] = {"metadata": {"name": "greeting"}, "data": {"text": "hi"}}
            await k8s.create("configmaps", body)
            _say("   write: created ConfigMap 'greeting'")
            await k8s.patch("configmaps", "greeting", {"data": {"text": "hello again"}})
            _say("   write: patched it")
            await k8s.delete("configmaps", "greeting")
            _say("   write: deleted it")
        _say(f"   the watch saw {', '.join(events)}, in order")


async def _rotation(pod: PodEnvironment, workers: int, rotations: int, grace: float) -> int:
    _step(5, f"Token rotation under load: {workers} workers, {rotations} rotations")
    _say(f"   the sandbox refuses an old token {grace:g} s after each rotation, so a client")
    _say("   that read the token once would start failing; one that re-reads it does not.")
    ok = 0
    failures: dict[str, int] = {}
    reloads: list[str] = []

    def on_event(event: Event) -> None:
        if isinstance(event, TokenReloadEvent) and event.changed:
            reloads.append(event.reason)

    stop = anyio.Event()
    async with Client(pod_config(pod), max_connections=workers, on_event=on_event) as k8s:

        async def worker() -> None:
            nonlocal ok
            while not stop.is_set():
                try:
                    await k8s.get_json(CONFIGMAPS)
                    ok += 1
                except AsyncpodError as exc:
                    key = type(exc).__name__
                    failures[key] = failures.get(key, 0) + 1

        began = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for _ in range(workers):
                tg.start_soon(worker)
            for number in range(1, rotations + 1):
                await anyio.sleep(1.0)
                await anyio.to_thread.run_sync(pod.rotate_token, grace)
                _say(f"   rotation {number}: new token in {os.readlink(pod.root / '..data')}")
            await anyio.sleep(grace + 1.0)
            stop.set()
        took = time.perf_counter() - began
    total = ok + sum(failures.values())
    _say(f"   {total} requests in {took:.1f} s ({total / took:.0f}/s): {ok} ok")
    how = {
        "changed": "at the once-a-second check of the file",
        "401": "after the server refused the old one (the request was sent again)",
    }
    for reason in sorted(set(reloads)):
        count = reloads.count(reason)
        _say(f"   new token read {count}x {how.get(reason, f'({reason})')}")
    if failures:
        detail = ", ".join(f"{count} {name}" for name, count in failures.items())
        _say(f"   FAILED: {detail} -- this client kept using a token it read once")
        return 1
    _say("   zero failures: the client picked up every new token")
    return 0


async def _main(args: argparse.Namespace) -> int:
    Sandbox = sandbox_class()

    _step(1, "Start the sandbox: an in-memory Kubernetes API server in a background thread")
    began = time.perf_counter()
    with Sandbox() as sb:
        _say(f"   started in {(time.perf_counter() - began) * 1000:.0f} ms")
        _say(f"   HTTPS (its own CA):   {sb.server_url}   CA: {sb.ca_file}")
        _say(f"   proxy (no auth):      {sb.proxy_url}")
        _say(f"   Unix socket:          {sb.unix_socket}")
        _say(f"   kubectl can use it:   kubectl --kubeconfig {sb.kubeconfig} get ns")

        _step(2, "Lay out a pod's service-account folder, as the kubelet does")
        pod = await anyio.to_thread.run_sync(
            lambda: sb.pod_environment(namespace="demo", service_account="demo-app")
        )
        _say(f"   {pod.root}")
        _tree(pod.root)
        for name, value in pod.environ.items():
            _say(f"   {name}={value}")
        _say("   the token is a signed JWT for system:serviceaccount:demo:demo-app")

        await _transports(sb, pod)
        await _write_list_watch(pod)
        code = await _rotation(pod, args.workers, args.rotations, args.grace)
        _say()
        _say(f"The sandbox saw {len(sb.requests)} requests. It stops now.")
    return code


def run(args: argparse.Namespace) -> int:
    """Run the demo; 0 when every step worked."""
    return int(anyio.run(_main, args))
