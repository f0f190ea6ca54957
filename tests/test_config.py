"""``Config`` constructors never downgrade: credentials only travel over https://."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from asyncpod import Client, Config, ConfigError, ExecProvider

pytestmark = pytest.mark.anyio


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A raw TCP listener on loopback that counts the connections it gets."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        sock.setblocking(False)
        yield sock


def connections(sock: socket.socket) -> int:
    """How many connections reached ``sock`` (each is closed at once)."""
    count = 0
    while True:
        try:
            conn, _ = sock.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1


@pytest.mark.parametrize("scheme", ["http", "HTTP", "ftp", ""])
def test_https_refuses_another_scheme(listener: socket.socket, scheme: str) -> None:
    """Config.https('http://...') is a ConfigError pointing at Config.proxy, not plain HTTP."""
    port = listener.getsockname()[1]
    url = f"{scheme}://127.0.0.1:{port}" if scheme else f"127.0.0.1:{port}"
    with pytest.raises(ConfigError, match=r"needs an https:// URL.*use Config\.proxy\(url\)"):
        Config.https(url, token="sekret-token")
    assert connections(listener) == 0


def test_https_accepts_https() -> None:
    """An https:// URL (any case) is accepted as before."""
    assert Config.https("HTTPS://k8s.example:6443").server == "HTTPS://k8s.example:6443"


@pytest.mark.parametrize(
    "credential",
    [
        {"token": "sekret-token"},
        {"token_file": "token"},
        {"exec_provider": ExecProvider(command="never-run")},
        {"client_cert_data": b"cert", "client_key_data": b"key"},
    ],
    ids=["token", "token-file", "exec", "client-certificate"],
)
async def test_hand_built_http_config_with_credentials_sends_nothing(
    listener: socket.socket, tmp_path: Path, credential: dict[str, object]
) -> None:
    """A Config built by hand with http:// and credentials: refused at entry, no byte sent."""
    if "token_file" in credential:
        (tmp_path / "token").write_text("sekret-token\n")
        credential = {"token_file": tmp_path / "token"}
    port = listener.getsockname()[1]
    config = Config(source="explicit", server=f"http://127.0.0.1:{port}", **credential)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"plain-HTTP URL; use https://") as info:
        async with Client(config, retries=0) as k8s:
            await k8s.request("GET", "/api")
    assert "sekret-token" not in str(info.value)
    assert connections(listener) == 0
