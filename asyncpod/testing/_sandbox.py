"""``Sandbox``: an embedded Kubernetes API server in a background thread."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import copy
import fnmatch
import itertools
import os
import shutil
import socket
import ssl
import tempfile
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import yaml
from aiohttp import web

from asyncpod.testing import _lists, _rbac
from asyncpod.testing._auth import ANONYMOUS, AccessRules, Authenticator, User
from asyncpod.testing._faults import Faults, RequestLog
from asyncpod.testing._kubelet import STREAM_PROTOCOLS
from asyncpod.testing._nodes import FakeKubelet
from asyncpod.testing._objects import Watcher
from asyncpod.testing._patch import merge_patch
from asyncpod.testing._pki import shared_pki
from asyncpod.testing._podenv import PodEnvironment
from asyncpod.testing._resources import ResourceType
from asyncpod.testing._server import Handler
from asyncpod.testing._sockets import abort_transports, close_loop
from asyncpod.testing._status import StatusError
from asyncpod.testing._store import Store

T = TypeVar("T")


class SandboxError(Exception):
    """A sandbox call failed; ``status`` and ``body`` are what the API would answer."""

    def __init__(self, err: StatusError) -> None:
        super().__init__(err.body.get("message", ""))
        self.status = err.status
        self.body = err.body


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Sandbox:
    """An in-memory Kubernetes API server for tests and demos.

    It serves HTTPS with bearer tokens on ``server_url``, plain HTTP without
    auth on ``proxy_url`` (as ``kubectl proxy`` does) and the same on the
    Unix socket ``unix_socket``. Use it as a context manager, or call
    ``start()`` and ``stop()``; a restart keeps the ports and the objects.

    Args:
        bookmark_interval: seconds between watch bookmarks (the API server: 60).
        bookmark_lead: a watch with ``timeoutSeconds`` gets a bookmark this many
            seconds before it ends (the API server: 2).
        history: events kept for watch resumption; older ones are compacted.
        retention: seconds an event stays resumable (``None``: until ``history``
            or ``compact()``).
        token_lifetime: default lifetime of service-account tokens, in seconds.
        directory: where the CA, kubeconfig, socket and pod folders go
            (default: a temporary folder removed by ``close()``).
        root_ca_configmap: create ``kube-root-ca.crt`` in each namespace, as a
            real cluster does.
        port: the HTTPS listener's port (0: a free one).
        proxy_port: the plain HTTP listener's port (0: a free one).
        unix_socket: the Unix socket's path (default: ``proxy.sock`` in ``directory``).
        kubelet: run pods on a fake node, as kwok does: scheduled, then Running
            and Ready, deleted gracefully (``False``: no node, pods stay Pending
            and deletes are immediate). Settable later as ``sb.kubelet``.
        kubelet_delay: seconds between the steps of a pod's life (scheduled,
            running, gone after a graceful delete).
        rbac: evaluate the stored Roles, ClusterRoles and bindings as the real
            authorizer does (with the bootstrap ``cluster-admin`` and
            ``system:basic-user`` roles); the rule table applies as well.
    """

    def __init__(
        self,
        *,
        bookmark_interval: float = 60.0,
        bookmark_lead: float = 2.0,
        history: int = 100_000,
        retention: float | None = None,
        token_lifetime: float = 3600.0,
        directory: str | os.PathLike[str] | None = None,
        root_ca_configmap: bool = True,
        port: int = 0,
        proxy_port: int = 0,
        unix_socket: str | os.PathLike[str] | None = None,
        kubelet: bool = True,
        kubelet_delay: float = 0.02,
        rbac: bool = False,
    ) -> None:
        self.bookmark_interval = bookmark_interval
        self.bookmark_lead = bookmark_lead
        self.token_lifetime = token_lifetime
        self._pki = shared_pki()
        self._owns_directory = directory is None
        self.directory = Path(directory or tempfile.mkdtemp(prefix="asyncpod-sandbox-"))
        self.directory.mkdir(parents=True, exist_ok=True)
        # The folder holds the server's private key: a sandbox that is never
        # closed removes its own folder when collected or at exit, as
        # tempfile.TemporaryDirectory does.
        self._remove_directory = (
            weakref.finalize(self, shutil.rmtree, self.directory, ignore_errors=True)
            if self._owns_directory
            else None
        )
        self._authenticator = Authenticator(self._pki)
        self.faults = Faults()
        self.requests = RequestLog()
        self.rules = AccessRules()
        self._store = Store(history=history, retention=retention)
        self._store.on_change.append(self._track_service_accounts)
        if root_ca_configmap:
            self._store.root_ca = self._pki.ca_pem.decode()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._kubelet = FakeKubelet(self._store, self._later, delay=kubelet_delay)
        self._store.on_change.append(self._kubelet.on_change)
        self._store.later = self._later_or_now
        self.kubelet_default = kubelet
        self.rbac = rbac
        self._store.reset()
        self._bootstrap_rbac()
        self.kubelet = kubelet
        self._open_watches: set[Watcher] = set()
        # Audit-Id values: UUID-shaped, unique, and cheaper than uuid4() per request.
        prefix = uuid.uuid4().hex
        head = f"{prefix[:8]}-{prefix[8:12]}-4{prefix[13:16]}-a{prefix[17:20]}-"
        counter = itertools.count(1)

        def audit_id() -> str:
            return f"{head}{next(counter):012x}"

        self._audit_ids = audit_id
        # The kubelet's side of exec and port-forward (asyncpod.testing._kubelet).
        self.stream_protocols: tuple[str, ...] = STREAM_PROTOCOLS
        self.proxy_rejects_exec = False
        self._mapped_ports: dict[tuple[str, str, int], tuple[str, int]] = {}
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._runners: list[web.BaseRunner] = []
        self._pod_count = 0
        self.port = port
        self.proxy_port = proxy_port
        self.ca_file = self.directory / "ca.crt"
        self.ca_file.write_bytes(self._pki.ca_pem)
        self.unix_socket = str(unix_socket or self.directory / "proxy.sock")
        self.kubeconfig = self.directory / "kubeconfig"
        self._server_cert = self.directory / "server.crt"
        self._server_key = self.directory / "server.key"
        self._server_cert.write_bytes(self._pki.server_cert_pem)
        self._server_key.write_bytes(self._pki.server_key_pem)
        self._server_key.chmod(0o600)

    # ---- addresses

    @property
    def server_url(self) -> str:
        """``https://127.0.0.1:PORT``: TLS from the sandbox's CA, bearer tokens."""
        return f"https://127.0.0.1:{self.port}"

    @property
    def server_address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def proxy_url(self) -> str:
        """``http://127.0.0.1:PORT``: no auth, as ``kubectl proxy`` serves."""
        return f"http://127.0.0.1:{self.proxy_port}"

    @property
    def admin_token(self) -> str:
        """The bearer token of the admin kubeconfig."""
        return self._authenticator.admin_token

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Sandbox {state} {self.server_url} proxy={self.proxy_url}>"

    # ---- life cycle

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> Sandbox:
        """Start serving (again, on the same ports after a ``stop()``)."""
        if self.running:
            return self
        if not self.port:
            self.port = _free_port()
        if not self.proxy_port:
            self.proxy_port = _free_port()
        self._stopping = False
        if os.path.exists(self.unix_socket):
            os.unlink(self.unix_socket)
        loop = asyncio.new_event_loop()
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._loop = loop
        self._thread = threading.Thread(
            target=self._run, args=(loop, ready), name="asyncpod-sandbox", daemon=True
        )
        self._thread.start()
        try:
            ready.result(timeout=30)
        except BaseException:
            self._thread.join(timeout=10)
            self.stop()
            raise
        self._write_kubeconfig()
        self._call(self._kubelet.resync)
        return self

    def _run(self, loop: asyncio.AbstractEventLoop, ready: concurrent.futures.Future[None]) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            close_loop(loop)
            return
        ready.set_result(None)
        try:
            loop.run_forever()
        finally:
            close_loop(loop)

    async def _serve(self) -> None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self._server_cert, self._server_key)
        # HTTP/1.1 only: aiohttp does not speak h2 (the real server would).
        context.set_alpn_protocols(["http/1.1"])
        listeners: list[tuple[str, Callable[[web.BaseRunner], web.BaseSite]]] = [
            (
                "https",
                lambda r: web.TCPSite(
                    r, "127.0.0.1", self.port, ssl_context=context, reuse_address=True
                ),
            ),
            ("proxy", lambda r: web.TCPSite(r, "127.0.0.1", self.proxy_port, reuse_address=True)),
            ("unix", lambda r: web.UnixSite(r, self.unix_socket)),
        ]
        for name, make_site in listeners:
            server = web.Server(Handler(self, name), handler_cancellation=True, access_log=None)
            runner = web.ServerRunner(server, shutdown_timeout=0.5)
            await runner.setup()
            await make_site(runner).start()
            self._runners.append(runner)

    def stop(self) -> None:
        """Stop serving: open watches end, connections close. Objects are kept."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if thread.is_alive() and not loop.is_closed():
            future = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
            try:
                future.result(timeout=10)
            finally:
                loop.call_soon_threadsafe(loop.stop)
                thread.join(timeout=10)
        self._loop = None
        self._thread = None

    async def _shutdown(self) -> None:
        self._stopping = True
        for watcher in list(self._open_watches):
            watcher.close()
        runners, self._runners = self._runners, []
        for runner in runners:
            await runner.cleanup()
        # TLS handshakes in flight and connections stuck in a TLS shutdown
        # with a vanished client are unknown to the runners.
        await abort_transports(asyncio.get_running_loop())

    def close(self) -> None:
        """Stop and remove the sandbox's files (when it made its own folder)."""
        self.stop()
        # aiohttp leaves the socket file; one outside our folder would outlive us.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.unix_socket)
        if self._remove_directory is not None:
            self._remove_directory()

    def _write_kubeconfig(self) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "sandbox",
                    "cluster": {
                        "server": self.server_url,
                        "certificate-authority": str(self.ca_file),
                    },
                }
            ],
            "users": [{"name": "sandbox-admin", "user": {"token": self.admin_token}}],
            "contexts": [
                {
                    "name": "sandbox",
                    "context": {
                        "cluster": "sandbox",
                        "user": "sandbox-admin",
                        "namespace": "default",
                    },
                }
            ],
            "current-context": "sandbox",
            "preferences": {},
        }
        self.kubeconfig.write_text(yaml.safe_dump(config, sort_keys=False))
        self.kubeconfig.chmod(0o600)

    # ---- running code on the server's thread

    def _call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the server's loop (the store's only thread) and return its result."""
        loop = self._loop
        if loop is None or not self.running or threading.current_thread() is self._thread:
            return self._unwrap(fn)
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)

        loop.call_soon_threadsafe(run)
        try:
            return future.result(timeout=30)
        except StatusError as err:
            raise SandboxError(err) from None

    @staticmethod
    def _unwrap(fn: Callable[[], T]) -> T:
        try:
            return fn()
        except StatusError as err:
            raise SandboxError(err) from None

    def _track_service_accounts(self, event: Any) -> None:
        if event.key != ("", "serviceaccounts"):
            return
        meta = event.obj.obj["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        if event.type == "DELETED":
            self._authenticator.service_accounts.pop(key, None)
        else:
            self._authenticator.service_accounts[key] = meta["uid"]

    # ---- authorization

    def _bootstrap_rbac(self) -> None:
        if not self.rbac:
            return
        for obj in _rbac.BOOTSTRAP:
            rt = self._type_of(obj)
            if self._store.find(rt, None, obj["metadata"]["name"]) is None:
                self._store.create(rt, None, copy.deepcopy(obj), manager="kube-apiserver")

    def _may(
        self,
        user: User,
        verb: str,
        group: str,
        resource: str,
        namespace: str | None,
        name: str | None = None,
    ) -> bool:
        """The authorization decision: the rule table, then RBAC when it is on."""
        if user is ANONYMOUS or not self.rules.allowed(user, verb, group, resource, namespace):
            return False
        return not self.rbac or _rbac.allows(
            self._store, user, verb, group, resource, namespace, name
        )

    # ---- the fake node

    def _later(self, delay: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the server's thread after ``delay`` s (dropped when stopped)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        loop.call_later(delay, fn)

    def _later_or_now(self, delay: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` later on the server's thread, or at once when it is stopped."""
        loop = self._loop
        if loop is None or loop.is_closed() or not self.running:
            fn()
        else:
            loop.call_later(delay, fn)

    @property
    def kubelet(self) -> bool:
        """Whether pods run on the fake node (``reset()`` restores the constructor's value)."""
        return self._kubelet.enabled

    @kubelet.setter
    def kubelet(self, enabled: bool) -> None:
        self._call(lambda: self._set_kubelet(enabled))

    def _set_kubelet(self, enabled: bool) -> None:
        self._kubelet.enabled = enabled
        self._store.graceful_pods = enabled
        if enabled:
            self._kubelet.resync()
        else:
            self._kubelet.remove_node()

    @property
    def kubelet_delay(self) -> float:
        """Seconds between the steps of a pod's life on the fake node."""
        return self._kubelet.delay

    @kubelet_delay.setter
    def kubelet_delay(self, seconds: float) -> None:
        self._kubelet.delay = seconds

    def exit_container(
        self,
        pod: str,
        exit_code: int = 0,
        *,
        namespace: str = "default",
        container: str | None = None,
        reason: str | None = None,
        message: str | None = None,
    ) -> dict[str, Any]:
        """Make a running container exit, as if its process ended; returns the pod.

        The pod follows its ``restartPolicy``: ``Always`` (and ``OnFailure``
        after a failure) restarts the container (``restartCount`` + 1, the exit
        in ``lastState``); otherwise it stays terminated and, once none runs,
        the pod is ``Succeeded`` (every exit code 0) or ``Failed``.

        Args:
            pod: the pod's name; it must be Running on the fake node.
            exit_code: the process's exit code (0: it finished).
            namespace: the pod's namespace.
            container: which container (default: the first).
            reason: the terminated state's reason (default ``Completed`` or ``Error``).
            message: the terminated state's message.

        Raises:
            SandboxError: the pod is missing (404) or the container is not running (400).
        """
        return self._call(
            lambda: self._kubelet.exit_container(
                namespace, pod, container, exit_code, reason, message
            )
        )

    # ---- direct access to the state (no HTTP)

    def _type(self, resource: str) -> ResourceType:
        plural, _, group = resource.partition(".")
        for rt in self._store.types.values():
            if rt.group == group and plural in (
                rt.plural,
                rt.singular,
                rt.kind.lower(),
                *rt.short_names,
            ):
                return rt
            if not group and plural in (rt.plural, rt.singular, rt.kind, *rt.short_names):
                return rt
        msg = f"the sandbox serves no resource {resource!r}"
        raise KeyError(msg)

    def _type_of(self, obj: dict[str, Any]) -> ResourceType:
        api_version = str(obj.get("apiVersion", "v1"))
        group = api_version.rpartition("/")[0] if "/" in api_version else ""
        for rt in self._store.types.values():
            if rt.group == group and rt.kind == obj.get("kind"):
                return rt
        msg = f"the sandbox serves no kind {obj.get('kind')!r} in {api_version!r}"
        raise KeyError(msg)

    def create(self, obj: dict[str, Any], *, namespace: str | None = None) -> dict[str, Any]:
        """Store a new object (``apiVersion`` and ``kind`` say its type); returns it."""
        rt = self._type_of(obj)
        ns = (
            namespace
            or (obj.get("metadata") or {}).get("namespace")
            or ("default" if rt.namespaced else None)
        )
        return self._call(lambda: self._store.create(rt, ns, obj, manager="sandbox").copy())

    def get(self, resource: str, name: str, *, namespace: str | None = "default") -> dict[str, Any]:
        """The stored object; raises ``SandboxError`` (404) when missing."""
        rt = self._type(resource)
        return self._call(lambda: self._store.get(rt, namespace, name).copy())

    def objects(self, resource: str, *, namespace: str | None = None) -> list[dict[str, Any]]:
        """Every stored object of a resource (in one namespace, or all)."""
        rt = self._type(resource)
        return self._call(lambda: [s.copy() for s in _lists.select(self._store, rt, namespace)[0]])

    def patch(
        self,
        resource: str,
        name: str,
        patch: dict[str, Any],
        *,
        namespace: str | None = "default",
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """Merge-patch an object, as a controller would (``subresource="status"`` for status).

        Example: ``sb.patch("pods", "web", {"status": {"phase": "Running"}},
        subresource="status")``.
        """
        rt = self._type(resource)

        def run() -> dict[str, Any]:
            current = self._store.get(rt, namespace, name)
            new = merge_patch(current.copy(), patch)
            stored = self._store.replace_object(
                rt, namespace, name, new, manager="sandbox", subresource=subresource
            )
            return stored.copy()

        return self._call(run)

    def delete(
        self,
        resource: str,
        name: str,
        *,
        namespace: str | None = "default",
        grace_period: int | None = None,
    ) -> None:
        """Delete an object (finalizers are honoured; a running pod goes gracefully).

        ``grace_period=0`` deletes a pod at once, as ``kubectl delete --now``.
        """
        rt = self._type(resource)
        self._call(lambda: self._store.delete(rt, namespace, name, grace_period=grace_period))

    def ensure_namespace(self, name: str) -> None:
        """Create the namespace unless it exists."""
        rt = self._store.types[("", "namespaces")]

        def run() -> None:
            if self._store.find(rt, None, name) is None:
                self._store.create(rt, None, {"metadata": {"name": name}}, manager="sandbox")

        self._call(run)

    @property
    def retention(self) -> float | None:
        """Seconds an event stays resumable by a watch (``None``: no time limit)."""
        return self._store.retention

    @retention.setter
    def retention(self, seconds: float | None) -> None:
        self._store.retention = seconds

    @property
    def history(self) -> int:
        """The most events kept for watch resumption."""
        return self._store.history

    @history.setter
    def history(self, events: int) -> None:
        self._store.history = events

    @property
    def open_watches(self) -> int:
        """How many watches are streaming right now."""
        return len(self._open_watches)

    @property
    def resource_version(self) -> int:
        """The newest resourceVersion."""
        return self._store.rv

    def compact(self, resource_version: int | None = None) -> int:
        """Forget the history up to ``resource_version`` (default: all of it).

        A watch resuming from before it gets an ERROR event 410 ``Expired``, a
        continue token from before it gets HTTP 410.
        """
        return self._call(lambda: self._store.compact(resource_version))

    def map_port(
        self,
        pod: str,
        port: int,
        local_port: int,
        *,
        namespace: str = "default",
        host: str = "127.0.0.1",
    ) -> None:
        """Make port-forward to ``pod``'s ``port`` reach ``host:local_port``.

        The sandbox runs no containers; a test serves the pod's port itself
        (an echo server, the app under test) and maps it here. A port that is
        not mapped is refused on the error channel, as a pod port that
        nothing listens on.

        ``pod`` may be a shell-style pattern (``"web-*"``, ``"*"``) for pods
        whose names are generated; pod names cannot contain ``*?[``, so a
        plain name matches only itself. An exact name wins over a pattern.
        """
        self._mapped_ports[(namespace, pod, port)] = (host, local_port)

    def _port_target(self, namespace: str, pod: str, port: int) -> tuple[str, int] | None:
        """Where port-forward to ``pod``'s ``port`` goes, or ``None``: nothing listens."""
        exact = self._mapped_ports.get((namespace, pod, port))
        if exact is not None:
            return exact
        for (ns, pattern, mapped), target in list(self._mapped_ports.items()):
            if ns == namespace and mapped == port and fnmatch.fnmatchcase(pod, pattern):
                return target
        return None

    def reset(self) -> None:
        """Back to a fresh cluster: objects, custom types, faults, rules and the log are cleared.

        Open watches end. The resourceVersion keeps growing.
        """
        self.faults.clear()
        self.rules.clear()
        self.requests.clear()
        self.stream_protocols = STREAM_PROTOCOLS
        self.proxy_rejects_exec = False
        self._mapped_ports.clear()

        def run() -> None:
            for watcher in list(self._open_watches):
                watcher.close()
            self._authenticator.service_accounts.clear()
            self._store.reset()
            self._bootstrap_rbac()
            self._set_kubelet(self.kubelet_default)

        self._call(run)

    def append_log(
        self,
        name: str,
        lines: str | list[str],
        *,
        namespace: str = "default",
        container: str | None = None,
    ) -> None:
        """Add lines to a pod's log (``GET .../pods/NAME/log``, also when following)."""
        rt = self._store.types[("", "pods")]
        items = lines.splitlines() if isinstance(lines, str) else list(lines)

        def run() -> None:
            pod = self._store.get(rt, namespace, name)
            target = container
            if target is None:
                containers = (pod.obj.get("spec") or {}).get("containers") or [{}]
                target = str(containers[0].get("name", ""))
            self._store.append_log(namespace, name, target, items)

        self._call(run)

    def issue_token(
        self,
        namespace: str = "default",
        service_account: str = "default",
        *,
        lifetime: float | None = None,
    ) -> str:
        """A signed token of a service account (created when missing)."""
        uid = self._ensure_service_account(namespace, service_account)
        token, _ = self._authenticator.issue(
            namespace, service_account, uid, lifetime or self.token_lifetime
        )
        return token

    def _ensure_service_account(self, namespace: str, name: str) -> str:
        self.ensure_namespace(namespace)
        rt = self._store.types[("", "serviceaccounts")]

        def run() -> str:
            stored = self._store.find(rt, namespace, name)
            if stored is None:
                stored = self._store.create(
                    rt, namespace, {"metadata": {"name": name}}, manager="sandbox"
                )
            return str(stored.obj["metadata"]["uid"])

        return self._call(run)

    def pod_environment(
        self,
        namespace: str = "default",
        service_account: str = "default",
        *,
        root: str | os.PathLike[str] | None = None,
        token_lifetime: float | None = None,
    ) -> PodEnvironment:
        """Lay out a pod's service-account folder for this sandbox.

        Creates the namespace and the service account when missing.

        Args:
            namespace: the pod's namespace.
            service_account: whose token the pod gets.
            root: the folder (default: a new one inside the sandbox's folder).
            token_lifetime: seconds each token is valid (default: the sandbox's).
        """
        if not self.port:
            msg = "start the sandbox before laying out a pod environment"
            raise RuntimeError(msg)
        uid = self._ensure_service_account(namespace, service_account)
        if root is None:
            self._pod_count += 1
            root = self.directory / "pods" / f"pod-{self._pod_count}" / "serviceaccount"
        return PodEnvironment(
            self,
            Path(root),
            namespace,
            service_account,
            uid,
            token_lifetime or self.token_lifetime,
        )

    def wait_running(
        self, pod: str, *, namespace: str = "default", timeout: float = 5.0
    ) -> dict[str, Any]:
        """Wait until the fake kubelet reports ``pod`` Running; returns it.

        A pod is bound and started a few ``kubelet_delay`` after its creation;
        exec and port-forward need it bound (a real API server answers 400
        "does not have a host assigned" before).

        Raises:
            TimeoutError: not Running after ``timeout`` seconds (no kubelet?).
        """
        found: dict[str, Any] = {}

        def running() -> bool:
            try:
                found.update(self.get("pods", pod, namespace=namespace))
            except SandboxError:
                return False
            return (found.get("status") or {}).get("phase") == "Running"

        self.wait_for(running, timeout)
        return found

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Poll ``predicate`` until true (``TimeoutError`` after ``timeout`` s)."""
        end = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > end:
                msg = "the condition did not become true in time"
                raise TimeoutError(msg)
            time.sleep(0.01)
