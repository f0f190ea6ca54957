"""The resource verbs of ``Client``: get, list, create, replace, patch, apply, delete...

``ResourceMixin`` is mixed into ``Client``; it only needs the client's
``request``, ``stream``, ``get_json`` and ``config``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, Literal

import anyio
from anyio.abc import AsyncResource

from asyncpod import _json
from asyncpod._discovery import Discovery, Resource
from asyncpod._errors import GoneError, InvalidNameError
from asyncpod._paths import ALL, _AllNamespaces, segment, validate_segment
from asyncpod._retry import NO_RETRIES
from asyncpod._status import api_error
from asyncpod._target import Params
from asyncpod._watch import (
    DEFAULT_INACTIVITY_TIMEOUT,
    DEFAULT_MAX_OBJECT_SIZE,
    Watch,
)

if TYPE_CHECKING:
    from asyncpod._config import Config
    from asyncpod._events import EventHook
    from asyncpod._informer import Informer
    from asyncpod._logs import LogLines
    from asyncpod._models import Response
    from asyncpod._retry import RetryPolicy

Namespace = str | _AllNamespaces | None
PatchType = Literal["merge", "json", "strategic"]

PATCH_CONTENT_TYPES: Final[Mapping[str, str]] = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
}
# Server-side apply takes YAML; JSON is YAML, and needs no YAML encoder here.
APPLY_CONTENT_TYPE: Final = "application/apply-patch+yaml"
DEFAULT_CHUNK_SIZE: Final = 500
# An error answer to a stream is read this far for its Status body.
MAX_ERROR_BODY: Final = 1 << 20


def _metadata(obj: Mapping[str, Any], what: str) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        msg = f"{what} must be a mapping (a Kubernetes object), not {type(obj).__name__}"
        raise InvalidNameError(msg)
    metadata = obj.get("metadata")
    return metadata if isinstance(metadata, Mapping) else {}


def _object_name(obj: Mapping[str, Any], what: str) -> str:
    name = _metadata(obj, what).get("name")
    if not isinstance(name, str):
        msg = f"{what} has no metadata.name"
        raise InvalidNameError(msg)
    return validate_segment(name, "metadata.name")


def _in_namespace(obj: Mapping[str, Any], namespace: str | None) -> Mapping[str, Any]:
    """``obj`` with ``metadata.namespace`` set to the namespace of the request.

    The API server refuses a body whose namespace differs from the path's;
    an explicit ``namespace=`` is meant to win, so the body follows it. The
    caller's object is not modified.
    """
    if namespace is None:
        return obj
    metadata = _metadata(obj, "the object")
    if metadata.get("namespace") in (None, namespace):
        return obj
    return {**obj, "metadata": {**metadata, "namespace": namespace}}


def object_key(obj: Mapping[str, Any]) -> str:
    """``"namespace/name"`` of an object, or ``"name"`` when it has no namespace."""
    metadata = obj.get("metadata") or {}
    name = str(metadata.get("name", ""))
    namespace = metadata.get("namespace")
    return f"{namespace}/{name}" if namespace else name


class ListIterator(AsyncResource):
    """The items of a list, page by page, following ``continue`` tokens.

    Attributes:
        resource_version: the list's resourceVersion, set once the first page
            arrived (``None`` before); start a watch from it.
        pages: how many pages were fetched.
        restarted: whether a continue token expired and the list was read
            again whole (then ``resource_version`` is the whole list's).
    """

    def __init__(
        self,
        client: ResourceMixin,
        resource: str | Resource,
        namespace: Namespace,
        params: Params,
        chunk_size: int | None,
    ) -> None:
        self._client = client
        self._resource = resource
        self._namespace = namespace
        self._params: dict[str, Any] = dict(params)
        if chunk_size:
            self._params["limit"] = chunk_size
        self.chunk_size = chunk_size
        self.resource_version: str | None = None
        self.pages = 0
        self.restarted = False
        self._path: str | None = None
        self._items: list[dict[str, Any]] = []
        self._continue: str | None = None
        self._done = False
        # What was yielded, by key, so that a restart after an expired
        # continue token yields only what is new or changed.
        self._yielded: dict[str, str] = {}

    def __aiter__(self) -> ListIterator:
        return self

    async def aclose(self) -> None:
        """Stop early (no connection is held between pages)."""
        self._done = True
        self._items.clear()

    async def __anext__(self) -> dict[str, Any]:
        while not self._items:
            if self._done:
                raise StopAsyncIteration
            await self._fetch()
        item = self._items.pop()
        metadata = item.get("metadata") or {}
        self._yielded[object_key(item)] = str(metadata.get("resourceVersion", ""))
        return item

    async def _fetch(self) -> None:
        if self._path is None:
            self._path = await self._client._collection_path(self._resource, self._namespace)
        params = {**self._params, "continue": self._continue}
        try:
            page = await self._client.get_json(self._path, params=params)
        except GoneError:
            if self._continue is None:
                raise
            # client-go's pager (FullListIfExpired): the snapshot is gone, so
            # list everything again in one request.
            self.restarted = True
            self._params.pop("limit", None)
            page = await self._client.get_json(self._path, params=self._params)
            self._take(page, restart=True)
            self._done = True
            return
        self.pages += 1
        self._take(page, restart=False)

    def _take(self, page: Mapping[str, Any], *, restart: bool) -> None:
        metadata = page.get("metadata") or {}
        version = metadata.get("resourceVersion")
        if (self.pages == 1 or restart) and isinstance(version, str) and version:
            self.resource_version = version
        items = list(page.get("items") or ())
        if restart:
            items = [
                item
                for item in items
                if self._yielded.get(object_key(item))
                != str((item.get("metadata") or {}).get("resourceVersion", ""))
            ]
        items.reverse()  # popped from the end
        self._items = items
        self._continue = None if restart else (metadata.get("continue") or None)
        if not self._continue:
            self._done = True


class ResourceMixin:
    """Resource verbs for ``Client``; see API.md "Client" for the contract."""

    _resource_discovery: Discovery | None = None
    # Strong references: an iterator the caller dropped without closing still
    # holds a connection, which closing the client must release.
    _open_streams: set[Any] | None = None

    # Provided by Client.
    if TYPE_CHECKING:

        @property
        def config(self) -> Config: ...

        timeout: float | None
        retries: Any
        _on_event: EventHook | None

        @property
        def closed(self) -> bool: ...

        async def get_json(self, path: str, *, params: Params | None = None) -> Any: ...

        async def request(
            self,
            method: str,
            path: str,
            *,
            params: Params | None = None,
            json: Any = None,
            content: bytes | None = None,
            headers: Mapping[str, str] | None = None,
        ) -> Response: ...

        def _build(
            self,
            path: str,
            params: Params | None,
            json: Any,
            content: bytes | None,
            headers: Mapping[str, str] | None,
        ) -> tuple[str, dict[str, str], bytes | None]: ...

        async def _send(
            self,
            method: str,
            target: str,
            headers: dict[str, str],
            content: bytes | None,
            stream: bool,
            *,
            policy: RetryPolicy | None = None,
        ) -> Response: ...

    def _track(self, iterator: Any) -> None:
        """Remember a streaming iterator, so that closing the client closes it."""
        if self._open_streams is None:
            self._open_streams = set()
        self._open_streams.add(iterator)

    def _forget(self, iterator: Any) -> None:
        """A streaming iterator was closed."""
        if self._open_streams is not None:
            self._open_streams.discard(iterator)

    async def _close_open_streams(self) -> None:
        """Close the watches and log streams a caller left open."""
        streams, self._open_streams = self._open_streams, None
        for iterator in list(streams or ()):
            await iterator.aclose()

    async def _open_stream(
        self, path: str, params: Params | None, *, retry: bool = True
    ) -> Response:
        """GET ``path`` as a stream; the caller must ``aclose()`` the answer.

        Unlike ``Client.stream`` this holds no generator, so an iterator that
        is dropped without being closed leaves nothing to finalize. With
        ``retry=False`` the client's retry policy is not applied (a 401 still
        re-reads the token once): for callers that retry on their own.

        Raises:
            APIError: the server answered with an error status.
            TransportError: the server could not be reached.
        """
        target, headers, _ = self._build(path, params, None, None, None)
        policy = None if retry else NO_RETRIES
        response = await self._send("GET", target, headers, None, True, policy=policy)
        if response.status < 300:
            return response
        try:
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if size >= MAX_ERROR_BODY:
                    break
            content = b"".join(chunks)[:MAX_ERROR_BODY]
        finally:
            with anyio.CancelScope(shield=True):
                await response.aclose()
        raise api_error(response.status, response.headers, content, response.reason)

    # -- discovery -------------------------------------------------------------

    @property
    def discovery(self) -> Discovery:
        """The discovery cache of this client."""
        if self._resource_discovery is None:
            self._resource_discovery = Discovery(self.get_json)
        return self._resource_discovery

    async def resource(self, spec: str | Resource) -> Resource:
        """The ``Resource`` a kubectl spelling names, via cached discovery.

        Args:
            spec: ``"pods"``, ``"pod"``, ``"Pod"``, ``"po"``, ``"deployments.apps"``,
                ``"deployments.v1.apps"``, or a ``Resource`` (returned as is).

        Raises:
            UnknownResourceError: nothing the server serves matches, even after
                refreshing the discovery cache once.
            TransportError: the API server could not be reached.
        """
        return await self.discovery.resource(spec)

    # -- namespaces and paths ---------------------------------------------------

    def _read_namespace(self, namespace: Namespace) -> str | None:
        if namespace is ALL:
            return None
        if namespace is None:
            return self.config.namespace
        return validate_segment(namespace, "namespace")

    def _write_namespace(self, namespace: Namespace, obj: Mapping[str, Any] | None) -> str:
        if namespace is ALL:
            msg = "asyncpod.ALL selects namespaces to read; a write needs one namespace"
            raise InvalidNameError(msg)
        if namespace is not None:
            return validate_segment(namespace, "namespace")
        if obj is not None:
            own = _metadata(obj, "the object").get("namespace")
            if own:
                return validate_segment(own, "metadata.namespace")
        return self.config.namespace

    def _one_namespace(self, namespace: Namespace) -> str:
        if namespace is ALL:
            msg = "asyncpod.ALL selects namespaces to list or watch; this call needs one"
            raise InvalidNameError(msg)
        return self._read_namespace(namespace) or self.config.namespace

    async def _collection_path(self, resource: str | Resource, namespace: Namespace) -> str:
        res = await self.resource(resource)
        return res.path(namespace=self._read_namespace(namespace) if res.namespaced else None)

    def _watch_retry_limit(self) -> int:
        retries = self.retries
        if isinstance(retries, int):
            return max(retries, 0)
        # A RetryPolicy: its ``retries`` bounds reconnects in a row too.
        limit = getattr(retries, "retries", None)
        return limit if isinstance(limit, int) else 5

    # -- verbs ------------------------------------------------------------------

    async def get(
        self,
        resource: str | Resource,
        name: str,
        *,
        namespace: Namespace = None,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """Fetch one object.

        Args:
            resource: kubectl's spelling (``"pods"``, ``"deployments.apps"``) or a ``Resource``.
            name: the object's name; never a path.
            namespace: defaults to the config's namespace.
            subresource: such as ``"status"`` or ``"scale"``.

        Raises:
            InvalidNameError: ``name`` or ``namespace`` could escape its path segment.
            UnknownResourceError: the spelling matches nothing the server serves.
            NotFoundError: the object does not exist.
            TransportError: the API server could not be reached.
        """
        validate_segment(name, "name")
        res = await self.resource(resource)
        path = res.path(
            namespace=self._one_namespace(namespace), name=name, subresource=subresource
        )
        result: dict[str, Any] = await self.get_json(path)
        return result

    def list(
        self,
        resource: str | Resource,
        *,
        namespace: Namespace = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        chunk_size: int | None = DEFAULT_CHUNK_SIZE,
        resource_version: str | None = None,
    ) -> ListIterator:
        """Iterate over the objects of a resource, fetching ``chunk_size`` per page.

        ``async for item in k8s.list(...)``; the iterator's ``resource_version``
        is set once the first page arrived. When a continue token expires
        (410), the list is read again whole, as client-go's pager does, and
        only objects not yet yielded (or changed since) are yielded.

        Args:
            resource: kubectl's spelling or a ``Resource``.
            namespace: the config's namespace by default; ``asyncpod.ALL`` for all.
            label_selector: such as ``"app=web,tier!=db"``.
            field_selector: such as ``"metadata.name=web-0"``.
            chunk_size: objects per page (``limit``); ``None`` or 0 for one page.
            resource_version: passed as ``resourceVersion`` to the first page.

        Raises:
            UnknownResourceError: the spelling matches nothing the server serves.
            InvalidNameError: ``namespace`` could escape its path segment.
            APIError: the server refused the list.
        """
        params: dict[str, Any] = {
            "labelSelector": label_selector,
            "fieldSelector": field_selector,
            "resourceVersion": resource_version,
        }
        if namespace is not None and namespace is not ALL:
            validate_segment(namespace, "namespace")
        return ListIterator(self, resource, namespace, params, chunk_size)

    async def create(
        self,
        resource: str | Resource,
        obj: Mapping[str, Any],
        *,
        namespace: Namespace = None,
        dry_run: bool = False,
        field_manager: str | None = None,
    ) -> dict[str, Any]:
        """Create an object; return it as stored (or as it would be, with ``dry_run``).

        Raises:
            ConflictError: an object of that name exists (AlreadyExists).
            InvalidError: the server rejected the object.
            InvalidNameError: the namespace could escape its path segment.
        """
        res = await self.resource(resource)
        ns = self._write_namespace(namespace, obj) if res.namespaced else None
        params = {"dryRun": "All" if dry_run else None, "fieldManager": field_manager}
        body = _in_namespace(obj, ns)
        response = await self.request("POST", res.path(namespace=ns), params=params, json=body)
        result: dict[str, Any] = response.json()
        return result

    async def replace(
        self,
        resource: str | Resource,
        obj: Mapping[str, Any],
        *,
        namespace: Namespace = None,
        dry_run: bool = False,
        field_manager: str | None = None,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """Replace an object (PUT); ``metadata.resourceVersion`` makes it conditional.

        Raises:
            ConflictError: the object changed since ``metadata.resourceVersion``.
            NotFoundError: the object does not exist.
            InvalidNameError: ``metadata.name`` could escape its path segment.
        """
        res = await self.resource(resource)
        name = _object_name(obj, "the object")
        ns = self._write_namespace(namespace, obj) if res.namespaced else None
        params = {"dryRun": "All" if dry_run else None, "fieldManager": field_manager}
        path = res.path(namespace=ns, name=name, subresource=subresource)
        response = await self.request("PUT", path, params=params, json=_in_namespace(obj, ns))
        result: dict[str, Any] = response.json()
        return result

    async def patch(
        self,
        resource: str | Resource,
        name: str,
        patch: Any,
        *,
        namespace: Namespace = None,
        patch_type: PatchType = "merge",
        subresource: str | None = None,
        dry_run: bool = False,
        field_manager: str | None = None,
    ) -> dict[str, Any]:
        """Patch an object; return it as stored.

        Args:
            resource: kubectl's spelling or a ``Resource``.
            name: the object's name.
            patch: a dict (merge, strategic) or a list of operations (json), or
                bytes/str already encoded.
            namespace: the config's namespace by default.
            patch_type: ``"merge"`` (RFC 7386), ``"json"`` (RFC 6902) or
                ``"strategic"`` (built-in kinds only).
            subresource: ``"status"`` or ``"scale"``, for example.
            dry_run: validate without storing.
            field_manager: the manager recorded in ``managedFields``.

        Raises:
            NotFoundError: the object does not exist.
            UnsupportedMediaType (``APIError`` 415): strategic merge on a custom resource.
            InvalidError: the patched object is invalid.
        """
        content_type = PATCH_CONTENT_TYPES.get(patch_type)
        if content_type is None:
            msg = f"patch_type must be 'merge', 'json' or 'strategic', not {patch_type!r}"
            raise ValueError(msg)
        validate_segment(name, "name")
        res = await self.resource(resource)
        ns = self._one_namespace(namespace) if res.namespaced else None
        path = res.path(namespace=ns, name=name, subresource=subresource)
        body = _encode(patch)
        params = {"dryRun": "All" if dry_run else None, "fieldManager": field_manager}
        response = await self.request(
            "PATCH", path, params=params, content=body, headers={"Content-Type": content_type}
        )
        result: dict[str, Any] = response.json()
        return result

    async def apply(
        self,
        obj: Mapping[str, Any],
        *,
        field_manager: str,
        force: bool = False,
        namespace: Namespace = None,
        dry_run: bool = False,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """Server-side apply: the resource comes from ``apiVersion`` and ``kind``.

        Args:
            obj: the fields this manager owns, with ``apiVersion``, ``kind`` and
                ``metadata.name``.
            field_manager: who owns the fields (required by the server).
            force: take over fields other managers own instead of a conflict.
            namespace: wins over ``metadata.namespace``, then the config's.
            dry_run: validate without storing.
            subresource: such as ``"status"``.

        Raises:
            ConflictError: another manager owns a field and ``force`` is false.
            UnknownResourceError: the server serves no such kind.
            InvalidNameError: a name could escape its path segment.
        """
        if not field_manager:
            msg = "server-side apply needs a field_manager"
            raise InvalidNameError(msg)
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if not isinstance(api_version, str) or not isinstance(kind, str):
            msg = "the object to apply needs apiVersion and kind"
            raise InvalidNameError(msg)
        res = await self.discovery.resource_for_kind(api_version, kind)
        name = _object_name(obj, "the object to apply")
        ns = self._write_namespace(namespace, obj) if res.namespaced else None
        params = {
            "fieldManager": field_manager,
            "force": "true" if force else None,
            "dryRun": "All" if dry_run else None,
        }
        response = await self.request(
            "PATCH",
            res.path(namespace=ns, name=name, subresource=subresource),
            params=params,
            content=_json.dumps(_in_namespace(obj, ns)),
            headers={"Content-Type": APPLY_CONTENT_TYPE},
        )
        result: dict[str, Any] = response.json()
        return result

    async def delete(
        self,
        resource: str | Resource,
        name: str,
        *,
        namespace: Namespace = None,
        propagation_policy: Literal["Orphan", "Background", "Foreground"] | None = None,
        grace_period_seconds: int | None = None,
        preconditions: Mapping[str, str] | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Delete an object; return the server's answer (the object, or a Status).

        Args:
            preconditions: ``{"uid": ..., "resourceVersion": ...}``; the delete
                fails with ``ConflictError`` when the object differs.

        Raises:
            NotFoundError: the object does not exist.
            ConflictError: a precondition failed.
        """
        validate_segment(name, "name")
        res = await self.resource(resource)
        ns = self._one_namespace(namespace) if res.namespaced else None
        options: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation_policy is not None:
            options["propagationPolicy"] = propagation_policy
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        if preconditions:
            options["preconditions"] = dict(preconditions)
        if dry_run:
            options["dryRun"] = ["All"]
        response = await self.request("DELETE", res.path(namespace=ns, name=name), json=options)
        result: dict[str, Any] = response.json()
        return result

    async def evict(
        self,
        name: str,
        *,
        namespace: Namespace = None,
        grace_period_seconds: int | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Evict a pod through the Eviction API (honours PodDisruptionBudgets).

        Raises:
            TooManyRequestsError: a disruption budget forbids it now (429).
            NotFoundError: the pod does not exist.
        """
        ns = self._one_namespace(namespace)
        path = (
            f"/api/v1/namespaces/{segment(ns, 'namespace')}/pods/{segment(name, 'name')}/eviction"
        )
        body: dict[str, Any] = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": name, "namespace": ns},
        }
        options: dict[str, Any] = {}
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        if dry_run:
            options["dryRun"] = ["All"]
        if options:
            body["deleteOptions"] = options
        response = await self.request("POST", path, json=body)
        result: dict[str, Any] = response.json()
        return result

    def watch(
        self,
        resource: str | Resource,
        *,
        namespace: Namespace = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resource_version: str | None = None,
        timeout_seconds: float | None = None,
        bookmarks: bool = False,
        inactivity_timeout: float = DEFAULT_INACTIVITY_TIMEOUT,
        max_object_size: int = DEFAULT_MAX_OBJECT_SIZE,
        max_failures: float | None = None,
    ) -> Watch:
        """Watch a resource: an async iterator of ``WatchEvent(type, object)``.

        Bookmarks are always requested and used to resume; they are yielded
        only with ``bookmarks=True``. The watch resumes from the last
        resourceVersion after a dropped connection, a server timeout or
        ``inactivity_timeout`` seconds without a byte, with jittered backoff
        (the client's retry policy, capped at 30 s or more). A stream that
        ends less than a second after it opened counts as a failure.
        Without ``resource_version`` the server first sends ADDED events for
        the current objects, then a BOOKMARK annotated
        ``k8s.io/initial-events-end``.

        Args:
            timeout_seconds: ``None`` watches until the caller stops; a number
                ends the iteration quietly after that long.
            bookmarks: yield BOOKMARK events too.
            inactivity_timeout: seconds of silence after which the connection
                counts as dead.
            max_object_size: the largest event accepted, in bytes.
            max_failures: failures in a row (refused or dropped connections,
                5xx, streams ended at once) before giving up; ``None``: the
                client's ``retries``; ``math.inf``: never.

        Raises:
            GoneError: the resourceVersion is too old (HTTP 410, or an ERROR
                event with code 410): list again.
            UnknownResourceError: the spelling matches nothing the server serves.
            TransportError: reconnecting failed more often than
                ``max_failures`` in a row.
            AsyncpodError: the client was closed under the watch.
        """
        if namespace is not None and namespace is not ALL:
            validate_segment(namespace, "namespace")
        watch = Watch(
            self,  # type: ignore[arg-type]
            resource,
            namespace=namespace,
            label_selector=label_selector,
            field_selector=field_selector,
            resource_version=resource_version,
            timeout_seconds=timeout_seconds,
            bookmarks=bookmarks,
            inactivity_timeout=inactivity_timeout,
            max_object_size=max_object_size,
            max_failures=max_failures,
        )
        self._track(watch)
        return watch

    def informer(
        self,
        resource: str | Resource,
        *,
        namespace: Namespace = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        chunk_size: int | None = DEFAULT_CHUNK_SIZE,
        inactivity_timeout: float = DEFAULT_INACTIVITY_TIMEOUT,
        max_failures: float = math.inf,
    ) -> Informer:
        """A local cache of a resource, kept current, and the stream of its changes.

        See :class:`asyncpod.Informer`. ``max_failures`` bounds the watch's
        failures in a row (``math.inf``, the default: never give up on an API
        server that is away).
        """
        from asyncpod._informer import Informer

        informer = Informer(
            self,  # type: ignore[arg-type]
            resource,
            namespace=namespace,
            label_selector=label_selector,
            field_selector=field_selector,
            chunk_size=chunk_size,
            inactivity_timeout=inactivity_timeout,
            max_failures=max_failures,
        )
        self._track(informer)
        return informer

    def logs(
        self,
        name: str,
        *,
        namespace: Namespace = None,
        container: str | None = None,
        follow: bool = False,
        tail_lines: int | None = None,
        since_seconds: int | None = None,
        timestamps: bool = False,
        previous: bool = False,
    ) -> LogLines:
        """The log of a pod's container: an async iterator of lines without the newline.

        Raises:
            NotFoundError: the pod does not exist.
            BadRequestError: the pod has several containers and none was named.
            InvalidNameError: a name could escape its path segment.
        """
        from asyncpod._logs import LogLines

        ns = self._one_namespace(namespace)
        path = f"/api/v1/namespaces/{segment(ns, 'namespace')}/pods/{segment(name, 'name')}/log"
        params: dict[str, Any] = {
            "container": validate_segment(container, "container") if container else None,
            "follow": "true" if follow else None,
            "tailLines": tail_lines,
            "sinceSeconds": since_seconds,
            "timestamps": "true" if timestamps else None,
            "previous": "true" if previous else None,
        }
        lines = LogLines(self, path, params)  # type: ignore[arg-type]
        self._track(lines)
        return lines


def _encode(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, (Sequence, Mapping)):
        return _json.dumps(value)
    msg = f"a patch must be a dict, a list, str or bytes, not {type(value).__name__}"
    raise TypeError(msg)


__all__ = ["ALL", "ListIterator", "ResourceMixin", "object_key"]
