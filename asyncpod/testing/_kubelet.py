"""The sandbox's kubelet: exec, attach and port-forward over WebSockets.

Imitates kube-apiserver plus kubelet (``pkg/kubelet/cri/streaming``): the
channel protocol ``v5.channel.k8s.io`` or ``v4.channel.k8s.io`` (the first
of the client's offer that ``Sandbox.stream_protocols`` allows), output in
messages of at most 32 KiB, the ``Status`` on channel 3 with the exit code
as a cause, resize on channel 4 for a TTY, and the v5 close signal.

exec runs a real local process, as the test's user, in a new temporary
folder (``HOME`` too), with the container's literal ``env`` values; an exit
by a signal is reported as 128 + the signal (137 for SIGKILL), as container
runtimes do. attach has no main process to attach to: it answers 400.
port-forward is in ``_portforward``. A pod not bound to a node yet gets the
API server's 400 before any upgrade.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import shutil
import signal
import struct
import tempfile
import termios
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

from asyncpod.testing import _status
from asyncpod.testing._portforward import PORTFORWARD_PROTOCOLS, message_bytes, serve_port_forward
from asyncpod.testing._resources import ResourceType
from asyncpod.testing._routes import TRUE, Route
from asyncpod.testing._spdytunnel import offers_tunnel, serve_tunnel
from asyncpod.testing._subresources import container_of

if TYPE_CHECKING:
    from asyncpod.testing._sandbox import Sandbox

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
STREAM_PROTOCOLS = (V5, V4)
MAX_MESSAGE = 32 * 1024
_STDIN, _STDOUT, _STDERR, _ERROR, _RESIZE, _CLOSE = 0, 1, 2, 3, 4, 255


def _offered(request: web.BaseRequest) -> list[str]:
    offered: list[str] = []
    for value in request.headers.getall("Sec-WebSocket-Protocol", []):
        offered.extend(p.strip() for p in value.split(",") if p.strip())
    return offered


def _choose(request: web.BaseRequest, allowed: tuple[str, ...]) -> str:
    """The first protocol of the client's offer that the server speaks (wsstream's rule)."""
    if request.headers.get("Upgrade", "").lower() != "websocket":
        # The API server answers a plain request to a streaming subresource so.
        raise _status.bad_request("Upgrade request required")
    for protocol in _offered(request):
        if protocol in allowed:
            return protocol
    raise _status.bad_request(
        f"unable to upgrade: the client offered none of the supported protocols "
        f"[{' '.join(allowed)}]"
    )


async def serve_stream(
    sb: Sandbox,
    request: web.BaseRequest,
    rt: ResourceType,
    route: Route,
    query: Mapping[str, str],
) -> web.StreamResponse:
    """Imitates GET ``pods/NAME/exec``, ``attach`` and ``portforward`` upgraded to a WebSocket."""
    assert route.name is not None
    assert route.namespace is not None
    pod = sb._store.get(rt, route.namespace, route.name).obj
    if route.subresource == "portforward":
        _check_host(pod, route.name)
        if offers_tunnel(_offered(request), request.headers.get("Upgrade", "")):
            # kubectl 1.31+: SPDY in a WebSocket, the ports in its streams' headers.
            return await serve_tunnel(sb, request, pod)
        protocol = _choose(request, PORTFORWARD_PROTOCOLS)
        return await serve_port_forward(sb, request, pod, protocol)
    containers = [str(c.get("name")) for c in (pod.get("spec") or {}).get("containers") or []]
    container = container_of(containers, query.get("container") or "", route.name)
    _check_host(pod, route.name)
    if route.subresource == "attach":
        raise _status.bad_request(
            f"the sandbox runs no main process in container {container} of pod {route.name} "
            "to attach to; use exec"
        )
    command = request.query.getall("command", [])
    if not command:
        raise _status.bad_request("you must specify at least 1 command")
    streams = {name: query.get(name) in TRUE for name in ("stdin", "stdout", "stderr", "tty")}
    if not (streams["stdin"] or streams["stdout"] or streams["stderr"]):
        raise _status.bad_request("you must specify at least 1 of stdin, stdout, stderr")
    protocol = _choose(request, tuple(sb.stream_protocols))
    env = _container_env(pod, container)
    ws = web.WebSocketResponse(protocols=[protocol], max_msg_size=4 << 20, autoping=True)
    await ws.prepare(request)
    await _Exec(sb, ws, protocol, command, env, streams).run()
    return ws


def _check_host(pod: Mapping[str, Any], name: str) -> None:
    # The API server streams through the pod's node; a pod not yet scheduled has
    # none (pkg/registry/core/pod/strategy.go, streamLocation and PortForwardLocation).
    if not (pod.get("spec") or {}).get("nodeName"):
        raise _status.bad_request(f"pod {name} does not have a host assigned")


def _container_env(pod: Mapping[str, Any], container: str) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOSTNAME": str(pod["metadata"]["name"]),
    }
    for spec in (pod.get("spec") or {}).get("containers") or []:
        if spec.get("name") == container:
            for var in spec.get("env") or []:
                if isinstance(var, dict) and "value" in var:
                    env[str(var.get("name"))] = str(var["value"])
    return env


def _exit_status(command: list[str], code: int) -> dict[str, Any]:
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {
        "metadata": {},
        "status": "Failure",
        "message": (
            f"command terminated with non-zero exit code: error executing command "
            f"[{' '.join(command)}], exit code {code}"
        ),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def _start_failure(command: list[str], exc: OSError) -> dict[str, Any]:
    # containerd's words for an exec that cannot start; no exit code.
    what = "executable file not found in $PATH" if isinstance(exc, FileNotFoundError) else exc
    return {
        "metadata": {},
        "status": "Failure",
        "message": (
            "Internal error occurred: error executing command in container: failed to exec "
            f'in container: OCI runtime exec failed: exec: "{command[0]}": {what}: unknown'
        ),
        "reason": "InternalError",
        "code": 500,
    }


class _Exec:
    """One exec session: a local process and its WebSocket."""

    def __init__(
        self,
        sb: Sandbox,
        ws: web.WebSocketResponse,
        protocol: str,
        command: list[str],
        env: dict[str, str],
        streams: dict[str, bool],
    ) -> None:
        self.sb = sb
        self.ws = ws
        self.protocol = protocol
        self.command = command
        self.env = env
        self.streams = streams
        self.process: asyncio.subprocess.Process | None = None
        self.pty: int | None = None

    async def _send(self, channel: int, data: bytes) -> None:
        step = MAX_MESSAGE - 1
        for start in range(0, len(data), step):
            await self.ws.send_bytes(bytes((channel,)) + data[start : start + step])

    async def run(self) -> None:
        folder = tempfile.mkdtemp(prefix="asyncpod-exec-")
        self.env["HOME"] = folder
        try:
            try:
                await self._start(folder)
            except OSError as exc:
                await self._send(_ERROR, json.dumps(_start_failure(self.command, exc)).encode())
                return
            await self._pump()
        except ConnectionError:
            # The client went away mid-session.
            pass
        finally:
            process = self.process
            if process is not None and process.returncode is None:
                # The client went away (or the sandbox stops): no process outlives its session.
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                with contextlib.suppress(Exception):
                    await asyncio.shield(process.wait())
            if self.pty is not None:
                os.close(self.pty)
            # Before the close frame, so that the session's end means its folder is gone.
            shutil.rmtree(folder, ignore_errors=True)
            with contextlib.suppress(Exception):
                await self.ws.close()

    async def _start(self, folder: str) -> None:
        pipe = asyncio.subprocess.PIPE
        if self.streams["tty"]:
            master, slave = os.openpty()
            self.pty = master
            try:
                self.process = await asyncio.create_subprocess_exec(
                    *self.command,
                    stdin=slave,
                    stdout=slave,
                    stderr=slave,
                    cwd=folder,
                    env=self.env,
                    start_new_session=True,
                )
            finally:
                os.close(slave)
            return
        self.process = await asyncio.create_subprocess_exec(
            *self.command,
            stdin=pipe if self.streams["stdin"] else asyncio.subprocess.DEVNULL,
            stdout=pipe,
            stderr=pipe,
            cwd=folder,
            env=self.env,
            start_new_session=True,
        )

    async def _pump(self) -> None:
        process = self.process
        assert process is not None
        outputs: list[asyncio.Task[None]] = []
        if self.pty is not None:
            outputs.append(asyncio.ensure_future(self._copy_pty(self.pty)))
        else:
            assert process.stdout is not None
            assert process.stderr is not None
            outputs.append(asyncio.ensure_future(self._copy(process.stdout, _STDOUT)))
            outputs.append(asyncio.ensure_future(self._copy(process.stderr, _STDERR)))
        reader = asyncio.ensure_future(self._read_client())
        try:
            await asyncio.gather(*outputs)
            code = await process.wait()
        finally:
            reader.cancel()
            for task in outputs:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
        if code < 0:
            code = 128 - code  # killed by signal N: 128 + N, as runtimes report it
        await self._send(_ERROR, json.dumps(_exit_status(self.command, code)).encode())

    async def _copy(self, source: asyncio.StreamReader, channel: int) -> None:
        if not self.streams["stdout" if channel == _STDOUT else "stderr"]:
            while await source.read(MAX_MESSAGE - 1):
                pass
            return
        while data := await source.read(MAX_MESSAGE - 1):
            await self._send(channel, data)

    async def _copy_pty(self, master: int) -> None:
        loop = asyncio.get_running_loop()
        while True:
            readable = loop.create_future()
            loop.add_reader(master, readable.set_result, None)
            try:
                await readable
            finally:
                loop.remove_reader(master)
            try:
                data = os.read(master, MAX_MESSAGE - 1)
            except OSError:  # EIO: every process holding the terminal ended
                return
            if not data:
                return
            await self._send(_STDOUT, data)

    async def _read_client(self) -> None:
        process = self.process
        assert process is not None
        async for message in self.ws:
            data = message_bytes(message)
            if not data:
                continue
            channel, payload = data[0], data[1:]
            if channel == _STDIN and payload:
                await self._write_stdin(payload)
            elif channel == _CLOSE and self.protocol == V5 and payload[:1] == b"\x00":
                self._close_stdin()
            elif channel == _RESIZE and self.pty is not None:
                size = json.loads(payload)
                winsize = struct.pack("HHHH", int(size["Height"]), int(size["Width"]), 0, 0)
                fcntl.ioctl(self.pty, termios.TIOCSWINSZ, winsize)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGWINCH)
        # The client closed the WebSocket: the session ends with it.
        with contextlib.suppress(ProcessLookupError):
            process.kill()

    async def _write_stdin(self, data: bytes) -> None:
        if self.pty is not None:
            os.write(self.pty, data)
            return
        stdin = self.process.stdin if self.process is not None else None
        if stdin is None or stdin.is_closing():
            return
        with contextlib.suppress(ConnectionError):
            stdin.write(data)
            await stdin.drain()

    def _close_stdin(self) -> None:
        if self.pty is not None:
            with contextlib.suppress(OSError):
                os.write(self.pty, b"\x04")  # ^D: end of input on a terminal
            return
        stdin = self.process.stdin if self.process is not None else None
        if stdin is not None:
            stdin.close()


__all__ = ["PORTFORWARD_PROTOCOLS", "STREAM_PROTOCOLS", "serve_stream"]
