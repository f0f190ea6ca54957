"""``ShardSet``: split the keys of one controller between replicas, on Leases.

Keys are hashed to ``shards`` shards (CRC-32, the same in every process). Each
shard is a Lease ``<name>-shard-<i>``, held with leader election's rules, and
a replica reconciles only the keys of the shards it holds. Each replica also
renews a membership Lease ``<name>-member-<identity>``; from the members it
sees alive it computes its fair share, ``ceil(shards / members)``: it takes
free shards while below it and gives extra ones back (after their reconciles
in flight finished) while above it. So a replica that joins gets shards
within a few retry periods, and the shards of a replica that dies are taken
over once their Leases expire, within one lease duration.

No key is reconciled by two replicas at once: a shard given back is released
only after its work finished, and a shard whose renewal fails is dropped, its
work cancelled, after ``renew_deadline``, before its Lease can expire for the
others.
"""

from __future__ import annotations

import logging
import math
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from asyncpod._errors import AsyncpodError
from asyncpod._leader import (
    DEFAULT_LEASE_DURATION,
    DEFAULT_RENEW_DEADLINE,
    DEFAULT_RETRY_PERIOD,
    LeaderElection,
    LeaseRecord,
    default_identity,
)
from asyncpod._paths import segment
from asyncpod._session import Session

logger = logging.getLogger("asyncpod")

ShardCallback = Callable[[int], Awaitable[None]]


def shard_of(key: str, shards: int) -> int:
    """The shard of ``key``: the same in every process and on every run."""
    return zlib.crc32(key.encode()) % shards


def fair_share(shards: int, members: int) -> int:
    """How many shards one of ``members`` replicas should hold."""
    return math.ceil(shards / max(members, 1))


class ShardSet:
    """The shards this replica holds, kept fair between the live replicas.

    Args:
        session: the client whose credentials write the Leases.
        name: the controller's name; the Leases are named after it.
        shards: how many shards the keys are split into (fixed for all replicas).
        namespace: the Leases' namespace.
        identity: this replica's name, unique per process.
        lease_duration: as for ``LeaderElection``.
        renew_deadline: as for ``LeaderElection``.
        retry_period: as for ``LeaderElection``; also the pace of rebalancing.

    Attributes:
        held: the shards this replica holds and works on now.
        members: how many replicas were alive at the last look.
    """

    def __init__(
        self,
        session: Session,
        name: str,
        *,
        shards: int,
        namespace: str,
        identity: str | None = None,
        lease_duration: float = DEFAULT_LEASE_DURATION,
        renew_deadline: float = DEFAULT_RENEW_DEADLINE,
        retry_period: float = DEFAULT_RETRY_PERIOD,
    ) -> None:
        if shards < 1:
            msg = f"shards must be at least 1, not {shards}"
            raise ValueError(msg)
        segment(name, "name")
        self._session = session
        self.name = name
        self.shards = shards
        self.namespace = namespace
        self.identity = identity or default_identity()
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        member = f"{name}-member-{zlib.crc32(self.identity.encode()):08x}"
        self._member = self._election(member)
        self._elections = [self._election(f"{name}-shard-{i}") for i in range(shards)]
        self.held: set[int] = set()
        self.members = 1
        self._seen: dict[str, tuple[LeaseRecord, float]] = {}

    def __repr__(self) -> str:
        return f"ShardSet({self.name!r}, held={sorted(self.held)}, members={self.members})"

    def _election(self, lease: str) -> LeaderElection:
        return LeaderElection(
            self._session,
            lease,
            namespace=self.namespace,
            identity=self.identity,
            lease_duration=self.lease_duration,
            renew_deadline=self.renew_deadline,
            retry_period=self.retry_period,
        )

    def owns(self, key: str) -> bool:
        """Whether this replica works on ``key`` now."""
        return shard_of(key, self.shards) in self.held

    async def run(
        self,
        *,
        acquired: ShardCallback,
        releasing: ShardCallback,
        lost: ShardCallback,
    ) -> None:
        """Keep a fair share of the shards until cancelled; then give them all back.

        Args:
            acquired: called with a shard this replica now holds.
            releasing: called with a shard about to be given back; returns
                once its work in flight finished.
            lost: called with a shard whose renewal failed: stop its work now.
        """
        try:
            while True:
                await self._step(acquired, releasing, lost)
                await anyio.sleep(self.retry_period)
        finally:
            with anyio.CancelScope(shield=True):
                for shard in sorted(self.held):
                    self.held.discard(shard)  # no new work on it
                    await releasing(shard)
                # Every shard, not only the held ones: an acquisition cancelled
                # while its write was in flight may have reached the server.
                for election in self._elections:
                    await election.release()
                await self._member.release()

    async def _step(
        self, acquired: ShardCallback, releasing: ShardCallback, lost: ShardCallback
    ) -> None:
        await self._attempt(self._member)
        with anyio.move_on_after(self.retry_period):
            self.members = await self._count_members(anyio.current_time())
        for shard in sorted(self.held):
            election = self._elections[shard]
            if not await self._attempt(election) and (
                anyio.current_time() - election.renewed_at >= self.renew_deadline
            ):
                self.held.discard(shard)
                logger.warning("%s lost shard %d of %s", self.identity, shard, self.name)
                await lost(shard)
        share = fair_share(self.shards, self.members)
        for shard in sorted(self.held, reverse=True)[: max(len(self.held) - share, 0)]:
            self.held.discard(shard)  # no new work on it
            await releasing(shard)
            await self._elections[shard].release()
        for shard in range(self.shards):
            if len(self.held) >= share:
                break
            if shard not in self.held and await self._attempt(self._elections[shard]):
                self.held.add(shard)
                await acquired(shard)

    async def _attempt(self, election: LeaderElection) -> bool:
        with anyio.move_on_after(self.retry_period):
            return await election.try_acquire_or_renew()
        return False

    async def _count_members(self, now: float) -> int:
        """The live members: their Lease changed within its duration, as seen here."""
        prefix = f"{self.name}-member-"
        path = (
            f"/apis/coordination.k8s.io/v1/namespaces/{segment(self.namespace, 'namespace')}/leases"
        )
        try:
            listing = await self._session.get_json(path)
        except AsyncpodError as exc:
            logger.info("listing the members of %s failed: %s", self.name, exc)
            return self.members
        alive = 1  # this replica
        mine = self._member.name
        items: list[Any] = (listing.get("items") or []) if isinstance(listing, dict) else []
        for lease in items:
            name = (lease.get("metadata") or {}).get("name", "") if isinstance(lease, dict) else ""
            if not name.startswith(prefix) or name == mine:
                continue
            record = LeaseRecord.from_lease(lease)
            seen = self._seen.get(name)
            if seen is None or seen[0] != record:
                self._seen[name] = seen = (record, now)
            if record.holder and now - seen[1] < max(record.lease_duration, 1.0):
                alive += 1
        return alive


__all__ = ["ShardSet", "fair_share", "shard_of"]
