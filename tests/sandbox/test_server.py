"""The sandbox as a server: listeners, start-up, CRUD, Status errors, pod folders, auth."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import time
from pathlib import Path

import anyio
import httpx
import pytest

from asyncpod.testing import Sandbox
from asyncpod.testing._pki import shared_pki
from tests.helpers.sandbox import CM, configmap, https_client, proxy_client, unix_client

pytestmark = pytest.mark.anyio

# Answers recorded from a kube-apiserver 1.36.
REFERENCE = Path(__file__).parent.parent / "data"


def test_start_under_one_second() -> None:
    """A sandbox starts (listeners up, kubeconfig written) in under a second."""
    shared_pki()  # keys are made once per process, as every sandbox after the first
    began, cpu_began = time.perf_counter(), time.process_time()
    with Sandbox() as sb:
        elapsed = time.perf_counter() - began
        cpu = time.process_time() - cpu_began
        assert sb.running
    # The second is CPU time, which other processes on a busy machine do not
    # inflate; the wall clock only has to stay in the same range.
    assert cpu < 1.0
    assert elapsed < 5.0


def test_restart_keeps_ports_and_objects() -> None:
    """stop() then start() serves the same ports and the same objects."""
    with Sandbox() as sb:
        port, proxy_port = sb.port, sb.proxy_port
        sb.create(configmap("kept"))
        sb.stop()
        assert not sb.running
        sb.start()
        assert (sb.port, sb.proxy_port) == (port, proxy_port)
        response = httpx.get(f"{sb.proxy_url}{CM}/kept")
        assert response.status_code == 200


def test_close_removes_the_folder_it_made(tmp_path: Path) -> None:
    """close() removes the sandbox's own folder (its server key with it), not a given one."""
    with Sandbox() as made, Sandbox(directory=tmp_path / "given") as given:
        assert (made.directory / "server.key").exists()
    assert not made.directory.exists()
    assert (given.directory / "server.key").exists()


def test_a_sandbox_never_closed_leaves_no_folder() -> None:
    """A script that starts a sandbox and exits without close() leaves no key behind."""
    script = "from asyncpod.testing import Sandbox; print(Sandbox().start().directory, flush=True)"
    started = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    folder = Path(started.stdout.strip())
    assert folder.name.startswith("asyncpod-sandbox-")
    assert not folder.exists()


def test_a_sandbox_dropped_unclosed_removes_its_folder() -> None:
    """A sandbox made and dropped (never started or closed) takes its folder with it."""
    folder = Sandbox().directory
    gc.collect()
    assert not folder.exists()


async def test_three_listeners_serve_the_same_store(sandbox: Sandbox) -> None:
    """HTTPS, the proxy port and the Unix socket see the same objects."""
    async with https_client(sandbox) as client:
        created = await client.post(CM, json=configmap("shared"))
        assert created.status_code == 201
    for make in (proxy_client, unix_client):
        async with make(sandbox) as client:
            got = await client.get(f"{CM}/shared")
            assert got.status_code == 200
            assert got.json()["metadata"]["uid"] == created.json()["metadata"]["uid"]


async def test_tls_certificate_names(sandbox: Sandbox) -> None:
    """The serving certificate is valid for 127.0.0.1 and kubernetes.default.svc."""
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(sandbox._pki.server_cert_pem)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "kubernetes.default.svc" in names.get_values_for_type(x509.DNSName)
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]


async def test_response_headers_like_the_reference(sandbox: Sandbox) -> None:
    """Every answer carries Audit-Id, Cache-Control and the priority-and-fairness uids."""
    async with https_client(sandbox) as client:
        response = await client.get("/api")
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-cache, private"
    assert len(response.headers["audit-id"]) == 36
    assert "x-kubernetes-pf-flowschema-uid" in response.headers
    assert "x-kubernetes-pf-prioritylevel-uid" in response.headers
    assert response.json()["kind"] == "APIVersions"


async def test_create_get_update_delete(sandbox: Sandbox) -> None:
    """An object gets uid, creationTimestamp and a growing resourceVersion."""
    async with proxy_client(sandbox) as client:
        created = (await client.post(CM, json=configmap("a"))).json()
        meta = created["metadata"]
        assert meta["uid"]
        assert meta["creationTimestamp"].endswith("Z")
        assert (created["kind"], created["apiVersion"]) == ("ConfigMap", "v1")
        created["data"] = {"k": "v2"}
        updated = (await client.put(f"{CM}/a", json=created)).json()
        assert int(updated["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])
        deleted = await client.delete(f"{CM}/a")
        assert deleted.json()["status"] == "Success"
        assert deleted.json()["details"] == {"name": "a", "kind": "configmaps", "uid": meta["uid"]}
        assert (await client.get(f"{CM}/a")).status_code == 404


async def test_not_found_status_is_the_reference(sandbox: Sandbox) -> None:
    """A missing object answers the exact Status of the real server."""
    async with https_client(sandbox) as client:
        response = await client.get(f"{CM}/does-not-exist")
    expected = (REFERENCE / "error-404-configmap-not-found.http").read_text().split("\n\n", 1)[1]
    assert response.status_code == 404
    assert response.json() == httpx.Response(200, content=expected).json()


async def test_conflict_and_already_exists(sandbox: Sandbox) -> None:
    """A stale resourceVersion is 409 Conflict; a second create is 409 AlreadyExists."""
    async with proxy_client(sandbox) as client:
        first = (await client.post(CM, json=configmap("app-config"))).json()
        again = await client.post(CM, json=configmap("app-config"))
        assert again.status_code == 409
        assert again.json()["reason"] == "AlreadyExists"
        assert again.json()["message"] == 'configmaps "app-config" already exists'
        await client.put(f"{CM}/app-config", json={**first, "data": {"k": "new"}})
        stale = await client.put(f"{CM}/app-config", json={**first, "data": {"k": "old"}})
    assert stale.status_code == 409
    assert stale.json()["reason"] == "Conflict"
    assert stale.json()["message"].startswith(
        'Operation cannot be fulfilled on configmaps "app-config": the object has been modified'
    )


async def test_invalid_name_is_422_with_causes(sandbox: Sandbox) -> None:
    """A bad name is 422 Invalid listing the cause, as the reference shows."""
    async with proxy_client(sandbox) as client:
        response = await client.post(CM, json=configmap("Bad_Name"))
    expected = (REFERENCE / "error-422-invalid-name.http").read_text().split("\n\n", 1)[1]
    assert response.status_code == 422
    assert response.json() == httpx.Response(200, content=expected).json()


async def test_namespace_must_exist(sandbox: Sandbox) -> None:
    """Creating in a missing namespace is 404 namespaces "x" not found."""
    async with proxy_client(sandbox) as client:
        response = await client.post("/api/v1/namespaces/nowhere/configmaps", json=configmap("a"))
    assert response.status_code == 404
    assert response.json()["message"] == 'namespaces "nowhere" not found'


async def test_non_api_path_is_plain_text_404(sandbox: Sandbox) -> None:
    """A path outside the API is text/plain "404 page not found"."""
    async with https_client(sandbox) as client:
        response = await client.get("/no/such/path")
    assert response.status_code == 404
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.text == "404 page not found\n"


async def test_unknown_resource_is_status_404(sandbox: Sandbox) -> None:
    """An unknown resource in a served group-version is a Status 404."""
    async with https_client(sandbox) as client:
        response = await client.get("/api/v1/namespaces/default/foos")
    expected = (REFERENCE / "error-404-unknown-resource-admin.http").read_text().split("\n\n", 1)[1]
    assert response.json() == httpx.Response(200, content=expected).json()


async def test_pod_environment_layout(sandbox: Sandbox) -> None:
    """The folder is laid out as the kubelet does: ..data and symlinks to it."""
    pod = sandbox.pod_environment(namespace="team", service_account="robot")
    root = pod.root
    data = os.readlink(root / "..data")
    assert data.startswith("..")
    assert not os.path.isabs(data)
    assert os.readlink(root / "token") == "..data/token"
    assert os.readlink(root / "ca.crt") == "..data/ca.crt"
    assert (root / "namespace").read_text() == "team"
    assert (root / "token").read_text() == pod.token
    assert pod.environ == {
        "KUBERNETES_SERVICE_HOST": "127.0.0.1",
        "KUBERNETES_SERVICE_PORT": str(sandbox.port),
        "KUBERNETES_SERVICE_PORT_HTTPS": str(sandbox.port),
    }
    assert sandbox.get("serviceaccounts", "robot", namespace="team")


async def test_pod_token_authenticates_as_its_service_account(sandbox: Sandbox) -> None:
    """The pod's token is accepted and names the service account."""
    pod = sandbox.pod_environment(namespace="team", service_account="robot")
    async with https_client(sandbox, pod.token) as client:
        review = await client.post(
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            json={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        )
    info = review.json()["status"]["userInfo"]
    assert review.status_code == 201
    assert info["username"] == "system:serviceaccount:team:robot"
    assert info["groups"] == [
        "system:serviceaccounts",
        "system:serviceaccounts:team",
        "system:authenticated",
    ]


async def test_rotation_swaps_data_and_retires_old_token(sandbox: Sandbox) -> None:
    """A rotation writes a new folder, swaps ..data, deletes the old one, refuses the old token."""
    pod = sandbox.pod_environment()
    old_token, old_dir = pod.token, os.readlink(pod.root / "..data")
    new_token = pod.rotate_token()
    assert new_token != old_token
    assert (pod.root / "token").read_text() == new_token
    assert os.readlink(pod.root / "..data") != old_dir
    assert not (pod.root / old_dir).exists()
    async with https_client(sandbox, old_token) as client:
        refused = await client.get("/api")
    async with https_client(sandbox, new_token) as client:
        accepted = await client.get("/api")
    assert refused.status_code == 401
    assert refused.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }
    assert "www-authenticate" not in refused.headers
    assert accepted.status_code == 200


async def test_rotation_grace_keeps_old_token_a_while(sandbox: Sandbox) -> None:
    """With grace, the old token works until the grace period ends."""
    pod = sandbox.pod_environment()
    old = pod.token
    pod.rotate_token(grace=0.3)
    async with https_client(sandbox, old) as client:
        assert (await client.get("/api")).status_code == 200
        await anyio.sleep(0.35)
        assert (await client.get("/api")).status_code == 401


async def test_expired_and_unknown_tokens_are_401(sandbox: Sandbox) -> None:
    """A token past its exp, or not signed by the sandbox, is refused with 401."""
    expired = sandbox._authenticator.issue("default", "default", "x", lifetime=-10)[0]
    for token in (expired, "not-a-token", expired[:-4] + "AAAA"):
        async with https_client(sandbox, token) as client:
            assert (await client.get("/api")).status_code == 401


async def test_anonymous_is_forbidden(sandbox: Sandbox) -> None:
    """Without a token, /api is 403 for system:anonymous; /version stays public."""
    async with https_client(sandbox, "") as client:
        forbidden = await client.get("/api")
        version = await client.get("/version")
    expected = (REFERENCE / "error-403-anonymous-get-api.http").read_text().split("\n\n", 1)[1]
    assert forbidden.status_code == 403
    assert forbidden.json() == httpx.Response(200, content=expected).json()
    assert version.status_code == 200
