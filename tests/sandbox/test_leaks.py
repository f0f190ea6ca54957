"""The sandbox closes every server-side socket when stopped, whatever its clients did."""

from __future__ import annotations

import gc
import socket
import ssl
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from asyncpod.testing import Sandbox


@contextmanager
def no_resource_warnings() -> Iterator[None]:
    """Fail if a socket is garbage-collected unclosed inside the block."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        yield
        gc.collect()
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert leaks == []


def tls_context(sb: Sandbox) -> ssl.SSLContext:
    """A client context trusting the sandbox's CA."""
    return ssl.create_default_context(cafile=str(sb.ca_file))


def test_stop_during_tls_handshakes() -> None:
    """Clients that connected but never finished the TLS handshake are closed by stop()."""
    with no_resource_warnings(), Sandbox() as sb:
        clients = [socket.create_connection(("127.0.0.1", sb.port)) for _ in range(5)]
        # Half a ClientHello: the server accepts and waits in its handshake.
        for sock in clients:
            sock.sendall(b"\x16\x03\x01\x00\xc8\x01")
        time.sleep(0.2)
        sb.stop()
        for sock in clients:
            sock.settimeout(5)
            assert sock.recv(1024) == b""
            sock.close()


def test_tls_client_dropped_during_slow_answer() -> None:
    """A TLS client that goes away while a slow fault delays its answer leaks nothing."""
    with no_resource_warnings(), Sandbox() as sb:
        sb.faults.add("slow", delay=0.5, count=3)
        for _ in range(3):
            raw = socket.create_connection(("127.0.0.1", sb.port))
            tls = tls_context(sb).wrap_socket(raw, server_hostname="127.0.0.1")
            tls.sendall(
                b"GET /api HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Authorization: Bearer " + sb.admin_token.encode() + b"\r\n\r\n"
            )
            tls.close()
        time.sleep(0.1)
        sb.stop()
