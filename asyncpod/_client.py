"""``Client``: the async entry point of asyncpod, the resource verbs on a ``Session``.

Each verb resolves the resource through discovery, builds its request with
a pure builder of ``_requests``, sends it on the session and decodes the
answer. The streams get the session and a path resolver, never the client.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from asyncpod import _requests as build
from asyncpod._discovery import Discovery, Resource
from asyncpod._informer import Informer
from asyncpod._leader import (
    DEFAULT_LEASE_DURATION,
    DEFAULT_RENEW_DEADLINE,
    DEFAULT_RETRY_PERIOD,
    LeaderElection,
)
from asyncpod._list import ListIterator, PathResolver
from asyncpod._logs import LogLines
from asyncpod._paths import ALL, validate_segment
from asyncpod._portforward import (
    PortForwarder,
    PortForwardStream,
    open_port_forward,
    serve_port_forward,
)
from asyncpod._remote import CommandResult, RemoteProcess, open_process, run_command
from asyncpod._requests import Namespace, PatchType, PropagationPolicy, RequestSpec
from asyncpod._session import Session
from asyncpod._watch import DEFAULT_INACTIVITY_TIMEOUT, DEFAULT_MAX_OBJECT_SIZE, Watch

DEFAULT_CHUNK_SIZE = 500


class Client(Session):
    """An async client of one Kubernetes API server.

    Use it as an async context manager; it owns a connection pool.

    Args:
        config: where and how to connect; ``None`` walks ``load_config()``.
        transport: a ready transport, overriding the one the config names.
        timeout: the default deadline in seconds of one non-streaming call,
            connect included; ``None`` disables it.
        max_connections: the size of the connection pool.
        retries: the most retries of one call (0 disables), or a
            ``RetryPolicy``.
        engine: ``"anyio"`` (the default, on any event loop) or ``"aiohttp"``
            (asyncio only).
        connect_timeout: seconds to open one connection, TLS included
            (``None``: only the call's deadline applies).
        rate_limit: ``(qps, burst)`` of a client-side token bucket; ``None``
            (the default) sends without waiting.
        on_event: called with a ``RequestEvent``, ``RetryEvent``... for
            metrics; must be quick and must not block.
        max_response_size: the most bytes of one non-streaming answer
            (``None``: no limit); a larger one raises ``ResponseTooLargeError``.
    """

    _discovery: Discovery | None = None

    # -- discovery -------------------------------------------------------------

    @property
    def discovery(self) -> Discovery:
        """The discovery cache of this client."""
        if self._discovery is None:
            self._discovery = Discovery(self.get_json)
        return self._discovery

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

    def _collection(self, resource: str | Resource, namespace: Namespace) -> PathResolver:
        """A resolver of the path a list or watch reads, run when the stream starts."""
        if namespace is not None and namespace is not ALL:
            validate_segment(namespace, "namespace")

        async def resolve() -> str:
            res = await self.resource(resource)
            return build.collection_path(res, namespace, self.config.namespace)

        return resolve

    async def _call(self, spec: RequestSpec) -> dict[str, Any]:
        response = await self.request(
            spec.method,
            spec.path,
            params=spec.params,
            json=spec.json,
            content=spec.content,
            headers=spec.headers,
        )
        result: dict[str, Any] = response.json()
        return result

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
        spec = build.get_request(
            res,
            name,
            namespace=namespace,
            default_namespace=self.config.namespace,
            subresource=subresource,
        )
        result: dict[str, Any] = await self.get_json(spec.path)
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
            ProtocolError: a page is malformed, or the server hands back a
                continue token it gave before (the list would never end).
        """
        params = build.list_params(
            label_selector=label_selector,
            field_selector=field_selector,
            resource_version=resource_version,
        )
        return ListIterator(self, self._collection(resource, namespace), params, chunk_size)

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
            InvalidNameError: the namespace could escape its path segment, or
                ``namespace=`` differs from the object's ``metadata.namespace``.
        """
        res = await self.resource(resource)
        spec = build.create_request(
            res,
            obj,
            namespace=namespace,
            default_namespace=self.config.namespace,
            dry_run=dry_run,
            field_manager=field_manager,
        )
        return await self._call(spec)

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
            InvalidNameError: ``metadata.name`` could escape its path segment, or
                ``namespace=`` differs from the object's ``metadata.namespace``.
        """
        res = await self.resource(resource)
        spec = build.replace_request(
            res,
            obj,
            namespace=namespace,
            default_namespace=self.config.namespace,
            dry_run=dry_run,
            field_manager=field_manager,
            subresource=subresource,
        )
        return await self._call(spec)

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
            InvalidNameError: the patch would move the object to another namespace.
        """
        build.patch_content_type(patch_type)  # refused before any discovery request
        validate_segment(name, "name")
        res = await self.resource(resource)
        spec = build.patch_request(
            res,
            name,
            patch,
            namespace=namespace,
            default_namespace=self.config.namespace,
            patch_type=patch_type,
            subresource=subresource,
            dry_run=dry_run,
            field_manager=field_manager,
        )
        return await self._call(spec)

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
            namespace: the namespace when the object names none (else it must
                agree with ``metadata.namespace``), then the config's.
            dry_run: validate without storing.
            subresource: such as ``"status"``.

        Raises:
            ConflictError: another manager owns a field and ``force`` is false.
            UnknownResourceError: the server serves no such kind.
            InvalidNameError: a name could escape its path segment, or
                ``namespace=`` differs from the object's ``metadata.namespace``.
        """
        api_version, kind = build.apply_kind(obj, field_manager)
        res = await self.discovery.resource_for_kind(api_version, kind)
        spec = build.apply_request(
            res,
            obj,
            field_manager=field_manager,
            namespace=namespace,
            default_namespace=self.config.namespace,
            force=force,
            dry_run=dry_run,
            subresource=subresource,
        )
        return await self._call(spec)

    async def delete(
        self,
        resource: str | Resource,
        name: str,
        *,
        namespace: Namespace = None,
        propagation_policy: PropagationPolicy | None = None,
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
        spec = build.delete_request(
            res,
            name,
            namespace=namespace,
            default_namespace=self.config.namespace,
            propagation_policy=propagation_policy,
            grace_period_seconds=grace_period_seconds,
            preconditions=preconditions,
            dry_run=dry_run,
        )
        return await self._call(spec)

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
        spec = build.evict_request(
            name,
            namespace=namespace,
            default_namespace=self.config.namespace,
            grace_period_seconds=grace_period_seconds,
            dry_run=dry_run,
        )
        return await self._call(spec)

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
        watch = Watch(
            self,
            self._collection(resource, namespace),
            label_selector=label_selector,
            field_selector=field_selector,
            resource_version=resource_version,
            timeout_seconds=timeout_seconds,
            bookmarks=bookmarks,
            inactivity_timeout=inactivity_timeout,
            max_object_size=max_object_size,
            max_failures=max_failures,
        )
        self.track(watch)
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
        informer = Informer(
            self,
            self._collection(resource, namespace),
            label_selector=label_selector,
            field_selector=field_selector,
            chunk_size=chunk_size,
            inactivity_timeout=inactivity_timeout,
            max_failures=max_failures,
        )
        self.track(informer)
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
        spec = build.logs_request(
            name,
            namespace=namespace,
            default_namespace=self.config.namespace,
            container=container,
            follow=follow,
            tail_lines=tail_lines,
            since_seconds=since_seconds,
            timestamps=timestamps,
            previous=previous,
        )
        lines = LogLines(self, spec.path, spec.params)
        self.track(lines)
        return lines

    async def exec(
        self,
        name: str,
        command: Sequence[str],
        *,
        namespace: Namespace = None,
        container: str | None = None,
        stdin: bytes | None = None,
        timeout: float | None = None,
        check: bool = False,
    ) -> CommandResult:
        """Run a command in a pod's container to its end: ``kubectl exec``.

        The command is a list of arguments, never a shell line
        (``["sh", "-c", "..."]`` for one). Output is collected whole, as bytes.

        Args:
            name: the pod.
            command: the program and its arguments.
            namespace: the pod's namespace; the config's by default.
            container: which container; needed when the pod has several.
            stdin: bytes written to the command's stdin, which is then closed
                (needs ``v5.channel.k8s.io``); ``None`` gives it no stdin.
            timeout: seconds the whole command may take (``None``: no limit).
            check: raise ``CommandError`` on a non-zero exit code.

        Returns:
            ``CommandResult`` with ``stdout``, ``stderr``, ``exit_code``, ``protocol``.

        Raises:
            CommandError: ``check`` and a non-zero exit code (it carries the
                output), or the command could not be started.
            NotFoundError: no such pod. ForbiddenError: no right to
                ``pods/exec``, or a ``kubectl proxy`` that rejects exec.
            BadRequestError: the pod has no node yet, or no such container.
            RequestTimeoutError: ``timeout`` passed first.
            TransportError: the connection failed or broke.
        """
        spec = build.exec_request(
            name,
            command,
            namespace=namespace,
            default_namespace=self.config.namespace,
            container=container,
            stdin=stdin is not None,
        )
        return await run_command(
            self, spec.path, spec.params, stdin=stdin, timeout=timeout, check=check
        )

    def stream_exec(
        self,
        name: str,
        command: Sequence[str],
        *,
        namespace: Namespace = None,
        container: str | None = None,
        stdin: bool = False,
        tty: bool = False,
    ) -> AbstractAsyncContextManager[RemoteProcess]:
        """Run a command with streaming I/O: ``async with k8s.stream_exec(...) as proc``.

        ``proc.stdin`` (with ``stdin=True``), ``proc.stdout`` and ``proc.stderr``
        are anyio byte streams; ``await proc.close_stdin()``,
        ``await proc.resize(w, h)`` (with ``tty=True``), ``await proc.wait()``
        for the exit code. Leaving the block closes the session.

        Raises:
            As ``exec()``, when the block is entered.
        """
        spec = build.exec_request(
            name,
            command,
            namespace=namespace,
            default_namespace=self.config.namespace,
            container=container,
            stdin=stdin,
            tty=tty,
        )
        return open_process(self, spec.path, spec.params, stdin=stdin, stderr=not tty)

    def attach(
        self,
        name: str,
        *,
        namespace: Namespace = None,
        container: str | None = None,
        stdin: bool = False,
        tty: bool = False,
    ) -> AbstractAsyncContextManager[RemoteProcess]:
        """Attach to the main process of a container: ``kubectl attach``, as ``stream_exec``."""
        spec = build.attach_request(
            name,
            namespace=namespace,
            default_namespace=self.config.namespace,
            container=container,
            stdin=stdin,
            tty=tty,
        )
        return open_process(self, spec.path, spec.params, stdin=stdin, stderr=not tty)

    def port_forward(
        self, name: str, port: int, *, namespace: Namespace = None
    ) -> AbstractAsyncContextManager[PortForwardStream]:
        """One TCP connection to a pod's port, as an anyio byte stream.

        ``async with k8s.port_forward("db-0", 5432) as stream:``. ``receive()``
        raises ``PortForwardError`` with the server's text when forwarding
        failed (nothing listens on the port).

        Raises:
            NotFoundError, ForbiddenError, BadRequestError, TransportError:
                as ``exec()``, when the block is entered.
        """
        spec = build.portforward_request(
            name, port, namespace=namespace, default_namespace=self.config.namespace
        )
        return open_port_forward(self, spec.path, spec.params, f"port-forward to {name}:{port}")

    def forward_port(
        self,
        name: str,
        remote_port: int,
        *,
        local_port: int = 0,
        namespace: Namespace = None,
        host: str = "127.0.0.1",
    ) -> AbstractAsyncContextManager[PortForwarder]:
        """A local TCP listener forwarding each connection to a pod's port.

        ``async with k8s.forward_port("web-0", 8080) as listener:`` then
        connect to ``listener.host:listener.port``. Each accepted connection
        gets its own WebSocket; an error on one is logged and kept in
        ``listener.errors``, the others go on.

        Raises:
            AsyncpodError: the local port cannot be listened on.
        """
        spec = build.portforward_request(
            name, remote_port, namespace=namespace, default_namespace=self.config.namespace
        )
        return serve_port_forward(
            self,
            spec.path,
            spec.params,
            f"port-forward to {name}:{remote_port}",
            host=host,
            local_port=local_port,
        )

    def leader_election(
        self,
        name: str,
        *,
        namespace: str | None = None,
        identity: str | None = None,
        lease_duration: float = DEFAULT_LEASE_DURATION,
        renew_deadline: float = DEFAULT_RENEW_DEADLINE,
        retry_period: float = DEFAULT_RETRY_PERIOD,
        release_on_cancel: bool = True,
    ) -> AbstractAsyncContextManager[LeaderElection]:
        """Lead on the Lease ``name``: ``async with k8s.leader_election("my-operator"):``.

        Entering waits until this process leads; the block runs only while it
        does. When a renewal fails for ``renew_deadline`` the block is
        cancelled and ``LeadershipLostError`` is raised. Leaving the block
        releases the Lease (with ``release_on_cancel``). See
        :class:`asyncpod.LeaderElection` for the semantics (client-go's).

        Args:
            name: the Lease's name, shared by all candidates.
            namespace: the Lease's namespace; the config's by default.
            identity: this candidate's name, unique per process (hostname and
                a random suffix by default).
            lease_duration: seconds the others wait after the last renewal they saw.
            renew_deadline: seconds the leader keeps trying to renew before it
                stops; below ``lease_duration``.
            retry_period: seconds between attempts.
            release_on_cancel: give the Lease up when the block ends.

        Raises:
            LeadershipLostError: from the block's end, when leadership was lost.
            ValueError: the durations do not satisfy client-go's checks.
        """
        election = LeaderElection(
            self,
            name,
            namespace=namespace or self.config.namespace,
            identity=identity,
            lease_duration=lease_duration,
            renew_deadline=renew_deadline,
            retry_period=retry_period,
            release_on_cancel=release_on_cancel,
        )
        return election.hold()


__all__ = ["DEFAULT_CHUNK_SIZE", "Client"]
