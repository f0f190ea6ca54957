"""An operator on asyncpod's controller runtime: leader election, a controller, a finalizer.

Every ConfigMap labelled ``mirror=on`` gets a copy, ``<name>-mirror``, owned by
it (so the copy triggers the source when someone edits it, and the garbage
collector removes it with its source). Before a source goes, a finalizer
records the deletion in the ConfigMap ``mirror-log``. Several replicas may
run: one leads on the Lease ``mirror-operator`` and the others wait.

    python examples/mirror_operator.py    # the config chain, else a sandbox

With no configuration (no proxy, no pod, no kubeconfig), it starts the
embedded sandbox, runs the operator there, creates and deletes sources and
exits.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any

import anyio

import asyncpod

SELECTOR = "mirror=on"
FINALIZER = "example.com/mirror-log"
MANAGER = "mirror-operator"


class MirrorOperator:
    """The reconcile of one source ConfigMap, and the finalizer around it."""

    def __init__(self, k8s: asyncpod.Client) -> None:
        self.k8s = k8s
        self.finalizer = asyncpod.Finalizer(k8s, "configmaps", FINALIZER)
        self.cleaned: list[str] = []
        self.deletion_logged = anyio.Event()

    async def reconcile(self, source: dict[str, Any]) -> asyncpod.Requeue | None:
        """Keep the mirror equal to its source; record a deletion before it happens."""
        return await self.finalizer(source, apply=self.apply, cleanup=self.cleanup)

    async def apply(self, source: dict[str, Any]) -> None:
        meta = source["metadata"]
        mirror = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": f"{meta['name']}-mirror",
                "namespace": meta["namespace"],
                "ownerReferences": [
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "controller": True,
                    }
                ],
            },
            "data": source.get("data") or {},
        }
        # Server-side apply: idempotent, so a reconcile that runs twice changes nothing.
        await self.k8s.apply(mirror, field_manager=MANAGER, force=True)
        print(f"mirrored {meta['namespace']}/{meta['name']}")

    async def cleanup(self, source: dict[str, Any]) -> None:
        meta = source["metadata"]
        entry = {"data": {meta["name"]: f"deleted at resourceVersion {meta['resourceVersion']}"}}
        try:
            await self.k8s.patch("configmaps", "mirror-log", entry, namespace=meta["namespace"])
        except asyncpod.NotFoundError:
            log = {"metadata": {"name": "mirror-log"}, **entry}
            await self.k8s.create("configmaps", log, namespace=meta["namespace"])
        self.cleaned.append(meta["name"])
        self.deletion_logged.set()
        print(f"logged the deletion of {meta['namespace']}/{meta['name']}")


def controller(k8s: asyncpod.Client, operator: MirrorOperator) -> asyncpod.Controller:
    """The controller: sources by label, their mirrors as owned objects."""
    return asyncpod.Controller(
        k8s,
        "configmaps",
        operator.reconcile,
        name="mirror",
        namespace=asyncpod.ALL,
        label_selector=SELECTOR,
        owns=["configmaps"],
        max_concurrent_reconciles=4,
    )


async def forever() -> None:
    async with asyncpod.Client() as k8s, k8s.leader_election(MANAGER):
        await controller(k8s, MirrorOperator(k8s)).run()


async def demo(config: asyncpod.Config) -> None:
    """Run the operator, create three sources, delete one, and check the outcome."""
    async with asyncpod.Client(config) as k8s, anyio.create_task_group() as tg:
        operator = MirrorOperator(k8s)
        running = controller(k8s, operator)

        async def lead() -> None:
            async with k8s.leader_election(
                MANAGER, lease_duration=3, renew_deadline=2, retry_period=0.5
            ):
                print("leading")
                await running.run()

        tg.start_soon(lead)
        await running.wait_synced()
        for name in ("ada", "grace", "linus"):
            source = {"metadata": {"name": name, "labels": {"mirror": "on"}}, "data": {"x": name}}
            await k8s.create("configmaps", source)
        with anyio.fail_after(30):
            for name in ("ada", "grace", "linus"):
                while True:
                    with contextlib.suppress(asyncpod.NotFoundError):
                        await k8s.get("configmaps", f"{name}-mirror")
                        break
                    await anyio.sleep(0.05)
        await k8s.delete("configmaps", "grace")
        with anyio.fail_after(30):
            await operator.deletion_logged.wait()
        log = await k8s.get("configmaps", "mirror-log")
        print(f"mirror-log: {sorted(log['data'])}")
        await running.shutdown()


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
