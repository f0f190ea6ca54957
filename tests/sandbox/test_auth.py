"""Authorization rules (403) and the token endpoints of the sandbox."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import pytest

from asyncpod.testing import Sandbox
from tests.helpers.sandbox import CM, configmap, https_client

pytestmark = pytest.mark.anyio

# Answers recorded from a kube-apiserver 1.36.
REFERENCE = Path(__file__).parent.parent / "data"


def _reference_body(name: str) -> object:
    text = (REFERENCE / name).read_text().split("\n\n", 1)[1]
    return httpx.Response(200, content=text).json()


async def test_deny_rule_gives_the_reference_403(sandbox: Sandbox) -> None:
    """A deny rule answers 403 with the exact Status the real server sends."""
    pod = sandbox.pod_environment(namespace="realapi-test", service_account="test-client")
    sandbox.create(configmap("app-config"), namespace="realapi-test")
    sandbox.rules.deny(verbs="delete", resources="configmaps", users="system:serviceaccount:*")
    async with https_client(sandbox, pod.token) as client:
        denied = await client.delete("/api/v1/namespaces/realapi-test/configmaps/app-config")
    assert denied.status_code == 403
    assert denied.headers["x-content-type-options"] == "nosniff"
    assert denied.json() == _reference_body("error-403-sa-delete-configmap.http")


async def test_restricted_service_accounts_like_the_reference(sandbox: Sandbox) -> None:
    """With the reference policy, an account reads pods/configmaps in its namespace only."""
    pod = sandbox.pod_environment(namespace="realapi-test", service_account="test-client")
    sandbox.rules.restrict_service_accounts()
    async with https_client(sandbox, pod.token) as client:
        own = await client.get("/api/v1/namespaces/realapi-test/pods")
        other = await client.get("/api/v1/namespaces/default/pods")
        secrets = await client.get("/api/v1/namespaces/realapi-test/secrets")
        unknown = await client.get("/api/v1/namespaces/realapi-test/foos")
    assert own.status_code == 200
    assert other.json() == _reference_body("error-403-sa-list-pods-other-namespace.http")
    assert secrets.json() == _reference_body("error-403-sa-list-secrets.http")
    # Authorization runs before routing: an unknown resource is 403, not 404.
    assert unknown.json() == _reference_body("error-403-sa-unknown-resource-authz-before-404.http")


async def test_allow_before_deny(sandbox: Sandbox) -> None:
    """Rules apply in order: an earlier allow wins over a later deny."""
    sandbox.rules.allow(verbs=["get"], resources="configmaps")
    sandbox.rules.deny(resources="configmaps")
    sandbox.create(configmap("x"))
    async with https_client(sandbox) as client:
        assert (await client.get(f"{CM}/x")).status_code == 200
        assert (await client.get(CM)).status_code == 403


async def test_token_claims_as_the_reference(sandbox: Sandbox) -> None:
    """Tokens are RS256 JWTs with the issuer, audience and kubernetes.io claim of the reference."""
    pod = sandbox.pod_environment(namespace="team", service_account="robot")
    header_b64, claims_b64, _ = pod.token.split(".")
    header = json.loads(base64.urlsafe_b64decode(header_b64 + "=="))
    claims = json.loads(base64.urlsafe_b64decode(claims_b64 + "=="))
    sa = sandbox.get("serviceaccounts", "robot", namespace="team")
    assert header["alg"] == "RS256"
    assert claims["iss"] == "https://kubernetes.default.svc.cluster.local"
    assert claims["aud"] == ["https://kubernetes.default.svc.cluster.local"]
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["sub"] == "system:serviceaccount:team:robot"
    assert claims["kubernetes.io"] == {
        "namespace": "team",
        "serviceaccount": {"name": "robot", "uid": sa["metadata"]["uid"]},
    }
    async with https_client(sandbox, "") as client:
        jwks = (await client.get("/openid/v1/jwks")).json()
    assert jwks["keys"][0]["kid"] == header["kid"]


async def test_token_lifetime_and_deleted_account(sandbox: Sandbox) -> None:
    """A short-lived token expires; deleting the account revokes its tokens."""
    short = sandbox.pod_environment(service_account="brief", token_lifetime=1)
    long = sandbox.pod_environment(service_account="gone")
    sandbox.delete("serviceaccounts", "gone")
    short.wait_expired()
    for token in (short.token, long.token):
        async with https_client(sandbox, token) as client:
            assert (await client.get("/api")).status_code == 401


async def test_token_request_issues_a_working_token(sandbox: Sandbox) -> None:
    """POST serviceaccounts/NAME/token returns a token the server accepts."""
    sandbox.pod_environment(service_account="builder")
    async with https_client(sandbox) as client:
        answer = await client.post(
            "/api/v1/namespaces/default/serviceaccounts/builder/token",
            json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
        )
    token = answer.json()["status"]["token"]
    async with https_client(sandbox, token) as client:
        assert (await client.get("/api")).status_code == 200
