"""Sharding a controller's keys between replicas on Leases: fair shares, rebalancing, no overlap."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import asyncpod
from asyncpod import Controller, ShardSet
from asyncpod._sharding import fair_share, shard_of
from asyncpod.testing import Sandbox

SHARDS = 6
KEYS = 60


def test_shard_of_is_stable_and_spread() -> None:
    """The same key maps to the same shard in every process; keys spread over all shards."""
    assert shard_of("default/cm-0", 6) == shard_of("default/cm-0", 6)
    assert shard_of("default/cm-0", 6) == 2  # CRC-32, not Python's salted hash
    assert {shard_of(f"default/cm-{i}", 6) for i in range(KEYS)} == set(range(6))


@pytest.mark.parametrize(
    ("shards", "members", "share"), [(6, 1, 6), (6, 2, 3), (6, 3, 2), (6, 4, 2), (6, 7, 1)]
)
def test_fair_share(shards: int, members: int, share: int) -> None:
    """Each replica aims at ceil(shards / live replicas)."""
    assert fair_share(shards, members) == share


class Replica:
    """One replica: its own client, shard set and controller, recording what it reconciles."""

    def __init__(self, name: str, sandbox: Sandbox, book: dict[str, Any]) -> None:
        self.name = name
        self.sandbox = sandbox
        self.book = book
        self.reconciled: list[str] = []
        self.controller: Controller | None = None

    async def run(self, *, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        config = asyncpod.Config.proxy(self.sandbox.proxy_url)
        async with asyncpod.Client(config) as k8s:
            shards = ShardSet(
                k8s,
                "sharded",
                shards=SHARDS,
                namespace="default",
                identity=self.name,
                lease_duration=3.0,
                renew_deadline=2.0,
                retry_period=0.2,
            )
            self.controller = Controller(
                k8s,
                "configmaps",
                self.reconcile,
                label_selector="test=sharding",
                max_concurrent_reconciles=4,
                shards=shards,
            )
            task_status.started()
            await self.controller.run()

    async def reconcile(self, obj: dict[str, Any]) -> None:
        key = f"default/{obj['metadata']['name']}"
        active = self.book["active"]
        if key in active:
            self.book["overlaps"].append((key, active[key], self.name))
        active[key] = self.name
        try:
            await anyio.sleep(0.005)
        finally:
            del active[key]
        self.reconciled.append(key)
        self.book["last"][key] = (self.name, obj["metadata"]["resourceVersion"])

    @property
    def held(self) -> set[int]:
        assert self.controller is not None
        assert self.controller.shards is not None
        return set(self.controller.shards.held)


async def _until(condition: Any, what: str, within: float = 30.0) -> None:
    with anyio.fail_after(within):
        while True:  # the state polled is in other tasks and the sandbox's thread
            if condition():
                return
            await anyio.sleep(0.05)


async def _touch_all(sandbox: Sandbox, round_: int) -> None:
    for i in range(KEYS):
        sandbox.patch(
            "configmaps", f"cm-{i}", {"data": {"round": str(round_)}}, namespace="default"
        )


def _all_reconciled_at_latest(sandbox: Sandbox, book: dict[str, Any]) -> bool:
    for i in range(KEYS):
        stored = sandbox.get("configmaps", f"cm-{i}", namespace="default")
        seen = book["last"].get(f"default/cm-{i}")
        if seen is None or seen[1] != stored["metadata"]["resourceVersion"]:
            return False
    return True


@pytest.mark.slow
@pytest.mark.anyio
async def test_shards_rebalance_when_replicas_join_and_leave(
    sandbox: Sandbox, anyio_backend: str
) -> None:
    """Two replicas hold 3 shards each, three 2, two again 3; no key by two replicas at once."""
    for i in range(KEYS):
        sandbox.create(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": f"cm-{i}", "labels": {"test": "sharding"}},
                "data": {"round": "0"},
            },
            namespace="default",
        )
    book: dict[str, Any] = {"active": {}, "overlaps": [], "last": {}}
    a, b, c = (Replica(name, sandbox, book) for name in ("a", "b", "c"))

    def disjoint_cover(*replicas: Replica, share: int) -> bool:
        helds = [r.held for r in replicas]
        union = set().union(*helds)
        return union == set(range(SHARDS)) and all(len(h) == share for h in helds)

    async with anyio.create_task_group() as tg:
        await tg.start(a.run)
        await tg.start(b.run)
        await _until(lambda: disjoint_cover(a, b, share=3), "a and b hold 3 each")
        await _until(lambda: _all_reconciled_at_latest(sandbox, book), "all reconciled")

        async with anyio.create_task_group() as c_group:
            await c_group.start(c.run)
            await _until(lambda: disjoint_cover(a, b, c, share=2), "2 each after c joined")
            await _touch_all(sandbox, 1)
            await _until(lambda: _all_reconciled_at_latest(sandbox, book), "round 1")
            # Each key of round 1 was reconciled by the holder of its shard.
            for key, (replica, _) in book["last"].items():
                holder = {"a": a, "b": b, "c": c}[replica]
                assert shard_of(key, SHARDS) in holder.held

            assert b.controller is not None
            await b.controller.shutdown()  # b leaves, giving its shards back
            await _until(lambda: disjoint_cover(a, c, share=3), "3 each after b left")
            await _touch_all(sandbox, 2)
            await _until(lambda: _all_reconciled_at_latest(sandbox, book), "round 2")
            assert {replica for replica, _ in book["last"].values()} == {"a", "c"}
            assert c.controller is not None
            await c.controller.shutdown()
        assert a.controller is not None
        await a.controller.shutdown()
    assert book["overlaps"] == []
    # Everyone gave everything back.
    leases = sandbox.objects("leases", namespace="default")
    holders = {lease["metadata"]["name"]: lease["spec"].get("holderIdentity") for lease in leases}
    assert all(holder == "" for name, holder in holders.items() if "sharded" in name)
