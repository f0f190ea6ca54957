"""The real kubectl against the sandbox: discovery, create, get, apply, delete, proxy."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from asyncpod.testing import Sandbox

KUBECTL = shutil.which("kubectl")

if KUBECTL is None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("kubectl is required on CI (CI=true) but was not found", pytrace=False)
    pytest.skip("kubectl is not installed", allow_module_level=True)

pytestmark = pytest.mark.kubectl

MANIFEST = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: app-config
  labels: {app: web}
data:
  mode: test
---
apiVersion: v1
kind: Pod
metadata:
  name: demo
  labels: {app: demo}
spec:
  containers:
  - name: c
    image: registry.invalid/none:0
"""


def kubectl(sb: Sandbox, *args: str, stdin: str | None = None) -> str:
    """Run kubectl with the sandbox's kubeconfig; its stdout (fails on a non-zero exit)."""
    assert KUBECTL is not None
    result = subprocess.run(
        [KUBECTL, "--kubeconfig", str(sb.kubeconfig), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "KUBECACHEDIR": str(sb.directory / "kubecache")},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    """A file with a ConfigMap and a Pod."""
    path = tmp_path / "manifest.yaml"
    path.write_text(MANIFEST)
    return path


def test_get_raw_api(sandbox: Sandbox) -> None:
    """kubectl get --raw /api answers the APIVersions document."""
    body = json.loads(kubectl(sandbox, "get", "--raw", "/api"))
    assert body["kind"] == "APIVersions"
    assert body["versions"] == ["v1"]


def test_create_get_apply_delete(sandbox: Sandbox, manifest: Path) -> None:
    """create -f, get -o json, apply --server-side, get (table), delete -f (graceful) work."""
    out = kubectl(sandbox, "create", "-f", str(manifest))
    assert "configmap/app-config created" in out
    assert "pod/demo created" in out
    listed = json.loads(kubectl(sandbox, "get", "configmaps", "-o", "json"))
    names = [item["metadata"]["name"] for item in listed["items"]]
    assert names == ["app-config", "kube-root-ca.crt"]
    manifest.write_text(MANIFEST.replace("mode: test", "mode: live"))
    out = kubectl(sandbox, "apply", "--server-side", "--force-conflicts", "-f", str(manifest))
    assert "configmap/app-config serverside-applied" in out
    assert sandbox.get("configmaps", "app-config")["data"] == {"mode": "live"}
    sandbox.wait_for(lambda: sandbox.get("pods", "demo")["status"]["phase"] == "Running")
    table = kubectl(sandbox, "get", "pods")
    assert re.search(r"^demo\s+1/1\s+Running\s+0\s+\d+s$", table, re.MULTILINE), table
    out = kubectl(sandbox, "delete", "-f", str(manifest))
    assert 'configmap "app-config" deleted' in out
    assert sandbox.objects("pods", namespace="default") == []


def test_tables_of_nodes_and_workloads(sandbox: Sandbox) -> None:
    """kubectl get prints the real columns for nodes, jobs and daemonsets."""
    template = {
        "metadata": {"labels": {"a": "b"}},
        "spec": {"containers": [{"name": "c", "image": "i"}]},
    }
    sandbox.create(
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": "agent"},
            "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": template},
        }
    )
    job_template = {**template, "spec": {**template["spec"], "restartPolicy": "Never"}}
    sandbox.create(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "once"},
            "spec": {"template": job_template},
        }
    )
    nodes = kubectl(sandbox, "get", "nodes")
    assert nodes.splitlines()[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert re.search(r"^sandbox-node\s+Ready\s+<none>\s+\d+s\s+v1\.36\.\d+$", nodes, re.M), nodes
    jobs = kubectl(sandbox, "get", "jobs")
    assert jobs.splitlines()[0].split() == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    assert jobs.splitlines()[1].split()[:3] == ["once", "Running", "0/1"]
    daemonsets = kubectl(sandbox, "get", "ds")
    assert daemonsets.splitlines()[1].split()[:7] == ["agent", "0", "0", "0", "0", "0", "<none>"]


def test_auth_whoami(sandbox: Sandbox) -> None:
    """kubectl auth whoami reads SelfSubjectReview."""
    out = kubectl(sandbox, "auth", "whoami", "-o", "json")
    assert json.loads(out)["status"]["userInfo"]["username"] == "kubernetes-admin"


def _start_proxy(sb: Sandbox, *args: str) -> subprocess.Popen[str]:
    assert KUBECTL is not None
    return subprocess.Popen(
        [KUBECTL, "--kubeconfig", str(sb.kubeconfig), "proxy", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture
def kubectl_proxy(sandbox: Sandbox) -> Iterator[str]:
    """A real ``kubectl proxy`` in front of the sandbox; its URL."""
    process = _start_proxy(sandbox, "--port=0")
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"Starting to serve on (127\.0\.0\.1:\d+)", line)
        assert match, line
        yield f"http://{match.group(1)}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def test_kubectl_proxy_in_front(sandbox: Sandbox, kubectl_proxy: str) -> None:
    """kubectl proxy relays the sandbox's answers, errors and watches included."""
    sandbox.create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "seen"}, "data": {}}
    )
    with httpx.Client(base_url=kubectl_proxy) as client:
        got = client.get("/api/v1/namespaces/default/configmaps/seen")
        missing = client.get("/api/v1/namespaces/default/configmaps/nope")
        with client.stream(
            "GET",
            "/api/v1/namespaces/default/configmaps",
            params={"watch": "1", "allowWatchBookmarks": "true", "timeoutSeconds": "1"},
        ) as response:
            events = [json.loads(line) for line in response.iter_lines() if line]
    assert got.status_code == 200
    assert got.json()["metadata"]["name"] == "seen"
    assert missing.status_code == 404
    assert missing.json()["message"] == 'configmaps "nope" not found'
    assert "audit-id" in missing.headers
    assert [e["type"] for e in events] == ["ADDED", "ADDED", "BOOKMARK"]


def test_generator_commands_send_protobuf(sandbox: Sandbox) -> None:
    """kubectl create configmap/namespace and run send protobuf bodies; the sandbox reads them."""
    kubectl(sandbox, "create", "namespace", "team")
    kubectl(sandbox, "-n", "team", "create", "configmap", "settings", "--from-literal=a=b")
    kubectl(sandbox, "-n", "team", "run", "web", "--image=nginx:1.27", "--labels=app=web")
    kubectl(sandbox, "-n", "team", "create", "deployment", "api", "--image=api:1", "--replicas=0")
    assert sandbox.get("configmaps", "settings", namespace="team")["data"] == {"a": "b"}
    pod = sandbox.get("pods", "web", namespace="team")
    assert pod["metadata"]["labels"] == {"app": "web"}
    assert pod["spec"]["containers"][0]["image"] == "nginx:1.27"
    assert sandbox.get("deployments.apps", "api", namespace="team")["spec"]["replicas"] == 0
    assert kubectl(sandbox, "auth", "can-i", "delete", "pods").strip() == "yes"


def test_impersonation(sandbox: Sandbox) -> None:
    """kubectl --as is honoured by the access rules, and can-i answers from them."""
    sandbox.rules.restrict_service_accounts()
    as_sa = "--as=system:serviceaccount:default:default"
    assert kubectl(sandbox, "auth", "can-i", "list", "pods", as_sa).strip() == "yes"
    assert KUBECTL is not None
    cannot = subprocess.run(
        [
            KUBECTL,
            "--kubeconfig",
            str(sandbox.kubeconfig),
            "auth",
            "can-i",
            "list",
            "secrets",
            as_sa,
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (cannot.returncode, cannot.stdout.strip()) == (1, "no")
    denied = subprocess.run(
        [KUBECTL, "--kubeconfig", str(sandbox.kubeconfig), "get", "secrets", as_sa],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert denied.returncode == 1
    assert "Error from server (Forbidden): secrets is forbidden" in denied.stderr


def _exec_pod(sb: Sandbox) -> None:
    sb.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "shell", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "registry.invalid/none:0"}]},
        }
    )
    sb.wait_running("shell")  # exec needs the pod bound to the node


def test_kubectl_exec_exit_code_and_stdin(sandbox: Sandbox) -> None:
    """kubectl exec gets the command's output and exit code, and ends cat by closing stdin."""
    assert KUBECTL is not None
    _exec_pod(sandbox)
    env = {**os.environ, "KUBECACHEDIR": str(sandbox.directory / "kubecache")}
    base = [KUBECTL, "--kubeconfig", str(sandbox.kubeconfig), "exec"]
    failed = subprocess.run(
        [*base, "shell", "--", "sh", "-c", "echo hi; exit 3"],
        capture_output=True,
        timeout=30,
        env=env,
        check=False,
    )
    assert (failed.returncode, failed.stdout) == (3, b"hi\n")
    assert b"command terminated with exit code 3" in failed.stderr
    echoed = subprocess.run(
        [*base, "-i", "shell", "--", "cat"],
        input=b"through stdin",
        capture_output=True,
        timeout=30,
        env=env,
        check=False,
    )
    assert (echoed.returncode, echoed.stdout) == (0, b"through stdin")
    path = "/api/v1/namespaces/default/pods/shell/exec"
    deadline = time.monotonic() + 10
    # The sandbox records a session when its handler ends, after kubectl's side.
    while sandbox.requests.count("GET", path) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [r.status for r in sandbox.requests.filter("GET", path)] == [101, 101]
