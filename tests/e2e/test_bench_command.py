"""``asyncpod bench`` against a small JSON server on loopback."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from asyncpod._cli import main
from asyncpod._commands.bench import percentile

BODY = b'{"kind":"APIVersions","versions":["v1"]}'


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the API server and kubectl proxy do
    wbufsize = 1 << 16  # head and body in one write: no Nagle delay per answer

    def do_GET(self) -> None:
        status, body = (200, BODY) if self.path == "/api" else (404, b"404 page not found")
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if status == 200 else "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def proxy_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A kubectl-proxy-like JSON server on 127.0.0.1, named by ASYNCPOD_PROXY_URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.delenv("ASYNCPOD_UNIX_SOCKET", raising=False)
    monkeypatch.setenv("ASYNCPOD_PROXY_URL", url)
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()


def _anyio_engine_available() -> bool:
    from asyncpod_transports import create_transport

    from asyncpod import ConfigError, ProxyEndpoint

    try:
        create_transport(ProxyEndpoint("http://127.0.0.1:1"), engine="anyio")
    except ConfigError:
        return False
    return True


LOOPS = [
    "asyncio",
    pytest.param(
        "trio",
        marks=pytest.mark.skipif(
            not _anyio_engine_available(), reason="the anyio engine is not available"
        ),
    ),
]


@pytest.mark.parametrize("loop", LOOPS)
def test_bench_prints_rate_and_percentiles(
    proxy_url: str, loop: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run prints requests, req/s and p50/p90/p99 on stdout, a progress bar on stderr."""
    code = main(["bench", "--requests", "60", "--concurrency", "4", "--loop", loop, "/api"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"server:       {proxy_url} (proxy)" in out
    assert "requests:     60 (0 failed)" in out
    assert "concurrency:  4" in out
    assert re.search(r"^throughput: +[\d,]+\.\d req/s$", out, re.MULTILINE)
    for name in ("p50", "p90", "p99"):
        assert re.search(rf"^latency {name}: +\d+\.\d\d ms$", out, re.MULTILINE), out
    assert "60/60 100%" in err


def test_bench_fails_with_one_line_on_a_missing_path(
    proxy_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A path the server does not have exits 1 with a one-line error and no table."""
    code = main(["bench", "--requests", "5", "/no/such/path"])
    out, err = capsys.readouterr()
    assert code == 1
    assert err.startswith("asyncpod: error: ")
    assert "throughput" not in out


def test_percentile_is_nearest_rank() -> None:
    """p50/p90/p99 pick the nearest-rank sample."""
    values = [float(i) for i in range(1, 101)]
    assert [percentile(values, p) for p in (0.5, 0.9, 0.99)] == [50.0, 90.0, 99.0]
    assert percentile([3.0], 0.99) == 3.0
