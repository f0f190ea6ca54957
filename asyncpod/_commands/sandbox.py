"""``asyncpod sandbox``: serve the embedded API server to other processes until Ctrl-C."""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import yaml

from asyncpod._errors import AsyncpodError, ConfigError

if TYPE_CHECKING:
    from asyncpod.testing import Sandbox

# Applied before the rest, as `kubectl apply -f DIR` users arrange by hand: the
# objects of the other kinds need their namespace, custom resources their type.
_FIRST = ("Namespace", "CustomResourceDefinition")
_MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=0, help="HTTPS port (default: a free one)")
    parser.add_argument(
        "--proxy-port",
        type=int,
        default=0,
        help="plain HTTP port without auth, as kubectl proxy serves (default: a free one)",
    )
    parser.add_argument("--unix-socket", help="serve the proxy listener on this socket too")
    parser.add_argument(
        "--kubeconfig", type=Path, help="write an admin kubeconfig for kubectl and clients here"
    )
    parser.add_argument(
        "--service-account-dir",
        type=Path,
        help="lay out a pod's service-account folder (token, ca.crt, namespace) here",
    )
    parser.add_argument(
        "--namespace",
        default="default",
        help="the namespace of the --service-account-dir pod (default: default)",
    )
    parser.add_argument(
        "--no-kubelet",
        action="store_true",
        help="no fake node: pods stay Pending and deletes are immediate",
    )
    parser.add_argument(
        "--rbac",
        action="store_true",
        help="evaluate Roles, ClusterRoles and bindings as the real authorizer does",
    )
    parser.add_argument(
        "--map-port",
        action="append",
        default=[],
        type=port_mapping,
        metavar="[NS/]POD:PORT=[HOST:]LOCAL",
        help=(
            "port-forward to POD's PORT reaches HOST:LOCAL (127.0.0.1 by default); POD may be "
            "a pattern such as 'web-*' (repeatable)"
        ),
    )
    parser.add_argument(
        "--load",
        action="append",
        default=[],
        type=Path,
        metavar="FILE|DIR",
        help="apply the manifests of a YAML/JSON file or folder at start (repeatable)",
    )


def port_mapping(spec: str) -> tuple[str, str, int, str, int]:
    """``[NAMESPACE/]POD:PORT=[HOST:]LOCAL_PORT`` as (namespace, pod, port, host, local port).

    Raises:
        argparse.ArgumentTypeError: the text is not of that form.
    """
    pod_part, equals, local_part = spec.partition("=")
    namespace, _, pod = pod_part.rpartition("/")
    pod, _, port = pod.rpartition(":")
    host, _, local = local_part.rpartition(":")
    ports = (port, local)
    if not (equals and pod and all(p.isdigit() and 1 <= int(p) <= 65535 for p in ports)):
        msg = f"{spec!r} is not [NAMESPACE/]POD:PORT=[HOST:]LOCAL_PORT (ports 1 to 65535)"
        raise argparse.ArgumentTypeError(msg)
    return namespace or "default", pod, int(port), host or "127.0.0.1", int(local)


def manifest_files(path: Path) -> list[Path]:
    """The manifest files a ``--load`` argument names, in name order for a folder."""
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.suffix in _MANIFEST_SUFFIXES)
    if path.is_file():
        return [path]
    msg = f"--load {path}: no such file or folder"
    raise ConfigError(msg)


def _documents(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        docs = list(yaml.safe_load_all(path.read_text()))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        msg = f"--load {path}: cannot read the manifests: {exc}"
        raise ConfigError(msg) from None
    for index, doc in enumerate(docs):
        if doc is None:
            continue
        if not isinstance(doc, dict) or "kind" not in doc:
            msg = f"--load {path}: document {index + 1} is not a Kubernetes object"
            raise ConfigError(msg)
        if doc["kind"].endswith("List") and isinstance(doc.get("items"), list):
            for item in doc["items"]:
                yield index, item
        else:
            yield index, doc


def load_manifests(sb: Sandbox, paths: list[Path]) -> int:
    """Create the objects of manifest files in the sandbox; returns how many.

    Raises:
        ConfigError: a file is unreadable or an object is refused (naming the
            file, the document and the server's reason).
    """
    from asyncpod.testing import SandboxError

    found = [(f, i, doc) for p in paths for f in manifest_files(p) for i, doc in _documents(f)]
    found.sort(key=lambda entry: _FIRST.index(k) if (k := entry[2]["kind"]) in _FIRST else 2)
    for path, index, doc in found:
        namespace = (doc.get("metadata") or {}).get("namespace")
        try:
            if namespace:
                sb.ensure_namespace(namespace)
            sb.create(doc)
        except (KeyError, SandboxError) as exc:
            reason = exc.args[0] if isinstance(exc, KeyError) else str(exc)
            name = (doc.get("metadata") or {}).get("name", "")
            msg = f"--load {path}: document {index + 1} ({doc['kind']} {name!r}): {reason}"
            raise ConfigError(msg) from None
    return len(found)


def export_lines(sb: Sandbox, kubeconfig: Path, sa_dir: Path | None) -> list[str]:
    """What to paste into a shell to point kubectl and clients at the sandbox."""
    lines = [
        f"export KUBECONFIG={kubeconfig}",
        f"# kubectl proxy style: export ASYNCPOD_PROXY_URL={sb.proxy_url}",
        f"# Unix socket:         export ASYNCPOD_UNIX_SOCKET={sb.unix_socket}",
    ]
    if sa_dir is not None:
        lines.append(
            f"# in a pod: service-account folder {sa_dir} with "
            f"KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT={sb.port}"
        )
    return lines


class _Signals:
    """SIGINT and SIGTERM set an event instead of interrupting, until restored."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _Signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._previous.items():
            signal.signal(sig, old)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.stop.set()

    def wait(self) -> None:
        # A timed wait lets the main thread run the signal handler promptly.
        while not self.stop.wait(0.5):
            pass


def sandbox_class() -> type[Sandbox]:
    """``asyncpod.testing.Sandbox``, or one line saying which extra installs it.

    Raises:
        AsyncpodError: a package of the ``testing`` extra is missing.
    """
    try:
        from asyncpod.testing import Sandbox
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.startswith("asyncpod"):
            raise
        msg = (
            f"the sandbox needs the 'testing' extra ({exc.name.split('.')[0]} is not installed): "
            "pip install 'asyncpod[testing]'"
        )
        raise AsyncpodError(msg) from None
    return Sandbox


def run(args: argparse.Namespace) -> int:
    Sandbox = sandbox_class()
    kwargs: dict[str, Any] = {
        "port": args.port,
        "proxy_port": args.proxy_port,
        "kubelet": not args.no_kubelet,
        "rbac": args.rbac,
    }
    if args.unix_socket:
        kwargs["unix_socket"] = args.unix_socket
    sb = Sandbox(**kwargs)
    try:
        try:
            sb.start()
        except OSError as exc:
            msg = f"cannot listen on port {args.port} or {args.proxy_port}: {exc.strerror}"
            raise ConfigError(msg) from None
        count = load_manifests(sb, args.load)
        for namespace, pod, port, host, local in args.map_port:
            sb.map_port(pod, port, local, namespace=namespace, host=host)
        kubeconfig: Path = sb.kubeconfig
        if args.kubeconfig is not None:
            args.kubeconfig.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(sb.kubeconfig, args.kubeconfig)
            args.kubeconfig.chmod(0o600)
            kubeconfig = args.kubeconfig
        if args.service_account_dir is not None:
            # A day-long token: nothing rotates this folder while the command runs.
            sb.pod_environment(
                args.namespace, root=args.service_account_dir, token_lifetime=86400.0
            )
        # The handlers are in place before the lines that tell a caller we are ready.
        with _Signals() as signals:
            print(f"# asyncpod sandbox: {sb.server_url}, {count} object(s) loaded; Ctrl-C stops it")
            for line in export_lines(sb, kubeconfig, args.service_account_dir):
                print(line)
            sys.stdout.flush()
            signals.wait()
    finally:
        sb.close()
    return 0
