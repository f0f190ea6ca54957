"""An exec credential plugin end to end: kubeconfig, a real plugin process, the sandbox."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest
import yaml

from asyncpod import Client, Config
from asyncpod.testing import Sandbox

pytestmark = pytest.mark.anyio

# The first run hands out a token the server refuses; later runs the real one.
PLUGIN = r"""
import json, pathlib, sys
log, secret = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
runs = len(log.read_text().splitlines()) if log.exists() else 0
with log.open("a") as f:
    f.write("run\n")
token = "exec-bogus-token" if runs == 0 else secret.read_text()
print(json.dumps({"apiVersion": "client.authentication.k8s.io/v1beta1",
                  "kind": "ExecCredential", "status": {"token": token}}))
"""


@pytest.fixture
def kubeconfig(tmp_path: Path, sandbox: Sandbox) -> Path:
    """A kubeconfig whose user gets its token from the plugin."""
    (tmp_path / "plugin.py").write_text(PLUGIN)
    (tmp_path / "secret").write_text(sandbox.admin_token)
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "sandbox",
                "cluster": {
                    "server": sandbox.server_url,
                    "certificate-authority": str(sandbox.ca_file),
                },
            }
        ],
        "users": [
            {
                "name": "plugin-user",
                "user": {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1beta1",
                        "command": sys.executable,
                        "args": ["plugin.py", "runs.log", "secret"],
                        "interactiveMode": "Never",
                    }
                },
            }
        ],
        "contexts": [{"name": "x", "context": {"cluster": "sandbox", "user": "plugin-user"}}],
        "current-context": "x",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(doc))
    return path


async def test_exec_plugin_token_refreshed_after_401(
    kubeconfig: Path,
    sandbox: Sandbox,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A refused plugin token makes the client run the plugin again and retry once."""
    caplog.set_level(logging.DEBUG)
    # The plugin's relative arguments name files beside the kubeconfig.
    monkeypatch.chdir(kubeconfig.parent)
    config = Config.from_kubeconfig(kubeconfig)
    async with Client(config) as k8s:
        for _ in range(5):
            assert (await k8s.get_json("/api"))["kind"] == "APIVersions"
    runs = (kubeconfig.parent / "runs.log").read_text().splitlines()
    assert len(runs) == 2
    assert [r.status for r in sandbox.requests.filter("GET", "/api")] == [401] + [200] * 5
    assert sandbox.admin_token not in caplog.text
    assert "exec-bogus-token" not in caplog.text
    assert json.dumps(sandbox.admin_token) not in repr(config)
