"""``Controller``: reconcile the objects of a resource, as controller-runtime and kube-runtime do.

The loop: an informer of the primary resource (and of owned and mapped
resources) turns changes into keys; a ``WorkQueue`` de-duplicates them and
hands each to one of ``max_concurrent_reconciles`` workers, which call
``reconcile(obj)`` with the cached object. A reconcile that raises is logged
with its key and retried with per-key backoff; one that returns
``Requeue(after)`` runs again after that long; a clean return forgets the
key's backoff. Every key is reconciled again every ``resync_period``.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import anyio
from attrs import field, frozen, validators

from asyncpod._client import Client
from asyncpod._discovery import Resource
from asyncpod._events import ReconcileEvent, emit
from asyncpod._informer import Informer
from asyncpod._objects import metadata_of
from asyncpod._requests import Namespace
from asyncpod._sharding import ShardSet, shard_of
from asyncpod._workqueue import WorkQueue

logger = logging.getLogger("asyncpod")


@frozen
class Requeue:
    """What a reconcile returns to run again later, with nothing wrong.

    Attributes:
        after: seconds until the key is reconciled again.
    """

    after: float = field(validator=validators.ge(0))


Reconciler = Callable[[dict[str, Any]], Awaitable["Requeue | None"]]
KeyMapper = Callable[[dict[str, Any]], Iterable[str]]


def owner_keys(obj: dict[str, Any], owner: Resource) -> list[str]:
    """The keys of the objects of kind ``owner`` that control ``obj`` (ownerReferences).

    Only the controller reference counts, as controller-runtime's ``Owns``
    does: other owners do not manage the object.
    """
    metadata = metadata_of(obj, "an owned object")
    namespace = metadata.get("namespace") if owner.namespaced else None
    keys = []
    for ref in metadata.get("ownerReferences") or ():
        if not isinstance(ref, dict) or not ref.get("controller"):
            continue
        group = str(ref.get("apiVersion", "")).rpartition("/")[0]
        if ref.get("kind") == owner.kind and group == owner.group and ref.get("name"):
            keys.append(f"{namespace}/{ref['name']}" if namespace else str(ref["name"]))
    return keys


class Controller:
    """Reconciles every object of a resource, whenever it or what it owns changes.

    Run it until cancelled (``await controller.run()``), under leader election
    when several replicas run::

        async with k8s.leader_election("greeter"):
            await asyncpod.Controller(k8s, "configmaps", reconcile).run()

    Args:
        client: an entered ``Client``.
        resource: the primary resource (kubectl's spelling or a ``Resource``).
        reconcile: ``async (obj) -> Requeue | None``; it gets the cached
            object and must be idempotent. An exception is logged and the key
            retried with backoff.
        name: the controller's name in logs and ``ReconcileEvent`` (the
            resource spelling by default).
        namespace: the namespace watched (``asyncpod.ALL`` for all, the
            config's by default); owned and mapped resources use the same.
        label_selector: restricts the primary objects.
        owns: resources whose objects trigger their controlling owner
            (``metadata.ownerReferences`` with ``controller: true``).
        watches: ``(resource, mapper)`` pairs: a change of an object of
            ``resource`` triggers the keys ``mapper(obj)`` returns.
        max_concurrent_reconciles: workers; one key is never reconciled by
            two at once.
        resync_period: seconds between reconciles of every key (``None``: only
            on changes).
        queue: the work queue (its backoff and rate limit); a new one by default.
        shards: a ``ShardSet`` to split the keys with other replicas; this
            replica then reconciles only the keys of the shards it holds.
    """

    def __init__(
        self,
        client: Client,
        resource: str | Resource,
        reconcile: Reconciler,
        *,
        name: str | None = None,
        namespace: Namespace = None,
        label_selector: str | None = None,
        owns: Sequence[str | Resource] = (),
        watches: Sequence[tuple[str | Resource, KeyMapper]] = (),
        max_concurrent_reconciles: int = 1,
        resync_period: float | None = None,
        queue: WorkQueue[str] | None = None,
        shards: ShardSet | None = None,
    ) -> None:
        if max_concurrent_reconciles < 1:
            msg = f"max_concurrent_reconciles must be at least 1, not {max_concurrent_reconciles}"
            raise ValueError(msg)
        self._client = client
        self._resource = resource
        self._reconcile = reconcile
        self.name = name or (resource if isinstance(resource, str) else resource.plural)
        self._namespace = namespace
        self._label_selector = label_selector
        self._owns = list(owns)
        self._watches = list(watches)
        self.max_concurrent_reconciles = max_concurrent_reconciles
        self.resync_period = resync_period
        self.queue: WorkQueue[str] = queue if queue is not None else WorkQueue()
        self._primary: Informer | None = None
        self._feeds: anyio.CancelScope | None = None
        self._stopping = False
        self._failure: BaseException | None = None
        self._synced: anyio.Event | None = None
        self.shards = shards
        # The cancel scopes of the reconciles in flight, by shard (0 without shards).
        self._inflight: dict[int, set[anyio.CancelScope]] = {}
        self._finished: anyio.Event | None = None

    def __repr__(self) -> str:
        return f"Controller({self.name!r}, queue={self.queue!r})"

    @property
    def cache(self) -> dict[str, dict[str, Any]]:
        """The primary objects as the informer holds them, by key."""
        return self._primary.cache if self._primary is not None else {}

    async def run(self) -> None:
        """Watch and reconcile until ``shutdown()`` or cancellation.

        Raises:
            AsyncpodError: an informer failed for good (a 403, an unknown
                resource): the error as the informer raised it.
        """
        primary = await self._client.resource(self._resource)
        if self._synced is None:
            self._synced = anyio.Event()  # created on the running loop
        async with anyio.create_task_group() as workers:
            for _ in range(self.max_concurrent_reconciles):
                workers.start_soon(self._work)
            try:
                async with anyio.create_task_group() as feeds:
                    self._feeds = feeds.cancel_scope
                    if self._stopping:
                        feeds.cancel_scope.cancel()
                    feeds.start_soon(self._guard, self._feed_primary)
                    for owned in self._owns:
                        keys_of = functools.partial(owner_keys, owner=primary)
                        feeds.start_soon(self._guard, self._feed_keys, owned, keys_of)
                    for resource, mapper in self._watches:
                        feeds.start_soon(self._guard, self._feed_keys, resource, mapper)
                    if self.resync_period is not None:
                        feeds.start_soon(self._resync, self.resync_period)
                    if self.shards is not None:
                        feeds.start_soon(self._guard, self._keep_shards, self.shards)
            finally:
                # In-flight reconciles finish; queued keys are dropped.
                self._stopping = True
                with anyio.CancelScope(shield=True):
                    await self.queue.shutdown(drain=True)
        if self._failure is not None:
            raise self._failure

    async def wait_synced(self) -> None:
        """Wait until the first list of the primary resource is in the cache."""
        if self._synced is None:
            self._synced = anyio.Event()  # created on the running loop
        await self._synced.wait()

    async def shutdown(self) -> None:
        """Stop watching; ``run()`` returns once the reconciles in flight are done."""
        self._stopping = True
        if self._feeds is not None:
            self._feeds.cancel()

    async def _guard(self, feed: Callable[..., Awaitable[None]], *args: Any) -> None:
        # A feed's failure ends the controller with that error as itself, not
        # wrapped in an ExceptionGroup.
        try:
            await feed(*args)
        except Exception as exc:
            if self._failure is None:
                self._failure = exc
            if self._feeds is not None:
                self._feeds.cancel()

    async def _feed_primary(self) -> None:
        async with self._client.informer(
            self._resource, namespace=self._namespace, label_selector=self._label_selector
        ) as informer:
            self._primary = informer
            async for change in informer:
                if change.type == "SYNCED" and self._synced is not None:
                    self._synced.set()
                elif change.type != "DELETED":
                    self._enqueue(change.key)

    async def _feed_keys(
        self, resource: str | Resource, keys_of: Callable[[dict[str, Any]], Iterable[str]]
    ) -> None:
        """Trigger the keys ``keys_of`` finds in each change of another resource."""
        async with self._client.informer(resource, namespace=self._namespace) as informer:
            async for change in informer:
                if change.type != "SYNCED":
                    for key in keys_of(change.object):
                        self._enqueue(key)

    async def _resync(self, period: float) -> None:
        await self.wait_synced()
        while True:
            await anyio.sleep(period)
            for key in list(self.cache):
                self._enqueue(key)

    def _enqueue(self, key: str) -> None:
        if self.shards is None or self.shards.owns(key):
            self.queue.add(key)

    def _shard(self, key: str) -> int:
        return 0 if self.shards is None else shard_of(key, self.shards.shards)

    async def _keep_shards(self, shards: ShardSet) -> None:
        async def acquired(shard: int) -> None:
            for key in list(self.cache):
                if shard_of(key, shards.shards) == shard:
                    self.queue.add(key)

        async def releasing(shard: int) -> None:
            # Given back only once its reconciles in flight are done, so that
            # the next holder never works on a key at the same time.
            while self._inflight.get(shard):
                if self._finished is None:
                    self._finished = anyio.Event()
                await self._finished.wait()

        async def lost(shard: int) -> None:
            for scope in self._inflight.get(shard, ()):
                scope.cancel()

        await shards.run(acquired=acquired, releasing=releasing, lost=lost)

    async def _work(self) -> None:
        queue = self.queue
        async for key in queue:
            shard = self._shard(key)
            try:
                if self._stopping or (self.shards is not None and not self.shards.owns(key)):
                    continue
                with anyio.CancelScope() as scope:
                    self._inflight.setdefault(shard, set()).add(scope)
                    try:
                        await self._reconcile_key(key)
                    finally:
                        self._inflight[shard].discard(scope)
                        finished, self._finished = self._finished, None
                        if finished is not None:
                            finished.set()
            finally:
                queue.done(key)

    async def _reconcile_key(self, key: str) -> None:
        obj = self.cache.get(key)
        if obj is None:
            self.queue.forget(key)  # deleted meanwhile: nothing to reconcile
            return
        hook = self._client.on_event
        started = time.monotonic()
        try:
            result = await self._reconcile(obj)
        except Exception as exc:
            self.queue.add_rate_limited(key)
            logger.warning(
                "reconcile of %s %s failed (retry %d): %s: %s",
                self.name,
                key,
                self.queue.num_requeues(key),
                type(exc).__name__,
                exc,
            )
            if hook is not None:
                emit(
                    hook,
                    ReconcileEvent(self.name, key, time.monotonic() - started, type(exc).__name__),
                )
            return
        self.queue.forget(key)
        after = result.after if isinstance(result, Requeue) else None
        if after is not None:
            self.queue.add_after(key, after)
        if hook is not None:
            emit(hook, ReconcileEvent(self.name, key, time.monotonic() - started, None, after))


__all__ = ["Controller", "KeyMapper", "Reconciler", "Requeue", "owner_keys"]
