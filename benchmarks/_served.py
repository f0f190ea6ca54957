"""What the stream benchmarks talk to, each in a process of its own.

``asyncpod sandbox`` from this checkout, and a TCP echo server on threads
(``python -m benchmarks._served``), so that no client measured shares a
process, or a GIL, with the server side.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@contextmanager
def echo_listener() -> Iterator[int]:
    """Echo every connection on a free port of 127.0.0.1, on threads; yields the port."""
    server = socket.create_server(("127.0.0.1", 0))
    port = int(server.getsockname()[1])

    def echo(conn: socket.socket) -> None:
        with conn, suppress(OSError):
            while data := conn.recv(1 << 20):
                conn.sendall(data)

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return  # closed
            threading.Thread(target=echo, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        # shutdown() wakes the blocked accept() on Linux; close() alone may not.
        with suppress(OSError):
            server.shutdown(socket.SHUT_RDWR)
        server.close()
        thread.join(5)


@contextmanager
def _process(command: list[str], ready: str) -> Iterator[str]:
    """Run ``command`` until the block ends; yields its first line starting with ``ready``."""
    process = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    try:
        for line in process.stdout:
            if line.startswith(ready):
                break
        else:
            msg = f"{' '.join(command[:4])} ended before serving (exit {process.wait()})"
            raise SystemExit(msg)
        yield line.strip()
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()


@contextmanager
def echo_process() -> Iterator[int]:
    """``echo_listener()`` in a process of its own; yields its port."""
    with _process([sys.executable, "-m", "benchmarks._served"], "echo ") as line:
        yield int(line.split()[1])


@contextmanager
def sandbox_process(folder: Path, mappings: list[str]) -> Iterator[Path]:
    """``asyncpod sandbox`` with ``--map-port`` mappings; yields its kubeconfig."""
    kubeconfig = folder / "kubeconfig"
    command = [sys.executable, "-m", "asyncpod", "sandbox", "--kubeconfig", str(kubeconfig)]
    for mapping in mappings:
        command += ["--map-port", mapping]
    with _process(command, "export KUBECONFIG="):
        yield kubeconfig


def main() -> None:
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with echo_listener() as port:
        print(f"echo {port}", flush=True)
        while not stop.wait(0.5):
            pass


if __name__ == "__main__":
    main()
