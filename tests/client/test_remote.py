"""exec and stream_exec against the sandbox's kubelet: real processes over real WebSockets."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

import asyncpod
from asyncpod.testing import PodEnvironment, Sandbox
from tests.helpers.sandbox import eventually

pytestmark = pytest.mark.anyio

PY = sys.executable
V4 = "v4.channel.k8s.io"
V5 = "v5.channel.k8s.io"


def _pod(name: str = "web", namespace: str = "default") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "containers": [{"name": "app", "image": "app", "env": [{"name": "X", "value": "1"}]}]
        },
    }


def _running(sandbox: Sandbox, name: str = "web") -> None:
    """Create the pod and wait until the fake kubelet runs it: exec needs it bound."""
    sandbox.create(_pod(name))
    sandbox.wait_running(name)


def _configs(sb: Sandbox, pod: PodEnvironment) -> list[asyncpod.Config]:
    return [
        asyncpod.Config.https(sb.server_url, token_file=pod.token_file, ca_file=pod.ca_file),
        asyncpod.Config.proxy(sb.proxy_url),
        asyncpod.Config.unix_socket(sb.unix_socket),
    ]


def _admin(sb: Sandbox) -> asyncpod.Config:
    return asyncpod.Config.from_kubeconfig(sb.kubeconfig)


async def test_exit_codes_over_the_three_routes(
    sandbox: Sandbox, pod_environment: PodEnvironment, anyio_backend: str
) -> None:
    """Exit codes 0, 1 and 137 (SIGKILL) arrive over HTTPS, the proxy port and the Unix socket."""
    # A pod of its own: a session of an earlier test may still be logged late.
    name = f"routes-{anyio_backend}"
    _running(sandbox, name)
    for config in _configs(sandbox, pod_environment):
        async with asyncpod.Client(config) as k8s:
            ok = await k8s.exec(name, ["sh", "-c", "echo out; echo err >&2"])
            failed = await k8s.exec(name, ["sh", "-c", "exit 1"])
            killed = await k8s.exec(name, ["sh", "-c", "kill -9 $$"])
        assert (ok.exit_code, ok.stdout, ok.stderr) == (0, b"out\n", b"err\n")
        assert ok.protocol == V5
        assert failed.exit_code == 1
        assert killed.exit_code == 137
    # The server records a session when its handler ends, after the client's side.
    await eventually(
        lambda: len([r for r in sandbox.requests if r.path.endswith(f"/pods/{name}/exec")]) == 9
    )
    execs = [r for r in sandbox.requests if r.path.endswith(f"/pods/{name}/exec")]
    assert {r.listener for r in execs} == {"https", "proxy", "unix"}
    assert all(r.status == 101 for r in execs)


async def test_command_runs_in_its_own_folder_with_the_container_env(sandbox: Sandbox) -> None:
    """The command's cwd is a fresh temporary folder, and the container's env is set."""
    _running(sandbox)
    async with asyncpod.Client(_admin(sandbox)) as k8s:
        result = await k8s.exec("web", ["sh", "-c", 'pwd; echo "$X $HOSTNAME"'])
    folder, env = result.stdout.decode().splitlines()
    assert Path(folder).name.startswith("asyncpod-exec-")
    assert not await anyio.Path(folder).exists()  # removed after the session
    assert env == "1 web"


async def test_missing_command_is_a_command_error_with_the_servers_message(
    sandbox: Sandbox,
) -> None:
    """A command that does not exist raises CommandError without an exit code."""
    _running(sandbox)
    async with asyncpod.Client(_admin(sandbox)) as k8s:
        with pytest.raises(asyncpod.CommandError) as caught:
            await k8s.exec("web", ["no-such-command-here"])
    assert caught.value.exit_code is None
    assert "executable file not found" in str(caught.value)
    assert caught.value.status["reason"] == "InternalError"


async def test_check_raises_carrying_the_output(sandbox: Sandbox) -> None:
    """check=True turns a non-zero exit code into CommandError with stdout and stderr."""
    _running(sandbox)
    async with asyncpod.Client(_admin(sandbox)) as k8s:
        with pytest.raises(asyncpod.CommandError) as caught:
            await k8s.exec("web", ["sh", "-c", "echo partial; echo bad >&2; exit 3"], check=True)
    error = caught.value
    assert isinstance(error, asyncpod.AsyncpodError)
    assert (error.exit_code, error.stdout, error.stderr) == (3, b"partial\n", b"bad\n")
    assert "exit code 3" in str(error)


async def test_ten_megabytes_of_binary_stdout_arrive_intact(sandbox: Sandbox) -> None:
    """10 MiB of every byte value, in many 32 KiB messages, arrive byte for byte."""
    _running(sandbox)
    script = "import sys; sys.stdout.buffer.write(bytes(range(256)) * 40960)"
    async with asyncpod.Client(_admin(sandbox)) as k8s:
        result = await k8s.exec("web", [PY, "-c", script])
    assert result.exit_code == 0
    assert len(result.stdout) == 10 * 1024 * 1024
    assert result.stdout == bytes(range(256)) * 40960


async def test_utf8_character_split_across_messages_decodes_whole(sandbox: Sandbox) -> None:
    """A 3-byte character across the 32 KiB message boundary is decoded once, not as U+FFFD."""
    _running(sandbox)
    # 32766 ASCII bytes fill the first message's payload (32767) up to the
    # euro sign's first byte.
    script = "import sys; sys.stdout.buffer.write(b'a' * 32766 + '\u20ac'.encode() + b'z')"
    async with (
        asyncpod.Client(_admin(sandbox)) as k8s,
        k8s.stream_exec("web", [PY, "-c", script]) as proc,
    ):
        parts = [text async for text in proc.aiter_text(proc.stdout)]
        assert await proc.wait() == 0
    text = "".join(parts)
    assert text == "a" * 32766 + "\u20ac" + "z"
    assert "\ufffd" not in text


async def test_stdin_closed_on_v5_lets_cat_end(sandbox: Sandbox) -> None:
    """exec(stdin=...) sends the bytes and the v5 close signal: cat sees EOF and ends."""
    _running(sandbox)
    data = os.urandom(200_000)
    async with asyncpod.Client(_admin(sandbox)) as k8s:
        with anyio.fail_after(30):
            result = await k8s.exec("web", ["cat"], stdin=data)
    assert result.exit_code == 0
    assert result.stdout == data


async def test_streaming_stdin_and_close(sandbox: Sandbox) -> None:
    """stream_exec: write stdin in pieces, read the echo, close stdin, wait for the exit code."""
    _running(sandbox)
    async with (
        asyncpod.Client(_admin(sandbox)) as k8s,
        k8s.stream_exec("web", ["cat"], stdin=True) as proc,
    ):
        assert proc.stdin is not None
        await proc.stdin.send(b"one\n")
        assert await proc.stdout.receive() == b"one\n"
        await proc.stdin.send(b"two\n")
        assert await proc.stdout.receive() == b"two\n"
        await proc.close_stdin()
        with anyio.fail_after(10):
            assert await proc.wait() == 0
        with pytest.raises(anyio.EndOfStream):
            await proc.stdout.receive()


async def test_v4_only_server_is_negotiated_and_reported(sandbox: Sandbox) -> None:
    """A server that speaks only v4 gets v4; stdin that must be closed is refused clearly."""
    _running(sandbox)
    sandbox.stream_protocols = (V4,)
    async with asyncpod.Client(_admin(sandbox)) as k8s:
        result = await k8s.exec("web", ["echo", "hi"])
        with anyio.fail_after(10), pytest.raises(asyncpod.AsyncpodError) as caught:
            await k8s.exec("web", ["cat"], stdin=b"never ends")
        async with k8s.stream_exec("web", ["cat"], stdin=True) as proc:
            with pytest.raises(asyncpod.AsyncpodError, match="cannot close one channel"):
                await proc.close_stdin()
    assert (result.stdout, result.protocol) == (b"hi\n", V4)
    assert "v4.channel.k8s.io" in str(caught.value)
    assert "v5.channel.k8s.io" in str(caught.value)


async def test_forbidden_upgrade_gives_the_servers_message_and_a_hint(
    sandbox: Sandbox, pod_environment: PodEnvironment
) -> None:
    """403 on the upgrade: ForbiddenError with the server's Status message and the RBAC hint."""
    _running(sandbox)
    sandbox.rules.restrict_service_accounts()
    config = _configs(sandbox, pod_environment)[0]
    async with asyncpod.Client(config) as k8s:
        with pytest.raises(asyncpod.ForbiddenError) as caught:
            await k8s.exec("web", ["true"])
    error = caught.value
    assert error.status == 403
    assert 'cannot get resource "pods/exec"' in error.message
    assert "pods/exec" in error.message
    assert error.body["reason"] == "Forbidden"


async def test_missing_pod_gives_not_found_with_the_servers_message(sandbox: Sandbox) -> None:
    """404 on the upgrade: NotFoundError naming the pod, as kube-apiserver says it."""
    async with asyncpod.Client(_admin(sandbox)) as k8s:
        with pytest.raises(asyncpod.NotFoundError) as caught:
            await k8s.exec("nosuchpod", ["true"])
    assert caught.value.message == 'pods "nosuchpod" not found'


async def test_unknown_container_is_a_bad_request(sandbox: Sandbox) -> None:
    """A container the pod does not have: BadRequestError with the server's words."""
    _running(sandbox)
    async with asyncpod.Client(_admin(sandbox)) as k8s:
        with pytest.raises(asyncpod.BadRequestError, match="container nope is not valid"):
            await k8s.exec("web", ["true"], container="nope")


async def test_kubectl_proxy_rejection_names_the_flag(sandbox: Sandbox) -> None:
    """A plain-text 403 from a kubectl proxy names its --reject-paths flag."""
    _running(sandbox)
    sandbox.proxy_rejects_exec = True
    for config in (
        asyncpod.Config.proxy(sandbox.proxy_url),
        asyncpod.Config.unix_socket(sandbox.unix_socket),
    ):
        async with asyncpod.Client(config) as k8s:
            with pytest.raises(asyncpod.ForbiddenError) as caught:
                await k8s.exec("web", ["true"])
        assert "--reject-paths" in caught.value.message
        assert caught.value.message.startswith("Forbidden")


async def test_resize_reaches_the_process(sandbox: Sandbox) -> None:
    """With tty=True a resize message sets the terminal size the command sees."""
    _running(sandbox)
    async with (
        asyncpod.Client(_admin(sandbox)) as k8s,
        k8s.stream_exec("web", ["sh", "-c", "read line; stty size"], stdin=True, tty=True) as proc,
    ):
        assert proc.stderr is None  # a terminal joins stderr to stdout
        assert proc.stdin is not None
        await proc.resize(101, 37)
        await proc.stdin.send(b"go\n")
        output = b""
        with anyio.fail_after(10):
            while b"37 101" not in output:
                output += await proc.stdout.receive()
            assert await proc.wait() == 0


async def test_cancelling_leaves_no_process_or_socket_behind(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """Cancelling a running exec closes its WebSocket; the sandbox then ends the process."""
    _running(sandbox)
    pid_file = tmp_path / "pid"
    async with asyncpod.Client(_admin(sandbox)) as k8s:
        with anyio.move_on_after(1.0) as scope:
            await k8s.exec("web", ["sh", "-c", f"echo $$ > {pid_file}; exec sleep 60"])
        assert scope.cancelled_caught
        result = await k8s.exec("web", ["echo", "still fine"])
    assert result.stdout == b"still fine\n"
    pid = int(pid_file.read_text())
    with anyio.fail_after(10):
        while True:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            await anyio.sleep(0.05)


async def test_timeout_raises_request_timeout(sandbox: Sandbox) -> None:
    """exec(timeout=...) ends a command that takes longer with RequestTimeoutError."""
    _running(sandbox)
    async with asyncpod.Client(_admin(sandbox)) as k8s:
        with pytest.raises(asyncpod.RequestTimeoutError, match=r"within 0\.5 s"):
            await k8s.exec("web", ["sleep", "30"], timeout=0.5)


async def test_token_rotation_during_a_long_exec_session(sandbox: Sandbox, tmp_path: Path) -> None:
    """A session opened before a rotation keeps going; the next one uses the new token."""
    _running(sandbox)
    pod = sandbox.pod_environment(root=tmp_path / "serviceaccount")
    config = asyncpod.Config.in_cluster(root=pod.root, environ=pod.environ)
    async with asyncpod.Client(config) as k8s:
        async with k8s.stream_exec("web", ["cat"], stdin=True) as proc:
            assert proc.stdin is not None
            await proc.stdin.send(b"before\n")
            assert await proc.stdout.receive() == b"before\n"
            await anyio.to_thread.run_sync(pod.rotate_token, 0.0)
            await anyio.sleep(1.2)  # the old token has expired; the file is re-read
            await proc.stdin.send(b"after\n")
            assert await proc.stdout.receive() == b"after\n"
            await proc.close_stdin()
            assert await proc.wait() == 0
        result = await k8s.exec("web", ["echo", "new token"])
    assert result.stdout == b"new token\n"


async def test_upgrade_with_a_rotated_out_token_rereads_it_once(
    sandbox: Sandbox, tmp_path: Path, anyio_backend: str
) -> None:
    """An upgrade refused with 401 re-reads the token file and is sent again, once."""
    # A pod of its own: a session of an earlier test may still be logged late.
    name = f"rotated-{anyio_backend}"
    _running(sandbox, name)
    pod = sandbox.pod_environment(root=tmp_path / "serviceaccount")
    config = asyncpod.Config.in_cluster(root=pod.root, environ=pod.environ)
    path = f"/api/v1/namespaces/default/pods/{name}/exec"
    async with asyncpod.Client(config) as k8s:
        await k8s.exec(name, ["true"])  # the token file was just checked
        await anyio.to_thread.run_sync(pod.rotate_token, 0.0)
        result = await k8s.exec(name, ["echo", "ok"])
    assert result.stdout == b"ok\n"

    def statuses() -> list[int]:
        # Sorted: a session is logged when it ends, not in the order it was sent.
        return sorted(r.status for r in sandbox.requests.filter("GET", path))

    await eventually(lambda: statuses().count(101) == 2)
    # Within the token file's one-second check the old token is sent and refused;
    # later the new one is read before sending. Either way: no failure, one retry at most.
    assert statuses() in ([101, 101], [101, 101, 401])


async def test_large_stdin_through_cat_never_deadlocks(sandbox: Sandbox) -> None:
    """8 MiB of stdin while cat's output streams back: both directions flow at once."""
    _running(sandbox)
    data = os.urandom(8 * 1024 * 1024)
    async with asyncpod.Client(_admin(sandbox)) as k8s:
        with anyio.fail_after(60):
            result = await k8s.exec("web", ["cat"], stdin=data)
    assert result.stdout == data


async def test_attach_is_refused_by_the_sandbox_with_a_bad_request(sandbox: Sandbox) -> None:
    """The sandbox runs no main process: attach gets a 400 saying so, as an APIError."""
    _running(sandbox)
    async with asyncpod.Client(_admin(sandbox)) as k8s:
        with pytest.raises(asyncpod.BadRequestError, match="no main process"):
            async with k8s.attach("web"):
                pass
