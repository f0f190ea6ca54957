"""The command line, run as ``python -m asyncpod`` against the sandbox's proxy listener."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

import asyncpod
from asyncpod import _json
from asyncpod._commands._output import human_duration


def _run(sandbox: Any, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASYNCPOD_", "KUBE"))}
    env["ASYNCPOD_PROXY_URL"] = sandbox.proxy_url
    return subprocess.run(
        [sys.executable, "-m", "asyncpod", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _run_all(sandbox: Any, *commands: tuple[str, ...]) -> list[subprocess.CompletedProcess[str]]:
    """Run several commands at once (each is a separate process, mostly start-up time)."""
    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        return list(pool.map(lambda args: _run(sandbox, *args), commands))


def _cm(name: str, namespace: str = "default", **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "data": {"k": "v"},
    }


def test_get_raw_path_prints_json(sandbox: Any) -> None:
    """`asyncpod get /api` prints the server's JSON and exits 0."""
    result = _run(sandbox, "get", "/api")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["kind"] == "APIVersions"


def test_get_table_name_json_and_yaml(sandbox: Any) -> None:
    """Default table, -o name, -o json and -o yaml show the same objects."""
    sandbox.create(_cm("web", tier="front"))
    sandbox.create(_cm("db", tier="back"))
    table, names, as_json, as_yaml = _run_all(
        sandbox,
        ("get", "cm", "-l", "tier"),
        ("get", "configmaps", "-l", "tier=front", "-o", "name"),
        ("get", "configmap", "-l", "tier", "-o", "json"),
        ("get", "ConfigMap", "web", "-o", "yaml"),
    )
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["NAME", "DATA", "AGE"]
    assert [line.split()[0] for line in lines[1:]] == ["db", "web"]
    assert names.stdout.splitlines() == ["configmap/web"]
    listing = json.loads(as_json.stdout)
    assert listing["kind"] == "List"
    assert {i["metadata"]["name"] for i in listing["items"]} == {"web", "db"}
    one = yaml.safe_load(as_yaml.stdout)
    assert one["metadata"]["name"] == "web"
    assert one["data"] == {"k": "v"}


def test_get_all_namespaces_adds_a_namespace_column(sandbox: Any) -> None:
    """-A lists every namespace and shows a NAMESPACE column."""
    sandbox.ensure_namespace("other")
    sandbox.create(_cm("x", namespace="other"))
    result = _run(sandbox, "get", "cm", "-A")
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split()[:2] == ["NAMESPACE", "NAME"]
    assert ["other", "x"] in [row.split()[:2] for row in rows]


def test_get_errors_are_one_line_and_exit_1(sandbox: Any) -> None:
    """Unknown resources, missing objects and escaping names: one line, exit 1."""
    cases = (
        (("get", "flibbertigibbets"), "flibbertigibbets"),
        (("get", "cm", "missing"), "NotFound"),
        (("get", "cm", "../secrets"), "name"),
    )
    results = _run_all(sandbox, *(args for args, _ in cases))
    for (_, needle), result in zip(cases, results, strict=True):
        assert result.returncode == 1
        assert result.stdout == ""
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("asyncpod: error: ")
        assert needle in lines[0]


def test_get_empty_namespace_says_so(sandbox: Any) -> None:
    """No objects: kubectl's message on stderr, exit 0."""
    sandbox.ensure_namespace("empty")
    result = _run(sandbox, "get", "deployments.apps", "-n", "empty")
    assert result.returncode == 0
    assert result.stdout == ""
    assert "No resources found in empty namespace." in result.stderr


def test_apply_multi_document_yaml_twice(sandbox: Any, tmp_path: Path) -> None:
    """apply -f applies every document, and applying again is idempotent."""
    manifest = tmp_path / "app.yaml"
    manifest.write_text(
        yaml.safe_dump(_cm("applied-a"))
        + "---\n"
        + json.dumps(_cm("applied-b"))
        + "\n---\n"
        + yaml.safe_dump(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "web", "namespace": "default"},
                "spec": {
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": {
                        "metadata": {"labels": {"app": "web"}},
                        "spec": {"containers": [{"name": "web", "image": "nginx"}]},
                    },
                },
            }
        )
    )
    for _ in range(2):
        result = _run(sandbox, "apply", "-f", str(manifest), "--field-manager", "cli-test")
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == [
            "configmap/applied-a serverside-applied",
            "configmap/applied-b serverside-applied",
            "deployment.apps/web serverside-applied",
        ]
    stored = sandbox.get("configmaps", "applied-b")
    assert {f["manager"] for f in stored["metadata"]["managedFields"]} == {"cli-test"}


def test_apply_bad_file_is_one_line_error(sandbox: Any, tmp_path: Path) -> None:
    """A missing file or a document without a kind fails with one line and exit 1."""
    missing = _run(sandbox, "apply", "-f", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 1
    assert missing.stderr.startswith("asyncpod: error: cannot read")
    bad = tmp_path / "bad.yaml"
    bad.write_text("metadata: {name: x}\n")
    result = _run(sandbox, "apply", "-f", str(bad))
    assert result.returncode == 1
    assert "no apiVersion or kind" in result.stderr


def test_watch_prints_one_line_per_event(sandbox: Any) -> None:
    """watch prints the initial objects as ADDED lines, then stops at --timeout."""
    sandbox.create(_cm("seen"))
    result = _run(sandbox, "watch", "cm", "--timeout", "1")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.split()[:2] == ["ADDED", "configmap/seen"] for line in lines)


def test_config_names_the_link_and_the_others(sandbox: Any) -> None:
    """config says the proxy link applies, and why the unix link did not."""
    result = _run(sandbox, "config")
    assert result.returncode == 0, result.stderr
    assert "link:      proxy" in result.stdout
    assert sandbox.proxy_url in result.stdout
    assert "unix:" in result.stdout
    assert f"decoder {_json.ENGINE}" in result.stdout


def test_version_names_the_decoder_and_the_default_engines() -> None:
    """`asyncpod --version` says which JSON decoder runs and which engine each loop gets."""
    result = subprocess.run(
        [sys.executable, "-m", "asyncpod", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    line = result.stdout.strip()
    assert line.startswith(f"asyncpod {asyncpod.__version__} (decoder {_json.ENGINE}")
    assert f"asyncio {asyncpod.choose_engine('asyncio')}" in line
    assert "trio anyio" in line


def test_a_plain_install_requires_the_fast_decoder_on_cpython() -> None:
    """The package metadata makes orjson a dependency wherever CPython runs, not an extra."""
    requirements = importlib.metadata.requires("asyncpod") or []
    orjson = [r for r in requirements if r.startswith("orjson") and "extra ==" not in r]
    assert orjson, requirements
    assert "platform_python_implementation ==" in orjson[0]
    assert "CPython" in orjson[0]


def test_human_duration_matches_kubectl() -> None:
    """AGE values follow kubectl's HumanDuration."""
    cases = {0: "0s", 119: "119s", 150: "2m30s", 600: "10m", 7200: "120m", 3 * 3600 + 60: "3h1m"}
    cases |= {30 * 3600: "30h", 3 * 86400: "3d", 10 * 86400: "10d", 800 * 86400: "2y70d"}
    for seconds, text in cases.items():
        assert human_duration(seconds) == text


@pytest.mark.parametrize("output", ["json", "yaml"])
def test_get_single_cluster_scoped_object(sandbox: Any, output: str) -> None:
    """A cluster-scoped object is found without a namespace."""
    result = _run(sandbox, "get", "ns", "default", "-o", output)
    assert result.returncode == 0, result.stderr
    assert "default" in result.stdout
