"""``Finalizer``: run cleanup before an object goes, as kube-runtime's ``finalizer`` does.

A finalizer name in ``metadata.finalizers`` makes the API server keep a
deleted object (it only sets ``deletionTimestamp``) until the name is
removed. The helper, called from a reconcile:

- adds the finalizer before anything else happens to a new object (the
  change brings the object back to the reconcile, which then applies);
- calls ``apply(obj)`` while the object lives;
- once the object is being deleted, calls ``cleanup(obj)``, then removes the
  finalizer with a JSON patch guarded by the object's ``resourceVersion``
  (a ``test`` operation), so a concurrent change is never overwritten.

Cleanup runs once per deletion in a process: a cleanup that succeeded is
not run again when removing the finalizer must be retried, and the same
object seen again from a cache that has not caught up is recognised by its
uid and resourceVersion and skipped. (A process that restarts in between
runs it again, so cleanup must still be idempotent, as everywhere.)
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from asyncpod._client import Client
from asyncpod._discovery import Resource
from asyncpod._objects import metadata_of

T = TypeVar("T")
Handler = Callable[[dict[str, Any]], Awaitable[T]]

# How many cleaned-up objects are remembered until their deletion shows in the cache.
_REMEMBERED = 10_000


class Finalizer:
    """Adds a finalizer, and runs cleanup exactly once when the object is deleted.

    Args:
        client: an entered ``Client``.
        resource: the objects' resource (kubectl's spelling or a ``Resource``).
        name: the finalizer, a qualified name such as ``"example.com/cleanup"``.
    """

    def __init__(self, client: Client, resource: str | Resource, name: str) -> None:
        if "/" not in name:
            # The API server warns about unqualified finalizer names (KEP-2214).
            msg = f"a finalizer name should be qualified, such as 'example.com/{name}'"
            raise ValueError(msg)
        self._client = client
        self._resource = resource
        self.name = name
        self._cleaned: OrderedDict[str, str] = OrderedDict()

    def __repr__(self) -> str:
        return f"Finalizer({self.name!r})"

    async def __call__(
        self, obj: Mapping[str, Any], *, apply: Handler[T], cleanup: Handler[Any]
    ) -> T | None:
        """Add the finalizer, apply, or clean up, as the object's state says.

        Returns:
            What ``apply`` returned, or ``None`` when the finalizer was added
            or the cleanup ran.

        Raises:
            APIError: a patch was refused (a 422 or 409 when the object changed
                meanwhile: the reconcile runs again with the new object).
        """
        metadata = metadata_of(obj, "the object to finalize")
        finalizers = list(metadata.get("finalizers") or ())
        version = str(metadata.get("resourceVersion") or "")
        uid = str(metadata.get("uid") or "")
        name = str(metadata.get("name") or "")
        namespace = metadata.get("namespace")
        if not metadata.get("deletionTimestamp"):
            if self.name in finalizers:
                return await apply(dict(obj))
            patch: list[dict[str, Any]] = [
                {"op": "test", "path": "/metadata/resourceVersion", "value": version}
            ]
            if finalizers:
                patch.append({"op": "add", "path": "/metadata/finalizers/-", "value": self.name})
            else:
                patch.append({"op": "add", "path": "/metadata/finalizers", "value": [self.name]})
            await self._client.patch(
                self._resource, name, patch, namespace=namespace, patch_type="json"
            )
            return None
        if self.name not in finalizers:
            return None
        removed_at = self._cleaned.get(uid)
        if removed_at == version:
            return None  # removed at this version already: the cache is behind
        if removed_at is None:
            await cleanup(dict(obj))
            self._remember(uid, "")  # cleaned; a failed removal below does not clean again
        index = finalizers.index(self.name)
        await self._client.patch(
            self._resource,
            name,
            [
                {"op": "test", "path": "/metadata/resourceVersion", "value": version},
                {"op": "test", "path": f"/metadata/finalizers/{index}", "value": self.name},
                {"op": "remove", "path": f"/metadata/finalizers/{index}"},
            ],
            namespace=namespace,
            patch_type="json",
        )
        self._remember(uid, version)
        return None

    def _remember(self, uid: str, removed_at: str) -> None:
        self._cleaned[uid] = removed_at
        self._cleaned.move_to_end(uid)
        if len(self._cleaned) > _REMEMBERED:
            self._cleaned.popitem(last=False)


__all__ = ["Finalizer"]
