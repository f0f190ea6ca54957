"""Commands in a pod's container: exec and attach over a channel WebSocket.

``RemoteProcess`` is the I/O driver of one session: a reader task moves
stdout and stderr into bounded anyio streams (the caller's reads are the
back-pressure), collects the error channel's ``Status`` and ends the output
streams when the server half-closes them or closes the WebSocket; a
keepalive task pings every 5 s. ``run_command`` is ``exec()``: it feeds
stdin, reads both outputs to their end and returns a ``CommandResult``.
"""

from __future__ import annotations

import codecs
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from attrs import field, frozen

from asyncpod._channels import ChannelSocket, open_channels
from asyncpod._errors import AsyncpodError, RequestTimeoutError, TransportError
from asyncpod._session import Session
from asyncpod._target import Params
from asyncpod._websocket import (
    ERROR,
    EXEC_PROTOCOLS,
    STDERR,
    STDIN,
    STDOUT,
    ChannelClosed,
    ChannelData,
    ConnectionClosed,
    exit_code_of,
    parse_status,
)

# Messages of 32 KiB buffered per output stream before the reader waits for
# the caller: 2 MiB.
OUTPUT_BUFFER = 64
# The error channel carries one small Status; more is a broken server.
MAX_STATUS = 1 << 20


class CommandError(AsyncpodError):
    """A command in a pod failed: a non-zero exit code, or it could not be started.

    Attributes:
        exit_code: the command's exit code, or ``None`` when it could not be
            started (the message says why).
        stdout: what it wrote to stdout (``exec()`` only).
        stderr: what it wrote to stderr (``exec()`` only).
        status: the ``Status`` of the error channel.
    """

    def __init__(
        self,
        message: str,
        *,
        exit_code: int | None,
        stdout: bytes = b"",
        stderr: bytes = b"",
        status: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.stdout = stdout
        self.stderr = stderr
        self.status: dict[str, Any] = status if status is not None else {}


@frozen
class CommandResult:
    """What a command in a pod did.

    Attributes:
        stdout: its standard output, intact bytes.
        stderr: its standard error.
        exit_code: its exit code (137 when it was killed by SIGKILL).
        protocol: the channel protocol the server spoke (``v5.channel.k8s.io``).
    """

    stdout: bytes = field(repr=False)
    stderr: bytes = field(repr=False)
    exit_code: int
    protocol: str

    def check(self) -> None:
        """Raise ``CommandError`` unless the exit code is 0."""
        if self.exit_code != 0:
            msg = f"command terminated with exit code {self.exit_code}"
            raise CommandError(
                msg, exit_code=self.exit_code, stdout=self.stdout, stderr=self.stderr
            )


class _OutputStream(anyio.abc.ByteReceiveStream):
    """One output channel as an anyio byte stream; ``EndOfStream`` after its end."""

    def __init__(self, messages: MemoryObjectReceiveStream[bytes]) -> None:
        self._messages = messages
        self._pending = b""

    async def receive(self, max_bytes: int = 65536) -> bytes:
        data = self._pending
        if not data:
            try:
                data = await self._messages.receive()
            except anyio.ClosedResourceError:
                # Closed by the caller or at the session's end: nothing more comes.
                raise anyio.EndOfStream from None
        self._pending = data[max_bytes:]
        return data[:max_bytes]

    async def aclose(self) -> None:
        self._messages.close()


class _InputStream(anyio.abc.ByteSendStream):
    """stdin as an anyio byte stream; ``aclose()`` closes stdin (v5)."""

    def __init__(self, process: RemoteProcess) -> None:
        self._process = process

    async def send(self, item: bytes) -> None:
        await self._process._socket.send(STDIN, item)

    async def aclose(self) -> None:
        await self._process.close_stdin()


class RemoteProcess:
    """A command running in a container, streamed over a channel WebSocket.

    Attributes:
        stdin: an anyio byte stream to the command (``None`` without ``stdin=True``).
        stdout: an anyio byte stream from the command.
        stderr: likewise (``None`` with ``tty=True``, where it joins stdout).
        protocol: the channel protocol the server chose.
    """

    def __init__(self, socket: ChannelSocket, *, stdin: bool, stderr: bool) -> None:
        self._socket = socket
        self.protocol = socket.subprotocol
        self.stdin: anyio.abc.ByteSendStream | None = _InputStream(self) if stdin else None
        self._outputs: dict[int, MemoryObjectSendStream[bytes]] = {}
        self._receivers: list[MemoryObjectReceiveStream[bytes]] = []
        out_send, out_receive = anyio.create_memory_object_stream[bytes](OUTPUT_BUFFER)
        self._outputs[STDOUT] = out_send
        self._receivers.append(out_receive)
        self.stdout: anyio.abc.ByteReceiveStream = _OutputStream(out_receive)
        self.stderr: anyio.abc.ByteReceiveStream | None = None
        if stderr:
            err_send, err_receive = anyio.create_memory_object_stream[bytes](OUTPUT_BUFFER)
            self._outputs[STDERR] = err_send
            self._receivers.append(err_receive)
            self.stderr = _OutputStream(err_receive)
        self._status = bytearray()
        self._done = anyio.Event()
        self._failure: BaseException | None = None
        self._stdin_closed = False

    async def _read(self) -> None:
        """Move messages to the output streams until the server closes."""
        try:
            while True:
                for event in await self._socket.receive():
                    if isinstance(event, ChannelData):
                        await self._deliver(event)
                    elif isinstance(event, ChannelClosed):
                        self._end_output(event.channel)
                    elif isinstance(event, ConnectionClosed):
                        return
        except AsyncpodError as exc:
            self._failure = exc
        finally:
            for channel in list(self._outputs):
                self._end_output(channel)
            self._done.set()

    async def _deliver(self, event: ChannelData) -> None:
        if event.channel == ERROR:
            if len(self._status) + len(event.data) <= MAX_STATUS:
                self._status += event.data
            return
        output = self._outputs.get(event.channel)
        if output is None:
            return
        try:
            await output.send(event.data)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            # The caller closed this output: what follows is dropped.
            self._outputs.pop(event.channel, None)

    def _release(self) -> None:
        """Close every stream end: the session is over."""
        for channel in list(self._outputs):
            self._end_output(channel)
        for receiver in self._receivers:
            receiver.close()

    def _end_output(self, channel: int) -> None:
        output = self._outputs.pop(channel, None)
        if output is not None:
            output.close()

    @property
    def can_close_stdin(self) -> bool:
        """Whether stdin can be closed: the server speaks ``v5.channel.k8s.io``."""
        return self._socket.channels.can_close_channels

    async def close_stdin(self) -> None:
        """Tell the command that stdin has ended (the v5 close signal), once.

        Raises:
            AsyncpodError: the server speaks only v4, which cannot close stdin.
        """
        if self._stdin_closed or self.stdin is None:
            return
        self._socket.channels.close_channel(STDIN)
        self._stdin_closed = True
        await self._socket.flush()

    async def resize(self, width: int, height: int) -> None:
        """Set the terminal size of a ``tty=True`` command (the resize channel)."""
        self._socket.channels.resize(width, height)
        await self._socket.flush()

    async def wait_status(self) -> dict[str, Any]:
        """Wait until the server closes the session; the error channel's ``Status``.

        Read the output streams meanwhile: more than 2 MiB left unread in one
        holds the session up, as a pipe does.

        Raises:
            TransportError: the connection broke before the command ended.
        """
        await self._done.wait()
        if self._failure is not None:
            raise self._failure
        if not self._status.strip():
            # kubelet ends every session with a Status, Success included: a
            # session without one was cut, and its command's fate is unknown.
            msg = f"{self._socket.what}: the session ended without the command's exit status"
            raise TransportError(msg)
        return parse_status(bytes(self._status))

    async def wait(self) -> int:
        """Wait for the command to end; its exit code.

        Raises:
            CommandError: the command could not be started (no exit code).
            TransportError: the connection broke before the command ended.
        """
        status = await self.wait_status()
        return _exit_code(status)

    async def aiter_text(
        self, stream: anyio.abc.ByteReceiveStream, encoding: str = "utf-8"
    ) -> AsyncIterator[str]:
        """Text from ``stream`` (``proc.stdout``), decoded across message boundaries.

        A character split between two messages is decoded once both arrived;
        invalid bytes become U+FFFD.
        """
        decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
        while True:
            try:
                data = await stream.receive()
            except anyio.EndOfStream:
                break
            text = decoder.decode(data)
            if text:
                yield text
        tail = decoder.decode(b"", final=True)
        if tail:
            yield tail


async def _feed(process: RemoteProcess, data: bytes) -> None:
    """Write all of ``data`` to stdin, then close it."""
    try:
        if data and process.stdin is not None:
            await process.stdin.send(data)
        await process.close_stdin()
    except AsyncpodError:
        # The connection broke or the command ended first: the reader reports
        # a broken connection, and an ended command has its exit code.
        return


def _exit_code(status: dict[str, Any]) -> int:
    code = exit_code_of(status)
    if code is None:
        message = str(status.get("message") or "the command failed without an exit code")
        raise CommandError(message, exit_code=None, status=status)
    return code


@asynccontextmanager
async def open_process(
    session: Session, path: str, params: Params, *, stdin: bool, stderr: bool
) -> AsyncIterator[RemoteProcess]:
    """Upgrade ``path`` (exec or attach) and run a ``RemoteProcess`` for the block.

    Leaving the block closes the WebSocket, also on cancellation; the reader
    and the pinger end with it.
    """
    socket = await open_channels(session, path, params, EXEC_PROTOCOLS)
    failure: Exception | None = None
    process = RemoteProcess(socket, stdin=stdin, stderr=stderr)
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(process._read)
            tasks.start_soon(socket.keepalive)
            try:
                yield process
            except Exception as exc:
                # Raised after the task group, so that the caller gets it
                # as it is, not wrapped in an exception group.
                failure = exc
            finally:
                tasks.cancel_scope.cancel()
    finally:
        process._release()
        await socket.aclose()
    if failure is not None:
        raise failure


async def run_command(
    session: Session,
    path: str,
    params: Params,
    *,
    stdin: bytes | None,
    timeout: float | None,  # noqa: ASYNC109 - the documented exec(timeout=)
    check: bool,
) -> CommandResult:
    """``exec()``: run to the end, collecting both outputs.

    Raises:
        CommandError: ``check`` and a non-zero exit code, or the command could
            not be started.
        RequestTimeoutError: ``timeout`` passed first.
    """
    stdout = bytearray()
    stderr = bytearray()

    async def drain(stream: anyio.abc.ByteReceiveStream | None, into: bytearray) -> None:
        if stream is None:
            return
        while True:
            try:
                into += await stream.receive(1 << 20)
            except anyio.EndOfStream:
                return

    with anyio.move_on_after(timeout if timeout is not None else float("inf")) as scope:
        async with open_process(session, path, params, stdin=stdin is not None, stderr=True) as p:
            if stdin is not None and not p.can_close_stdin:
                msg = (
                    f"the server speaks only {p.protocol}, which cannot close stdin, so the "
                    "command would never see its end; exec(stdin=...) needs v5.channel.k8s.io "
                    "(Kubernetes 1.30+); use stream_exec() to write stdin without closing it"
                )
                raise AsyncpodError(msg)
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(drain, p.stdout, stdout)
                tasks.start_soon(drain, p.stderr, stderr)
                if stdin is not None:
                    tasks.start_soon(_feed, p, stdin)
            status = await p.wait_status()
    if scope.cancelled_caught:
        msg = f"the command did not end within {timeout:g} s"
        raise RequestTimeoutError(msg)
    code = exit_code_of(status)
    if code is None:
        message = str(status.get("message") or "the command failed without an exit code")
        raise CommandError(
            message, exit_code=None, stdout=bytes(stdout), stderr=bytes(stderr), status=status
        )
    result = CommandResult(
        stdout=bytes(stdout), stderr=bytes(stderr), exit_code=code, protocol=p.protocol
    )
    if check:
        result.check()
    return result


__all__ = ["CommandError", "CommandResult", "RemoteProcess", "open_process", "run_command"]
