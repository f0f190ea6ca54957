"""Acceptance test of the public contract (API.md), against the sandbox on asyncio and trio.

Each test follows one promise of API.md, in the page's order: the "Quick look",
configuration, the client, resources, watches, logs, errors, timeouts, the
sandbox and its pytest plugin, and the command line.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest
import yaml

import asyncpod
from asyncpod.testing import PodEnvironment, Sandbox
from tests.helpers.processes import popen_interruptible, reap

pytestmark = pytest.mark.anyio

ENV_PREFIXES = ("ASYNCPOD_", "KUBE", "POD_NAMESPACE")


def _configmap(
    name: str, namespace: str | None = None, data: dict[str, str] | None = None, **labels: str
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    if labels:
        metadata["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data or {}}


def _pod(name: str, namespace: str = "default", **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"containers": [{"name": "app", "image": "nginx"}]},
    }


def _deployment(name: str, namespace: str = "default") -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "nginx"}]},
            },
        },
    }


def _in_cluster(pod: PodEnvironment) -> asyncpod.Config:
    """The config a process in that pod gets from the chain."""
    return asyncpod.load_config(environ=pod.environ, service_account_dir=pod.root)


def _names(items: list[dict[str, Any]]) -> list[str]:
    return sorted(item["metadata"]["name"] for item in items)


@pytest.fixture
def clean_environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A process environment without any Kubernetes or asyncpod variable, HOME empty."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIXES):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))


# ---------------------------------------------------------------------------
# Quick look


async def test_quick_look_runs_as_written(sandbox: Sandbox, tmp_path: Path) -> None:
    """The Quick look code runs unchanged inside a pod of namespace "team"."""
    pod_env = sandbox.pod_environment(namespace="team", root=tmp_path / "sa")
    sandbox.create(_pod("web-0", namespace="team"))
    sandbox.create(_configmap("web-config", namespace="team", app="web"))
    sandbox.create(_configmap("db-config", namespace="team", app="db"))
    # A settled cluster: web-0 runs, so the watch's first event is web-1's.
    sandbox.wait_for(
        lambda: sandbox.get("pods", "web-0", namespace="team")["status"]["phase"] == "Running"
    )
    seen: dict[str, Any] = {}

    async def main() -> None:
        config = asyncpod.load_config(environ=pod_env.environ, service_account_dir=pod_env.root)
        async with asyncpod.Client(config) as k8s:  # the config chain picks route and auth
            seen["source"] = k8s.config.source
            versions = await k8s.get_json("/api")
            pod = await k8s.get("pods", "web-0")  # namespace defaults to the pod's own
            configmaps = k8s.list("configmaps", label_selector="app=web")
            seen["configmaps"] = [cm async for cm in configmaps]
            rv = configmaps.resource_version
            await k8s.create("pods", _pod("web-1", namespace="team"))
            async for event in k8s.watch("pods", resource_version=rv):
                seen["event"] = (event.type, event.object["metadata"]["name"])
                break
            seen["versions"], seen["pod"] = versions, pod

    await main()
    assert seen["source"] == "in-cluster"
    assert seen["versions"]["kind"] == "APIVersions"
    assert seen["pod"]["metadata"]["namespace"] == "team"
    assert _names(seen["configmaps"]) == ["web-config"]
    assert seen["event"] == ("ADDED", "web-1")


QUICK_LOOK_SCRIPT = """
import gc
import sys

import asyncpod

SERVICE_ACCOUNT_DIR = sys.argv[2]


async def main() -> None:
    config = asyncpod.load_config(service_account_dir=SERVICE_ACCOUNT_DIR)
    async with asyncpod.Client(config) as k8s:
        print(k8s.config.source)
        versions = await k8s.get_json("/api")
        pod = await k8s.get("pods", "web-0")
        print(versions["kind"], pod["metadata"]["namespace"])
        configmaps = k8s.list("configmaps", label_selector="app=web")
        async for cm in configmaps:
            print("configmap", cm["metadata"]["name"])
        rv = configmaps.resource_version
        await k8s.delete("pods", "web-0")
        async for event in k8s.watch("pods", resource_version=rv):
            print(event.type, event.object["metadata"]["name"])
            break


if sys.argv[1] == "asyncio":
    import asyncio

    asyncio.run(main())
else:
    import trio

    trio.run(main)
# What the program does next: anything left unclosed is found now, not at exit.
gc.collect()
"""


def test_quick_look_under_asyncio_run_and_trio_run(sandbox: Sandbox, tmp_path: Path) -> None:
    """The Quick look as a program: same output under asyncio.run and trio.run, no warning."""
    # An unscheduled pod is deleted at once: the watch's first event is its DELETED.
    sandbox.kubelet = False
    pod_env = sandbox.pod_environment(namespace="team", root=tmp_path / "sa")
    sandbox.create(_configmap("web-config", namespace="team", app="web"))
    script = tmp_path / "quick_look.py"
    script.write_text(QUICK_LOOK_SCRIPT)
    env = _cli_env(**pod_env.environ, HOME=str(tmp_path))

    def run(library: str) -> subprocess.CompletedProcess[str]:
        # -X dev -W error: an unclosed socket or response shows up on stderr.
        command = [sys.executable, "-X", "dev", "-W", "error", str(script), library]
        return subprocess.run(
            [*command, str(pod_env.root)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    for library in ("asyncio", "trio"):
        sandbox.create(_pod("web-0", namespace="team"))
        result = run(library)
        assert result.returncode == 0, result.stderr
        assert "Warning" not in result.stderr, result.stderr
        assert result.stdout.splitlines() == [
            "in-cluster",
            "APIVersions team",
            "configmap web-config",
            "DELETED web-0",
        ]


async def test_client_without_config_walks_the_chain(
    sandbox: Sandbox, clean_environ: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Client() with no config reads the process environment (here a Unix-socket sidecar)."""
    monkeypatch.setenv("ASYNCPOD_UNIX_SOCKET", sandbox.unix_socket)
    client = asyncpod.Client()
    with pytest.raises(asyncpod.AsyncpodError):
        _ = client.config  # resolved only when the client is entered
    async with client as k8s:
        assert k8s.config.source == "unix"
        assert (await k8s.get_json("/api"))["kind"] == "APIVersions"


# ---------------------------------------------------------------------------
# Configuration: the chain


async def test_every_link_of_the_chain_connects(
    sandbox: Sandbox, pod_environment: PodEnvironment, tmp_path: Path
) -> None:
    """Each link, alone in the environment, gives a config that reaches the sandbox."""
    root = pod_environment.root
    home = {"HOME": str(tmp_path)}
    cases = {
        "unix": {**home, "ASYNCPOD_UNIX_SOCKET": sandbox.unix_socket},
        "proxy": {**home, "ASYNCPOD_PROXY_URL": sandbox.proxy_url},
        "in-cluster": {**home, **pod_environment.environ},
        "kubeconfig": {**home, "KUBECONFIG": str(sandbox.kubeconfig)},
    }
    for link, environ in cases.items():
        config = asyncpod.load_config(environ=environ, service_account_dir=root)
        assert config.source == link
        async with asyncpod.Client(config) as k8s:
            assert (await k8s.get_json("/api"))["kind"] == "APIVersions"
    servers = {
        link: asyncpod.load_config(environ=env, service_account_dir=root).server
        for link, env in cases.items()
    }
    assert servers == {
        "unix": None,
        "proxy": sandbox.proxy_url,
        "in-cluster": sandbox.server_url,
        "kubeconfig": sandbox.server_url,
    }


def test_chain_order_restriction_and_reasons(
    sandbox: Sandbox, pod_environment: PodEnvironment, tmp_path: Path
) -> None:
    """The default order is unix, proxy, in-cluster, kubeconfig; chain= restricts and reorders."""
    root = pod_environment.root
    everything = {
        "HOME": str(tmp_path),
        "ASYNCPOD_UNIX_SOCKET": sandbox.unix_socket,
        "ASYNCPOD_PROXY_URL": sandbox.proxy_url,
        "KUBECONFIG": str(sandbox.kubeconfig),
        **pod_environment.environ,
    }

    def source(environ: dict[str, str], chain: tuple[str, ...] | None = None) -> str:
        return asyncpod.load_config(chain=chain, environ=environ, service_account_dir=root).source

    assert source(everything) == "unix"
    del everything["ASYNCPOD_UNIX_SOCKET"]
    assert source(everything) == "proxy"
    assert source(everything, ("in-cluster", "kubeconfig")) == "in-cluster"
    assert source(everything, ("kubeconfig", "in-cluster")) == "kubeconfig"
    del everything["ASYNCPOD_PROXY_URL"]
    assert source(everything) == "in-cluster"
    assert source({"HOME": str(tmp_path), "KUBECONFIG": str(sandbox.kubeconfig)}) == "kubeconfig"

    with pytest.raises(asyncpod.ConfigError) as caught:
        asyncpod.load_config(environ={"HOME": str(tmp_path)}, service_account_dir=root)
    reasons = str(caught.value).splitlines()[1:]
    assert [line.split(":")[0].strip() for line in reasons] == [
        "unix",
        "proxy",
        "in-cluster",
        "kubeconfig",
    ]
    assert "ASYNCPOD_UNIX_SOCKET" in reasons[0]
    assert "ASYNCPOD_PROXY_URL" in reasons[1]
    assert "KUBERNETES_SERVICE_HOST" in reasons[2]
    assert ".kube/config" in reasons[3]

    # In a pod whose token file is missing, the in-cluster link says so.
    with pytest.raises(asyncpod.ConfigError) as caught:
        asyncpod.load_config(
            chain=("in-cluster",),
            environ=pod_environment.environ,
            service_account_dir=tmp_path / "nowhere",
        )
    assert str(tmp_path / "nowhere" / "token") in str(caught.value)


def test_kubeconfig_list_is_merged_as_kubectl_does(sandbox: Sandbox, tmp_path: Path) -> None:
    """KUBECONFIG with several paths: the first file naming a value wins; missing files skip."""
    first = tmp_path / "first.yaml"
    first.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "team",
                "contexts": [
                    {
                        "name": "team",
                        "context": {
                            "cluster": "sandbox",
                            "user": "sandbox-admin",
                            "namespace": "team",
                        },
                    }
                ],
            }
        )
    )
    paths = os.pathsep.join([str(tmp_path / "missing"), str(first), str(sandbox.kubeconfig)])
    config = asyncpod.load_config(
        chain=("kubeconfig",), environ={"KUBECONFIG": paths, "HOME": str(tmp_path)}
    )
    assert config.source == "kubeconfig"
    assert config.server == sandbox.server_url
    assert config.namespace == "team"


# ---------------------------------------------------------------------------
# Configuration: explicit constructors


def _folder(tmp_path: Path, pod: PodEnvironment, *, skip: tuple[str, ...] = ()) -> Path:
    """A copy of a pod's service-account folder without the files in ``skip``."""
    root = tmp_path / "copy"
    root.mkdir()
    for name in ("token", "ca.crt", "namespace"):
        if name not in skip:
            (root / name).write_bytes((pod.root / name).read_bytes())
    return root


async def test_config_in_cluster_reads_the_folder_and_variables(
    sandbox: Sandbox, pod_environment: PodEnvironment
) -> None:
    """Config.in_cluster: host and port from the variables, token, CA, namespace from the folder."""
    config = asyncpod.Config.in_cluster(root=pod_environment.root, environ=pod_environment.environ)
    assert (config.source, config.server, config.namespace) == (
        "in-cluster",
        sandbox.server_url,
        "default",
    )
    async with asyncpod.Client(config) as k8s:
        review = await k8s.request(
            "POST",
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            json={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        )
    user = review.json()["status"]["userInfo"]["username"]
    assert user == "system:serviceaccount:default:default"


def test_config_in_cluster_host_port_and_namespace_rules(
    pod_environment: PodEnvironment, tmp_path: Path
) -> None:
    """IPv6 hosts are bracketed; _PORT_HTTPS, then _PORT, then 443; POD_NAMESPACE wins."""
    root = pod_environment.root

    def config(**environ: str) -> asyncpod.Config:
        return asyncpod.Config.in_cluster(root=root, environ=environ)

    assert config(KUBERNETES_SERVICE_HOST="fd00::1").server == "https://[fd00::1]:443"
    both = {"KUBERNETES_SERVICE_PORT_HTTPS": "6443", "KUBERNETES_SERVICE_PORT": "443"}
    assert config(KUBERNETES_SERVICE_HOST="10.0.0.1", **both).server == "https://10.0.0.1:6443"
    only_port = {"KUBERNETES_SERVICE_PORT_HTTPS": "", "KUBERNETES_SERVICE_PORT": "8443"}
    assert config(KUBERNETES_SERVICE_HOST="h", **only_port).server == "https://h:8443"
    assert config(KUBERNETES_SERVICE_HOST="h", KUBERNETES_SERVICE_PORT="").server == (
        "https://h:443"
    )
    with pytest.raises(asyncpod.ConfigError, match="KUBERNETES_SERVICE_PORT_HTTPS"):
        config(KUBERNETES_SERVICE_HOST="h", KUBERNETES_SERVICE_PORT_HTTPS="https")
    with pytest.raises(asyncpod.ConfigError, match="KUBERNETES_SERVICE_HOST"):
        config()
    assert config(KUBERNETES_SERVICE_HOST="h", POD_NAMESPACE="mine").namespace == "mine"
    no_namespace = _folder(tmp_path, pod_environment, skip=("namespace",))
    assert (
        asyncpod.Config.in_cluster(
            root=no_namespace, environ={"KUBERNETES_SERVICE_HOST": "h"}
        ).namespace
        == "default"
    )


def test_config_in_cluster_token_and_ca_files(
    pod_environment: PodEnvironment, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A missing or empty token is an error naming the file; a missing CA falls back, warned."""
    environ = {"KUBERNETES_SERVICE_HOST": "127.0.0.1"}
    no_token = _folder(tmp_path, pod_environment, skip=("token",))
    with pytest.raises(asyncpod.ConfigError, match=str(no_token / "token")):
        asyncpod.Config.in_cluster(root=no_token, environ=environ)
    (no_token / "token").write_text("")
    with pytest.raises(asyncpod.ConfigError, match="empty"):
        asyncpod.Config.in_cluster(root=no_token, environ=environ)
    (no_token / "ca.crt").unlink()
    (no_token / "token").write_text(pod_environment.token)
    with caplog.at_level(logging.WARNING, logger="asyncpod"):
        config = asyncpod.Config.in_cluster(root=no_token, environ=environ)
    assert config.server == "https://127.0.0.1:443"
    assert "system trust store" in caplog.text
    assert pod_environment.token not in caplog.text


async def test_config_constructors_and_attributes(
    sandbox: Sandbox, pod_environment: PodEnvironment
) -> None:
    """proxy, unix_socket, https and from_kubeconfig give frozen configs that connect."""
    proxy_default = asyncpod.Config.proxy()
    assert (proxy_default.source, proxy_default.server, proxy_default.namespace) == (
        "proxy",
        "http://127.0.0.1:8001",
        "default",
    )
    configs = [
        asyncpod.Config.proxy(sandbox.proxy_url, namespace="a"),
        asyncpod.Config.unix_socket(sandbox.unix_socket, namespace="b"),
        asyncpod.Config.https(
            sandbox.server_url,
            token=sandbox.admin_token,
            ca_file=sandbox.ca_file,
            namespace="c",
        ),
        asyncpod.Config.https(
            sandbox.server_url, token_file=pod_environment.token_file, ca_file=sandbox.ca_file
        ),
        asyncpod.Config.from_kubeconfig(sandbox.kubeconfig),
        asyncpod.Config.from_kubeconfig(sandbox.kubeconfig, context="sandbox"),
    ]
    described = [(c.source, c.server, c.namespace) for c in configs]
    assert described == [
        ("proxy", sandbox.proxy_url, "a"),
        ("unix", None, "b"),
        ("explicit", sandbox.server_url, "c"),
        ("explicit", sandbox.server_url, "default"),
        ("kubeconfig", sandbox.server_url, "default"),
        ("kubeconfig", sandbox.server_url, "default"),
    ]
    for config in configs:
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            config.namespace = "other"  # type: ignore[misc]
        async with asyncpod.Client(config) as k8s:
            assert (await k8s.get_json("/version"))["major"]
    with pytest.raises(asyncpod.ConfigError, match="nope"):
        asyncpod.Config.from_kubeconfig(sandbox.kubeconfig, context="nope")


def test_from_kubeconfig_reads_the_kubeconfig_variable(
    sandbox: Sandbox, clean_environ: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Config.from_kubeconfig() without a path reads KUBECONFIG, as kubectl does."""
    monkeypatch.setenv("KUBECONFIG", str(sandbox.kubeconfig))
    config = asyncpod.Config.from_kubeconfig()
    assert (config.source, config.server) == ("kubeconfig", sandbox.server_url)


def test_config_repr_never_shows_a_token(sandbox: Sandbox, pod_environment: PodEnvironment) -> None:
    """No repr of a Config holds the bearer token, however it was built."""
    configs = [
        asyncpod.Config.https(sandbox.server_url, token=sandbox.admin_token),
        asyncpod.Config.from_kubeconfig(sandbox.kubeconfig),
        _in_cluster(pod_environment),
    ]
    for config in configs:
        assert sandbox.admin_token not in repr(config)
        assert pod_environment.token not in repr(config)
        assert sandbox.admin_token not in str(config)


# ---------------------------------------------------------------------------
# Client


class CountingTransport:
    """A user's own transport: wraps a bundled one and counts requests."""

    def __init__(self, inner: asyncpod.Transport) -> None:
        self.inner = inner
        self.sent: list[str] = []
        self.closed = False

    async def send(self, request: asyncpod.Request) -> asyncpod.Response:
        self.sent.append(f"{request.method} {request.target}")
        return await self.inner.send(request)

    async def aclose(self) -> None:
        self.closed = True
        await self.inner.aclose()


async def test_client_takes_a_transport_of_the_users(sandbox: Sandbox) -> None:
    """transport= replaces the bundled one; the client does not close what it did not open."""
    from asyncpod_transports import create_transport

    config = asyncpod.Config.proxy(sandbox.proxy_url)
    transport = CountingTransport(
        create_transport(asyncpod.ProxyEndpoint(sandbox.proxy_url), engine="anyio")
    )
    async with asyncpod.Client(config, transport=transport, max_connections=4) as k8s:
        assert (await k8s.get_json("/api"))["kind"] == "APIVersions"
    assert transport.sent == ["GET /api"]
    assert not transport.closed
    await transport.aclose()


async def test_retries_as_a_number_or_a_policy(sandbox: Sandbox) -> None:
    """retries=N survives N failures; 0 disables; a RetryPolicy works the same way."""
    config = asyncpod.Config.proxy(sandbox.proxy_url)
    fast = asyncpod.RetryPolicy(retries=2, backoff_base=0.0, backoff_max=0.0)
    for retries in (2, fast):
        sandbox.faults.add("error", status=503, count=2, path="^/api$")
        async with asyncpod.Client(config, retries=retries) as k8s:
            assert (await k8s.get_json("/api"))["kind"] == "APIVersions"
    sandbox.faults.add("error", status=503, count=1, path="^/api$")
    async with asyncpod.Client(config, retries=0) as k8s:
        with pytest.raises(asyncpod.ServerError) as caught:
            await k8s.get_json("/api")
    assert caught.value.status == 503
    assert sandbox.requests.count("GET", "/api") == 3 + 3 + 1


async def test_request_get_json_and_response(sandbox: Sandbox) -> None:
    """request() returns status, headers, content, text and json(); >= 400 raises APIError."""
    path = "/api/v1/namespaces/default/configmaps"
    async with asyncpod.Client(asyncpod.Config.proxy(sandbox.proxy_url)) as k8s:
        created = await k8s.request("POST", path, json=_configmap("raw", data={"k": "v"}))
        assert created.status == 201
        assert created.headers["Content-Type"].startswith("application/json")
        assert created.headers["content-type"] == created.headers["CONTENT-TYPE"]
        assert isinstance(created.content, bytes)
        assert json.loads(created.text) == created.json()
        assert created.json()["metadata"]["name"] == "raw"
        patched = await k8s.request(
            "PATCH",
            f"{path}/raw",
            content=b'{"data": {"k": "w"}}',
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert patched.json()["data"] == {"k": "w"}
        listed = await k8s.get_json(path, params={"labelSelector": "none=here"})
        assert listed["items"] == []
        with pytest.raises(asyncpod.NotFoundError) as caught:
            await k8s.request("GET", f"{path}/missing")
    assert caught.value.status == 404


async def test_stream_bytes_and_lines(sandbox: Sandbox) -> None:
    """stream() yields the body as it arrives: aiter_bytes, and aiter_lines without newlines."""
    sandbox.create(_pod("talker"))
    sandbox.append_log("talker", ["one", "two", "three"])
    path = "/api/v1/namespaces/default/pods/talker/log"
    async with asyncpod.Client(asyncpod.Config.proxy(sandbox.proxy_url)) as k8s:
        async with k8s.stream("GET", path) as resp:
            assert resp.status == 200
            lines = [line async for line in resp.aiter_lines()]
        async with k8s.stream("GET", path, params={"tailLines": 1}) as resp:
            body = b"".join([chunk async for chunk in resp.aiter_bytes()])
        with pytest.raises(asyncpod.NotFoundError):
            async with k8s.stream("GET", "/api/v1/namespaces/default/pods/nobody/log"):
                pass
    assert lines == ["one", "two", "three"]
    assert body == b"three\n"


# ---------------------------------------------------------------------------
# Resources


async def test_resource_spellings_and_discovery_cache(sandbox: Sandbox) -> None:
    """Every kubectl spelling names the same Resource; discovery is fetched once."""
    async with asyncpod.Client(asyncpod.Config.proxy(sandbox.proxy_url)) as k8s:
        pods = {await k8s.resource(s) for s in ("pods", "pod", "Pod")}
        deployments = {await k8s.resource(s) for s in ("deployments.apps", "deployments.v1.apps")}
        before = len(sandbox.requests)
        again = await k8s.resource("deployments.apps")
        assert len(sandbox.requests) == before
        assert await k8s.resource(again) == again
        with pytest.raises(asyncpod.UnknownResourceError) as caught:
            await k8s.resource("flumps")
        namespaces = await k8s.resource("namespaces")
    assert {(r.group, r.version, r.plural, r.kind, r.namespaced) for r in pods} == {
        ("", "v1", "pods", "Pod", True)
    }
    (deployment,) = deployments
    assert (deployment.group, deployment.version, deployment.plural) == (
        "apps",
        "v1",
        "deployments",
    )
    assert (deployment.kind, deployment.namespaced) == ("Deployment", True)
    assert namespaces.namespaced is False
    assert isinstance(caught.value, LookupError)
    assert "flumps" in str(caught.value)


async def test_get_and_list_with_pages_selectors_and_all_namespaces(sandbox: Sandbox) -> None:
    """list() follows continue tokens (chunk_size), sets resource_version, honours selectors."""
    sandbox.ensure_namespace("other")
    for number in range(5):
        sandbox.create(_configmap(f"cm-{number}", tier="a" if number % 2 else "b"))
    sandbox.create(_configmap("far", namespace="other", tier="a"))
    async with asyncpod.Client(asyncpod.Config.proxy(sandbox.proxy_url)) as k8s:
        got = await k8s.get("configmaps", "cm-3")
        assert got["metadata"]["name"] == "cm-3"
        assert (await k8s.get("cm", "far", namespace="other"))["metadata"]["namespace"] == "other"
        pages = k8s.list("configmaps", label_selector="tier", chunk_size=2)
        assert pages.resource_version is None
        first = await pages.__anext__()
        assert pages.resource_version is not None
        mine = [first] + [item async for item in pages]
        by_field = [
            item async for item in k8s.list("configmaps", field_selector="metadata.name=cm-0")
        ]
        everywhere = [
            item
            async for item in k8s.list(
                "configmaps", namespace=asyncpod.ALL, label_selector="tier=a"
            )
        ]
        namespaces = [
            item async for item in k8s.list("namespaces", namespace="ignored-for-cluster-scope")
        ]
        with pytest.raises(asyncpod.NotFoundError):
            await k8s.get("configmaps", "far")
    assert _names(mine) == [f"cm-{n}" for n in range(5)]
    limited = sandbox.requests.filter("GET", "/api/v1/namespaces/default/configmaps")
    assert sum("limit=2" in r.query for r in limited) == 3
    assert _names(by_field) == ["cm-0"]
    assert _names(everywhere) == ["cm-1", "cm-3", "far"]
    assert {"default", "other"} <= set(_names(namespaces))


async def test_create_with_dry_run_and_field_manager(sandbox: Sandbox) -> None:
    """create() returns the stored object; dry_run stores nothing; field_manager is recorded."""
    async with asyncpod.Client(asyncpod.Config.proxy(sandbox.proxy_url)) as k8s:
        dry = await k8s.create("configmaps", _configmap("dry"), dry_run=True)
        made = await k8s.create("configmaps", _configmap("made"), field_manager="contract")
        with pytest.raises(asyncpod.ConflictError) as caught:
            await k8s.create("configmaps", _configmap("made"))
    assert dry["metadata"]["name"] == "dry"
    assert _names(sandbox.objects("configmaps", namespace="default")) == [
        "kube-root-ca.crt",
        "made",
    ]
    assert made["metadata"]["resourceVersion"]
    managers = {entry["manager"] for entry in made["metadata"]["managedFields"]}
    assert managers == {"contract"}
    assert caught.value.reason == "AlreadyExists"


async def test_replace_patch_apply_and_delete(sandbox: Sandbox) -> None:
    """replace, patch (merge, json, strategic, subresource), apply (force) and delete."""
    sandbox.create(_configmap("cfg", data={"a": "1"}))
    sandbox.create(_pod("web"))
    async with asyncpod.Client(asyncpod.Config.proxy(sandbox.proxy_url)) as k8s:
        current = await k8s.get("configmaps", "cfg")
        current["data"] = {"a": "2"}
        replaced = await k8s.replace("configmaps", current)
        assert replaced["data"] == {"a": "2"}
        with pytest.raises(asyncpod.ConflictError):
            await k8s.replace("configmaps", current)  # its resourceVersion is stale now

        merged = await k8s.patch("configmaps", "cfg", {"data": {"b": "3"}})
        assert merged["data"] == {"a": "2", "b": "3"}
        ops = [{"op": "remove", "path": "/data/a"}]
        assert (await k8s.patch("cm", "cfg", ops, patch_type="json"))["data"] == {"b": "3"}
        strategic = {"spec": {"containers": [{"name": "sidecar", "image": "busybox"}]}}
        pod = await k8s.patch("pods", "web", strategic, patch_type="strategic")
        # A strategic merge adds to the list, keyed by name; a merge patch would replace it.
        assert {c["name"] for c in pod["spec"]["containers"]} == {"app", "sidecar"}
        status = await k8s.patch(
            "pods", "web", {"status": {"phase": "Running"}}, subresource="status"
        )
        assert status["status"]["phase"] == "Running"

        applied = await k8s.apply(_configmap("owned", data={"b": "4"}), field_manager="other")
        assert applied["data"]["b"] == "4"
        conflict = _configmap("owned", data={"b": "5"})
        with pytest.raises(asyncpod.ConflictError):
            await k8s.apply(conflict, field_manager="third")
        forced = await k8s.apply(conflict, field_manager="third", force=True)
        assert forced["data"]["b"] == "5"
        deployment = await k8s.apply(_deployment("site"), field_manager="contract")
        assert deployment["kind"] == "Deployment"

        answer = await k8s.delete(
            "deployments.apps", "site", propagation_policy="Foreground", grace_period_seconds=0
        )
        assert isinstance(answer, dict)
        assert (await k8s.delete("configmaps", "cfg"))["kind"] in ("ConfigMap", "Status")
        with pytest.raises(asyncpod.NotFoundError):
            await k8s.get("configmaps", "cfg")
        with pytest.raises(asyncpod.NotFoundError):
            await k8s.delete("configmaps", "cfg")


async def test_write_namespace_rule(sandbox: Sandbox) -> None:
    """namespace=, then metadata.namespace, then the config's; a contradiction is refused."""
    for name in ("explicit", "own", "config"):
        sandbox.ensure_namespace(name)
    config = asyncpod.Config.proxy(sandbox.proxy_url, namespace="config")
    async with asyncpod.Client(config) as k8s:
        with pytest.raises(asyncpod.InvalidNameError, match="does not match"):
            await k8s.create(
                "configmaps", _configmap("moved", namespace="own"), namespace="explicit"
            )
        a = await k8s.create("configmaps", _configmap("a"), namespace="explicit")
        b = await k8s.create("configmaps", _configmap("b", namespace="own"))
        c = await k8s.create("configmaps", _configmap("c"))
        d = await k8s.apply(_configmap("d", namespace="own"), field_manager="m")
        e = await k8s.apply(_configmap("e"), field_manager="m")
        with pytest.raises(asyncpod.AsyncpodError):
            await k8s.create("configmaps", _configmap("f"), namespace=asyncpod.ALL)
    placed = {o["metadata"]["name"]: o["metadata"]["namespace"] for o in (a, b, c, d, e)}
    assert placed == {"a": "explicit", "b": "own", "c": "config", "d": "own", "e": "config"}
    assert sandbox.get("configmaps", "a", namespace="explicit")["metadata"]["name"] == "a"


# ---------------------------------------------------------------------------
# Watch


async def test_watch_hides_bookmarks_unless_asked(sandbox: Sandbox) -> None:
    """BOOKMARK events are yielded only with bookmarks=True; timeout_seconds ends quietly."""
    sandbox.bookmark_interval = 0.2
    config = asyncpod.Config.proxy(sandbox.proxy_url)
    async with asyncpod.Client(config) as k8s:
        start = k8s.list("configmaps")
        _ = [item async for item in start]
        rv = start.resource_version
        sandbox.create(_configmap("w1"))
        with anyio.fail_after(10):
            hidden = [
                e.type async for e in k8s.watch("cm", resource_version=rv, timeout_seconds=0.6)
            ]
            shown = [
                e.type
                async for e in k8s.watch(
                    "cm", resource_version=rv, timeout_seconds=0.6, bookmarks=True
                )
            ]
        # The watch always asks the server for bookmarks.
        watches = sandbox.requests.filter("GET", "/api/v1/namespaces/default/configmaps")
        assert all("allowWatchBookmarks=true" in r.query for r in watches if "watch" in r.query)
    assert hidden == ["ADDED"]
    assert shown[0] == "ADDED"
    assert "BOOKMARK" in shown[1:]


async def test_watch_initial_events_and_all_namespaces(sandbox: Sandbox) -> None:
    """Without resource_version the watch starts with the current objects; ALL spans namespaces."""
    sandbox.ensure_namespace("far")
    sandbox.create(_configmap("here"))
    sandbox.create(_configmap("there", namespace="far"))
    async with asyncpod.Client(asyncpod.Config.proxy(sandbox.proxy_url)) as k8s:
        seen: list[tuple[str, str]] = []
        with anyio.fail_after(10):
            async with k8s.watch(
                "configmaps",
                namespace=asyncpod.ALL,
                field_selector="metadata.name!=kube-root-ca.crt",
            ) as events:
                async for event in events:
                    meta = event.object["metadata"]
                    seen.append((meta["namespace"], meta["name"]))
                    if len(seen) == 2:
                        break
    assert sorted(seen) == [("default", "here"), ("far", "there")]


async def test_watch_resumes_after_a_drop_without_duplicates(sandbox: Sandbox) -> None:
    """A dropped watch connection resumes from the last resourceVersion: no loss, no repeat."""
    config = asyncpod.Config.proxy(sandbox.proxy_url)
    async with asyncpod.Client(config) as k8s:
        listing = k8s.list("configmaps")
        _ = [item async for item in listing]
        for number in range(4):
            sandbox.create(_configmap(f"e{number}"))
        sandbox.faults.add("watch_drop", after=2)
        names: list[str] = []
        with anyio.fail_after(10):
            async with k8s.watch("configmaps", resource_version=listing.resource_version) as w:
                async for event in w:
                    names.append(event.object["metadata"]["name"])
                    if len(names) == 4:
                        break
        assert w.reconnects >= 1
    assert names == ["e0", "e1", "e2", "e3"]


async def test_watch_from_a_compacted_version_raises_gone(sandbox: Sandbox) -> None:
    """A resourceVersion older than the history raises GoneError: the caller lists again."""
    config = asyncpod.Config.proxy(sandbox.proxy_url)
    async with asyncpod.Client(config) as k8s:
        listing = k8s.list("configmaps")
        _ = [item async for item in listing]
        sandbox.create(_configmap("newer"))
        sandbox.compact()
        with anyio.fail_after(10), pytest.raises(asyncpod.GoneError) as caught:
            async for _event in k8s.watch("configmaps", resource_version=listing.resource_version):
                pass
    assert caught.value.status == 410


# ---------------------------------------------------------------------------
# Logs


async def test_logs_whole_tail_and_follow(sandbox: Sandbox) -> None:
    """logs() yields lines without the newline; tail_lines keeps the last ones; follow waits."""
    sandbox.create(_pod("app"))
    sandbox.append_log("app", ["a", "b", "c"])
    async with asyncpod.Client(asyncpod.Config.proxy(sandbox.proxy_url)) as k8s:
        whole = [line async for line in k8s.logs("app")]
        tail = [line async for line in k8s.logs("app", tail_lines=2, container="app")]
        followed: list[str] = []
        with anyio.fail_after(10):
            async with k8s.logs("app", follow=True, tail_lines=1) as lines:
                async for line in lines:
                    followed.append(line)
                    if line == "c":
                        await anyio.to_thread.run_sync(sandbox.append_log, "app", ["d"])
                    if line == "d":
                        break
    assert whole == ["a", "b", "c"]
    assert tail == ["b", "c"]
    assert followed == ["c", "d"]


# ---------------------------------------------------------------------------
# Errors


def test_error_tree_is_as_drawn() -> None:
    """Every error class sits where API.md draws it."""
    tree = {
        asyncpod.ConfigError: asyncpod.AsyncpodError,
        asyncpod.UnknownResourceError: asyncpod.AsyncpodError,
        asyncpod.TransportError: asyncpod.AsyncpodError,
        asyncpod.ProtocolError: asyncpod.TransportError,
        asyncpod.RequestTimeoutError: asyncpod.TransportError,
        asyncpod.APIError: asyncpod.AsyncpodError,
        asyncpod.BadRequestError: asyncpod.APIError,
        asyncpod.UnauthorizedError: asyncpod.APIError,
        asyncpod.ForbiddenError: asyncpod.APIError,
        asyncpod.NotFoundError: asyncpod.APIError,
        asyncpod.ConflictError: asyncpod.APIError,
        asyncpod.GoneError: asyncpod.APIError,
        asyncpod.InvalidError: asyncpod.APIError,
        asyncpod.TooManyRequestsError: asyncpod.APIError,
        asyncpod.ServerError: asyncpod.APIError,
    }
    for child, parent in tree.items():
        assert issubclass(child, parent), (child, parent)
    assert issubclass(asyncpod.AsyncpodError, Exception)
    assert issubclass(asyncpod.UnknownResourceError, LookupError)
    assert issubclass(asyncpod.RequestTimeoutError, TimeoutError)
    assert not issubclass(asyncpod.APIError, asyncpod.TransportError)


async def test_api_errors_carry_the_status(sandbox: Sandbox) -> None:
    """Each status maps to its class, with .status, .reason, .message and the Status .body."""
    expected = {
        400: asyncpod.BadRequestError,
        401: asyncpod.UnauthorizedError,
        403: asyncpod.ForbiddenError,
        404: asyncpod.NotFoundError,
        409: asyncpod.ConflictError,
        410: asyncpod.GoneError,
        422: asyncpod.InvalidError,
        429: asyncpod.TooManyRequestsError,
        500: asyncpod.ServerError,
        503: asyncpod.ServerError,
    }
    async with asyncpod.Client(asyncpod.Config.proxy(sandbox.proxy_url), retries=0) as k8s:
        with pytest.raises(asyncpod.NotFoundError) as caught:
            await k8s.get("configmaps", "nothing")
        for status, cls in expected.items():
            sandbox.faults.add("status", status=status, path="^/version$")
            with pytest.raises(cls) as raised:
                await k8s.get_json("/version")
            assert raised.value.status == status
        with pytest.raises(asyncpod.ProtocolError):
            await k8s.get_json("/healthz")  # "ok", not JSON
        with pytest.raises(asyncpod.NotFoundError) as plain:
            await k8s.get_json("/no/such/path")  # text/plain "404 page not found"
    assert plain.value.body == {}
    error = caught.value
    assert (error.status, error.reason) == (404, "NotFound")
    assert "nothing" in error.message
    assert error.body["kind"] == "Status"
    assert error.body["code"] == 404


async def test_a_path_that_is_not_absolute_is_an_asyncpod_error(sandbox: Sandbox) -> None:
    """A relative path or a URL is refused before sending, as an AsyncpodError."""
    async with asyncpod.Client(asyncpod.Config.proxy(sandbox.proxy_url)) as k8s:
        for path in ("api", "http://elsewhere/api", "//elsewhere/api"):
            with pytest.raises(asyncpod.AsyncpodError, match="absolute path"):
                await k8s.get_json(path)
    # Only these paths: a late request of an earlier test's client may land in the log.
    assert sandbox.requests.filter(path=r"api|.*elsewhere.*") == []


async def test_transport_failures_are_mapped(sandbox: Sandbox, tmp_path: Path) -> None:
    """Refused connections and failed TLS verification raise TransportError, chained."""
    closed = asyncpod.Config.unix_socket(tmp_path / "nobody.sock")
    async with asyncpod.Client(closed, retries=0) as k8s:
        with pytest.raises(asyncpod.TransportError) as refused:
            await k8s.get_json("/api")
    # Verified against the system trust store, the sandbox's own CA is unknown.
    untrusted = asyncpod.Config.https(sandbox.server_url, token=sandbox.admin_token)
    async with asyncpod.Client(untrusted, retries=0) as k8s:
        with pytest.raises(asyncpod.TransportError) as unverified:
            await k8s.get_json("/api")
    for caught in (refused, unverified):
        assert caught.value.__cause__ is not None
        assert not isinstance(caught.value, asyncpod.APIError)
    assert sandbox.admin_token not in str(unverified.value)


async def test_tokens_never_appear_in_errors_or_logs(
    sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    """A refused token shows up in no exception and no log line."""
    secret = "not-a-valid-token-0123456789abcdef"
    config = asyncpod.Config.https(sandbox.server_url, token=secret, ca_file=sandbox.ca_file)
    with caplog.at_level(logging.DEBUG):
        async with asyncpod.Client(config) as k8s:
            with pytest.raises(asyncpod.UnauthorizedError) as caught:
                await k8s.get_json("/api")
    assert caught.value.status == 401
    assert secret not in str(caught.value)
    assert secret not in repr(caught.value)
    assert secret not in caplog.text


async def test_rotated_token_is_picked_up(sandbox: Sandbox, tmp_path: Path) -> None:
    """After the kubelet swaps the token and the old one dies, requests still succeed."""
    pod = sandbox.pod_environment(root=tmp_path / "sa")
    async with asyncpod.Client(_in_cluster(pod)) as k8s:
        await k8s.get_json("/api")
        old_token = pod.token
        pod.rotate_token(grace=0.0)
        # The old token is refused at once: the client re-reads after the 401.
        assert (await k8s.get_json("/api"))["kind"] == "APIVersions"
        assert sandbox.requests.count("GET", "/api") == 3
        stale = asyncpod.Config.https(sandbox.server_url, token=old_token, ca_file=pod.ca_file)
        async with asyncpod.Client(stale) as other:
            with pytest.raises(asyncpod.UnauthorizedError):
                await other.get_json("/version")

        # Swapped a while before the next call, the new token is used from the start.
        pod.rotate_token(grace=0.3)
        await anyio.sleep(1.2)
        sandbox.requests.clear()
        assert (await k8s.get_json("/api"))["kind"] == "APIVersions"
        assert [r.status for r in sandbox.requests] == [200]


# ---------------------------------------------------------------------------
# Timeouts


async def test_client_timeout_raises_request_timeout(sandbox: Sandbox) -> None:
    """Client(timeout=) bounds one call (RequestTimeoutError, a TimeoutError); None disables."""
    config = asyncpod.Config.proxy(sandbox.proxy_url)
    sandbox.faults.add("slow", delay=2.0, path="^/version$")
    async with asyncpod.Client(config, timeout=0.3) as k8s:
        started = time.monotonic()
        with pytest.raises(TimeoutError) as caught:
            await k8s.get_json("/version")
        assert time.monotonic() - started < 1.5
    assert isinstance(caught.value, asyncpod.RequestTimeoutError)
    sandbox.faults.add("slow", delay=0.5, path="^/version$")
    async with asyncpod.Client(config, timeout=None) as k8s:
        assert (await k8s.get_json("/version"))["major"]
        sandbox.faults.add("slow", delay=2.0, path="^/version$")
        with pytest.raises(TimeoutError):
            with anyio.fail_after(0.3):
                await k8s.get_json("/version")


async def test_watch_outlives_the_client_timeout(sandbox: Sandbox) -> None:
    """Watches have no total deadline: one lasts longer than the client's timeout."""
    config = asyncpod.Config.proxy(sandbox.proxy_url)
    async with asyncpod.Client(config, timeout=0.3) as k8s:
        started = time.monotonic()
        with anyio.fail_after(10):
            events = [e async for e in k8s.watch("namespaces", timeout_seconds=1)]
        assert time.monotonic() - started >= 0.9
    assert {e.type for e in events} == {"ADDED"}


# ---------------------------------------------------------------------------
# The sandbox and its pytest plugin


def test_sandbox_addresses_and_pod_environment(tmp_path: Path) -> None:
    """A Sandbox serves HTTPS, a proxy port, a Unix socket and lays out pod folders."""
    with Sandbox() as sb:
        assert sb.server_url.startswith("https://127.0.0.1:")
        assert sb.proxy_url.startswith("http://127.0.0.1:")
        assert Path(sb.ca_file).read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
        assert Path(sb.unix_socket).exists()
        kubeconfig = yaml.safe_load(Path(sb.kubeconfig).read_text())
        assert kubeconfig["clusters"][0]["cluster"]["server"] == sb.server_url
        pod = sb.pod_environment(namespace="robots", service_account="r2")
        assert sb.get("namespaces", "robots", namespace=None)["metadata"]["name"] == "robots"
        assert sb.get("serviceaccounts", "r2", namespace="robots")["metadata"]["name"] == "r2"
        data = pod.root / "..data"
        assert data.is_symlink()
        assert os.readlink(data).startswith("..")
        assert os.readlink(pod.root / "token") == "..data/token"
        assert (pod.root / "namespace").read_text() == "robots"
        assert set(pod.environ) == {
            "KUBERNETES_SERVICE_HOST",
            "KUBERNETES_SERVICE_PORT",
            "KUBERNETES_SERVICE_PORT_HTTPS",
        }
        old_token, old_folder = (pod.root / "token").read_text(), os.readlink(data)
        new_token = pod.rotate_token(grace=5.0)
        assert new_token != old_token
        assert (pod.root / "token").read_text() == new_token
        assert os.readlink(data) != old_folder


async def test_pytest_fixtures(sandbox: Sandbox, pod_environment: PodEnvironment) -> None:
    """The plugin's fixtures: a fresh sandbox per test and a pod folder of default/default."""
    assert sandbox.running
    assert sandbox.objects("pods") == []
    assert _names(sandbox.objects("configmaps", namespace="default")) == ["kube-root-ca.crt"]
    assert pod_environment.namespace == "default"
    assert pod_environment.service_account == "default"
    async with asyncpod.Client(_in_cluster(pod_environment)) as k8s:
        assert k8s.config.namespace == "default"
        assert (await k8s.get_json("/api"))["kind"] == "APIVersions"


@pytest.mark.slow
def test_pytest_plugin_is_registered_by_entry_point(tmp_path: Path) -> None:
    """A user's test module gets sandbox and pod_environment without any conftest."""
    (tmp_path / "test_user.py").write_text(
        "import asyncpod\n"
        "\n"
        "def test_it(sandbox, pod_environment):\n"
        "    assert sandbox.proxy_url.startswith('http://127.0.0.1:')\n"
        "    config = asyncpod.load_config(\n"
        "        environ=pod_environment.environ, service_account_dir=pod_environment.root\n"
        "    )\n"
        "    assert config.source == 'in-cluster'\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_user.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


# ---------------------------------------------------------------------------
# Command line


def _cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIXES)}
    env.update(extra)
    return env


def _cli(
    *args: str, env: dict[str, str], console_script: bool = False
) -> subprocess.CompletedProcess[str]:
    if console_script:
        command = [str(Path(sys.executable).with_name("asyncpod")), *args]
    else:
        command = [sys.executable, "-m", "asyncpod", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.slow
def test_cli_commands(sandbox: Sandbox, tmp_path: Path) -> None:
    """get PATH, get RESOURCE (-n, -A, -l, -o), apply, config and bench, as documented."""
    sandbox.ensure_namespace("side")
    sandbox.create(_configmap("front", tier="web"))
    sandbox.create(_configmap("back", tier="db"))
    sandbox.create(_configmap("aside", namespace="side", tier="web"))
    manifest = tmp_path / "app.yaml"
    manifest.write_text(yaml.safe_dump(_configmap("applied", data={"k": "v"})))
    env = _cli_env(ASYNCPOD_PROXY_URL=sandbox.proxy_url, HOME=str(tmp_path))
    commands: list[tuple[tuple[str, ...], bool]] = [
        (("get", "/api"), True),
        (("get", "/apis/apps/v1"), False),
        (("get", "configmaps", "front", "-o", "json"), False),
        (("get", "cm", "-n", "side", "-l", "tier", "-o", "name"), False),
        (("get", "configmaps", "-A", "-l", "tier=web", "-o", "yaml"), False),
        (("get", "configmap", "-l", "tier"), False),
        (("apply", "-f", str(manifest), "--field-manager", "me"), False),
        (("config",), False),
        (("bench", "--requests", "20", "--concurrency", "4", "/version"), False),
    ]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda c: _cli(*c[0], env=env, console_script=c[1]), commands))
    for result in results:
        assert result.returncode == 0, result.args
        assert "Traceback" not in result.stderr
    api, apps, one, names, listing, table, applied, config, bench = results
    assert json.loads(api.stdout)["kind"] == "APIVersions"
    assert json.loads(apps.stdout)["groupVersion"] == "apps/v1"
    assert json.loads(one.stdout)["metadata"]["name"] == "front"
    assert names.stdout.split() == ["configmap/aside"]
    listed = yaml.safe_load(listing.stdout)
    assert sorted(i["metadata"]["name"] for i in listed["items"]) == ["aside", "front"]
    assert table.stdout.split()[0] == "NAME"
    assert "back" in table.stdout
    assert "front" in table.stdout
    assert "configmap/applied" in applied.stdout
    assert sandbox.get("configmaps", "applied")["data"] == {"k": "v"}
    assert "proxy" in config.stdout
    assert sandbox.proxy_url in config.stdout
    assert "default" in config.stdout
    assert "req/s" in bench.stdout
    assert "latency" in bench.stdout


def test_cli_watch_prints_one_line_per_event(sandbox: Sandbox, tmp_path: Path) -> None:
    """`asyncpod watch` prints a line per event until it is interrupted."""
    sandbox.create(_configmap("watched", tier="x"))
    env = _cli_env(ASYNCPOD_PROXY_URL=sandbox.proxy_url, HOME=str(tmp_path), PYTHONFAULTHANDLER="1")
    command = [sys.executable, "-m", "asyncpod", "watch", "configmaps", "-n", "default"]
    command += ["-l", "tier"]
    process = popen_interruptible(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("ADDED"):
            process.kill()
            pytest.fail(f"no event line: {line!r}, stderr: {process.communicate()[1]}")
        assert "watched" in line
        process.send_signal(signal.SIGINT)
        try:
            _, stderr = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            # SIGABRT makes faulthandler print where every thread of the CLI hangs.
            process.send_signal(signal.SIGABRT)
            pytest.fail(f"no exit within 20 s of SIGINT:\n{process.communicate(timeout=20)[1]}")
    finally:
        reap(process)
    assert "Traceback" not in stderr, stderr


def test_cli_errors_are_one_line_and_exit_1(sandbox: Sandbox, tmp_path: Path) -> None:
    """An error prints `asyncpod: error: ...` to stderr, no traceback, and exits 1."""
    proxy = _cli_env(ASYNCPOD_PROXY_URL=sandbox.proxy_url, HOME=str(tmp_path))
    empty = _cli_env(HOME=str(tmp_path))
    with ThreadPoolExecutor(max_workers=4) as pool:
        missing, unknown, no_config, no_config_script = pool.map(
            lambda args: _cli(*args[1:], env=args[0], console_script=args[1] == "config"),
            [
                (proxy, "get", "configmaps", "missing"),
                (proxy, "get", "flumps"),
                (empty, "get", "/api"),
                (empty, "config"),
            ],
        )
    for result in (missing, unknown):
        assert result.returncode == 1
        assert result.stdout == ""
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("asyncpod: error: ")
    assert "missing" in missing.stderr
    assert "flumps" in unknown.stderr
    for result in (no_config, no_config_script):
        assert result.returncode == 1
        first, *reasons = result.stderr.splitlines()
        assert first.startswith("asyncpod: error: ")
        assert "Traceback" not in result.stderr
        assert [line.split(":")[0].strip() for line in reasons] == [
            "unix",
            "proxy",
            "in-cluster",
            "kubeconfig",
        ]
