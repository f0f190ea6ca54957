"""Leader election on a ``coordination.k8s.io/v1`` Lease, with client-go's semantics.

client-go ``tools/leaderelection``: a candidate reads the Lease; it takes it
when nobody holds it or when the holder's record has not changed for the
record's ``leaseDurationSeconds`` *as observed by the candidate's own clock*
(so clock skew between nodes does not matter); every write is an optimistic
update on ``resourceVersion``, so of two candidates only one wins. The leader
renews every ``retry_period``; when no renewal succeeded for
``renew_deadline`` it stops leading and cancels its work, before the Lease
can expire for the others (``renew_deadline < lease_duration``): no two
leaders act at once.

The record keeping (``LeaseRecord``, ``decide``) is pure; ``LeaderElection``
does the requests and the waiting.
"""

from __future__ import annotations

import logging
import math
import random
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
from attrs import evolve, frozen

from asyncpod._errors import AsyncpodError, ConflictError, NotFoundError
from asyncpod._objects import micro_time
from asyncpod._paths import segment
from asyncpod._session import Session

logger = logging.getLogger("asyncpod")

# client-go's defaults (leaderelection.LeaderElectionConfig, as kube-controller-manager sets them).
DEFAULT_LEASE_DURATION = 15.0
DEFAULT_RENEW_DEADLINE = 10.0
DEFAULT_RETRY_PERIOD = 2.0
# client-go waits retry_period * (1 + rand * 1.2) between acquisition attempts.
JITTER_FACTOR = 1.2


class LeadershipLostError(AsyncpodError):
    """The leader could not renew its Lease in time; its work was cancelled."""


@frozen(kw_only=True)
class LeaseRecord:
    """The leader election fields of a Lease's ``spec``."""

    holder: str = ""
    lease_duration: float = 0.0
    acquire_time: str | None = None
    renew_time: str | None = None
    transitions: int = 0

    @classmethod
    def from_lease(cls, lease: Mapping[str, Any]) -> LeaseRecord:
        """The record in a Lease object as the server sent it (missing fields empty)."""
        spec = lease.get("spec")
        spec = spec if isinstance(spec, Mapping) else {}
        duration = spec.get("leaseDurationSeconds")
        transitions = spec.get("leaseTransitions")
        return cls(
            holder=str(spec.get("holderIdentity") or ""),
            lease_duration=float(duration) if isinstance(duration, (int, float)) else 0.0,
            acquire_time=_str_or_none(spec.get("acquireTime")),
            renew_time=_str_or_none(spec.get("renewTime")),
            transitions=transitions if isinstance(transitions, int) else 0,
        )

    def to_spec(self) -> dict[str, Any]:
        """The Lease ``spec`` that stores this record."""
        spec: dict[str, Any] = {
            "holderIdentity": self.holder,
            "leaseDurationSeconds": max(1, math.ceil(self.lease_duration)),
            "leaseTransitions": self.transitions,
        }
        if self.acquire_time is not None:
            spec["acquireTime"] = self.acquire_time
        if self.renew_time is not None:
            spec["renewTime"] = self.renew_time
        return spec


def decide(
    current: LeaseRecord,
    *,
    identity: str,
    lease_duration: float,
    observed_at: float,
    now: float,
    wall_time: str,
) -> LeaseRecord | None:
    """The record to write to take or renew the Lease, or ``None`` when another holds it.

    Args:
        current: the record as last read.
        identity: this candidate.
        lease_duration: this candidate's lease duration, written on success.
        observed_at: when (on the local clock) ``current`` was first seen as it is.
        now: the local clock now.
        wall_time: the RFC 3339 time written into the record.
    """
    held_by_other = current.holder not in ("", identity)
    if held_by_other and observed_at + current.lease_duration > now:
        return None
    if current.holder == identity:
        return evolve(current, lease_duration=lease_duration, renew_time=wall_time)
    return LeaseRecord(
        holder=identity,
        lease_duration=lease_duration,
        acquire_time=wall_time,
        renew_time=wall_time,
        # client-go counts every change of holder, a released (empty) one included.
        transitions=current.transitions + 1,
    )


def default_identity() -> str:
    """``<hostname>_<random>``: unique per process, readable in ``kubectl get lease``."""
    return f"{socket.gethostname()}_{uuid.uuid4().hex[:12]}"


class LeaderElection:
    """Leader election on one Lease; hold leadership with ``async with election.hold():``.

    The body of ``hold()`` runs only while this process leads. When a renewal
    fails for ``renew_deadline`` the body is cancelled and ``hold()`` raises
    ``LeadershipLostError``. On leaving the block the Lease is released
    (with ``release_on_cancel``), so the next leader need not wait for it to
    expire.

    Args:
        session: the client (any ``Session``) whose credentials write the Lease.
        name: the Lease's name.
        namespace: the Lease's namespace.
        identity: this candidate's name in the Lease; unique per process.
        lease_duration: how long others wait after the last observed renewal.
        renew_deadline: how long the leader keeps trying to renew before it
            stops leading; below ``lease_duration``.
        retry_period: the pause between attempts.
        release_on_cancel: give the Lease up when leaving ``hold()``.
        clock: the monotonic time source, ``anyio.current_time`` by default.

    Attributes:
        identity: this candidate.
        is_leader: whether this candidate leads now.
        leader: the holder last observed in the Lease ("" when none).
    """

    def __init__(
        self,
        session: Session,
        name: str,
        *,
        namespace: str,
        identity: str | None = None,
        lease_duration: float = DEFAULT_LEASE_DURATION,
        renew_deadline: float = DEFAULT_RENEW_DEADLINE,
        retry_period: float = DEFAULT_RETRY_PERIOD,
        release_on_cancel: bool = True,
        clock: Callable[[], float] | None = None,
    ) -> None:
        # client-go's NewLeaderElector checks: a leader must give up before the
        # others may take over, and renew more than once in that window.
        if not lease_duration > renew_deadline:
            msg = f"lease_duration ({lease_duration}) must be greater than renew_deadline"
            raise ValueError(msg)
        if not renew_deadline > JITTER_FACTOR * retry_period:
            msg = f"renew_deadline ({renew_deadline}) must exceed 1.2 * retry_period"
            raise ValueError(msg)
        if retry_period <= 0:
            msg = f"retry_period must be positive, not {retry_period}"
            raise ValueError(msg)
        self._session = session
        self.name = name
        self.namespace = namespace
        self.identity = identity or default_identity()
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.release_on_cancel = release_on_cancel
        self._clock = clock or anyio.current_time
        self._path = (
            f"/apis/coordination.k8s.io/v1/namespaces/{segment(namespace, 'namespace')}"
            f"/leases/{segment(name, 'name')}"
        )
        self._lease: dict[str, Any] | None = None
        self._observed: LeaseRecord | None = None
        self._observed_at = 0.0
        self._renewed_at = -math.inf
        self.is_leader = False
        self.leader = ""

    @property
    def renewed_at(self) -> float:
        """When (on the local clock) the last successful write was sent; ``-inf`` before."""
        return self._renewed_at

    def __repr__(self) -> str:
        return (
            f"LeaderElection({self.namespace}/{self.name}, identity={self.identity!r}, "
            f"is_leader={self.is_leader})"
        )

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[LeaderElection]:
        """Wait until this candidate leads, then run the block while it does.

        Raises:
            LeadershipLostError: a renewal did not succeed within
                ``renew_deadline``; the block was cancelled.
        """
        await self.acquire()
        lost = False
        # The body's own error is raised after the task group as itself: a
        # task group would wrap it in an ExceptionGroup.
        error: Exception | None = None
        try:
            async with anyio.create_task_group() as tg:
                with anyio.CancelScope() as body:

                    async def keep() -> None:
                        nonlocal lost
                        await self._renew_until_lost()
                        lost = True
                        body.cancel()

                    tg.start_soon(keep)
                    try:
                        yield self
                    except Exception as exc:
                        error = exc
                tg.cancel_scope.cancel()
        finally:
            self.is_leader = False
            if not lost and self.release_on_cancel:
                with anyio.CancelScope(shield=True):
                    await self.release()
        if error is not None:
            raise error
        if lost:
            msg = (
                f"lost the lease {self.namespace}/{self.name}: no renewal succeeded within "
                f"{self.renew_deadline:g} s"
            )
            raise LeadershipLostError(msg)

    async def acquire(self) -> None:
        """Try every ``retry_period`` (jittered) until this candidate holds the Lease."""
        while True:
            if await self.try_acquire_or_renew():
                break
            await anyio.sleep(self.retry_period * (1 + random.random() * JITTER_FACTOR))
        logger.info("%s leads %s/%s", self.identity, self.namespace, self.name)

    async def _renew_until_lost(self) -> None:
        """Renew every ``retry_period``; return once no renewal succeeded for ``renew_deadline``."""
        while True:
            await anyio.sleep(self.retry_period)
            left = self._renewed_at + self.renew_deadline - self._clock()
            with anyio.move_on_after(max(left, 0.0)):
                while True:
                    if await self.try_acquire_or_renew():
                        break
                    await anyio.sleep(self.retry_period)
                continue
            self.is_leader = False
            logger.warning(
                "%s stops leading %s/%s: no renewal within %g s",
                self.identity,
                self.namespace,
                self.name,
                self.renew_deadline,
            )
            return

    async def try_acquire_or_renew(self) -> bool:
        """One attempt: read the Lease, and take or renew it when allowed.

        A failed request counts as a failed attempt (logged), never as an error:
        the loop around decides when to give up.
        """
        try:
            return await self._attempt()
        except ConflictError:
            return False  # another candidate wrote first
        except AsyncpodError as exc:
            logger.info("leader election %s/%s: %s", self.namespace, self.name, exc)
            return False

    async def _attempt(self) -> bool:
        started = self._clock()
        try:
            lease = await self._session.get_json(self._path)
        except NotFoundError:
            return await self._create(started)
        if not isinstance(lease, dict):
            return False
        current = LeaseRecord.from_lease(lease)
        if current != self._observed:
            self._observed = current
            self._observed_at = self._clock()
        self.leader = current.holder
        wanted = decide(
            current,
            identity=self.identity,
            lease_duration=self.lease_duration,
            observed_at=self._observed_at,
            now=self._clock(),
            wall_time=micro_time(),
        )
        if wanted is None:
            self.is_leader = False
            return False
        body = {**lease, "spec": {**(lease.get("spec") or {}), **wanted.to_spec()}}
        response = await self._session.request("PUT", self._path, json=body)
        self._took(response.json(), wanted, started)
        return True

    async def _create(self, started: float) -> bool:
        now = micro_time()
        record = LeaseRecord(
            holder=self.identity,
            lease_duration=self.lease_duration,
            acquire_time=now,
            renew_time=now,
        )
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": record.to_spec(),
        }
        collection = self._path.rpartition("/")[0]
        try:
            response = await self._session.request("POST", collection, json=body)
        except ConflictError:
            return False  # created by another candidate meanwhile
        self._took(response.json(), record, started)
        return True

    def _took(self, lease: Any, record: LeaseRecord, started: float) -> None:
        # The renewal counts from when it was sent: the others may have seen
        # it as early as that.
        self._lease = lease if isinstance(lease, dict) else None
        self._observed = record
        self._observed_at = started
        self._renewed_at = started
        self.is_leader = True
        self.leader = self.identity

    async def release(self) -> bool:
        """Give the Lease up if this candidate holds it (client-go's ReleaseOnCancel).

        The Lease is read first, not taken from memory: the outcome of the
        last write may be unknown (cancelled in flight), and a write that
        reached the server must be released too. A conflict (the Lease changed
        between the read and the write) is read again.
        """
        try:
            # As long as a renewal may take: a release cut short leaves the
            # others waiting a whole lease duration.
            with anyio.move_on_after(self.renew_deadline):
                for _ in range(3):
                    try:
                        lease = await self._session.get_json(self._path)
                    except NotFoundError:
                        return False
                    if not isinstance(lease, dict):
                        return False
                    record = LeaseRecord.from_lease(lease)
                    if record.holder != self.identity:
                        return False
                    now = micro_time()
                    released = evolve(
                        record, holder="", lease_duration=1, acquire_time=now, renew_time=now
                    )
                    spec = {**(lease.get("spec") or {}), **released.to_spec()}
                    try:
                        await self._session.request("PUT", self._path, json={**lease, "spec": spec})
                    except ConflictError:
                        continue
                    self._lease = None
                    self._observed = released
                    self.is_leader = False
                    return True
        except AsyncpodError as exc:
            logger.info("releasing %s/%s failed: %s", self.namespace, self.name, exc)
        return False


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


__all__ = [
    "DEFAULT_LEASE_DURATION",
    "DEFAULT_RENEW_DEADLINE",
    "DEFAULT_RETRY_PERIOD",
    "LeaderElection",
    "LeadershipLostError",
    "LeaseRecord",
    "decide",
    "default_identity",
]
