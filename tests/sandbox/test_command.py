"""``asyncpod sandbox`` run as a subprocess, reached by kubectl and by asyncpod."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import anyio.abc
import attrs
import httpx
import pytest

import asyncpod
from asyncpod._commands.sandbox import port_mapping
from tests.helpers.processes import popen_interruptible, stop

MANIFESTS = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: team}
data: {mode: fast}
---
apiVersion: v1
kind: Namespace
metadata: {name: team}
"""


@attrs.frozen
class Served:
    """A running ``asyncpod sandbox`` process and what it printed."""

    process: subprocess.Popen[str]
    kubeconfig: Path
    sa_dir: Path
    lines: list[str]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("ASYNCPOD_", "KUBE"))}


def _start(*args: str) -> tuple[subprocess.Popen[str], list[str]]:
    process = popen_interruptible(
        [sys.executable, "-m", "asyncpod", "sandbox", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    assert process.stdout is not None
    last = "# in a pod" if "--service-account-dir" in args else "# Unix socket"
    lines = []
    for line in process.stdout:
        lines.append(line.rstrip("\n"))
        if line.startswith(last):
            break
    return process, lines


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("served")
    (root / "manifests").mkdir()
    (root / "manifests" / "team.yaml").write_text(MANIFESTS)
    kubeconfig = root / "kube" / "config"
    sa_dir = root / "sa"
    process, lines = _start(
        "--kubeconfig",
        str(kubeconfig),
        "--service-account-dir",
        str(sa_dir),
        "--namespace",
        "team",
        "--load",
        str(root / "manifests"),
        "--rbac",
    )
    yield Served(process, kubeconfig, sa_dir, lines)
    assert stop(process) == 0


def test_prints_the_export_lines(served: Served) -> None:
    """The command says where it serves and the line that points kubectl at it."""
    assert served.lines[0].startswith("# asyncpod sandbox: https://127.0.0.1:")
    assert "2 object(s) loaded" in served.lines[0]
    assert f"export KUBECONFIG={served.kubeconfig}" in served.lines
    assert served.kubeconfig.stat().st_mode & 0o077 == 0


@pytest.mark.kubectl
def test_kubectl_reads_the_loaded_objects(served: Served, tmp_path: Path) -> None:
    """kubectl with the written kubeconfig sees the namespaces and the loaded ConfigMap."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    env = {**_env(), "KUBECACHEDIR": str(tmp_path / "cache")}
    run = [kubectl, "--kubeconfig", str(served.kubeconfig)]
    namespaces = subprocess.run(
        [*run, "get", "ns", "-o", "name"], capture_output=True, text=True, env=env, timeout=60
    )
    assert namespaces.returncode == 0, namespaces.stderr
    assert "namespace/team" in namespaces.stdout.split()
    assert "namespace/default" in namespaces.stdout.split()
    mode = subprocess.run(
        [*run, "get", "cm", "settings", "-n", "team", "-o", "jsonpath={.data.mode}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert mode.stdout == "fast", mode.stderr


@pytest.mark.anyio
async def test_asyncpod_reaches_it_through_kubeconfig_and_folder(served: Served) -> None:
    """asyncpod connects with the kubeconfig and the pod's folder; --rbac refuses the pod."""
    async with asyncpod.Client(asyncpod.Config.from_kubeconfig(served.kubeconfig)) as k8s:
        cm = await k8s.get("configmaps", "settings", namespace="team")
        port = int(str(k8s.config.server).rsplit(":", 1)[1])
    assert cm["data"] == {"mode": "fast"}
    assert (served.sa_dir / "namespace").read_text() == "team"
    environ = {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(port)}
    config = asyncpod.Config.in_cluster(root=served.sa_dir, environ=environ)
    async with asyncpod.Client(config) as k8s:
        review = await k8s.create(
            "selfsubjectreviews.authentication.k8s.io",
            {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        )
        with pytest.raises(asyncpod.ForbiddenError):
            await k8s.get("configmaps", "settings")
    assert review["status"]["userInfo"]["username"] == "system:serviceaccount:team:default"


def test_a_refused_manifest_names_file_and_document(tmp_path: Path) -> None:
    """A manifest the server refuses stops the command with one line naming it."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: ok}\n---\nkind: Nope\n")
    result = subprocess.run(
        [sys.executable, "-m", "asyncpod", "sandbox", "--load", str(bad)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.startswith(f"asyncpod: error: --load {bad}: document 2 (Nope")
    assert "Traceback" not in result.stderr


def test_chosen_ports_and_socket(tmp_path: Path) -> None:
    """--proxy-port, --unix-socket and --no-kubelet are honoured; Ctrl-C ends it cleanly."""
    from asyncpod.testing._sandbox import _free_port

    port = _free_port()
    sock = tmp_path / "k.sock"
    process, lines = _start("--proxy-port", str(port), "--unix-socket", str(sock), "--no-kubelet")
    try:
        assert f"# kubectl proxy style: export ASYNCPOD_PROXY_URL=http://127.0.0.1:{port}" in lines
        assert sock.exists()
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(sock))) as client:
            nodes = client.get("http://localhost/api/v1/nodes").json()
        assert nodes["items"] == []
    finally:
        assert stop(process) == 0
    assert not sock.exists()


@pytest.mark.parametrize("command", ["demo", "sandbox"])
def test_without_the_testing_extra_one_line_names_it(command: str) -> None:
    """On a plain install (no cryptography) demo and sandbox say which extra to install."""
    # None in sys.modules makes `import cryptography` fail as on an install without it.
    code = (
        "import sys; sys.modules['cryptography'] = None\n"
        "from asyncpod._cli import main\n"
        f"sys.exit(main([{command!r}]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=60
    )
    assert result.returncode == 1
    assert result.stderr == (
        "asyncpod: error: the sandbox needs the 'testing' extra (cryptography is not "
        "installed): pip install 'asyncpod[testing]'\n"
    )
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("text", "mapping"),
    [
        ("db-0:5432=15432", ("default", "db-0", 5432, "127.0.0.1", 15432)),
        ("team/web:80=8080", ("team", "web", 80, "127.0.0.1", 8080)),
        ("web-*:80=10.0.0.1:8080", ("default", "web-*", 80, "10.0.0.1", 8080)),
    ],
)
def test_map_port_argument(text: str, mapping: tuple[str, str, int, str, int]) -> None:
    """``--map-port [NAMESPACE/]POD:PORT=[HOST:]LOCAL_PORT``: a pod (or pattern), a local port."""
    assert port_mapping(text) == mapping


@pytest.mark.parametrize(
    "text", ["db-0", "db-0:5432", ":80=81", "web:0=80", "web:80=65536", "web=80", "web:80=x"]
)
def test_bad_map_port_argument_is_refused(text: str) -> None:
    """A malformed mapping stops the command with its expected form."""
    with pytest.raises(argparse.ArgumentTypeError, match="NAMESPACE/"):
        port_mapping(text)


@pytest.mark.anyio
async def test_map_port_reaches_pods_with_generated_names(tmp_path: Path) -> None:
    """--map-port 'web-*:80=PORT': port-forward to any web-... pod's port 80 reaches PORT."""

    async def echo(client: anyio.abc.SocketStream) -> None:
        async with client:
            with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError):
                while True:
                    await client.send(await client.receive())

    kubeconfig = tmp_path / "config"
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tasks:
        tasks.start_soon(listener.serve, echo)
        process, _ = _start("--kubeconfig", str(kubeconfig), "--map-port", f"web-*:80={port}")
        try:
            config = asyncpod.Config.from_kubeconfig(kubeconfig)
            async with asyncpod.Client(config) as k8s:
                spec = {"containers": [{"name": "a", "image": "a"}]}
                pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-7f9c"}}
                created = await k8s.create("pods", {**pod, "spec": spec})
                version = created["metadata"]["resourceVersion"]
                with anyio.fail_after(10):
                    async with k8s.watch("pods", resource_version=version) as events:
                        async for event in events:
                            if event.object["status"].get("phase") == "Running":
                                break
                async with k8s.port_forward("web-7f9c", 80) as stream:
                    await stream.send(b"mapped")
                    assert await stream.receive() == b"mapped"
        finally:
            assert stop(process) == 0
        tasks.cancel_scope.cancel()
