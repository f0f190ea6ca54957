"""The deploy examples: each Pod's app container triggers the link its README names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from asyncpod import load_config
from tests.helpers.sa_folder import make_sa_folder

DEPLOY = Path(__file__).parents[2] / "examples" / "deploy"


def app_environ(manifest: Path) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """The plain env values of the app container, and the Pod's documents."""
    docs = list(yaml.safe_load_all(manifest.read_text()))
    pod = next(d for d in docs if d["kind"] == "Pod")
    (app,) = [c for c in pod["spec"]["containers"] if c["name"] == "app"]
    env = {e["name"]: e["value"] for e in app.get("env", []) if "value" in e}
    return env, docs


@pytest.mark.parametrize(
    ("name", "link", "app_has_token"),
    [
        ("direct-https.yaml", "in-cluster", True),
        ("kubectl-proxy-sidecar.yaml", "proxy", False),
        ("unix-socket-sidecar.yaml", "unix", False),
    ],
)
def test_manifest_triggers_its_link(
    tmp_path: Path, name: str, link: str, app_has_token: bool
) -> None:
    """With the kubelet's variables added, the chain picks the documented link."""
    env, docs = app_environ(DEPLOY / name)
    assert {d["kind"] for d in docs} == {"ServiceAccount", "Role", "RoleBinding", "Pod"}
    env.update(KUBERNETES_SERVICE_HOST="10.96.0.1", KUBERNETES_SERVICE_PORT="443")
    sa = tmp_path / "sa"
    if app_has_token:
        make_sa_folder(sa, {"token": b"t", "ca.crt": b"ca", "namespace": b"default"})
    config = load_config(environ=env, service_account_dir=sa)
    assert config.source == link
    assert link in (DEPLOY / "README.md").read_text()
