"""``asyncpod exec`` and ``asyncpod port-forward``, run as processes against the sandbox."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from asyncpod import AsyncpodError
from asyncpod._commands.port_forward import parse_ports
from asyncpod.testing import Sandbox
from tests.helpers.processes import popen_interruptible, reap


def _env(sandbox: Sandbox) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASYNCPOD_", "KUBE"))}
    env["ASYNCPOD_PROXY_URL"] = sandbox.proxy_url
    return env


def _run(sandbox: Sandbox, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "asyncpod", *args],
        env=_env(sandbox),
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )


def _pod(sandbox: Sandbox) -> None:
    sandbox.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"containers": [{"name": "app", "image": "app"}]},
        }
    )
    sandbox.wait_running("web")  # exec needs the pod bound to the node


def test_exec_copies_output_and_exits_with_the_commands_code(sandbox: Sandbox) -> None:
    """stdout and stderr byte for byte; the exit status is the command's, as kubectl's."""
    _pod(sandbox)
    done = _run(sandbox, "exec", "pod/web", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert done.returncode == 3
    assert done.stdout == b"out\n"
    assert done.stderr == b"err\ncommand terminated with exit code 3\n"


def test_exec_passes_stdin_with_i(sandbox: Sandbox) -> None:
    """-i copies stdin to the command and closes it: cat ends."""
    _pod(sandbox)
    data = os.urandom(100_000)
    done = _run(sandbox, "exec", "-i", "web", "--", "cat", stdin=data)
    assert (done.returncode, done.stdout) == (0, data)


def test_exec_errors_are_one_line_and_exit_1(sandbox: Sandbox) -> None:
    """A missing pod or command: one error line, exit status 1."""
    _pod(sandbox)
    missing_pod = _run(sandbox, "exec", "nosuchpod", "--", "true")
    missing_command = _run(sandbox, "exec", "web", "--", "no-such-command-here")
    assert missing_pod.returncode == 1
    assert missing_pod.stderr.decode().strip() == (
        'asyncpod: error: 404 NotFound: pods "nosuchpod" not found'
    )
    assert missing_command.returncode == 1
    assert b"executable file not found" in missing_command.stderr


@pytest.mark.parametrize(
    ("spec", "ports"), [("8080", (8080, 8080)), ("9000:80", (9000, 80)), (":80", (0, 80))]
)
def test_port_specs(spec: str, ports: tuple[int, int]) -> None:
    """kubectl's [LOCAL:]REMOTE spellings."""
    assert parse_ports(spec) == ports


@pytest.mark.parametrize("spec", ["x", "0", "80:", "70000", "1:2:3"])
def test_bad_port_specs(spec: str) -> None:
    """A spec that is not one or two port numbers is refused, naming it."""
    with pytest.raises(AsyncpodError, match="invalid port spec"):
        parse_ports(spec)


@pytest.fixture
def echo_port() -> Iterator[int]:
    """A blocking echo server in a thread, for the port-forward process to reach."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                while data := conn.recv(65536):
                    conn.sendall(data)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        server.close()


def test_port_forward_serves_until_interrupted(sandbox: Sandbox, echo_port: int) -> None:
    """It prints kubectl's "Forwarding from" line, forwards, and ends cleanly on SIGINT."""
    _pod(sandbox)
    sandbox.map_port("web", 80, echo_port)
    process = popen_interruptible(
        [sys.executable, "-m", "asyncpod", "port-forward", "web", ":80"],
        env=_env(sandbox),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode()
        assert line.startswith("Forwarding from 127.0.0.1:")
        assert line.rstrip().endswith("-> 80")
        port = int(line.split(":")[1].split()[0])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(b"hello")
            assert conn.recv(100) == b"hello"
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    finally:
        reap(process)
    assert process.returncode in (0, 130)
