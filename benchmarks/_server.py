"""The server side of the benchmarks: nginx with canned Kubernetes JSON.

One nginx worker serves three listeners: TLS with a bearer-token check (the API
server as a Pod sees it), plain HTTP on loopback (a ``kubectl proxy``) and a
Unix socket (``kubectl proxy --unix-socket``). Idle watches are handed to a
tiny backend that sends a response head and then nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks._data import write_data

REFERENCE = Path(__file__).resolve().parent / "reference"

NGINX_CONF = """\
worker_processes 1;
worker_cpu_affinity {affinity};
worker_rlimit_nofile 20000;
daemon off;
master_process on;
{user}
pid {root}/nginx.pid;
error_log {root}/error.log warn;

events {{
    worker_connections 16000;
    multi_accept on;
}}

http {{
    access_log off;
    default_type application/json;
    sendfile on;
    tcp_nodelay on;
    keepalive_requests 1000000;
    keepalive_timeout 600s;
    open_file_cache max=100 inactive=600s;
    client_body_temp_path {root}/tmp/body;
    proxy_temp_path {root}/tmp/proxy;
    fastcgi_temp_path {root}/tmp/fastcgi;
    uwsgi_temp_path {root}/tmp/uwsgi;
    scgi_temp_path {root}/tmp/scgi;
    # The watch stream goes out chunked, as the API server sends it: the SSI
    # filter drops Content-Length (the file holds no SSI commands).
    ssi_types application/json;
    ssl_session_cache shared:SSL:10m;
    output_buffers 2 256k;
    map_hash_bucket_size 256;

    map $http_authorization $token_ok {{
        "Bearer {token0}" 1;
        "Bearer {token1}" 1;
        default 0;
    }}
    map $http_authorization $token_name {{
        "Bearer {token0}" token0;
        "Bearer {token1}" token1;
        default other;
    }}
    log_format token '$token_name $status';

    upstream idle {{
        server unix:{root}/idle.sock;
    }}

    server {{
        listen 127.0.0.1:{https_port} ssl;
        ssl_certificate {root}/server.pem;
        ssl_certificate_key {root}/server.key;
        if ($token_ok = 0) {{
            return 401 '{unauthorized}';
        }}
        # Before the shared routes: the first matching regex location wins.
        location ~ ^/api/v1/namespaces/rotate/pods/[^/]+$ {{
            access_log {root}/rotate.log token buffer=64k;
            alias {root}/data/pod.json;
        }}
        include {root}/routes.conf;
    }}
    server {{
        listen 127.0.0.1:{http_port};
        include {root}/routes.conf;
    }}
    server {{
        listen unix:{root}/nginx.sock;
        include {root}/routes.conf;
    }}
}}
"""

ROUTES_CONF = """\
location = /version {{ alias {ref}/get-version.json; }}
location = /version/ {{ rewrite ^ /version last; }}
location = /api {{ alias {ref}/get-api.json; }}
location = /api/v1 {{ alias {ref}/get-api-v1.json; }}
location = /apis {{ alias {ref}/get-apis.json; }}
location = /apis/apps/v1 {{ alias {ref}/get-apis-apps-v1.json; }}
location ~ ^/api/v1/namespaces/[^/]+/pods/[^/]+$ {{ alias {root}/data/pod.json; }}
location = /api/v1/namespaces/default/pods {{
    if ($arg_watch ~* "^(true|1)$") {{ rewrite ^ /_watch last; }}
    # A GET by name done as a LIST with metadata.name= (kr8s) gets one item.
    if ($arg_fieldSelector) {{ rewrite ^ /_list1 last; }}
    alias {root}/data/list.json;
}}
location = /api/v1/namespaces/idle/pods {{
    if ($arg_watch ~* "^(true|1)$") {{ rewrite ^ /_idle last; }}
    alias {root}/data/list.json;
}}
location = /_list1 {{
    internal;
    alias {root}/data/list1.json;
}}
location = /_watch {{
    internal;
    ssi on;
    alias {root}/data/watch.ndjson;
}}
location = /_idle {{
    internal;
    proxy_pass http://idle;
    proxy_http_version 1.1;
    proxy_buffering off;
    proxy_read_timeout 3600s;
}}
"""

UNAUTHORIZED = (
    '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
    '"message":"Unauthorized","reason":"Unauthorized","code":401}'
)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_nginx() -> str:
    """The nginx binary; installed with apt-get when missing and running as root."""
    for candidate in (shutil.which("nginx"), "/usr/sbin/nginx"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("nginx not found: installing it with apt-get", file=sys.stderr)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-q"], check=True, env=env, stdout=subprocess.DEVNULL)
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "nginx"],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        if os.access("/usr/sbin/nginx", os.X_OK):
            return "/usr/sbin/nginx"
    msg = "nginx is needed: install it (Debian: apt-get install nginx) and run again"
    raise SystemExit(msg)


def _write_certificates(root: Path) -> None:
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca.cert_pem.write_to_path(str(root / "ca.pem"))
    cert.private_key_pem.write_to_path(str(root / "server.key"))
    cert.cert_chain_pems[0].write_to_path(str(root / "server.pem"))
    for blob in cert.cert_chain_pems[1:]:
        blob.write_to_path(str(root / "server.pem"), append=True)


class _IdleBackend:
    """Answers every request with a chunked 200 head, then stays silent."""

    HEAD = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )

    def __init__(self, path: Path) -> None:
        self.path = path
        self.open = 0
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="idle-backend")

    def start(self) -> None:
        self._thread.start()
        self._started.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_unix_server(self._handle, path=str(self.path), backlog=4096)
        )
        self._started.set()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            self._loop.run_until_complete(server.serve_forever())

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open += 1
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(self.HEAD)
            await writer.drain()
            await reader.read()  # until the peer goes away
        except (Exception, asyncio.CancelledError):
            pass
        finally:
            self.open -= 1
            writer.transport.abort()

    def _shutdown(self) -> None:
        for task in asyncio.all_tasks(self._loop):
            task.cancel()
        self._loop.call_later(0.2, self._loop.stop)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._shutdown)
        self._thread.join(5)


@dataclass
class Server:
    """A running nginx and everything a client needs to reach it."""

    root: Path
    https_port: int
    http_port: int
    tokens: tuple[str, str]
    sizes: dict[str, int] = field(default_factory=dict)

    @property
    def https_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def unix_socket(self) -> Path:
        return self.root / "nginx.sock"

    @property
    def ca_file(self) -> Path:
        return self.root / "ca.pem"

    @property
    def token_file(self) -> Path:
        return self.root / "token"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def proxy_kubeconfig(self) -> Path:
        return self.root / "kubeconfig-proxy"

    idle: _IdleBackend | None = None

    def idle_open(self) -> int:
        """How many idle watches the server holds open right now."""
        return self.idle.open if self.idle is not None else 0

    def rotate_log_counts(self, pid: int) -> dict[str, dict[str, int]]:
        """Requests to the rotation path per token name and status (from nginx's log)."""
        os.kill(pid, signal.SIGUSR1)  # flush the buffered log
        time.sleep(0.3)
        counts: dict[str, dict[str, int]] = {}
        log = self.root / "rotate.log"
        if log.exists():
            for line in log.read_text().splitlines():
                name, _, status = line.partition(" ")
                by_status = counts.setdefault(name, {})
                by_status[status] = by_status.get(status, 0) + 1
        return counts

    def clear_rotate_log(self, pid: int) -> None:
        """Empty the rotation log (flushing nginx's buffer first)."""
        os.kill(pid, signal.SIGUSR1)
        time.sleep(0.3)
        (self.root / "rotate.log").write_text("")


def _kubeconfig(server: str, ca_file: Path, token: str | None) -> str:
    user = f"    token: {token}\n" if token else "    {}\n"
    cluster_tls = f"    certificate-authority: {ca_file}\n" if server.startswith("https") else ""
    return (
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: bench\n  cluster:\n    server: {server}\n{cluster_tls}"
        f"users:\n- name: bench\n  user:\n{user}"
        "contexts:\n- name: bench\n  context:\n    cluster: bench\n    user: bench\n"
        "    namespace: default\n"
        "current-context: bench\n"
    )


class TokenRotator:
    """Rewrites the token file atomically every ``period`` seconds, alternating two tokens."""

    def __init__(self, server: Server, period: float = 1.0) -> None:
        self.server = server
        self.period = period
        self.rotations = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="token-rotator")

    def _run(self) -> None:
        index = 0
        while not self._stop.wait(self.period):
            index ^= 1
            tmp = self.server.token_file.with_suffix(".tmp")
            tmp.write_text(self.server.tokens[index] + "\n")
            os.replace(tmp, self.server.token_file)
            self.rotations += 1

    def __enter__(self) -> TokenRotator:
        self.server.token_file.write_text(self.server.tokens[0] + "\n")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.server.token_file.write_text(self.server.tokens[0] + "\n")


@contextlib.contextmanager
def running_server(server_cpu: int | None) -> Iterator[tuple[Server, int]]:
    """Start nginx (pinned to ``server_cpu``) and yield the server and nginx's pid."""
    nginx = find_nginx()
    root = Path(tempfile.mkdtemp(prefix="asyncpod-bench-"))
    os.chmod(root, 0o755)  # nginx's worker may run as another user
    try:
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (root / "tmp" / sub).mkdir(parents=True)
        sizes = write_data(root / "data")
        _write_certificates(root)
        tokens = (secrets.token_urlsafe(32), secrets.token_urlsafe(32))
        server = Server(root, free_port(), free_port(), tokens, sizes)
        server.token_file.write_text(tokens[0] + "\n")
        server.kubeconfig.write_text(_kubeconfig(server.https_url, server.ca_file, tokens[0]))
        server.proxy_kubeconfig.write_text(_kubeconfig(server.http_url, server.ca_file, None))
        (root / "routes.conf").write_text(ROUTES_CONF.format(root=root, ref=REFERENCE))
        affinity = "auto" if server_cpu is None else format(1 << server_cpu, "b")
        conf = NGINX_CONF.format(
            root=root,
            ref=REFERENCE,
            https_port=server.https_port,
            http_port=server.http_port,
            token0=tokens[0],
            token1=tokens[1],
            unauthorized=UNAUTHORIZED,
            affinity=affinity,
            user="user root;" if os.geteuid() == 0 else "",
        )
        (root / "nginx.conf").write_text(conf)
        idle = _IdleBackend(root / "idle.sock")
        idle.start()
        server.idle = idle

        def pin() -> None:
            if server_cpu is not None:
                os.sched_setaffinity(0, {server_cpu})

        process = subprocess.Popen(
            [nginx, "-p", str(root), "-c", str(root / "nginx.conf"), "-e", str(root / "error.log")],
            preexec_fn=pin,
            stdin=subprocess.DEVNULL,
        )
        try:
            _wait_listening(server, process)
            yield server, process.pid
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            idle.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _wait_listening(server: Server, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = (server.root / "error.log").read_text(errors="replace")
            msg = f"nginx exited with status {process.returncode}:\n{log}"
            raise SystemExit(msg)
        try:
            with socket.create_connection(("127.0.0.1", server.http_port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    msg = "nginx did not start listening within 15 s"
    raise SystemExit(msg)
