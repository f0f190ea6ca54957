"""URL handling, and passwords in URLs shown as ``***`` in reprs, errors, logs and the CLI."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from asyncpod import Client, Config, ConfigError, load_config
from asyncpod._assemble import endpoint_for
from asyncpod._urls import bracket_host, is_loopback, join_origin, redact, split_origin

SECRET = "s3cr3t-pw"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://admin:s3cr3t-pw@host:6443", "https://***@host:6443"),
        ("http://user:s3cr3t-pw@10.1.2.3:8001", "http://***@10.1.2.3:8001"),
        ("https://only-user@host", "https://***@host"),
        ("http://u:p@ss:s3cr3t-pw@[::1]:8001/x", "http://***@[::1]:8001/x"),
        ("https://host:6443/path@not-userinfo", "https://host:6443/path@not-userinfo"),
        ("https://host?q=a@b", "https://host?q=a@b"),
        ("https://host:6443", "https://host:6443"),
        ("u:s3cr3t-pw@host", "***@host"),
    ],
)
def test_redact(url: str, shown: str) -> None:
    """Userinfo, and only userinfo, becomes ***."""
    assert redact(url) == shown


def test_bracket_and_join() -> None:
    """IPv6 literals are bracketed once (RFC 3986 section 3.2.2), names and IPv4 never."""
    assert bracket_host("::1") == "[::1]"
    assert bracket_host("[::1]") == "[::1]"
    assert bracket_host("10.0.0.1") == "10.0.0.1"
    assert join_origin("https", "fd00::1", 443) == "https://[fd00::1]:443"


def test_split_origin_defaults_and_errors() -> None:
    """The default port is filled in; every error quotes the URL without its password."""
    assert split_origin("https://h", schemes=("https",), what="API server URL") == (
        "https",
        "h",
        443,
    )
    assert split_origin("http://[::1]:8001/", schemes=("http",), what="proxy URL") == (
        "http",
        "::1",
        8001,
    )
    for url in (
        f"ftp://u:{SECRET}@h",
        f"https://u:{SECRET}@h:99999",
        f"https://u:{SECRET}@h/api",
        f"https://u:{SECRET}@:443",
    ):
        with pytest.raises(ConfigError, match=r"API server URL '[a-z]+://\*\*\*@") as info:
            split_origin(url, schemes=("https",), what="API server URL")
        assert_secret_nowhere(info.value)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("127.0.0.1", True),
        ("127.9.9.9", True),
        ("::1", True),
        ("10.0.0.1", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    """localhost and loopback literals only; names are never resolved."""
    assert is_loopback(host) is loopback


def exception_chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and every exception chained to it."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        todo += [current.__cause__, current.__context__]
    return seen


def assert_secret_nowhere(exc: BaseException) -> None:
    """The password is in no message, repr or argument of the whole chain."""
    for link in exception_chain(exc):
        for text in (str(link), repr(link), repr(link.args)):
            assert SECRET not in text, text


def test_config_repr_hides_url_passwords() -> None:
    """repr(Config) shows server and proxy-url userinfo as ***."""
    config = Config.https(f"https://admin:{SECRET}@k8s.example:6443")
    assert "server='https://***@k8s.example:6443'" in repr(config)
    assert SECRET not in repr(config)
    proxied = Config(
        source="kubeconfig", server="https://h", proxy_url=f"http://u:{SECRET}@proxy:3128"
    )
    assert "proxy_url='http://***@proxy:3128'" in repr(proxied)
    assert SECRET not in repr(proxied)
    assert SECRET not in str(proxied)


@pytest.mark.parametrize(
    "make",
    [
        lambda: endpoint_for(Config.proxy(f"http://user:{SECRET}@10.1.2.3:8001")),
        lambda: load_config(
            chain=("proxy",), environ={"ASYNCPOD_PROXY_URL": f"http://user:{SECRET}@10.1.2.3:8001"}
        ),
        lambda: endpoint_for(
            Config(source="kubeconfig", server="https://h", proxy_url=f"http://u:{SECRET}@p:3128")
        ),
        lambda: Config.https(f"http://user:{SECRET}@127.0.0.1:8001", token="t"),
        lambda: endpoint_for(Config(source="explicit", server=f"ftp://u:{SECRET}@h")),
    ],
    ids=["proxy-not-loopback", "chain", "kubeconfig-proxy-url", "https-refusal", "bad-scheme"],
)
def test_url_errors_never_show_the_password(make: Any, caplog: pytest.LogCaptureFixture) -> None:
    """Each URL error quotes the URL with *** for its userinfo, in the whole chain and the logs."""
    with caplog.at_level(logging.DEBUG), pytest.raises(ConfigError) as info:
        make()
    assert "***@" in str(info.value)
    assert_secret_nowhere(info.value)
    assert SECRET not in caplog.text


def test_kubeconfig_proxy_url_password_hidden(tmp_path: Path) -> None:
    """A kubeconfig proxy-url with a password: kept for use, shown as *** in the repr."""
    path = tmp_path / "config"
    path.write_text(
        yaml.safe_dump(
            {
                "clusters": [
                    {
                        "name": "c",
                        "cluster": {
                            "server": "https://h:6443",
                            "proxy-url": f"http://u:{SECRET}@proxy.local:3128",
                        },
                    }
                ],
                "contexts": [{"name": "x", "context": {"cluster": "c"}}],
                "current-context": "x",
            }
        )
    )
    config = Config.from_kubeconfig(path)
    assert config.proxy_url == f"http://u:{SECRET}@proxy.local:3128"
    assert SECRET not in repr(config)


@pytest.mark.anyio
async def test_requests_through_a_proxy_url_with_userinfo_log_no_password(
    sandbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A proxy URL with userinfo works; nothing logged at DEBUG shows the password."""
    url = sandbox.proxy_url.replace("http://", f"http://user:{SECRET}@")
    with caplog.at_level(logging.DEBUG):
        async with Client(Config.proxy(url)) as k8s:
            response = await k8s.request("GET", "/api")
            assert response.status == 200
            assert SECRET not in repr(k8s.config)
    assert SECRET not in caplog.text


def run_cli(tmp_path: Path, proxy_url: str) -> subprocess.CompletedProcess[str]:
    """``asyncpod config`` with only ``ASYNCPOD_PROXY_URL`` set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASYNCPOD_", "KUBE"))}
    env.update(HOME=str(tmp_path), ASYNCPOD_PROXY_URL=proxy_url)
    return subprocess.run(
        [sys.executable, "-m", "asyncpod", "config"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_config_never_prints_the_password(tmp_path: Path) -> None:
    """asyncpod config shows *** for userinfo, on success and on error, stdout and stderr."""
    ok = run_cli(tmp_path, f"http://user:{SECRET}@127.0.0.1:8001")
    assert ok.returncode == 0, ok.stderr
    assert "server:    http://***@127.0.0.1:8001" in ok.stdout
    refused = run_cli(tmp_path, f"http://user:{SECRET}@10.1.2.3:8001")
    assert refused.returncode == 1
    assert "'http://***@10.1.2.3:8001' is not on loopback" in refused.stderr
    for result in (ok, refused):
        assert SECRET not in result.stdout
        assert SECRET not in result.stderr
