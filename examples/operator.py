"""An operator in 60 lines: an informer on ConfigMaps, and a patch per change.

Every ConfigMap labelled ``greeter=on`` gets ``data.greeting`` set from its
``data.name``; the operator writes only when the greeting is missing or stale,
so its own patches (which come back as MODIFIED events) settle at once.

    python examples/operator.py            # the config chain, else a sandbox

With no configuration (no proxy, no pod, no kubeconfig), it starts the
embedded sandbox, creates three ConfigMaps, reconciles them and exits.
"""

from __future__ import annotations

import sys

# This file is named like the standard library's "operator" module; when run
# as a script its folder comes first on sys.path and would shadow it.
if sys.path and sys.path[0] and __file__.startswith(sys.path[0]):
    del sys.path[0]

import contextlib
from typing import Any

import anyio

import asyncpod

SELECTOR = "greeter=on"
MANAGER = "greeter-operator"


def wanted(cm: dict[str, Any]) -> str:
    """The greeting a ConfigMap should carry."""
    return f"Hello, {(cm.get('data') or {}).get('name', 'world')}!"


async def reconcile(k8s: asyncpod.Client, cm: dict[str, Any]) -> bool:
    """Patch the greeting when it is missing or stale; True when something changed."""
    greeting = wanted(cm)
    if (cm.get("data") or {}).get("greeting") == greeting:
        return False
    meta = cm["metadata"]
    await k8s.patch(
        "configmaps",
        meta["name"],
        {"data": {"greeting": greeting}},
        namespace=meta["namespace"],
        field_manager=MANAGER,
    )
    print(f"greeted {meta['namespace']}/{meta['name']}: {greeting}")
    return True


async def operate(k8s: asyncpod.Client, stop_after: int | None = None) -> None:
    """Run the control loop; with ``stop_after``, return once that many are greeted."""
    greeted: set[str] = set()
    async with k8s.informer("configmaps", namespace=asyncpod.ALL, label_selector=SELECTOR) as inf:
        async for change in inf:
            if change.type == "SYNCED":
                print(f"synced: {len(inf.cache)} ConfigMaps to watch")
            elif change.type in ("ADDED", "MODIFIED"):
                await reconcile(k8s, change.object)
                if change.object.get("data", {}).get("greeting") == wanted(change.object):
                    greeted.add(change.key)
            if stop_after is not None and len(greeted) >= stop_after:
                return


async def demo(config: asyncpod.Config) -> None:
    """Create three ConfigMaps while the operator runs, and wait for it to greet them."""
    async with asyncpod.Client(config) as k8s, anyio.create_task_group() as tg:
        tg.start_soon(operate, k8s, 3)
        for name in ("ada", "grace", "linus"):
            await anyio.sleep(0.2)
            await k8s.create(
                "configmaps",
                {
                    "metadata": {"name": f"hello-{name}", "labels": {"greeter": "on"}},
                    "data": {"name": name.title()},
                },
            )


async def forever() -> None:
    async with asyncpod.Client() as k8s:
        await operate(k8s)


def main() -> int:
    try:
        asyncpod.load_config()
    except asyncpod.ConfigError:
        configured = False
    else:
        configured = True
    if configured:
        with contextlib.suppress(KeyboardInterrupt):
            anyio.run(forever)
        return 0
    from asyncpod.testing import Sandbox

    print("no configuration applies: starting the embedded sandbox")
    with Sandbox() as sandbox:
        anyio.run(demo, asyncpod.Config.proxy(sandbox.proxy_url))
    return 0


if __name__ == "__main__":
    sys.exit(main())
